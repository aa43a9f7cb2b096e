"""A run's life on the command line: what -q and -v show, load warnings on the terminal, --force,
a plugin that crashes (named, exit 1), Ctrl-C (exit 130, then --resume), and negative segment ids."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from helpers import REPO, seglens, write_csv

# What these tests check does not depend on UMAP, whose numba compile costs ~10 s per process.
FAST = ("--set", "reduce.method=pca", "--set", "reduce.map_method=pca")


@pytest.fixture
def data(tmp_path):
    rows = [f"u{u},i{(u * 7 + k) % 11},2024-01-{1 + k:02d},{1 + (u + k) % 5}" for u in range(12) for k in range(6)]
    rows += rows[:3]  # three duplicate events
    events = write_csv(tmp_path / "events.csv", "user_id,item_id,timestamp,value", rows)
    items = write_csv(tmp_path / "items.csv", "item_id,title,categories",  # i10 is missing from the catalog
                      [f"i{i},Title {i},{'Horror|Thriller' if i % 2 else 'Kids'}" for i in range(10)])
    return events, items


def test_warnings_reach_the_terminal_and_quiet_silences_them(data, tmp_path):
    events, items = data
    r = seglens("run", events, "--items", items, "-o", tmp_path / "loud", "--describer", "keywords", *FAST)
    assert r.returncode == 0, r.stderr
    warnings = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert any("3 duplicate events" in w for w in warnings), r.stderr
    assert any("catalog" in w and "%" in w for w in warnings), r.stderr
    manifest = json.loads((tmp_path / "loud" / "manifest.json").read_text())
    assert any("3 duplicate events" in w for w in manifest["warnings"])
    r = seglens("-q", "run", events, "--items", items, "-o", tmp_path / "quiet", "--describer", "keywords", *FAST)
    assert r.returncode == 0 and r.stderr == "" and r.stdout == "", (r.stdout, r.stderr)


def test_verbose_logs_each_stage(data, tmp_path):
    events, items = data
    r = seglens("-v", "run", events, "--items", items, "-o", tmp_path / "v", "--describer", "keywords", *FAST)
    assert r.returncode == 0, r.stderr
    for stage in ("load", "embed", "cluster", "describe"):
        assert f"stage {stage}:" in r.stderr, r.stderr


def test_force_replaces_a_run_and_a_failed_force_keeps_the_old_one(data, tmp_path, crash_plugin):
    events, items = data
    out = tmp_path / "run"
    base = ["run", events, "--items", items, "-o", out, "--describer", "keywords", *FAST]
    assert seglens("-q", *base, "--seed", "1").returncode == 0
    r = seglens(*base)
    assert r.returncode == 2 and "--force" in r.stderr
    assert seglens("-q", *base, "--seed", "2", "--force").returncode == 0
    assert json.loads((out / "manifest.json").read_text())["seed"] == 2
    before = (out / "users.parquet").read_bytes()
    r = seglens(*base, "--force", "--clusterer", "crash", env={"PYTHONPATH": str(crash_plugin)})
    assert r.returncode == 1
    assert (out / "users.parquet").read_bytes() == before
    assert json.loads((out / "manifest.json").read_text())["seed"] == 2


@pytest.fixture(scope="module")
def crash_plugin(tmp_path_factory):
    """A third-party plugin whose clusterer raises, as a buggy plugin would."""
    src = tmp_path_factory.mktemp("crash-src")
    (src / "crash_pl").mkdir()
    (src / "crash_pl" / "__init__.py").write_text(
        "from seglens import hookimpl\n\n"
        "class Crash:\n    def __init__(self, options):\n        pass\n\n"
        "    def cluster(self, points, seed):\n        raise ValueError('boom in the clusterer')\n\n"
        "class Boom:\n    def __init__(self, options):\n        pass\n\n"
        "    def analyse(self, ctx):\n        raise KeyError('boom in the analysis')\n\n"
        "@hookimpl\ndef register_clusterers(register):\n    register('crash', Crash)\n\n"
        "@hookimpl\ndef register_analyses(register):\n    register('boom', Boom)\n")
    (src / "pyproject.toml").write_text(
        '[build-system]\nrequires=["setuptools"]\nbuild-backend="setuptools.build_meta"\n'
        '[project]\nname="crash-pl"\nversion="2.0"\n[project.entry-points.seglens]\ncrashy="crash_pl"\n'
        '[tool.setuptools]\npackages=["crash_pl"]\n')
    target = tmp_path_factory.mktemp("crash-site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(src)], check=True, capture_output=True)
    return target


def test_a_plugin_that_raises_is_named_and_exits_1(data, tmp_path, crash_plugin):
    events, items = data
    out = tmp_path / "c"
    env = {"PYTHONPATH": str(crash_plugin)}
    r = seglens("run", events, "--items", items, "-o", out, "--clusterer", "crash", *FAST, env=env)
    assert r.returncode == 1, r.stderr
    first = next(line for line in r.stderr.splitlines() if not line.startswith("warning:"))
    assert first.startswith("error: stage 'cluster' failed in plugin 'crashy'"), r.stderr
    assert "boom in the clusterer" in first and "Traceback" not in r.stderr
    assert not out.exists() and (tmp_path / "c.partial" / "stages" / "embed.json").exists()
    r = seglens("-v", "run", events, "--items", items, "-o", out, "--clusterer", "crash", "--resume", *FAST, env=env)
    assert r.returncode == 1 and "Traceback" in r.stderr and "boom in the clusterer" in r.stderr


def test_an_analysis_that_raises_is_named_among_the_twelve(data, tmp_path, crash_plugin):
    events, items = data
    r = seglens("run", events, "--items", items, "-o", tmp_path / "a", "--set", 'analyses=["profile", "boom"]',
                *FAST, env={"PYTHONPATH": str(crash_plugin)})
    assert r.returncode == 1, r.stderr
    first = next(line for line in r.stderr.splitlines() if not line.startswith("warning:"))
    assert first.startswith("error: stage 'analyse' failed in plugin 'crashy' (analysis 'boom'): KeyError"), r.stderr
    assert not (tmp_path / "a").exists() and (tmp_path / "a.partial" / "stages" / "cluster.json").exists()


def test_ctrl_c_exits_130_and_resume_finishes(data, tmp_path):
    events, items = data
    out = tmp_path / "int"
    cmd = [sys.executable, "-m", "seglens", "run", str(events), "--items", str(items), "-o", str(out),
           "--describer", "keywords"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    done = tmp_path / "int.partial" / "stages" / "features.json"
    deadline = time.monotonic() + 120
    while not done.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "--resume" in err and "int.partial" in err and "Traceback" not in err
    assert not out.exists() and done.exists()
    r = seglens("-q", "run", events, "--items", items, "-o", out, "--describer", "keywords", "--resume")
    assert r.returncode == 0, r.stderr
    assert {"load", "features"} <= set(json.loads((out / "manifest.json").read_text())["reused_stages"])


def test_negative_segment_ids_are_arguments(data, tmp_path):
    events, items = data
    out = tmp_path / "n"
    assert seglens("-q", "run", events, "--items", items, "-o", out, "--describer", "keywords", *FAST).returncode == 0
    users = pd.read_parquet(out / "users.parquet")
    r = seglens("show", out, "-1", "--json")
    if (users["segment"] == -1).any():
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["id"] == -1
    else:
        assert r.returncode == 2 and "-1" in r.stderr and "No such option" not in r.stderr
    r = seglens("show", out, "--json", "-1")  # the id may come after the options too
    assert "No such option" not in r.stderr
    r = seglens("similar", out, "--segment", "-7")
    assert r.returncode == 2 and "No such option" not in r.stderr and "-7" in r.stderr
    r = seglens("compare", out, "-1", "--rest", "--json")
    assert "No such option" not in r.stderr
    if (users["segment"] == -1).any():
        assert r.returncode == 0 and json.loads(r.stdout)["a"] == -1, r.stderr
    else:
        assert r.returncode == 2 and "-1" in r.stderr


def test_negative_numbers_move_behind_a_double_dash_in_their_order():
    from seglens.cli import negatives_as_arguments

    assert negatives_as_arguments(["RUN", "-1", "2"], set()) == ["--", "RUN", "-1", "2"]
    assert negatives_as_arguments(["--top", "3", "RUN", "-1", "--json"], {"--top"}) == [
        "--top", "3", "--json", "--", "RUN", "-1"]
    assert negatives_as_arguments(["-k", "-5", "RUN", "u1"], {"-k"}) == ["-k", "-5", "RUN", "u1"]  # a value
    assert negatives_as_arguments(["RUN", "--", "-1"], set()) == ["RUN", "--", "-1"]
