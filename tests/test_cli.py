"""The command line as a user meets it: errors are one line with exit code 2 and leave no run
folder; plugins (including a third-party package) show up; config is inspectable."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers import REPO, seglens, write_csv


@pytest.fixture
def good(tmp_path):
    events = write_csv(tmp_path / "events.csv", "user_id,item_id,timestamp,value",
                       [f"u{u},i{(u * 7 + k) % 11},2024-01-{1 + k:02d},{1 + (u + k) % 5}" for u in range(12) for k in range(6)])
    items = write_csv(tmp_path / "items.csv", "item_id,title,categories",
                      [f"i{i},Title {i},{'Horror|Thriller' if i % 2 else 'Kids'}" for i in range(11)])
    return events, items


def _assert_user_error(r, *needles):
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])


@pytest.mark.parametrize("case", ["missing", "empty", "directory", "column", "timestamp", "negative", "utf8",
                                  "items-none-match", "non-numeric", "items-missing", "users-directory"])
def test_bad_input_is_one_line_exit_2_and_no_run_folder(case, tmp_path, good):
    events, items = good
    out = tmp_path / "run"
    args = []
    needles: tuple[str, ...] = ()
    if case == "missing":
        args, needles = [tmp_path / "nope.csv"], ("nope.csv",)
    elif case == "empty":
        (tmp_path / "e.csv").write_text("")
        args, needles = [tmp_path / "e.csv"], ("e.csv", "empty")
    elif case == "directory":
        (tmp_path / "d").mkdir()
        args, needles = [tmp_path / "d"], ("d",)
    elif case == "column":
        bad = write_csv(tmp_path / "c.csv", "customer,product,when", ["a,b,2024-01-01"])
        args, needles = [bad], ("c.csv", "columns found", "--time-col")
    elif case == "timestamp":
        bad = write_csv(tmp_path / "t.csv", "user_id,item_id,timestamp", ["a,b,2024-01-01", "a,c,yesterday"])
        args, needles = [bad], ("t.csv", "row 3", "yesterday")
    elif case == "negative":
        bad = write_csv(tmp_path / "n.csv", "user_id,item_id,timestamp,value", ["a,b,2024-01-01,3", "a,c,2024-01-02,-4"])
        args, needles = [bad], ("n.csv", "row 3", "-4")
    elif case == "utf8":
        (tmp_path / "u.csv").write_bytes(b"user_id,item_id,timestamp\na,caf\xe9,2024-01-01\n")
        args, needles = [tmp_path / "u.csv"], ("u.csv", "UTF-8")
    elif case == "non-numeric":
        bad = write_csv(tmp_path / "v.csv", "user_id,item_id,timestamp,value", ["a,b,2024-01-01,3", "a,c,2024-01-02,lots"])
        args, needles = [bad, "--value-kind", "amount"], ("v.csv", "lots")
    elif case == "items-missing":
        args, needles = [events, "--items", tmp_path / "no-items.csv"], ("no-items.csv",)
    elif case == "users-directory":
        (tmp_path / "udir").mkdir()
        args, needles = [events, "--items", items, "--users", tmp_path / "udir"], ("udir",)
    elif case == "items-none-match":
        other = write_csv(tmp_path / "other.csv", "item_id,title,categories", ["zz,Nothing,None"])
        args, needles = [events, "--items", other], ("other.csv",)
    r = seglens("run", *args, "-o", out)
    _assert_user_error(r, *needles)
    assert not out.exists() and not (tmp_path / "run.partial").exists()


def test_unknown_config_and_plugin_names_are_user_errors(good, tmp_path):
    events, items = good
    r = seglens("run", events, "--items", items, "-o", tmp_path / "r", "--set", "nosuch.key=1")
    _assert_user_error(r, "unknown config section 'nosuch'")
    r = seglens("run", events, "--items", items, "-o", tmp_path / "r", "--clusterer", "nosuch")
    _assert_user_error(r, "no clusterer called 'nosuch'", "hdbscan")
    assert not (tmp_path / "r").exists() and not (tmp_path / "r.partial").exists()


def test_small_run_works_and_run_on_a_non_run_is_refused(good, tmp_path):
    events, items = good
    r = seglens("-q", "run", events, "--items", items, "-o", tmp_path / "r", "--describer", "keywords")
    assert r.returncode == 0, r.stderr
    users = json.loads(seglens("show", tmp_path / "r", "--json").stdout)
    assert sum(s["size"] for s in users) == 12
    r = seglens("show", tmp_path)
    _assert_user_error(r, "not a complete seglens run folder")


def test_version_and_help():
    r = seglens("--version")
    assert r.returncode == 0 and "seglens, version 0.1.0" in r.stdout
    r = seglens("--help")
    for cmd in ("run", "demo", "plugins", "show", "similar", "config"):
        assert cmd in r.stdout


def test_config_show_reflects_overrides(tmp_path):
    cfgfile = tmp_path / "c.toml"
    cfgfile.write_text("seed = 7\n[cluster]\nmin_cluster_size = 33\n")
    r = seglens("config", "show", "--config", cfgfile, "--set", "embed.batch_size=8")
    assert r.returncode == 0, r.stderr
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    cfg = tomllib.loads(r.stdout)
    assert cfg["seed"] == 7 and cfg["cluster"]["min_cluster_size"] == 33 and cfg["embed"]["batch_size"] == 8
    assert cfg["embed"]["strategy"] == "item-pool"


def test_plugins_lists_builtins_with_hooks_and_names():
    r = seglens("plugins", "--json")
    assert r.returncode == 0, r.stderr
    rows = {p["name"]: p for p in json.loads(r.stdout)}
    assert rows["hdbscan"]["registers"] == {"clusterer": ["hdbscan"]}
    assert "register_clusterers" in rows["hdbscan"]["hooks"]
    assert rows["sentence_transformers"]["registers"]["embedder"] == ["item-pool", "history-text"]
    assert rows["demo"]["commands"] == ["demo"]
    assert all(p["version"] == "0.1.0" for p in rows.values() if p["distribution"] == "seglens")
    assert all(p["module"].startswith("seglens.default_plugins.") for p in rows.values())
    r = seglens("plugins", env={"SEGLENS_LOAD_PLUGINS": "hdbscan,kmeans"})
    assert r.returncode == 0 and "hdbscan" in r.stdout and "faiss" not in r.stdout


@pytest.fixture(scope="module")
def sample_plugin_path(tmp_path_factory):
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(REPO / "tests" / "sample_plugin")], check=True,
                   capture_output=True)
    return target


def test_third_party_plugin_registers_a_clusterer_and_a_command(sample_plugin_path, good, tmp_path):
    env = {"PYTHONPATH": str(sample_plugin_path)}
    r = seglens("plugins", "--json", env=env)
    assert r.returncode == 0, r.stderr
    rows = {p["name"]: p for p in json.loads(r.stdout)}
    assert rows["sample"]["version"] == "0.3.1"
    assert rows["sample"]["distribution"] == "seglens-sample-plugin"
    assert rows["sample"]["registers"] == {"clusterer": ["quantile"]}
    assert rows["sample"]["commands"] == ["hello"]
    r = seglens("hello", "world", env=env)
    assert r.returncode == 0 and r.stdout.strip() == "hello world from the sample plugin"
    events, items = good
    out = tmp_path / "q"
    r = seglens("-q", "run", events, "--items", items, "-o", out, "--clusterer", "quantile", "--set", "cluster.k=3",
                "--describer", "keywords", env=env)
    assert r.returncode == 0, r.stderr
    m = json.loads((out / "manifest.json").read_text())
    assert m["plugins"]["clusterer"] == {"name": "quantile", "plugin": "sample", "version": "0.3.1"}
    sizes = sorted(s["size"] for s in json.loads((out / "segments.json").read_text()))
    assert sizes == [4, 4, 4]


def test_broken_plugin_is_named_in_the_error(tmp_path):
    pkg = tmp_path / "src"
    (pkg / "broken_pl").mkdir(parents=True)
    (pkg / "broken_pl" / "__init__.py").write_text("import no_such_module_xyz\n")
    (pkg / "pyproject.toml").write_text(
        '[build-system]\nrequires=["setuptools"]\nbuild-backend="setuptools.build_meta"\n'
        '[project]\nname="broken-pl"\nversion="1.0"\n[project.entry-points.seglens]\nbroken="broken_pl"\n'
        '[tool.setuptools]\npackages=["broken_pl"]\n')
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(pkg)], check=True, capture_output=True)
    r = seglens("plugins", env={"PYTHONPATH": str(target)})
    _assert_user_error(r, "plugin 'broken'", "no_such_module_xyz", "SEGLENS_LOAD_PLUGINS")
