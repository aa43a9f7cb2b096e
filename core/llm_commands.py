"""Commands around describing: `describe` (re-describe a run), `prompts`, `ask`, `evaluate`."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import atomic, plugins, progress
from .cli import cli
from .describing import make_describer
from .runfolder import RunFolder


def describe_config(run: RunFolder, describer: str | None, model: str | None, prompts: Path | None,
                    overrides: tuple[str, ...]) -> dict[str, Any]:
    """The run's own config with the describe section changed by the command's flags."""
    from .config import apply_overrides, build_config

    cfg = apply_overrides(copy.deepcopy(run.manifest.get("config") or build_config()), overrides)
    if describer:
        cfg["describe"]["describer"] = describer
    if model:
        cfg["describe"]["model"] = model
    if prompts:
        cfg["describe"]["prompts_dir"] = str(prompts)
    return cfg


def llm_options(f):
    for opt in reversed([
        click.option("--describer", help="Describer by name: local, openai or keywords."),
        click.option("--model", help="Model: local name/path, or the server's model for openai."),
        click.option("--prompts", type=click.Path(path_type=Path), help="A folder of .j2 files overriding prompts."),
        click.option("--set", "overrides", multiple=True, metavar="describe.KEY=VALUE",
                     help="Override a describe setting, e.g. --set describe.base_url=http://127.0.0.1:8080/v1"),
    ]):
        f = opt(f)
    return f


@cli.command()
@click.argument("run_dir", metavar="RUN", type=click.Path(path_type=Path))
@llm_options
def describe(run_dir: Path, describer: str | None, model: str | None, prompts: Path | None,
             overrides: tuple[str, ...]) -> None:
    """Re-describe an existing run's segments (no segments are recomputed)."""
    from .describing import describe_run
    from .reporting import write_reports

    run = RunFolder(run_dir)
    cfg = describe_config(run, describer, model, prompts, overrides)
    name = cfg["describe"]["describer"]
    warnings = describe_run(run.path, make_describer(cfg), cfg)
    m = run.manifest
    m["config"] = cfg
    m.setdefault("plugins", {})["describer"] = {"name": name, "plugin": plugins.plugin_of("describer", name),
                                                "version": plugins.version_of(plugins.plugin_of("describer", name))}
    m["warnings"] = [w for w in m.get("warnings", []) if "describer fell back" not in w] + warnings
    atomic.write_json(run.path / "manifest.json", m)
    run = RunFolder(run.path)
    write_reports(run, list(cfg["report"]["formats"]), {**cfg["report"], "seed": cfg["seed"]})
    for w in warnings:
        progress.info(f"[yellow]warning:[/yellow] {w}")
    t = Table(title=f"segments described by {name}")
    for col in ("id", "name", "grounding"):
        t.add_column(col)
    for s in run.segments():
        if s["id"] >= 0:
            t.add_row(str(s["id"]), escape(s["name"]), f"{s.get('grounding', 1.0):.2f}")
    Console().print(t)


@cli.group()
def prompts() -> None:
    """The LLM prompt templates (override any with --prompts DIR or describe.prompts_dir)."""


@prompts.command(name="list")
@click.option("--prompts", "folder", type=click.Path(path_type=Path), help="An override folder to include.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def prompts_list(folder: Path | None, as_json: bool) -> None:
    """List the prompt templates and where each comes from."""
    from .prompting import template_names

    names = template_names(folder)
    if as_json:
        click.echo(json.dumps({name: str(path) for name, path in names.items()}, indent=2))
        return
    for name, path in names.items():
        click.echo(f"{name}\t{path}")


@prompts.command(name="show")
@click.argument("name")
@click.option("--prompts", "folder", type=click.Path(path_type=Path), help="An override folder to include.")
def prompts_show(name: str, folder: Path | None) -> None:
    """Print one prompt template."""
    from .errors import SeglensError
    from .prompting import template_names

    names = template_names(folder)
    if name not in names:
        raise SeglensError(f"no prompt template '{name}'", hint=f"available: {', '.join(sorted(names))}")
    click.echo(names[name].read_text(encoding="utf-8"), nl=False)


@cli.command()
@click.argument("run_dir", metavar="RUN", type=click.Path(path_type=Path))
@click.argument("question")
@llm_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def ask(run_dir: Path, question: str, describer: str | None, model: str | None, prompts: Path | None,
        overrides: tuple[str, ...], as_json: bool) -> None:
    """Answer QUESTION about a run from its segment facts, citing segment ids."""
    from .ask import answer_from_facts, answer_with_model
    from .llm import LLMError

    run = RunFolder(run_dir)
    cfg = describe_config(run, describer, model, prompts, overrides)
    segments = run.segments()
    answer = None
    if cfg["describe"]["describer"] != "keywords":
        try:
            d = make_describer(cfg)
            analyses = json.loads((run.path / "analyses.json").read_text(encoding="utf-8"))
            population = {k: v.get("facts", {}) for k, v in analyses.items()}
            answer = answer_with_model(question, segments, population, d.model(), d.prompts)
        except LLMError as exc:
            progress.info(f"[yellow]warning:[/yellow] {exc.one_line()}; answering from fact look-ups")
    if answer is None:
        answer = answer_from_facts(question, segments)
    if as_json:
        click.echo(json.dumps({"question": question, "answer": answer.text, "segments": answer.segments,
                               "backend": answer.backend}, indent=2, ensure_ascii=False))
    else:
        click.echo(answer.text)
