"""The `seglens` command line. Plugins add commands through the `register_commands` hook.

Exit codes: 0 ok, 2 the user's mistake (one line on stderr), 1 our bug (traceback with -v),
130 interrupted (a partial run is kept for --resume).
"""
from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from pathlib import Path
from typing import Any, Callable

import click

from . import __version__, plugins, progress
from .errors import InterruptedRun, SeglensError, StageFailed

log = logging.getLogger("seglens")


NEGATIVE_NUMBER = re.compile(r"^-\d+$")


def valued_options(command: click.Command) -> set[str]:
    """The option names of `command` that take a value (the word after them is not an argument)."""
    return {o for p in command.params if isinstance(p, click.Option) and not p.is_flag and not p.count
            for o in p.opts + p.secondary_opts}


def negatives_as_arguments(args: list[str], valued: set[str]) -> list[str]:
    """`-1` is segment -1 (the unassigned users), not an unknown option: when an argument looks like
    a negative number, the options (with their values) go first and every argument after a `--`,
    in its original order, where Click reads them as arguments. Otherwise `args` is unchanged."""
    head, tail = (args[:args.index("--")], args[args.index("--") + 1:]) if "--" in args else (args, [])
    options: list[str] = []
    arguments: list[str] = []
    i = 0
    while i < len(head):
        word = head[i]
        if word.startswith("-") and not NEGATIVE_NUMBER.match(word):
            options.append(word)
            if word in valued and i + 1 < len(head):
                options.append(head[i + 1])
                i += 1
        else:
            arguments.append(word)
        i += 1
    if not any(NEGATIVE_NUMBER.match(a) for a in arguments):
        return args
    return [*options, "--", *arguments, *tail]


class NegativeIdCommand(click.Command):
    """A command whose arguments may be negative numbers: `seglens show RUN -1` means the unassigned
    users (segment -1)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, negatives_as_arguments(args, valued_options(self)))


def pipeline_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by every command that runs the pipeline (run, demo, plugin commands)."""
    opts = [
        click.option("--config", "config_file", type=click.Path(path_type=Path), help="A TOML config file."),
        click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                     help="Override one config value, e.g. --set cluster.min_cluster_size=50 (repeatable)."),
        click.option("--seed", type=int, help="Random seed (same seed, same segments)."),
        click.option("--strategy", type=click.Choice(["item-pool", "history-text", "behaviour"]),
                     help="How users become vectors (default item-pool)."),
        click.option("--clusterer", help="Clusterer by name: hdbscan (default) or kmeans."),
        click.option("--min-cluster-size", type=int, help="Smallest segment HDBSCAN may report."),
        click.option("--assign-noise", is_flag=True, default=None, help="Put noise users in their nearest segment."),
        click.option("--describer", help="Describer by name (default keywords)."),
        click.option("--force", is_flag=True, help="Replace an existing run folder."),
        click.option("--resume", is_flag=True, help="Reuse the finished stages of an interrupted or earlier run."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def config_from_options(config_file: Path | None, overrides: tuple[str, ...], seed: int | None = None,
                        strategy: str | None = None, clusterer: str | None = None,
                        min_cluster_size: int | None = None, assign_noise: bool | None = None,
                        describer: str | None = None, **_: Any) -> dict[str, Any]:
    from .config import build_config

    extra = list(overrides)
    if seed is not None:
        extra.append(f"seed={seed}")
    if strategy:
        extra.append(f"embed.strategy={strategy}")
    if clusterer:
        extra.append(f"cluster.method={clusterer}")
    if min_cluster_size is not None:
        extra.append(f"cluster.min_cluster_size={min_cluster_size}")
    if assign_noise:
        extra.append("cluster.assign_noise=true")
    if describer:
        extra.append(f"describe.describer={describer}")
    return build_config(config_file, extra)


def print_summary(summary: Any) -> None:
    from rich.table import Table

    if progress.is_quiet():
        return
    progress.info(
        f"[bold green]done[/bold green]: {summary.n_users:,} users, {summary.n_events:,} events -> "
        f"{summary.n_segments} segments ({summary.noise_share:.1%} unassigned) in {summary.out}"
    )
    if summary.reused:
        progress.info(f"reused stages: {', '.join(summary.reused)}")
    t = Table(title="seconds per stage", show_header=True)
    t.add_column("stage")
    t.add_column("seconds", justify="right")
    for k, v in summary.seconds.items():
        t.add_row(k, f"{v:.2f}")
    progress.console.print(t)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="seglens")
@click.option("-v", "--verbose", count=True, help="Log what happens (-vv for debug detail).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """seglens: find, profile and explain the user segments in behaviour logs."""
    progress.configure(verbose, quiet)
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose


@cli.command()
@click.argument("events", type=click.Path(path_type=Path))
@click.option("--items", type=click.Path(path_type=Path), help="Item catalog: id, title, categories, description, price.")
@click.option("--users", type=click.Path(path_type=Path), help="User attributes: id plus any columns.")
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True, help="The run folder to write.")
@click.option("--format", "fmt", help="Input format (tabular, movielens, online_retail, cdnow); inferred if omitted.")
@click.option("--user-col", help="Name of the user id column.")
@click.option("--item-col", help="Name of the item id column.")
@click.option("--time-col", help="Name of the timestamp column.")
@click.option("--event-col", help="Name of the event type column.")
@click.option("--value-col", help="Name of the value column (rating, amount...).")
@click.option("--value-kind", type=click.Choice(["rating", "amount", "quantity", "none"]),
              help="What the value column means (guessed if omitted).")
@pipeline_options
def run(events: Path, items: Path | None, users: Path | None, out: Path, fmt: str | None, user_col: str | None,
        item_col: str | None, time_col: str | None, event_col: str | None, value_col: str | None,
        value_kind: str | None, force: bool, resume: bool, **options: Any) -> None:
    """Segment the users in EVENTS and write a run folder."""
    from .model import ColumnMap, LoadRequest
    from .pipeline import Pipeline

    cfg = config_from_options(**options)
    cols = ColumnMap()
    for attr, val in (("user", user_col), ("item", item_col), ("time", time_col), ("event", event_col),
                      ("value", value_col)):
        if val:
            setattr(cols, attr, val)
    explicit = {k for k, v in (("user", user_col), ("item", item_col), ("time", time_col), ("event", event_col),
                               ("value", value_col)) if v}
    request = LoadRequest(events=events, items=items, users=users, columns=cols, format=fmt,
                          value_kind=value_kind, options={"explicit_columns": sorted(explicit)})
    summary = Pipeline(request, cfg, out, force=force, resume=resume).run()
    print_summary(summary)


@cli.command(name="plugins")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins_cmd(as_json: bool) -> None:
    """List installed plugins, their hooks, and the names they register per stage."""
    infos = plugins.plugin_infos()
    regs: dict[str, dict[str, list[str]]] = {i.name: {} for i in infos}
    for stage in plugins.STAGES:
        for name, reg in plugins.registrations(stage).items():
            regs.setdefault(reg.plugin, {}).setdefault(stage, []).append(name)
    commands: dict[str, list[str]] = {}
    for impl in plugins.pm.hook.register_commands.get_hookimpls():
        probe = click.Group()  # see what each plugin adds without touching the real group
        impl.function(cli=probe)
        commands[impl.plugin_name] = sorted(probe.commands)
    rows = [
        {"name": i.name, "module": i.module, "version": i.version, "distribution": i.distribution,
         "hooks": i.hooks, "registers": regs.get(i.name, {}), "commands": commands.get(i.name, [])}
        for i in infos
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    t = Table(title="seglens plugins")
    for col in ("plugin", "version", "hooks", "registers"):
        t.add_column(col)
    for r in rows:
        what = "; ".join(f"{k}: {', '.join(v)}" for k, v in r["registers"].items())
        if r["commands"]:
            what = "; ".join(filter(None, [what, "commands: " + ", ".join(r["commands"])]))
        t.add_row(r["name"], r["version"], ", ".join(h.replace("register_", "") for h in r["hooks"]), what)
    from rich.console import Console

    Console().print(t)


@cli.group(name="config")
def config_group() -> None:
    """Inspect configuration."""


@config_group.command(name="show")
@click.option("--config", "config_file", type=click.Path(path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE")
def config_show(config_file: Path | None, overrides: tuple[str, ...]) -> None:
    """Print the effective configuration (defaults, then --config, then --set) as TOML."""
    from .config import build_config, to_toml

    click.echo(to_toml(build_config(config_file, overrides)), nl=False)


def _register_plugin_commands() -> None:
    pm = plugins.load_plugins()
    pm.hook.register_commands(cli=cli)


def main(argv: list[str] | None = None) -> None:
    verbose = any(a in ("-v", "-vv", "-vvv", "--verbose") for a in (argv if argv is not None else sys.argv[1:]))
    try:
        from . import commands, evaluate, llm_commands  # noqa: F401  (they register on `cli`)

        _register_plugin_commands()
        cli.main(args=argv, prog_name="seglens", standalone_mode=False)
    except SeglensError as exc:
        click.echo(f"error: {exc.one_line()}", err=True)
        if verbose:
            traceback.print_exc()
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt) as exc:
        # Click turns Ctrl-C into Abort; a run interrupted after a finished stage says how to go on
        cause = exc if isinstance(exc, InterruptedRun) else exc.__cause__ or exc.__context__
        if isinstance(cause, InterruptedRun):
            click.echo(f"interrupted: the finished stages are kept in {cause}; rerun the same command with "
                       "--resume to continue", err=True)
        else:
            click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # our bug, or a plugin's
        text = str(exc) if isinstance(exc, StageFailed) else f"internal error: {type(exc).__name__}: {exc}"
        click.echo(f"error: {' '.join(text.split())}" if isinstance(exc, StageFailed) else text, err=True)
        if verbose:
            traceback.print_exc()
        else:
            click.echo("(run with -v for the traceback, and please report it)", err=True)
        sys.exit(1)
