"""What significantly sets a segment apart: statistical tests with effect sizes, corrected for the
many tests run at once.

Per numeric behaviour feature (events, recency, night share...) two tests, because behaviour data is
skewed and heavy-tailed:

- Welch's t-test (unequal variances) on the means, with Cohen's d (pooled standard deviation);
- Mann-Whitney U on the whole distributions, with Cliff's delta (P(a > b) - P(a < b), from U).
  Mann-Whitney is the primary test (`p_adj`): a handful of extreme users cannot make it significant
  on their own. Its normal approximation with tie and continuity correction is computed from one
  ranking of all users per feature, which gives every segment-vs-rest test at once (scipy's
  `mannwhitneyu(method="asymptotic")` gives the same p-values, one comparison at a time).

Per category (the features' `cat_*` columns: the top categories by events) the share of *users* with
at least one event in it, by a two-proportion z-test (Fisher's exact test when an expected count is
below 5), with Cohen's h. Users, not events, are the unit: one user's events are not independent, and
an event-level test would call a single binge-watcher "significant".

All p-values of one analysis (or one `compare`) are corrected together with Benjamini-Hochberg
(false discovery rate, statsmodels). Results are sorted by effect size: |Cohen's d| for features and
|Cohen's h| for categories, which share a scale (0.2 small, 0.5 medium, 0.8 large).

Per segment the analysis keeps only the significant differences with the largest effects: the top 5
behaviour features and, separately, the top 3 categories (category contrasts are usually far larger
and would crowd out behaviour, which the profile's lifts do not cover).

Run-level, per feature across all segments: Kruskal-Wallis (with epsilon squared) and, per category,
a chi-square test of independence (with Cramer's V), also BH-corrected. Noise users (-1) are part of
"the rest" but not a group of their own in the across-segment tests.
"""
from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd

from rich.markup import escape as escape_markup

from seglens import SeglensError, hookimpl
from seglens.features import NUMERIC_FEATURES
from seglens.model import AnalysisContext, AnalysisResult
from seglens.analysis_helpers import rnd as _r
from seglens.cli import NegativeIdCommand
from seglens.llm_commands import llm_options

MIN_EXPECTED = 5  # below this expected count the z-test's normal approximation is poor: use Fisher


def _p(x: Any) -> Any:
    """p-values keep three significant digits (1.23e-40 must not become 0.0 by rounding decimals)."""
    if x is None:
        return None
    f = float(x)
    return None if not np.isfinite(f) else float(f"{f:.3g}")


# --- the tests, vectorized over "each target group versus everyone else" ----------------------------
def numeric_tests(x: np.ndarray, groups: np.ndarray, targets: list[int]) -> list[dict[str, Any]]:
    """Welch t, Mann-Whitney U, Cohen's d and Cliff's delta for each target group against the rest.

    `x` holds finite values only (missing values are dropped by the caller). A test that cannot be
    computed (fewer than two users on a side for Welch, no variation at all) gets p = None.
    """
    from scipy.stats import norm, rankdata, ttest_ind_from_stats

    x = np.asarray(x, dtype=np.float64)
    n_all = len(x)
    out = []
    if n_all == 0:
        return [{"n_a": 0, "n_b": 0} for _ in targets]
    xc = x - x.mean()  # centred sums keep the variances accurate
    ranks = rankdata(x)
    _, tie_counts = np.unique(x, return_counts=True)
    tie_term = float((tie_counts.astype(np.float64) ** 3 - tie_counts).sum())
    s_all, q_all = xc.sum(), (xc ** 2).sum()
    for t in targets:
        a = groups == t
        n1 = int(a.sum())
        n2 = n_all - n1
        row: dict[str, Any] = {"n_a": n1, "n_b": n2}
        if n1 == 0 or n2 == 0:
            out.append(row)
            continue
        s1, q1 = xc[a].sum(), (xc[a] ** 2).sum()
        s2, q2 = s_all - s1, q_all - q1
        m1, m2 = s1 / n1, s2 / n2
        v1 = max(q1 - n1 * m1 ** 2, 0.0) / (n1 - 1) if n1 > 1 else np.nan
        v2 = max(q2 - n2 * m2 ** 2, 0.0) / (n2 - 1) if n2 > 1 else np.nan
        row["mean_a"], row["mean_b"] = m1 + x.mean(), m2 + x.mean()
        row["median_a"], row["median_b"] = float(np.median(x[a])), float(np.median(x[~a]))
        # Welch
        if n1 > 1 and n2 > 1 and (v1 > 0 or v2 > 0):
            with np.errstate(divide="ignore", invalid="ignore"):
                res = ttest_ind_from_stats(m1, np.sqrt(v1), n1, m2, np.sqrt(v2), n2, equal_var=False)
            row["welch_p"] = float(res.pvalue) if np.isfinite(res.pvalue) else None
        else:
            row["welch_p"] = None
        # Cohen's d with the pooled standard deviation (one user on a side: the other side's sd)
        pooled_num = (n1 - 1) * (v1 if n1 > 1 else 0.0) + (n2 - 1) * (v2 if n2 > 1 else 0.0)
        dof = (n1 - 1 if n1 > 1 else 0) + (n2 - 1 if n2 > 1 else 0)
        sd = np.sqrt(pooled_num / dof) if dof > 0 else 0.0
        row["cohens_d"] = (m1 - m2) / sd if sd > 0 else (0.0 if np.isclose(m1, m2) else None)
        # Mann-Whitney U, normal approximation with tie and continuity correction
        u1 = ranks[a].sum() - n1 * (n1 + 1) / 2.0
        mu = n1 * n2 / 2.0
        var = n1 * n2 / 12.0 * ((n_all + 1) - tie_term / (n_all * (n_all - 1))) if n_all > 1 else 0.0
        if var > 0:
            z = (abs(u1 - mu) - 0.5) / np.sqrt(var)
            row["mwu_p"] = float(min(1.0, 2 * norm.sf(max(z, 0.0))))
        else:
            row["mwu_p"] = None  # every value tied: nothing to test
        row["cliffs_delta"] = 2.0 * u1 / (n1 * n2) - 1.0
        out.append(row)
    return out


def proportion_tests(has: np.ndarray, groups: np.ndarray, targets: list[int]) -> list[dict[str, Any]]:
    """Share of users with the property in each target group vs the rest: two-proportion z-test
    (pooled), Fisher's exact test when an expected count is below 5, and Cohen's h."""
    from scipy.stats import fisher_exact, norm

    has = np.asarray(has, dtype=bool)
    n_all, k_all = len(has), int(has.sum())
    out = []
    for t in targets:
        a = groups == t
        n1 = int(a.sum())
        n2 = n_all - n1
        k1 = int(has[a].sum())
        k2 = k_all - k1
        row: dict[str, Any] = {"n_a": n1, "n_b": n2}
        if n1 == 0 or n2 == 0:
            out.append(row)
            continue
        p1, p2 = k1 / n1, k2 / n2
        row.update({"share_a": p1, "share_b": p2,
                    "cohens_h": 2 * np.arcsin(np.sqrt(p1)) - 2 * np.arcsin(np.sqrt(p2))})
        pooled = k_all / n_all
        if pooled in (0.0, 1.0):
            row["p"], row["test"] = None, None  # nobody (or everybody) has it: nothing to test
        elif min(n1, n2) * min(pooled, 1 - pooled) < MIN_EXPECTED:
            row["p"] = float(fisher_exact([[k1, n1 - k1], [k2, n2 - k2]])[1])
            row["test"] = "fisher"
        else:
            se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
            row["p"] = float(2 * norm.sf(abs(p1 - p2) / se))
            row["test"] = "z"
        out.append(row)
    return out


def bh_adjust(pvalues: list[float | None]) -> list[float | None]:
    """Benjamini-Hochberg over the tests that have a p-value; None stays None."""
    from statsmodels.stats.multitest import multipletests

    idx = [i for i, p in enumerate(pvalues) if p is not None]
    out: list[float | None] = [None] * len(pvalues)
    if idx:
        adj = multipletests([pvalues[i] for i in idx], method="fdr_bh")[1]
        for i, p in zip(idx, adj):
            out[i] = float(p)
    return out


def numeric_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in NUMERIC_FEATURES if c in table and table[c].notna().any()]


def differences(table: pd.DataFrame, groups: np.ndarray, targets: list[int], cat_cols: list[str],
                cat_names: dict[str, str]) -> dict[int, list[dict[str, Any]]]:
    """Every test for each target group against everyone else, BH-adjusted together; raw numbers.

    Rows per target are sorted by |effect| (Cohen's d or h), largest first.
    """
    groups = np.asarray(groups)
    rows: dict[int, list[dict[str, Any]]] = {t: [] for t in targets}
    for col in numeric_columns(table):
        x = table[col].to_numpy(dtype=np.float64)
        ok = np.isfinite(x)
        for t, r in zip(targets, numeric_tests(x[ok], groups[ok], targets)):
            rows[t].append({"feature": col, "kind": "feature", **r, "effect": r.get("cohens_d")})
    for col in cat_cols:
        has = table[col].to_numpy(dtype=np.float64) > 0
        for t, r in zip(targets, proportion_tests(has, groups, targets)):
            rows[t].append({"feature": col, "category": cat_names.get(col, col), "kind": "category", **r,
                            "effect": r.get("cohens_h")})
    flat = [r for t in targets for r in rows[t]]
    pvals: list[float | None] = []
    for r in flat:
        if r["kind"] == "feature":
            pvals += [r.get("mwu_p"), r.get("welch_p")]
        else:
            pvals.append(r.get("p"))
    adj = bh_adjust(pvals)
    i = 0
    for r in flat:
        if r["kind"] == "feature":
            r["p"], r["p_adj"], r["welch_p_adj"] = r.get("mwu_p"), adj[i], adj[i + 1]
            i += 2
        else:
            r["p_adj"] = adj[i]
            i += 1
    for t in targets:
        rows[t].sort(key=lambda r: (-(abs(r["effect"]) if r.get("effect") is not None else -1.0), r["feature"]))
    return rows


def compact(r: dict[str, Any]) -> dict[str, Any]:
    """A difference as a small fact for segments.json and prompts."""
    higher = (r.get("effect") or 0) > 0
    if r["kind"] == "category":
        return {"category": r["category"], "segment_users_share": _r(r["share_a"]),
                "rest_users_share": _r(r["share_b"]), "cohens_h": _r(r["cohens_h"], 2), "p_adj": _p(r["p_adj"]),
                "direction": "higher" if higher else "lower"}
    return {"feature": r["feature"], "segment_mean": _r(r["mean_a"]), "rest_mean": _r(r["mean_b"]),
            "cohens_d": _r(r["cohens_d"], 2), "cliffs_delta": _r(r["cliffs_delta"], 2), "p_adj": _p(r["p_adj"]),
            "direction": "higher" if higher else "lower"}


def across_segments(table: pd.DataFrame, labels: np.ndarray, cat_cols: list[str],
                    cat_names: dict[str, str]) -> list[dict[str, Any]]:
    """Kruskal-Wallis per feature and chi-square per category across all (non-noise) segments."""
    from scipy.stats import chi2_contingency, kruskal

    labels = np.asarray(labels)
    seg_ids = sorted(int(s) for s in np.unique(labels) if s >= 0)
    out: list[dict[str, Any]] = []
    if len(seg_ids) < 2:
        return out
    for col in numeric_columns(table):
        x = table[col].to_numpy(dtype=np.float64)
        groups = [x[(labels == s) & np.isfinite(x)] for s in seg_ids]
        groups = [g for g in groups if len(g)]
        n = sum(len(g) for g in groups)
        row: dict[str, Any] = {"feature": col, "test": "kruskal", "p": None, "epsilon_sq": None}
        if len(groups) >= 2 and n > len(groups):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    h, p = kruskal(*groups)
                if np.isfinite(p):
                    row.update(p=float(p), H=float(h), epsilon_sq=float(h) / (n - 1))
            except ValueError:  # all values identical
                pass
        if row["p"] is None:
            row["note"] = "no variation to test"
        out.append(row)
    for col in cat_cols:
        has = table[col].to_numpy(dtype=np.float64) > 0
        tab = np.array([[int((has & (labels == s)).sum()), int((~has & (labels == s)).sum())] for s in seg_ids])
        row = {"feature": col, "category": cat_names.get(col, col), "test": "chi2", "p": None, "cramers_v": None}
        if (tab.sum(axis=0) > 0).all() and (tab.sum(axis=1) > 0).sum() >= 2:
            tab = tab[tab.sum(axis=1) > 0]
            chi2, p, _, _ = chi2_contingency(tab, correction=False)
            row.update(p=float(p), chi2=float(chi2), cramers_v=float(np.sqrt(chi2 / tab.sum())))
        else:
            row["note"] = "no variation to test"
        out.append(row)
    for row, adj in zip(out, bh_adjust([r["p"] for r in out])):
        row["p_adj"] = adj
    return out


class DifferencesAnalysis:
    requires: tuple[str, ...] = ()

    def __init__(self, options: dict[str, Any]) -> None:
        self.top = int(options.get("differences_top", 5))
        self.top_categories = int(options.get("differences_top_categories", 3))
        self.alpha = float(options.get("differences_alpha", 0.05))

    def analyse(self, ctx: AnalysisContext) -> AnalysisResult:
        from seglens.features import category_names

        table = ctx.features.table
        labels = np.asarray(ctx.segmentation.labels)
        seg_ids = ctx.segmentation.segment_ids
        cat_cols = [c for c in ctx.features.category_columns if c in table]
        names = category_names(ctx.features)
        per: dict[int, dict[str, Any]] = {}
        run: dict[str, Any] = {"alpha": self.alpha, "correction": "Benjamini-Hochberg over all tests",
                               "comparison": "each segment vs all other users (noise included)"}
        if len(seg_ids) and len(labels) > len(labels[labels == seg_ids[0]]):
            rows = differences(table, labels, seg_ids, cat_cols, names)
            n_tests = 0
            for s in seg_ids:
                n_tests += sum((r.get("mwu_p") is not None) + (r.get("welch_p") is not None) if r["kind"] == "feature"
                               else r.get("p") is not None for r in rows[s])
                sig = [r for r in rows[s] if r.get("p_adj") is not None and r["p_adj"] < self.alpha]
                feats = [compact(r) for r in sig if r["kind"] == "feature"][: self.top]
                cats = [compact(r) for r in sig if r["kind"] == "category"][: self.top_categories]
                per[s] = {"features_vs_rest": feats, "categories_vs_rest": cats, "significant_tests": len(sig)}
            run["tests"] = n_tests
        else:
            run["note"] = "a single group of users: nothing to compare with"
        across = across_segments(table, labels, cat_cols, names)
        run["across_segments"] = [
            {k: (_p(v) if k in ("p", "p_adj") else _r(v) if isinstance(v, float) else v) for k, v in r.items()}
            for r in sorted(across, key=lambda r: (r["p_adj"] is None, r["p_adj"] or 0.0, r["feature"]))]
        return AnalysisResult("differences", per, run, markdown=self._markdown(per, run))

    def _markdown(self, per: dict[int, dict[str, Any]], run: dict[str, Any]) -> str:
        if not per:
            return run.get("note", "")
        lines = [f"Largest significant differences of each segment from everyone else "
                 f"(BH-adjusted p < {self.alpha}):", ""]
        for s, facts in sorted(per.items()):
            parts = []
            for d in facts["features_vs_rest"]:
                parts.append(f"{d['feature'].replace('_', ' ')} {d['segment_mean']:,.3g} vs {d['rest_mean']:,.3g}")
            for d in facts["categories_vs_rest"]:
                parts.append(f"users with {d['category']} {d['segment_users_share']:.0%} vs {d['rest_users_share']:.0%}")
            lines.append(f"- {s}: " + ("; ".join(parts) if parts else "no significant difference"))
        return "\n".join(lines)


# --- `seglens compare RUN A B` / `seglens compare RUN A --rest` ---------------------------------------
def compare_run(run: Any, a: int, b: int | None) -> dict[str, Any]:
    """All tests of segment A against segment B (or against everyone else when b is None)."""
    run.segment(a)
    if b is not None:
        run.segment(b)
        if a == b:
            raise SeglensError("segments A and B are the same", hint="compare two different segments, or A --rest")
    users = run.users()
    table = run.features()
    meta_path = Path(run.path) / "features_meta.json"
    names = json.loads(meta_path.read_text(encoding="utf-8")).get("category_names", {}) if meta_path.exists() else {}
    cat_cols = [c for c in names if c in table]
    labels = users["segment"].to_numpy()
    if not np.array_equal(users["user_id"].astype(str).to_numpy(), table["user_id"].astype(str).to_numpy()):
        raise SeglensError("users.parquet and features.parquet list different users", file=run.path,
                           hint="the run folder was modified; rerun it")
    if b is not None:
        keep = (labels == a) | (labels == b)
        table, labels = table[keep].reset_index(drop=True), labels[keep]
    rows = differences(table, labels, [a], cat_cols, names)[a]
    return {"a": a, "b": "rest" if b is None else b, "n_a": int((labels == a).sum()),
            "n_b": int((labels != a).sum()), "tests": rows}


def _row_json(r: dict[str, Any]) -> dict[str, Any]:
    keep = ("feature", "category", "kind", "n_a", "n_b", "mean_a", "mean_b", "median_a", "median_b", "share_a",
            "share_b", "cohens_d", "cohens_h", "cliffs_delta", "test", "p", "p_adj", "welch_p", "welch_p_adj")
    return {k: (_p(r[k]) if k.startswith(("p", "welch")) else _r(r[k]) if isinstance(r[k], float) else r[k])
            for k in keep if k in r}


@click.command(name="compare", cls=NegativeIdCommand)
@click.argument("run_dir", metavar="RUN", type=click.Path(path_type=Path))
@click.argument("a", type=int)
@click.argument("b", type=int, required=False)
@click.option("--rest", is_flag=True, help="Compare segment A with all other users.")
@click.option("--top", type=int, default=0, help="Show only the N largest effects (0: all).")
@click.option("--alpha", type=float, default=0.05, show_default=True, help="Significance level after BH.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--explain", is_flag=True, help="Add a written explanation: from the describer's language model "
              "(grounded against the facts), or from the largest differences with keywords.")
@llm_options
def compare_cmd(run_dir: Path, a: int, b: int | None, rest: bool, top: int, alpha: float, as_json: bool,
                explain: bool, describer: str | None, model: str | None, prompts: Path | None,
                overrides: tuple[str, ...]) -> None:
    """How segment A differs from segment B (or from everyone else with --rest): Welch t and
    Mann-Whitney U per feature, two-proportion tests per category, BH-corrected, by effect size.

    Unassigned users are segment -1, e.g. `seglens compare RUN -1 --rest`."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from seglens.runfolder import RunFolder

    if (b is None) == (not rest):
        raise SeglensError("give either a second segment B or --rest",
                           hint="e.g. `seglens compare RUN 0 3` or `seglens compare RUN 0 --rest`")
    run = RunFolder(run_dir)
    res = compare_run(run, a, b)
    rows = res["tests"][:top] if top > 0 else res["tests"]
    explanation = _explain(run, res, alpha, describer, model, prompts, overrides) if explain else None
    if as_json:
        extra = {} if explanation is None else {"explanation": dataclasses.asdict(explanation)}
        click.echo(json.dumps({**{k: v for k, v in res.items() if k != "tests"}, "alpha": alpha,
                               "tests": [_row_json(r) for r in rows], **extra}, indent=2, ensure_ascii=False))
        return
    other = "the rest" if b is None else f"segment {b}"
    t = Table(title=f"segment {a} ({res['n_a']:,} users) vs {other} ({res['n_b']:,} users)")
    for col, just in (("feature", "left"), (f"{a}", "right"), ("rest" if b is None else f"{b}", "right"),
                      ("effect d/h", "right"), ("Cliff's δ", "right"), ("p", "right"), ("p adj", "right"),
                      ("", "left")):
        t.add_column(col, justify=just)

    def num(v: Any, fmt: str) -> str:
        return "n/a" if v is None or not np.isfinite(v) else format(v, fmt)

    for r in rows:
        if r["kind"] == "category":
            name = f"users with {r['category']}"
            va, vb = num(r.get("share_a"), ".1%"), num(r.get("share_b"), ".1%")
            cliff = ""
        else:
            name = r["feature"].replace("_", " ") + " (mean)"
            va, vb = num(r.get("mean_a"), ",.3g"), num(r.get("mean_b"), ",.3g")
            cliff = num(r.get("cliffs_delta"), "+.2f")
        sig = r.get("p_adj") is not None and r["p_adj"] < alpha
        t.add_row(escape(name), va, vb, num(r.get("effect"), "+.2f"), cliff, num(r.get("p"), ".2g"),
                  num(r.get("p_adj"), ".2g"), "significant" if sig else "")
    con = Console()
    con.print(t)
    con.print("effect: Cohen's d for features, Cohen's h for category shares; p: Mann-Whitney U or "
              "two-proportion test; p adj: Benjamini-Hochberg", markup=False, highlight=False)
    if explanation is not None:
        con.print(f"\n{explanation.text}", markup=False, highlight=False)
        for d in explanation.ungrounded:
            con.print(f"  dropped (unsupported: {d['reason']}): {d['sentence']}", markup=False, highlight=False,
                      style="dim")


def _explain(run: Any, res: dict[str, Any], alpha: float, describer: str | None, model: str | None,
             prompts: Path | None, overrides: tuple[str, ...]) -> Any:
    """The written explanation, from the run's describer (or the one named); a model that fails or
    writes nothing the facts support falls back to sentences built from the tests, with a warning."""
    from seglens import progress
    from seglens.explain import difference_facts, explain_from_facts, explain_with_model
    from seglens.llm import LLMError
    from seglens.describing import make_describer
    from seglens.llm_commands import describe_config

    a, b = res["a"], res["b"]
    b_label = "the rest" if b == "rest" else f"segment {b}"
    diffs = difference_facts(res["tests"], alpha)
    cfg = describe_config(run, describer, model, prompts, overrides)
    if cfg["describe"]["describer"] != "keywords":
        segments = run.segments()
        by_id = {s["id"]: s for s in segments}
        analyses = json.loads((run.path / "analyses.json").read_text(encoding="utf-8"))
        population = {k: v.get("facts", {}) for k, v in analyses.items()}
        try:
            d = make_describer(cfg)
            return explain_with_model(by_id[a], None if b == "rest" else by_id[b], diffs, segments, population,
                                      d.model(), d.prompts, int(cfg["describe"].get("max_tokens", 300)))
        except LLMError as exc:
            progress.info(f"[yellow]warning:[/yellow] {escape_markup(exc.one_line())}; explaining from the tests")
            fallback = explain_from_facts(a, b_label, diffs)
            fallback.fallback_reason = exc.one_line()
            return fallback
    return explain_from_facts(a, b_label, diffs)


@hookimpl
def register_analyses(register):
    register("differences", DifferencesAnalysis, description="segment vs rest tests (Welch, Mann-Whitney, "
             "proportions) with effect sizes and BH-FDR; Kruskal-Wallis across segments")


@hookimpl
def register_commands(cli):
    cli.add_command(compare_cmd)
