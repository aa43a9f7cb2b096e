"""How much to trust the segments: density-cluster validity, silhouette, noise share, and above all
per-segment stability.

Stability follows Hennig's clusterboot (Hennig 2007, "Cluster-wise assessment of cluster stability"):
draw B subsamples of the users *without* replacement (80% by default: HDBSCAN is a density method,
and a with-replacement bootstrap duplicates points, which fakes density and creates clusters of
copies), re-run the run's own clusterer on the subsample's rows of the clustering space, and for
every original segment take the Jaccard similarity with its best-matching new cluster. The mean over
the B draws says whether the segment is a real structure (>= 0.75: stable), a pattern whose exact
membership is doubtful (0.6-0.75), or something that dissolves when the data is perturbed (< 0.6);
`dissolved_in` counts the draws where its Jaccard fell below 0.5 (Hennig's "dissolved").

Stability starts from the run's reduced space: UMAP is upstream and is *not* re-run for the B draws
(that would cost B times the reduce stage), so it measures the clusterer's sensitivity to the sample,
not the reducer's; the facts say so.

Seed sensitivity is measured separately, on the whole reduce + cluster step: HDBSCAN is
deterministic, so the run's seed acts only through the reducer (UMAP's layout). The run's reducer and
clusterer are re-run from the embeddings with 3 other seeds on a seeded subsample of at most
`seed_max_rows` users (default 5,000: UMAP on 5k points costs a few seconds), and each result is
compared with the run's labels on the same users by the adjusted Rand index (ARI).

Cost is bounded: a subsample never exceeds `stability_max_rows` rows (default 20,000; HDBSCAN on a
5-D space takes a few seconds per fit at 100k users, well under one at 20k), so the B fits stay cheap
at any run size. When the cap shrinks the subsample below 80%, an explicit `min_cluster_size` is
scaled by the same fraction so a segment keeps the same relative size threshold ('auto' already
scales with the number of rows).
"""
from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from seglens import hookimpl, plugins
from seglens.model import AnalysisContext, AnalysisResult
from seglens.analysis_helpers import rnd as _r

STABLE = 0.75
PATTERNS = 0.6
MIN_ROWS = 10  # fewer users than this cannot be resampled meaningfully


def verdict(jaccard: float | None) -> str | None:
    """Hennig's reading of a mean Jaccard: stable, patterns (membership doubtful), or dissolving."""
    if jaccard is None:
        return None
    if jaccard >= STABLE:
        return "stable"
    if jaccard >= PATTERNS:
        return "patterns"
    return "dissolving"


def best_jaccard(original: np.ndarray, new: np.ndarray, segment_ids: list[int]) -> dict[int, float]:
    """For each original segment, the Jaccard with its best-matching cluster in `new` (same rows).

    New noise (-1) is not a cluster, so an original segment that turns into noise scores 0 against
    it. A segment with no rows in this sample is left out (it was not tested, not dissolved).
    """
    out: dict[int, float] = {}
    new_ids = np.unique(new[new >= 0])
    if len(new_ids) == 0:
        return {s: 0.0 for s in segment_ids if (original == s).any()}
    new_idx = np.searchsorted(new_ids, np.where(new >= 0, new, new_ids[0]))
    new_sizes = np.bincount(new_idx[new >= 0], minlength=len(new_ids))
    for s in segment_ids:
        member = original == s
        size = int(member.sum())
        if size == 0:
            continue
        inter = np.bincount(new_idx[member & (new >= 0)], minlength=len(new_ids))
        union = size + new_sizes - inter
        out[s] = float((inter / union).max())
    return out


class QualityAnalysis:
    requires: tuple[str, ...] = ()

    def __init__(self, options: dict[str, Any]) -> None:
        self.boots = int(options.get("stability_boots", 10))
        self.fraction = float(options.get("stability_fraction", 0.8))
        self.max_rows = int(options.get("stability_max_rows", 20_000))
        self.seed_runs = int(options.get("seed_runs", 3))
        self.seed_max_rows = max(MIN_ROWS, int(options.get("seed_max_rows", 5000)))
        self.sil_sample = int(options.get("silhouette_sample", 5000))
        self.seed = int(options.get("seed", 42))

    # --- the analysis ---------------------------------------------------------------------------
    def analyse(self, ctx: AnalysisContext) -> AnalysisResult:
        t0 = time.perf_counter()
        seg = ctx.segmentation
        labels = np.asarray(seg.labels)
        seg_ids = seg.segment_ids
        run: dict[str, Any] = {
            "n_segments": len(seg_ids),
            "noise_share": _r((labels < 0).mean() if len(labels) else 0.0, 4),
            "relative_validity": _r(seg.quality.get("relative_validity"), 4),
        }
        sil, sil_per = self._silhouette(seg.reduced, labels)
        run.update(sil)
        stab, per_jac = self._stability(ctx, labels, seg_ids)
        run.update(stab)
        run.update(self._seed_agreement(ctx, labels))
        run["seconds"] = _r(time.perf_counter() - t0, 2)
        per: dict[int, dict[str, Any]] = {}
        for s in seg_ids:
            facts: dict[str, Any] = {}
            if s in per_jac:
                facts.update(per_jac[s])
            if s in sil_per:
                facts["silhouette"] = sil_per[s]
            if facts:
                per[s] = facts
        return AnalysisResult("quality", per, run, markdown=self._markdown(run, per))

    # --- pieces ---------------------------------------------------------------------------------
    def _silhouette(self, points: np.ndarray, labels: np.ndarray) -> tuple[dict[str, Any], dict[int, float]]:
        """Silhouette over non-noise users in the clustering space, on a seeded sample (it is O(n^2)).

        Noise is left out because it is not a cluster; with fewer than two segments it is undefined.
        """
        from sklearn.metrics import silhouette_samples

        keep = np.flatnonzero(labels >= 0)
        if len(np.unique(labels[keep])) < 2:
            return {"silhouette": None, "silhouette_note": "undefined with fewer than two segments"}, {}
        rng = np.random.default_rng(self.seed)
        pick = np.sort(rng.choice(keep, size=min(len(keep), self.sil_sample), replace=False))
        lab = labels[pick]
        if len(np.unique(lab)) < 2 or len(pick) <= len(np.unique(lab)):
            return {"silhouette": None, "silhouette_note": "sample holds fewer than two segments"}, {}
        vals = silhouette_samples(np.asarray(points, dtype=np.float64)[pick], lab)
        per = {int(s): _r(vals[lab == s].mean()) for s in np.unique(lab)}
        return {"silhouette": _r(vals.mean(), 4), "silhouette_sample": int(len(pick))}, per

    def _clusterer_options(self, ctx: AnalysisContext, n_rows: int, n_total: int) -> dict[str, Any]:
        opts = dict(ctx.config.get("cluster", {}))
        params = ctx.segmentation.params or {}
        if "k" in params and opts.get("k", "auto") == "auto":
            opts["k"] = params["k"]  # clusterboot fixes k; re-choosing it per draw would test the chooser
        mcs = opts.get("min_cluster_size", "auto")
        if mcs != "auto" and n_rows < n_total:
            opts["min_cluster_size"] = max(2, int(round(int(mcs) * n_rows / n_total)))
        return opts

    def _fit(self, ctx: AnalysisContext, points: np.ndarray, seed: int, n_total: int) -> np.ndarray:
        method = ctx.config.get("cluster", {}).get("method", "hdbscan")
        opts = {**self._clusterer_options(ctx, len(points), n_total), "seed": seed}
        clusterer = plugins.create("clusterer", method, opts)
        return np.asarray(clusterer.cluster(points, seed).labels)

    def _stability(self, ctx: AnalysisContext, labels: np.ndarray,
                   seg_ids: list[int]) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
        n = len(labels)
        m = min(int(round(self.fraction * n)), self.max_rows, n)
        base: dict[str, Any] = {"stability_method": "clusterboot: subsamples without replacement, "
                                "best-match Jaccard per segment; UMAP not re-run",
                                "stability_boots": 0, "stability_rows": m}
        if not seg_ids or self.boots <= 0:
            return {**base, "stability_note": "no segments to test" if not seg_ids else "disabled"}, {}
        if m < MIN_ROWS:
            return {**base, "stability_note": f"too few users to resample ({n})"}, {}
        points = np.asarray(ctx.segmentation.reduced)
        rng = np.random.default_rng(self.seed)
        scores: dict[int, list[float]] = {s: [] for s in seg_ids}
        failed: list[str] = []
        for b in range(self.boots):
            rows = np.sort(rng.choice(n, size=m, replace=False))
            try:
                new = self._fit(ctx, points[rows], self.seed + 1000 + b, n)
            except Exception as exc:  # a degenerate subsample must not sink the whole analysis
                failed.append(f"{type(exc).__name__}: {exc}"[:200])
                continue
            for s, j in best_jaccard(labels[rows], new, seg_ids).items():
                scores[s].append(j)
        done = self.boots - len(failed)
        run: dict[str, Any] = {**base, "stability_boots": done}
        if failed:
            run["stability_failed_boots"] = len(failed)
            run["stability_failure"] = failed[0]
        per: dict[int, dict[str, Any]] = {}
        for s, vals in scores.items():
            if not vals:
                continue
            mean = float(np.mean(vals))
            per[s] = {"stability_jaccard": _r(mean), "stability": verdict(mean),
                      "dissolved_in": int(sum(v < 0.5 for v in vals)), "boots": len(vals)}
        if per:
            means = [p["stability_jaccard"] for p in per.values()]
            run["stability_mean_jaccard"] = _r(np.mean(means))
            for v in ("stable", "patterns", "dissolving"):
                run[f"{v}_segments"] = sorted(s for s, p in per.items() if p["stability"] == v)
        return run, per

    def _seed_agreement(self, ctx: AnalysisContext, labels: np.ndarray) -> dict[str, Any]:
        """ARI between the run's labels and the whole reduce + cluster step re-run with other seeds.

        The seed enters the segmentation through the reducer (UMAP's layout), not through HDBSCAN,
        which is deterministic: re-running only the clusterer gives ARI 1.0 and proves nothing. So
        the run's own reducer and clusterer (by name, through the plugin manager, with the run's
        config) are re-run on a seeded subsample of the users' embeddings, capped at
        `seed_max_rows` because UMAP is the expensive stage; the reference is the run's labels
        restricted to the same users (noise counts as a label). Below the cap the subsample is every
        user, so only the seed differs; above it the subsample's own manifold differs too, and
        `seed_ari_between` (the re-runs against each other, same users) isolates the seed.
        """
        from sklearn.metrics import adjusted_rand_score

        n = len(labels)
        reduce_cfg = dict(ctx.config.get("reduce", {}))
        method = str(reduce_cfg.get("method", "umap"))
        out: dict[str, Any] = {"seed_method": f"reduce ({method}) + cluster re-run from the embeddings with other "
                               "seeds on a seeded subsample; ARI against the run's labels on the same users"}
        vectors = getattr(ctx.embeddings, "vectors", None)
        if self.seed_runs <= 0 or n < MIN_ROWS or vectors is None or len(vectors) != n:
            out["seed_ari"] = None
            out["seed_note"] = "disabled" if self.seed_runs <= 0 else \
                "no embeddings to re-reduce" if vectors is None or len(vectors) != n else f"too few users ({n})"
            return out
        m = min(n, self.seed_max_rows)
        rows = np.arange(n) if m == n else \
            np.sort(np.random.default_rng(self.seed + 7).choice(n, size=m, replace=False))
        run_seed = int(ctx.config.get("seed", self.seed))
        seeds = [run_seed + 101 * i for i in range(1, self.seed_runs + 1)]
        n_components = int(reduce_cfg.get("n_components", 5))
        sub = np.asarray(vectors)[rows]
        ref = labels[rows]
        runs: list[np.ndarray] = []
        try:
            for s in seeds:
                reducer = plugins.create("reducer", method, {**reduce_cfg, "seed": s})
                runs.append(self._fit(ctx, np.asarray(reducer.reduce(sub, n_components, s)), s, n))
        except Exception as exc:  # a failing re-run must not sink the whole analysis
            out["seed_failure"] = f"{type(exc).__name__}: {exc}"[:200]
        out.update({"seed_rows": int(m), "seeds": seeds[:len(runs)], "seed_runs": len(runs)})
        if not runs:
            out["seed_ari"] = None
            return out
        aris = [float(adjusted_rand_score(ref, r)) for r in runs]
        out.update({"seed_ari": _r(np.mean(aris)), "seed_ari_min": _r(min(aris)),
                    "seed_aris": [_r(a) for a in aris]})
        if len(runs) > 1:
            pairs = [adjusted_rand_score(runs[i], runs[j]) for i in range(len(runs)) for j in range(i + 1, len(runs))]
            out["seed_ari_between"] = _r(np.mean(pairs))
        out["seed_note"] = ("every user re-reduced: only the seed differs" if m == n else
                            f"a {m:,}-user subsample re-reduced: its manifold differs from the full run's as well "
                            "as the seed; seed_ari_between compares the re-runs with each other")
        return out

    def _markdown(self, run: dict[str, Any], per: dict[int, dict[str, Any]]) -> str:
        lines = [f"- segments: {run['n_segments']}; noise share: {run['noise_share']}"]
        for key in ("relative_validity", "silhouette"):
            if run.get(key) is not None:
                lines.append(f"- {key.replace('_', ' ')}: {run[key]:.3f}")
        if run.get("stability_mean_jaccard") is not None:
            lines.append(f"- stability (mean Jaccard over {run['stability_boots']} subsamples of "
                         f"{run['stability_rows']:,} users): {run['stability_mean_jaccard']:.3f}; "
                         f"stable {len(run['stable_segments'])}, patterns {len(run['patterns_segments'])}, "
                         f"dissolving {len(run['dissolving_segments'])}")
        elif run.get("stability_note"):
            lines.append(f"- stability: not measured ({run['stability_note']})")
        if per:
            lines += ["", "| segment | Jaccard | verdict | silhouette |", "|---:|---:|---|---:|"]
            for s, p in sorted(per.items()):
                jac = p.get("stability_jaccard")
                sil = p.get("silhouette")
                lines.append(f"| {s} | {'' if jac is None else f'{jac:.3f}'} | {p.get('stability') or ''} | "
                             f"{'' if sil is None else f'{sil:.3f}'} |")
        if run.get("seed_ari") is not None:
            lines.append(f"- seed ARI: mean {run['seed_ari']:.3f}, min {run['seed_ari_min']:.3f} over "
                         f"{run['seed_runs']} re-runs of reduce + cluster with seeds {run['seeds']} on "
                         f"{run['seed_rows']:,} users")
        lines += ["", "Stability re-clusters subsamples of the reduced space (UMAP is not re-run); the seed ARI "
                  "re-runs the reducer and the clusterer."]
        return "\n".join(lines)


def quality_figures(run: Any, compute: bool = True) -> dict[str, Any]:
    """Quality figures of a finished run, for `seglens evaluate RUN`.

    Read from analyses.json and segments.json when the run had the "quality" analysis; otherwise
    (and if `compute`) measured now from the run folder with the run's own config. `run` is a
    RunFolder. The result is flat except `segments` (segment id -> {jaccard, verdict}).
    """
    from seglens.runfolder import load_context

    path = run.path / "analyses.json"
    analyses = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    stored = analyses.get("quality") or {}
    if stored.get("facts") and not stored.get("skipped"):
        facts = stored["facts"]
        per = {int(s["id"]): s["quality"] for s in run.segments() if isinstance(s.get("quality"), dict)}
        source = "analyses.json"
    elif compute:
        ctx = load_context(run)
        options = {**run.manifest.get("config", {}).get("analysis", {}), "seed": run.manifest.get("seed", 42)}
        result = QualityAnalysis(options).analyse(ctx)
        facts, per, source = result.run_level, result.per_segment, "computed now"
    else:
        return {"source": "not measured (the run has no quality analysis)"}
    keys = ("n_segments", "noise_share", "relative_validity", "silhouette", "stability_mean_jaccard",
            "stability_boots", "stability_rows", "seed_ari", "seed_ari_min", "seed_ari_between", "seed_rows",
            "seeds")
    out: dict[str, Any] = {k: facts.get(k) for k in keys if k in facts}
    for v in ("stable", "patterns", "dissolving"):
        if f"{v}_segments" in facts:
            out[f"{v}_segments"] = facts[f"{v}_segments"]
    out["segments"] = {str(s): {"jaccard": p.get("stability_jaccard"), "verdict": p.get("stability")}
                       for s, p in sorted(per.items()) if "stability_jaccard" in p}
    out["note"] = ("stability re-runs the clusterer on the reduced space (UMAP is not re-run); seed ARI re-runs "
                   "the reducer and the clusterer with other seeds on a subsample")
    out["source"] = source
    return out


QualityAnalysis.figures = staticmethod(quality_figures)  # what `seglens evaluate RUN` asks for


@hookimpl
def register_analyses(register):
    register("quality", QualityAnalysis, description="DBCV, silhouette, noise share, clusterboot stability per "
             "segment (Jaccard), ARI across seeds of reduce + cluster")
