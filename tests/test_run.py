"""End-to-end runs through the real command line on small planted data: the run folder contract,
show/similar, refusal of an existing folder, resume, determinism and clean interruption."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from helpers import seglens

from seglens import plugins
from seglens.config import build_config
from seglens.default_plugins.demo_data import generate_demo
from seglens.model import LoadRequest
from seglens.pipeline import Pipeline
from seglens.runfolder import RunFolder

KEYWORDS = ("--describer", "keywords")  # the LLM describers have tests of their own


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory):
    return generate_demo(tmp_path_factory.mktemp("demo") / "data", n_users=900, seed=7)


@pytest.fixture(scope="module")
def demo_run(demo_files, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "run"
    r = seglens("run", demo_files.events, "--items", demo_files.items, "--users", demo_files.users, "-o", out,
                *KEYWORDS)
    assert r.returncode == 0, r.stderr
    return out


def test_run_folder_is_complete_and_consistent(demo_run):
    for name in ("manifest.json", "users.parquet", "segments.json", "embeddings.npy", "index.faiss", "report.md"):
        assert (demo_run / name).is_file(), name
    assert not list(demo_run.rglob("*.pkl")) and not list(demo_run.rglob("*.pickle"))
    m = json.loads((demo_run / "manifest.json").read_text())
    assert m["seglens_version"] and m["seed"] == 42 and m["config"]["embed"]["strategy"] == "item-pool"
    assert {i["role"] for i in m["inputs"]} == {"events", "items", "users"}
    assert all(len(i["sha256"]) == 64 for i in m["inputs"])
    for stage in ("embedder", "index", "reducer", "clusterer", "describer", "loader"):
        assert m["plugins"][stage]["version"] not in ("", "?"), stage
    assert set(m["seconds"]) >= {"load", "features", "embed", "index", "reduce", "cluster", "analyse", "describe"}

    users = pd.read_parquet(demo_run / "users.parquet")
    assert list(users.columns) == ["user_id", "segment", "probability", "x", "y"]
    assert len(users) == m["counts"]["users"] == 900 and users["user_id"].is_unique
    assert users["segment"].dtype.kind == "i" and users["probability"].between(0, 1).all()
    emb = np.load(demo_run / "embeddings.npy")
    assert emb.dtype == np.float32 and emb.shape == (900, 384)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-4)

    segs = json.loads((demo_run / "segments.json").read_text())
    assert sorted(s["id"] for s in segs) == sorted(users["segment"].unique().tolist())
    assert sum(s["size"] for s in segs) == 900
    assert abs(sum(s["share"] for s in segs) - 1) < 1e-3
    real = [s for s in segs if s["id"] >= 0]
    assert len(real) >= 6
    assert len({s["name"].lower() for s in real}) == len(real) and all(s["name"] for s in real)
    for s in real:
        assert s["size"] == int((users["segment"] == s["id"]).sum())
        p = s["profile"]
        assert p["top_categories"] and p["top_items"] and p["representatives"]
        assert p["top_categories"][0]["lift"] > 1.2
        assert all(r["user_id"] in set(users.loc[users["segment"] == s["id"], "user_id"]) for r in p["representatives"])
    report = (demo_run / "report.md").read_text()
    assert all(s["name"].split()[0] in report for s in real)
    idx = RunFolder(demo_run).index()
    assert idx.size == 900


def test_show_lists_segments_and_one_profile(demo_run):
    r = seglens("show", demo_run, "--json")
    assert r.returncode == 0, r.stderr
    table = json.loads(r.stdout)
    segs = json.loads((demo_run / "segments.json").read_text())
    assert [t["name"] for t in table] == [s["name"] for s in segs]
    r = seglens("show", demo_run)
    assert r.returncode == 0 and segs[0]["name"][:10] in r.stdout
    r = seglens("show", demo_run, "0")
    assert r.returncode == 0 and "Lifted categories" in r.stdout and "Representative users" in r.stdout
    r = seglens("show", demo_run, "99")
    assert r.returncode == 2 and "no segment 99" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_similar_matches_brute_force(demo_run):
    users = pd.read_parquet(demo_run / "users.parquet")
    emb = np.load(demo_run / "embeddings.npy")
    uid = users["user_id"].iat[17]
    r = seglens("similar", demo_run, uid, "-k", "5", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    sims = emb @ emb[17]
    sims[17] = -np.inf
    expected = users["user_id"].to_numpy()[np.argsort(-sims)[:5]].tolist()
    assert [n["user_id"] for n in out["neighbours"]] == expected
    assert out["segment"] == int(users["segment"].iat[17])
    r = seglens("similar", demo_run, "no-such-user")
    assert r.returncode == 2 and "no-such-user" in r.stderr


def test_existing_run_folder_is_refused(demo_run, demo_files):
    before = (demo_run / "manifest.json").stat().st_mtime_ns
    r = seglens("run", demo_files.events, "--items", demo_files.items, "-o", demo_run)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "--force" in r.stderr
    assert (demo_run / "manifest.json").stat().st_mtime_ns == before


def test_resume_reuses_finished_stages(demo_run, demo_files, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(demo_run, copy)
    r = seglens("run", demo_files.events, "--items", demo_files.items, "--users", demo_files.users, "-o", copy,
                "--resume", "--min-cluster-size", "40", *KEYWORDS)
    assert r.returncode == 0, r.stderr
    m = json.loads((copy / "manifest.json").read_text())
    assert {"load", "features", "embed", "index", "reduce"} <= set(m["reused_stages"])
    assert "cluster" not in m["reused_stages"]
    assert m["config"]["cluster"]["min_cluster_size"] == 40
    assert not copy.with_name("run.partial").exists()


def test_same_seed_gives_identical_segments(demo_run, demo_files, tmp_path):
    out = tmp_path / "again"
    r = seglens("-q", "run", demo_files.events, "--items", demo_files.items, "--users", demo_files.users, "-o", out,
                *KEYWORDS)
    assert r.returncode == 0, r.stderr
    a = pd.read_parquet(demo_run / "users.parquet")
    b = pd.read_parquet(out / "users.parquet")
    pd.testing.assert_frame_equal(a, b)
    assert json.loads((demo_run / "segments.json").read_text()) == json.loads((out / "segments.json").read_text())


class _Interrupting:
    """A clusterer that behaves like a user pressing Ctrl-C in the middle of the run."""

    def __init__(self, options):
        pass

    def cluster(self, points, seed):
        raise KeyboardInterrupt


class _InterruptPlugin:
    @plugins.hookspecs.hookimpl
    def register_clusterers(self, register):
        register("interrupting", _Interrupting)


def test_interrupted_run_leaves_no_folder_and_resumes(demo_files, tmp_path):
    out = tmp_path / "run"
    request = LoadRequest(events=demo_files.events, items=demo_files.items)
    plugin = _InterruptPlugin()
    plugins.load_plugins().register(plugin, name="interrupt-test")
    try:
        with pytest.raises(KeyboardInterrupt):
            Pipeline(request, build_config(overrides=["cluster.method=interrupting", "describe.describer=keywords"]),
                     out).run()
    finally:
        plugins.pm.unregister(plugin)
    assert not out.exists()
    partial = out.with_name("run.partial")
    assert (partial / "stages" / "embed.json").exists() and not (partial / "stages" / "cluster.json").exists()
    summary = Pipeline(request, build_config(overrides=["describe.describer=keywords"]), out, resume=True).run()
    assert {"load", "embed", "reduce"} <= set(summary.reused) and "cluster" not in summary.reused
    assert RunFolder(out).segments() and not partial.exists()


def test_kmeans_and_behaviour_strategy_run(demo_files, tmp_path):
    out = tmp_path / "km"
    r = seglens("-q", "run", demo_files.events, "--items", demo_files.items, "-o", out,
                "--clusterer", "kmeans", "--strategy", "behaviour", "--set", "cluster.max_k=6", *KEYWORDS)
    assert r.returncode == 0, r.stderr
    m = json.loads((out / "manifest.json").read_text())
    assert m["plugins"]["clusterer"]["name"] == "kmeans" and m["plugins"]["embedder"]["name"] == "behaviour"
    users = pd.read_parquet(out / "users.parquet")
    assert (users["segment"] >= 0).all() and 2 <= users["segment"].nunique() <= 6
