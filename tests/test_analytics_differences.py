"""The "differences" analysis and `seglens compare`: the vectorized tests agree with scipy and
statsmodels, the planted differences are found (horror night owls are active at night), the FDR
correction holds, and degenerate data does not crash."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from segment_analytics_runs import cli, demo_run, movielens_run, segment_of, tiny_run, with_labels
from helpers import seglens

from seglens.default_plugins.analysis_differences import (DifferencesAnalysis, bh_adjust, numeric_tests,
                                                          proportion_tests)
from seglens.runfolder import RunFolder, load_context

pytestmark = pytest.mark.xdist_group("segment_analytics_runs")  # one worker builds the shared runs once


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return demo_run(tmp_path_factory.mktemp("analytics"))


def test_numeric_tests_agree_with_scipy():
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.poisson(4, 300), rng.poisson(5, 40), rng.poisson(4, 3), [7.0]]).astype(float)
    groups = np.repeat([0, 1, 2, 3], [300, 40, 3, 1])
    rows = numeric_tests(x, groups, [1, 2, 3])
    for t, r in zip([1, 2], rows):
        a, b = x[groups == t], x[groups != t]
        mwu = stats.mannwhitneyu(a, b, method="asymptotic", use_continuity=True)
        assert r["mwu_p"] == pytest.approx(mwu.pvalue, rel=1e-9)
        assert r["welch_p"] == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-9)
        brute = np.sign(a[:, None] - b[None, :]).mean()
        assert r["cliffs_delta"] == pytest.approx(brute)
        sd = np.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2))
        assert r["cohens_d"] == pytest.approx((a.mean() - b.mean()) / sd)
        assert r["mean_a"] == pytest.approx(a.mean()) and r["median_b"] == np.median(b)
    one = rows[2]  # a segment of one user: no Welch, but rank test and effects still defined
    assert one["n_a"] == 1 and one["welch_p"] is None and one["mwu_p"] is not None
    assert one["cohens_d"] == pytest.approx((7.0 - x[:-1].mean()) / x[:-1].std(ddof=1))
    zeros = numeric_tests(np.zeros(20), np.repeat([0, 1], 10), [0])[0]
    assert zeros["mwu_p"] is None and zeros["welch_p"] is None and zeros["cohens_d"] == 0.0
    assert zeros["cliffs_delta"] == 0.0


def test_proportion_tests_agree_with_statsmodels():
    from statsmodels.stats.proportion import proportions_ztest

    has = np.array([1] * 60 + [0] * 40 + [1] * 90 + [0] * 210, dtype=bool)
    groups = np.array([0] * 100 + [1] * 300)
    r = proportion_tests(has, groups, [0])[0]
    z, p = proportions_ztest([60, 90], [100, 300])
    assert r["test"] == "z" and r["p"] == pytest.approx(p, rel=1e-9)
    assert r["share_a"] == 0.6 and r["share_b"] == 0.3
    assert r["cohens_h"] == pytest.approx(2 * np.arcsin(np.sqrt(0.6)) - 2 * np.arcsin(np.sqrt(0.3)))
    small = proportion_tests(np.array([1, 1, 0, 0, 0, 0, 0, 0], dtype=bool), np.array([0, 0, 1, 1, 1, 1, 1, 1]), [0])[0]
    assert small["test"] == "fisher" and small["p"] == pytest.approx(stats.fisher_exact([[2, 0], [0, 6]])[1])
    nobody = proportion_tests(np.zeros(8, dtype=bool), np.array([0] * 4 + [1] * 4), [0])[0]
    assert nobody["p"] is None and nobody["cohens_h"] == 0.0
    assert bh_adjust([0.01, None, 0.04, 0.03]) == pytest.approx([0.03, None, 0.04, 0.04])


def test_planted_differences_are_found(demo):
    out, files = demo
    segs = {s["id"]: s for s in json.loads((out / "segments.json").read_text())}
    horror = segs[segment_of(out, files, "horror_night_owls")]["differences"]
    night = next(d for d in horror["features_vs_rest"] if d["feature"] == "night_share")
    assert night["direction"] == "higher" and night["p_adj"] < 0.05
    assert night["cohens_d"] > 0.8 and night["cliffs_delta"] > 0.5
    assert night["segment_mean"] > 2 * night["rest_mean"]
    assert horror["categories_vs_rest"][0]["category"] == "Horror"
    assert horror["categories_vs_rest"][0]["segment_users_share"] > 0.9
    kids = segs[segment_of(out, files, "family_kids")]["differences"]
    weekend = next(d for d in kids["features_vs_rest"] if d["feature"] == "weekend_share")
    assert weekend["direction"] == "higher" and weekend["p_adj"] < 0.05
    for sid, s in segs.items():
        if sid < 0:
            continue
        d = s["differences"]
        assert len(d["features_vs_rest"]) <= 5 and len(d["categories_vs_rest"]) <= 3
        effects = [abs(x["cohens_d"]) for x in d["features_vs_rest"]]
        assert effects == sorted(effects, reverse=True)  # largest effects first
        assert all(x["p_adj"] < 0.05 for x in d["features_vs_rest"] + d["categories_vs_rest"])
        assert len(json.dumps(d)) < 2000
    facts = json.loads((out / "analyses.json").read_text())["differences"]["facts"]
    across = {r["feature"]: r for r in facts["across_segments"]}
    assert across["night_share"]["test"] == "kruskal" and across["night_share"]["p_adj"] < 1e-10
    assert across["night_share"]["epsilon_sq"] > 0.3
    p_adj = [r["p_adj"] for r in facts["across_segments"] if r["p_adj"] is not None]
    assert p_adj == sorted(p_adj)


def test_compare_command(demo):
    out, files = demo
    horror = segment_of(out, files, "horror_night_owls")
    kids = segment_of(out, files, "family_kids")
    code, stdout, _ = cli("compare", out, horror, "--rest", "--json")
    assert code == 0
    res = json.loads(stdout)
    users = json.loads((out / "segments.json").read_text())
    size = next(s["size"] for s in users if s["id"] == horror)
    assert res["a"] == horror and res["b"] == "rest" and res["n_a"] == size
    night = next(t for t in res["tests"] if t["feature"] == "night_share")
    assert night["p_adj"] < 0.05 and night["cohens_d"] > 0.8 and night["mean_a"] > night["mean_b"]
    assert all(t["p_adj"] >= t["p"] * (1 - 1e-6) for t in res["tests"] if t.get("p") is not None)
    eff = [abs(t.get("cohens_d", t.get("cohens_h")) or 0) for t in res["tests"]]
    assert eff == sorted(eff, reverse=True)
    code, stdout, _ = cli("compare", out, horror, kids, "--json", "--top", "6")
    pair = json.loads(stdout)
    assert code == 0 and len(pair["tests"]) == 6 and pair["n_b"] == next(s["size"] for s in users if s["id"] == kids)
    code, stdout, _ = cli("compare", out, horror, kids)
    assert code == 0 and "night share (mean)" in stdout and "significant" in stdout and "users with Horror" in stdout


def test_compare_explain_from_the_tests(demo):
    """Without a model the explanation is built from the largest significant differences, so every
    figure in it is one of the tests' own."""
    out, files = demo
    horror, kids = segment_of(out, files, "horror_night_owls"), segment_of(out, files, "family_kids")
    code, stdout, err = cli("compare", out, horror, kids, "--json", "--explain")
    assert code == 0, err
    res = json.loads(stdout)
    ex = res["explanation"]
    assert ex["backend"] == "keywords" and ex["grounding"] == 1.0 and ex["ungrounded"] == []
    sig = [t for t in res["tests"] if t["p_adj"] is not None and t["p_adj"] < 0.05]
    first = sig[0]
    sentences = ex["text"].split("). ")
    assert len(sentences) == 3 and all(s.startswith(f"Segment {horror} has") for s in sentences)
    if "category" in first:
        assert f"users with {first['category']}" in sentences[0]
        assert f"{round(100 * first['share_a'], 1)}% vs {round(100 * first['share_b'], 1)}%" in sentences[0]
    else:
        assert first["feature"].replace("_", " ") in sentences[0]
    code, stdout, _ = cli("compare", out, horror, "--rest", "--explain")
    assert code == 0 and "than the rest" in stdout


def test_compare_explain_with_a_model_is_grounded_and_falls_back(demo):
    """Through a real OpenAI-compatible server: the compare prompt carries both segments' facts and the
    tests fenced as data; an invented figure is dropped with its reason; an empty reply falls back."""
    from llm_server import FakeChatServer, Reply

    out, files = demo
    horror, kids = segment_of(out, files, "horror_night_owls"), segment_of(out, files, "family_kids")
    reply = ("Segment A has more users with Horror than segment B. "
             "Segment B spends 9999 dollars on every visit.")
    with FakeChatServer(default=Reply.ok(reply)) as server:
        llm = ["--describer", "openai", "--model", "test-model", "--set", f"describe.base_url={server.base_url}",
               "--set", "describe.timeout=5", "--set", "describe.retries=0"]
        code, stdout, err = cli("compare", out, horror, kids, "--json", "--explain", *llm)
        assert code == 0, err
        ex = json.loads(stdout)["explanation"]
        assert ex["text"] == "Segment A has more users with Horror than segment B."
        assert ex["grounding"] == 0.5 and ex["ungrounded"][0]["sentence"].startswith("Segment B spends 9999")
        assert "9999" in ex["ungrounded"][0]["reason"] and ex["backend"].startswith("openai:test-model@")
        user = server.chat_requests[0].messages[-1]["content"]
        assert f"How do segments {horror} and {kids} differ?" in user
        assert user.count("<<<SEGLENS_DATA") >= 3 and '"users_with_category":"Horror"' in user
        server.script(Reply.ok(""), Reply.ok(""))
        code, stdout, err = cli("compare", out, horror, kids, "--explain", *llm)
        assert code == 0 and "warning:" in err and "explaining from the tests" in err
        assert f"Segment {horror} has" in stdout


def test_compare_mistakes_are_one_line(demo):
    out, _ = demo
    r = seglens("compare", out, "0")  # the real command line: neither B nor --rest
    assert r.returncode == 2 and r.stderr.startswith("error:") and r.stderr.strip().count("\n") == 0
    for args in (("0", "1", "--rest"), ("0", "0"), ("0", "99"), ("77", "--rest")):
        code, _, err = cli("compare", out, *args)
        assert code == 2 and err.startswith("error:") and err.strip().count("\n") == 0, (args, err)


def test_movielens_ratings_differ_between_segments(tmp_path_factory, shared_data):
    out = movielens_run(tmp_path_factory.mktemp("analytics"), shared_data)
    facts = json.loads((out / "analyses.json").read_text())["differences"]["facts"]
    across = {r["feature"]: r for r in facts["across_segments"]}
    assert "mean_value" in across and "monetary" not in across  # ratings, no money
    assert across["n_events"]["p_adj"] < 0.05  # behaviour embedding separates activity levels
    segs = [s for s in json.loads((out / "segments.json").read_text()) if s["id"] >= 0]
    assert any(s["differences"]["features_vs_rest"] for s in segs)


def test_degenerate_data(tmp_path_factory):
    out = tiny_run(tmp_path_factory.mktemp("analytics"))
    segs = {s["id"]: s for s in json.loads((out / "segments.json").read_text())}
    for s in segs.values():  # all values zero and one timestamp: no behaviour difference to claim
        assert s["differences"]["features_vs_rest"] == []
    ctx = load_context(RunFolder(out))
    n = len(ctx.user_ids)
    one = DifferencesAnalysis({}).analyse(with_labels(ctx, np.zeros(n)))
    assert one.per_segment == {} and "note" in one.run_level and one.run_level["across_segments"] == []
    single = DifferencesAnalysis({}).analyse(with_labels(ctx, np.array([0] * (n - 1) + [1])))
    assert set(single.per_segment) == {0, 1}
    json.dumps(single.per_segment), json.dumps(single.run_level)
    noise = DifferencesAnalysis({}).analyse(with_labels(ctx, np.full(n, -1)))
    assert noise.per_segment == {}
    code, stdout, _ = cli("compare", out, 0, 1, "--json")
    assert code == 0 and all(t.get("p") is None for t in json.loads(stdout)["tests"] if t["kind"] == "feature")
