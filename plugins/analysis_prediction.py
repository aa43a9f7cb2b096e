"""Who will be active next period, and how much they will spend (or do): gradient boosting on each
user's behaviour up to a cutoff, judged on a period it never saw, against a recency-only baseline.

Why a time split, and why two cutoffs: a model must be judged on the future, not on other users of
the same period. Periods are whole months or weeks (see `seglens.analysis_helpers`); with E the end of the data
and P one period,
- the *evaluation* model learns from features before E - 2P and labels from [E - 2P, E - P), and is
  scored on features before E - P against labels from [E - P, E): the last period is held out;
- the *deployed* model is refit the same way at cutoff E - P (labels from the last period, now
  allowed) and scores every user's features at E, predicting the period after the data.
So the reported ROC-AUC and PR-AUC are out of time, and the per-segment churn rates use all data.

Features per user at a cutoff: events, active days and items so far; recency and age (days since
the last and first event); events and active days in the last period and the last three; spend so
far and in the last period and three (amount datasets); plus one-hot segment membership. Labels:
active = any event in the next period; amount = spend in it (amount datasets; units for quantity
datasets) else its events.

Models: scikit-learn HistGradientBoostingClassifier (log-loss) and HistGradientBoostingRegressor
(Poisson loss: amounts are non-negative and mostly zero). Baseline: logistic regression on
log(1 + recency) alone, the rule of thumb any churn model must beat; `roc_auc_without_segments`
says what the segment one-hot adds. Caveat: segments come from clustering the whole history, so
their one-hot carries a little of the held-out period; the recency baseline does not.

Per segment: predicted churn rate = 1 - mean P(active next period) over its users, the expected
amount per user next period, and the actual active share in the held-out period. Skipped with a
reason when there are fewer than 3 complete periods, too few users, or one class only.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from seglens import hookimpl
from seglens.analyses import data_supports
from seglens.analysis_helpers import (Periods, make_periods, md_table, members, rnd, segment_list,
                                                    ts_literal)
from seglens.determinism import single_threaded
from seglens.features import value_filters
from seglens.model import AnalysisContext, AnalysisResult

BASE_FEATURES = ["n_events", "active_days", "n_items", "recency_days", "age_days", "events_last_period",
                 "days_last_period", "events_last_3", "days_last_3"]
MONEY_FEATURES = ["spend", "spend_last_period", "spend_last_3"]


class Skip(Exception):
    """The data cannot support this analysis; the message is the recorded reason."""


class PredictionAnalysis:
    requires: tuple[str, ...] = ("timestamps",)

    def __init__(self, options: dict[str, Any]) -> None:
        self.period = options.get("period", "auto")
        self.min_users = int(options.get("prediction_min_users", 30))
        self.max_iter = int(options.get("prediction_max_iter", 100))
        self.seed = int(options.get("seed", 42))

    def analyse(self, ctx: AnalysisContext) -> AnalysisResult:
        """One OpenMP/BLAS thread: on a busy 2-core machine the boosting fits ran ~10x slower with two
        threads spinning against each other than with one. scikit-learn is imported first, because
        threadpoolctl can only limit the thread pools of libraries already loaded."""
        import sklearn.ensemble  # noqa: F401
        import sklearn.linear_model  # noqa: F401
        import sklearn.metrics  # noqa: F401
        from threadpoolctl import threadpool_limits

        try:
            with threadpool_limits(1):
                return self._analyse(ctx)
        except Skip as exc:
            return AnalysisResult("prediction", skipped=str(exc))

    def _analyse(self, ctx: AnalysisContext) -> AnalysisResult:
        con = ctx.dataset.con
        periods = make_periods(con, self.period)
        if periods is None or periods.n < 3:
            n = 0 if periods is None else periods.n
            raise Skip(f"{n} complete {getattr(periods, 'unit', 'week')}s of history; predicting the next period "
                       "needs at least 3 (one to learn from, one to test on, and history before them)")
        money = data_supports(ctx, "amounts") is None
        money_cond = value_filters(ctx.dataset)[0] if money else None
        amount = ("quantity" if ctx.dataset.value_kind == "quantity" else "spend") if money else "events"
        cols = BASE_FEATURES + (MONEY_FEATURES if money else [])
        mem = members(ctx)
        segs = segment_list(ctx.segmentation.labels)
        e = periods.edges
        train = self._frame(con, periods, len(e) - 3, money_cond, mem, segs, label=True)
        test = self._frame(con, periods, len(e) - 2, money_cond, mem, segs, label=True)
        latest = self._frame(con, periods, len(e) - 1, money_cond, mem, segs, label=False)
        onehot = [f"seg_{s}" for s in segs]
        for name, f in (("training", train), ("test", test)):
            if len(f) < self.min_users:
                raise Skip(f"{len(f)} users have history before the {name} cutoff; prediction needs at least "
                           f"{self.min_users}")
            if f["active_next"].nunique() < 2:
                state = "active" if f["active_next"].iloc[0] else "inactive"
                raise Skip(f"every user in the {name} period is {state} in the next period, so there is nothing "
                           "to tell apart")

        X = cols + onehot
        # Boosting rounds beyond what the sample can support only cost time (each round has a fixed
        # overhead): about one round per 10 training users, at least 30, at most prediction_max_iter.
        iters = int(min(self.max_iter, max(30, len(train) // 10)))
        eval_clf = _classifier(iters, self.seed).fit(train[X], train["active_next"])
        p_test = eval_clf.predict_proba(test[X])[:, 1]
        plain = _classifier(iters, self.seed).fit(train[cols], train["active_next"])
        base = _baseline().fit(_recency(train), train["active_next"])
        p_base = base.predict_proba(_recency(test))[:, 1]
        y = test["active_next"].to_numpy()
        metrics = {
            "model": _scores(y, p_test),
            "baseline_recency": _scores(y, p_base),
            "roc_auc_without_segments": _scores(y, plain.predict_proba(test[cols])[:, 1])["roc_auc"],
        }
        reg_metrics, reg_model = self._regression(train, test, X, iters)

        final_clf = _classifier(iters, self.seed).fit(test[X], test["active_next"])
        latest["p_active_next"] = final_clf.predict_proba(latest[X])[:, 1]
        if reg_model is not None and (test["amount_next"] > 0).any():
            final_reg = _regressor(iters, self.seed)
            final_reg.fit(test[X], test["amount_next"].clip(lower=0))
            latest[f"expected_{amount}_next"] = np.maximum(final_reg.predict(latest[X]), 0.0)
        scored = mem.merge(latest.drop(columns=onehot + ["segment"]), on="user_id", how="left")
        held = mem.merge(test[["user_id", "active_next"]], on="user_id", how="left")

        per: dict[int, dict[str, Any]] = {}
        for sid in segs:
            g = scored[scored["segment"] == sid]
            h = held.loc[held["segment"] == sid, "active_next"].dropna()
            p = g["p_active_next"].dropna()
            f: dict[str, Any] = {
                "p_active_next_mean": rnd(p.mean(), 4) if len(p) else None,
                "predicted_churn_rate": rnd(1 - p.mean(), 4) if len(p) else None,
                "held_out_active_share": rnd(h.mean(), 4) if len(h) else None,
            }
            col = f"expected_{amount}_next"
            if col in g:
                f[f"{col}_mean"] = rnd(g[col].mean(), 3 if amount == "events" else 2)
            per[sid] = f
        run = {
            "period": periods.unit,
            "train_cutoff": str(e[-3].date()), "test_cutoff": str(e[-2].date()), "score_cutoff": str(e[-1].date()),
            "train_users": int(len(train)), "test_users": int(len(test)), "scored_users": int(len(latest)),
            "train_active_rate": rnd(train["active_next"].mean(), 4),
            "test_active_rate": rnd(test["active_next"].mean(), 4),
            "amount": amount,
            "features": X,
            "held_out": metrics,
            "regression": reg_metrics,
            "model": "scikit-learn HistGradientBoostingClassifier / HistGradientBoostingRegressor (poisson)",
            "boosting_rounds": iters,
        }
        keep = ["user_id", "segment", "p_active_next"] + [c for c in scored if c.startswith("expected_")]
        table = scored[keep].copy()
        return AnalysisResult("prediction", per, run, tables={"prediction": table.reset_index(drop=True)},
                              markdown=self._markdown(per, run))

    # --- pieces -------------------------------------------------------------------------------
    def _frame(self, con: Any, periods: Periods, k: int, money_cond: str | None, mem: pd.DataFrame,
               segs: list[int], label: bool) -> pd.DataFrame:
        """Features of every user with history before edges[k]; labels from [edges[k], edges[k+1])."""
        e = periods.edges
        cut = e[k]
        last1 = e[k - 1] if k >= 1 else cut - pd.Timedelta(days=periods.mean_days)
        last3 = e[k - 3] if k >= 3 else e[0]
        c, l1, l3 = ts_literal(cut), ts_literal(last1), ts_literal(last3)
        money = [
            f"coalesce(sum(value) FILTER (WHERE {money_cond}), 0) AS spend",
            f"coalesce(sum(value) FILTER (WHERE ({money_cond}) AND ts >= {l1}), 0) AS spend_last_period",
            f"coalesce(sum(value) FILTER (WHERE ({money_cond}) AND ts >= {l3}), 0) AS spend_last_3",
        ] if money_cond else []
        sql = f"""
            SELECT user_id, count(*)::DOUBLE AS n_events, count(DISTINCT CAST(ts AS DATE))::DOUBLE AS active_days,
                   count(DISTINCT item_id)::DOUBLE AS n_items,
                   date_diff('second', max(ts), {c}) / 86400.0 AS recency_days,
                   date_diff('second', min(ts), {c}) / 86400.0 AS age_days,
                   (count(*) FILTER (WHERE ts >= {l1}))::DOUBLE AS events_last_period,
                   (count(DISTINCT CAST(ts AS DATE)) FILTER (WHERE ts >= {l1}))::DOUBLE AS days_last_period,
                   (count(*) FILTER (WHERE ts >= {l3}))::DOUBLE AS events_last_3,
                   (count(DISTINCT CAST(ts AS DATE)) FILTER (WHERE ts >= {l3}))::DOUBLE AS days_last_3
                   {''.join(', ' + m for m in money)}
            FROM events e WHERE ts < {c} GROUP BY user_id ORDER BY user_id"""
        with single_threaded(con):
            df = con.execute(sql).df()
            if label:
                nxt = ts_literal(e[k + 1])
                amt = f"coalesce(sum(value) FILTER (WHERE {money_cond}), 0)" if money_cond else "count(*)::DOUBLE"
                lab = con.execute(f"""SELECT user_id, count(*) AS n_next, {amt} AS amount_next FROM events e
                                      WHERE ts >= {c} AND ts < {nxt} GROUP BY user_id""").df()
        df["user_id"] = df["user_id"].astype(str)
        df = df.merge(mem, on="user_id", how="inner")
        for s in segs:
            df[f"seg_{s}"] = (df["segment"] == s).astype(np.int8)
        if label:
            lab["user_id"] = lab["user_id"].astype(str)
            df = df.merge(lab, on="user_id", how="left")
            df["active_next"] = (df["n_next"].fillna(0) > 0).astype(np.int64)
            df["amount_next"] = df["amount_next"].astype(float).fillna(0.0)
            df = df.drop(columns=["n_next"])
        return df.reset_index(drop=True)

    def _regression(self, train: pd.DataFrame, test: pd.DataFrame, X: list[str],
                    iters: int) -> tuple[dict[str, Any], Any]:
        y_train = train["amount_next"].clip(lower=0)
        if not (y_train > 0).any():
            return {"skipped": "no user had a positive amount in the training period"}, None
        reg = _regressor(iters, self.seed).fit(train[X], y_train)
        pred = np.maximum(reg.predict(test[X]), 0.0)
        y = test["amount_next"].clip(lower=0).to_numpy(float)
        naive_col = "spend_last_period" if "spend_last_period" in test else "events_last_period"
        naive = test[naive_col].clip(lower=0).to_numpy(float)
        return {"mae": rnd(np.abs(pred - y).mean(), 4), "baseline_last_period_mae": rnd(np.abs(naive - y).mean(), 4),
                "predicted_total": rnd(pred.sum(), 2), "actual_total": rnd(y.sum(), 2),
                "spearman": _spearman(pred, y)}, reg

    def _markdown(self, per: dict[int, dict[str, Any]], run: dict[str, Any]) -> str:
        m, b = run["held_out"]["model"], run["held_out"]["baseline_recency"]
        lines = [f"Trained on features before {run['train_cutoff']} with labels from the next {run['period']}, "
                 f"tested on the {run['period']} from {run['test_cutoff']} ({run['test_users']:,} users, "
                 f"{run['test_active_rate']:.1%} active). ROC-AUC {m['roc_auc']} "
                 f"(recency-only baseline {b['roc_auc']}), "
                 f"PR-AUC {m['pr_auc']} (baseline {b['pr_auc']}). Predictions are for the {run['period']} starting "
                 f"{run['score_cutoff']}."]
        reg = run["regression"]
        if "mae" in reg:
            lines.append(f"Next-{run['period']} {run['amount']}: MAE {reg['mae']} against "
                         f"{reg['baseline_last_period_mae']} "
                         f"for 'same as last {run['period']}'; predicted total {reg['predicted_total']:,} vs "
                         f"actual {reg['actual_total']:,}.")
        col = f"expected_{run['amount']}_next_mean"
        rows = [[sid, f["predicted_churn_rate"], f["held_out_active_share"], f.get(col)] for sid, f in per.items()]
        return "\n\n".join([" ".join(lines), md_table(["segment", "predicted churn", "held-out active share",
                                                      f"expected {run['amount']} next"], rows)])


def _classifier(max_iter: int, seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_iter=max_iter, learning_rate=0.1, max_leaf_nodes=15,
                                          min_samples_leaf=20, l2_regularization=1.0, early_stopping=False,
                                          random_state=seed)


def _regressor(max_iter: int, seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(loss="poisson", max_iter=max_iter, learning_rate=0.1, max_leaf_nodes=15,
                                         min_samples_leaf=20, l2_regularization=1.0, early_stopping=False,
                                         random_state=seed)


def _baseline() -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression()


def _recency(f: pd.DataFrame) -> np.ndarray:
    return np.log1p(np.maximum(f[["recency_days"]].to_numpy(float), 0.0))


def _scores(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {"roc_auc": rnd(roc_auc_score(y, p), 4), "pr_auc": rnd(average_precision_score(y, p), 4)}


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    from scipy.stats import spearmanr

    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return rnd(spearmanr(a, b).statistic, 4)


@hookimpl
def register_analyses(register):
    register("prediction", PredictionAnalysis, description="P(active next period) and next-period spend per user "
             "(gradient boosting on a time split), ROC/PR-AUC vs a recency baseline, churn rate per segment")
