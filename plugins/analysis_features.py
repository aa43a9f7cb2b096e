"""Each behaviour feature per segment beside the population: mean, median and a standardized
difference, so a describer can say "twice as many night-time events as the average user".

Both mean and median are given because behaviour counts are heavily skewed (a few users with
thousands of events move the mean, not the median). The standardized difference is the segment's
mean minus the population mean in units of the population's standard deviation (a Cohen's-d-like
figure against everyone, comparable across features of different units); a feature that is the same
for every user gets 0, not a division by zero. Features the data cannot support (money without
amounts, ratings without ratings) are left out rather than shown as zeros.

Per segment the features are ordered by |standardized difference| so the most distinctive come
first; the full table including category shares goes to `segment_features.parquet`.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from seglens import hookimpl
from seglens.features import NUMERIC_FEATURES, category_names
from seglens.model import AnalysisContext, AnalysisResult
from seglens.analysis_helpers import rnd as _r


def usable_features(table: pd.DataFrame) -> list[str]:
    """The numeric behaviour features this dataset actually has (not all missing)."""
    return [c for c in NUMERIC_FEATURES if c in table and table[c].notna().any()]


def feature_stats(table: pd.DataFrame, labels: np.ndarray, columns: list[str]) -> pd.DataFrame:
    """Long table: one row per (segment, feature) with mean, median, n, and the population's figures."""
    rows = []
    values = table[columns].astype(float)
    pop_mean = values.mean()
    pop_median = values.median()
    pop_sd = values.std(ddof=0)
    grouped = values.groupby(np.asarray(labels))
    means, medians, counts = grouped.mean(), grouped.median(), grouped.count()
    for sid in means.index:
        for c in columns:
            sd = pop_sd[c]
            m = means.at[sid, c]
            diff = (m - pop_mean[c]) / sd if np.isfinite(sd) and sd > 0 and np.isfinite(m) else \
                (0.0 if np.isfinite(m) else np.nan)
            rows.append({"segment": int(sid), "feature": c, "n": int(counts.at[sid, c]), "mean": float(m),
                         "median": float(medians.at[sid, c]), "population_mean": float(pop_mean[c]),
                         "population_median": float(pop_median[c]), "std_diff": float(diff)})
    return pd.DataFrame(rows, columns=["segment", "feature", "n", "mean", "median", "population_mean",
                                       "population_median", "std_diff"])


class FeaturesAnalysis:
    requires: tuple[str, ...] = ()

    def __init__(self, options: dict[str, Any]) -> None:
        self.top_n = int(options.get("features_top", 0))  # 0: every usable feature per segment

    def analyse(self, ctx: AnalysisContext) -> AnalysisResult:
        table = ctx.features.table
        labels = np.asarray(ctx.segmentation.labels)
        numeric = usable_features(table)
        cats = [c for c in ctx.features.category_columns if c in table]
        stats = feature_stats(table, labels, numeric + cats)
        names = category_names(ctx.features)
        stats.insert(2, "label", [names.get(f, f) for f in stats["feature"]])
        per: dict[int, dict[str, Any]] = {}
        num = stats[stats["feature"].isin(numeric)]
        for sid, g in num.groupby("segment"):
            g = g.assign(order=g["std_diff"].abs().fillna(-1)).sort_values(["order", "feature"],
                                                                            ascending=[False, True])
            if self.top_n > 0:
                g = g.head(self.top_n)
            per[int(sid)] = {r.feature: {"mean": _r(r.mean), "median": _r(r.median),
                                         "pop_mean": _r(r.population_mean), "pop_median": _r(r.population_median),
                                         "std_diff": _r(r.std_diff, 2)}
                             for r in g.itertuples()}
        pop = stats.drop_duplicates("feature").set_index("feature")
        run = {
            "features": numeric,
            "population": {c: {"mean": _r(pop.at[c, "population_mean"]), "median": _r(pop.at[c, "population_median"])}
                           for c in numeric},
            "std_diff": "segment mean minus population mean, in population standard deviations",
        }
        left_out = [c for c in NUMERIC_FEATURES if c in table and c not in numeric]
        if left_out:
            run["left_out"] = {c: "no user has a value" for c in left_out}
        return AnalysisResult("features", per, run, tables={"segment_features": stats},
                              markdown=self._markdown(stats, numeric))

    def _markdown(self, stats: pd.DataFrame, numeric: list[str]) -> str:
        if stats.empty or not numeric:
            return "No behaviour features."
        seg = stats[(stats["segment"] >= 0) & stats["feature"].isin(numeric)]
        if seg.empty:
            return "No segments."
        wide = seg.pivot(index="segment", columns="feature", values="std_diff").reindex(columns=numeric)
        lines = ["Standardized difference from the population mean (in population standard deviations):", "",
                 "| segment | " + " | ".join(f.replace("_", " ") for f in numeric) + " |",
                 "|---:|" + "---:|" * len(numeric)]
        for sid, row in wide.iterrows():
            lines.append(f"| {sid} | " + " | ".join("" if pd.isna(v) else f"{v:+.2f}" for v in row) + " |")
        return "\n".join(lines)


@hookimpl
def register_analyses(register):
    register("features", FeaturesAnalysis, description="behaviour features per segment: mean, median, "
             "population figures, standardized difference")
