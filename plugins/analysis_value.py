"""What each segment is worth: revenue so far (totals, per-user averages, share of all revenue) and
customer lifetime value (CLV) ahead, from a BG/NBD purchase model and a Gamma-Gamma spend model.

Revenue counts the events whose value is money (`features.value_filters`: purchase-like events when
the log names them, else every event of an amount dataset), over the whole history, the same figure
as the profile's `monetary`.

CLV, per customer (a user with at least one money event):
- the summary is the one of Fader, Hardie & Lee: transactions are counted per day (several
  purchases on one day are one transaction, their values summed); frequency = repeat transaction
  days, recency = days from the first to the last transaction, T = days from the first transaction
  to the end of observation, in weeks by default (`clv_time_unit` = week | day); the mean spend is
  over repeat transactions only, as the Gamma-Gamma model assumes.
- BG/NBD gives P(alive) and the expected number of transactions in each future month; Gamma-Gamma
  gives the expected spend per transaction (shrunk towards the population mean for customers with
  few purchases). CLV = sum over `clv_months` months (12) of expected transactions that month x
  expected spend / (1 + d)^month, with a monthly discount d = `clv_discount_monthly` (1%, ~12.7% a
  year), months of 365.25/12 days. It is revenue, not profit: no margin is applied.
- `clv_calibration_end` (a date) fits on events up to that day only and checks the predicted number
  of repeat transactions after it against what happened (a holdout test); left empty, the model
  uses the whole log and predicts past its end.

Library: `lifetimes` 0.11.3, not pymc-marketing. lifetimes is already installed, small (pure
Python on NumPy/SciPy/autograd), fits CDNOW in about 0.2 s against about 27 s for pymc-marketing's
MAP fit, reproduces the published CDNOW estimates exactly (r 0.243, alpha 4.414, a 0.793, b 2.426;
p 6.25, q 3.74, v 15.44), and works with NumPy 2.4 and pandas 3. pymc-marketing would add ~790 MB
(PyMC, PyTensor with a C compiler at run time, ArviZ) for Bayesian uncertainty that per-segment
means and medians do not need. The risk, that lifetimes is archived, is contained: it is used only
here, behind `fit_bgnbd` / `fit_gamma_gamma`, every failure becomes a recorded skip, and the CDNOW
test catches any drift.

Fitting is made robust: the default penalizer is 0 (even 0.001 moves CDNOW's a and b by ~40%), and
a fit that fails or gives non-finite or non-positive parameters is retried with penalizers 0.001,
0.01 and 0.1; the one used is recorded. Too few customers, no repeat customers, no spread in time
or no positive spend skip the CLV part with the reason, and revenue figures are still given.
"""
from __future__ import annotations

import contextlib
import io
import warnings
from typing import Any

import numpy as np
import pandas as pd

from seglens import hookimpl
from seglens.analysis_helpers import md_table, members, rnd, segment_list, share
from seglens.determinism import single_threaded
from seglens.errors import SeglensError
from seglens.features import value_filters
from seglens.model import AnalysisContext, AnalysisResult

PENALIZERS = (0.0, 0.001, 0.01, 0.1)
DAYS_PER_MONTH = 365.25 / 12
UNIT_DAYS = {"week": 7.0, "day": 1.0}


class FitError(RuntimeError):
    """A model could not be fitted; the message is the reason recorded in the facts."""


class ValueAnalysis:
    requires: tuple[str, ...] = ("amounts",)

    def __init__(self, options: dict[str, Any]) -> None:
        self.months = max(1, int(options.get("clv_months", 12)))
        self.discount = float(options.get("clv_discount_monthly", 0.01))
        self.unit = str(options.get("clv_time_unit", "week")).lower()
        if self.unit not in UNIT_DAYS:
            raise SeglensError(f"unknown analysis.clv_time_unit '{self.unit}'", hint="use week or day")
        self.penalizer = float(options.get("clv_penalizer", 0.0))
        self.min_customers = int(options.get("clv_min_customers", 20))
        self.min_repeat = int(options.get("clv_min_repeat_customers", 10))
        cal = options.get("clv_calibration_end") or None
        try:
            self.calibration_end = pd.Timestamp(cal).normalize() if cal else None
        except (ValueError, TypeError) as exc:
            raise SeglensError(f"analysis.clv_calibration_end is not a date: {cal!r}", hint="use YYYY-MM-DD") from exc

    def analyse(self, ctx: AnalysisContext) -> AnalysisResult:
        money_cond, _ = value_filters(ctx.dataset)
        mem = members(ctx)
        feats = ctx.features.table
        mem["revenue"] = pd.to_numeric(feats["monetary"], errors="coerce").fillna(0.0).to_numpy(float)
        run: dict[str, Any] = {"library": _library_version(), "revenue_total": rnd(mem["revenue"].sum(), 2),
                               "users": int(len(mem)), "buyers": int((mem["revenue"] > 0).sum()),
                               "value_kind": ctx.dataset.value_kind}  # quantity: "revenue" counts units
        clv = None
        try:
            clv, clv_run = self._clv(ctx, money_cond or "TRUE")
            run.update(clv_run)
        except FitError as exc:
            run["clv_skipped"] = str(exc)
        except Exception as exc:  # the revenue figures stand without CLV; never sink the run
            run["clv_skipped"] = f"CLV failed: {type(exc).__name__}: {str(exc)[:160]}"
        if clv is not None:
            mem = mem.merge(clv, on="user_id", how="left")
        per = self._per_segment(mem, ctx.segmentation.labels, clv is not None and "clv" in clv)
        extra = [c for c in clv.columns if c != "user_id"] if clv is not None else []
        cols = ["user_id", "segment", "revenue", *extra]
        table = mem[cols].copy()
        return AnalysisResult("value", per, run, tables={"value": table.reset_index(drop=True)},
                              markdown=self._markdown(per, run))

    # --- revenue ------------------------------------------------------------------------------
    def _per_segment(self, mem: pd.DataFrame, labels: np.ndarray, has_clv: bool) -> dict[int, dict[str, Any]]:
        total = float(mem["revenue"].sum())
        total_clv = float(mem["clv"].sum()) if has_clv else 0.0
        n = len(mem)
        per: dict[int, dict[str, Any]] = {}
        for sid in segment_list(labels):
            g = mem[mem["segment"] == sid]
            rev = g["revenue"]
            buyers = rev > 0
            f: dict[str, Any] = {
                "revenue_total": rnd(rev.sum(), 2),
                "revenue_share": share(rev.sum(), total),
                "value_index": rnd((rev.sum() / total) / (len(g) / n), 2) if total and n and len(g) else None,
                "revenue_per_user_mean": rnd(rev.mean(), 2),
                "revenue_per_user_median": rnd(rev.median(), 2),
                "buyers_share": rnd(buyers.mean(), 4),
                "revenue_per_buyer_mean": rnd(rev[buyers].mean(), 2) if buyers.any() else None,
            }
            if "p_alive" in g:
                fitted = g["p_alive"].notna()
                fit = g[fitted]
                f["p_alive_mean"] = rnd(fit["p_alive"].mean(), 4) if len(fit) else None
                f["expected_purchases_mean"] = rnd(fit["expected_purchases"].mean(), 3) if len(fit) else None
                f["clv_customers"] = int(fitted.sum())
            if has_clv:
                c = g["clv"].dropna()
                f.update({
                    "clv_months": self.months,
                    "clv_mean": rnd(c.mean(), 2) if len(c) else None,
                    "clv_median": rnd(c.median(), 2) if len(c) else None,
                    "clv_per_user": rnd(c.sum() / len(g), 2) if len(g) else None,  # non-customers count as 0
                    "clv_share": share(c.sum(), total_clv),
                })
            per[sid] = f
        return per

    # --- CLV ----------------------------------------------------------------------------------
    def _clv(self, ctx: AnalysisContext, money_cond: str) -> tuple[pd.DataFrame, dict[str, Any]]:
        con = ctx.dataset.con
        last = con.execute("SELECT max(ts) FROM events").fetchall()[0][0]
        if last is None:
            raise FitError("there are no events")
        data_end = pd.Timestamp(last).normalize()
        obs_end = data_end if self.calibration_end is None else min(self.calibration_end, data_end)
        summary = rfm_summary(con, money_cond, obs_end, self.unit)
        unit_days = UNIT_DAYS[self.unit]
        out: dict[str, Any] = {"time_unit": self.unit, "observation_end": str(obs_end.date()),
                               "calibration_end": str(self.calibration_end.date()) if self.calibration_end is not None
                               else None}
        n, n_rep = len(summary), int((summary["frequency"] > 0).sum())
        if n < self.min_customers:
            raise FitError(f"{n} customers made a purchase by {obs_end.date()}; CLV needs at least "
                           f"{self.min_customers}")
        if n_rep < self.min_repeat:
            raise FitError(f"{n_rep} customers bought on more than one day; the purchase model needs at least "
                           f"{self.min_repeat} repeat customers")
        if float(summary["T"].max()) <= 0:
            raise FitError("every purchase falls on the last day, so there is no time to observe repeat purchases")
        f, r, T = (summary[c].to_numpy(float) for c in ("frequency", "recency", "T"))
        bg, bg_pen = fit_bgnbd(f, r, T, self.penalizer)
        out["bgnbd"] = {**{k: rnd(v, 4) for k, v in bg.params_.items()}, "penalizer": bg_pen, "customers": n,
                        "repeat_customers": n_rep}
        month = DAYS_PER_MONTH / unit_days
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p_alive = np.clip(np.asarray(bg.conditional_probability_alive(f, r, T), dtype=float), 0.0, 1.0)
            cum = [np.zeros(n)] + [np.asarray(bg.conditional_expected_number_of_purchases_up_to_time(
                m * month, f, r, T), dtype=float) for m in range(1, self.months + 1)]
        result = pd.DataFrame({"user_id": summary["user_id"].astype(str), "frequency": f, "recency": r, "T": T,
                               "monetary_repeat_mean": summary["monetary"].to_numpy(float),
                               "p_alive": p_alive, "expected_purchases": cum[-1]})
        if self.calibration_end is not None and obs_end < data_end:
            out["holdout"] = self._holdout(con, money_cond, obs_end, data_end, summary, bg)
        m = summary["monetary"].to_numpy(float)
        good = (f > 0) & np.isfinite(m) & (m > 0)
        if good.sum() < self.min_repeat:
            out["clv_skipped"] = (f"{int(good.sum())} repeat customers with positive spend; the spend model needs at "
                                  f"least {self.min_repeat}")
            return result, out
        try:
            gg, gg_pen = fit_gamma_gamma(f[good], m[good], self.penalizer)
        except FitError as exc:
            out["clv_skipped"] = str(exc)
            return result, out
        corr = np.corrcoef(f[good], m[good])[0, 1] if good.sum() > 2 and np.ptp(f[good]) and np.ptp(m[good]) else None
        out["gamma_gamma"] = {**{k: rnd(v, 4) for k, v in gg.params_.items()}, "penalizer": gg_pen,
                              "customers": int(good.sum()), "frequency_spend_correlation": rnd(corr, 3)}
        spend = expected_spend(gg, f, np.where(good, m, 0.0))
        disc = (1.0 + self.discount) ** -np.arange(1, self.months + 1)
        clv = sum((cum[k] - cum[k - 1]) * disc[k - 1] for k in range(1, self.months + 1)) * spend
        result["expected_spend"] = spend
        result["clv"] = clv
        out["clv"] = {"months": self.months, "monthly_discount": self.discount,
                      "annual_discount": rnd((1 + self.discount) ** 12 - 1, 4), "mean": rnd(clv.mean(), 2),
                      "median": rnd(np.median(clv), 2), "total": rnd(clv.sum(), 2),
                      "units": "revenue per customer over the horizon, discounted, no margin applied"}
        return result, out

    def _holdout(self, con: Any, money_cond: str, cal_end: pd.Timestamp, data_end: pd.Timestamp,
                 summary: pd.DataFrame, bg: Any) -> dict[str, Any]:
        """Predicted against actual repeat transaction days after the calibration end."""
        days = (data_end - cal_end).days
        actual = con.execute(f"""
            SELECT user_id, count(DISTINCT CAST(ts AS DATE)) AS n FROM events e
            WHERE ({money_cond}) AND CAST(ts AS DATE) > DATE '{cal_end.date()}' GROUP BY user_id""").df()
        got = summary[["user_id"]].merge(actual.astype({"user_id": str}), on="user_id", how="left")["n"].fillna(0)
        f, r, T = (summary[c].to_numpy(float) for c in ("frequency", "recency", "T"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pred = np.asarray(bg.conditional_expected_number_of_purchases_up_to_time(
                days / UNIT_DAYS[self.unit], f, r, T), dtype=float)
        got = got.to_numpy(float)
        return {"days": int(days), "customers": int(len(got)), "actual_transactions": int(got.sum()),
                "predicted_transactions": rnd(pred.sum(), 1), "mae_per_customer": rnd(np.abs(pred - got).mean(), 4),
                "correlation": rnd(np.corrcoef(pred, got)[0, 1], 4) if np.ptp(pred) and np.ptp(got) else None}

    def _markdown(self, per: dict[int, dict[str, Any]], run: dict[str, Any]) -> str:
        lines = [f"Revenue {run['revenue_total']:,.2f} from {run['buyers']:,} buyers among {run['users']:,} users."]
        if "bgnbd" in run:
            b = run["bgnbd"]
            lines.append(f"BG/NBD ({run['library']}, {run['time_unit']}s, {b['customers']:,} customers): r {b['r']}, "
                         f"alpha {b['alpha']}, a {b['a']}, b {b['b']}, penalizer {b['penalizer']}.")
        if "gamma_gamma" in run:
            g = run["gamma_gamma"]
            lines.append(f"Gamma-Gamma: p {g['p']}, q {g['q']}, v {g['v']} (frequency-spend correlation "
                         f"{g['frequency_spend_correlation']}).")
        if "clv" in run:
            c = run["clv"]
            lines.append(f"CLV over {c['months']} months, discounted {c['monthly_discount']:.2%} a month "
                         f"({c['annual_discount']:.1%} a year), revenue with no margin: mean {c['mean']:,.2f}, "
                         f"median {c['median']:,.2f}.")
        if "holdout" in run:
            h = run["holdout"]
            lines.append(f"Holdout ({h['days']} days after {run['calibration_end']}): {h['actual_transactions']:,} "
                         f"repeat transactions, {h['predicted_transactions']:,} predicted.")
        if run.get("clv_skipped"):
            lines.append(f"CLV skipped: {run['clv_skipped']}.")
        def pct(v: float | None, fmt: str) -> str | None:
            return None if v is None else format(v, fmt)

        rows = [[sid, f["revenue_total"], pct(f["revenue_share"], ".1%"), f["value_index"], f["revenue_per_user_mean"],
                 pct(f["buyers_share"], ".0%"), f.get("clv_mean"), f.get("clv_median"), f.get("p_alive_mean")]
                for sid, f in per.items()]
        return "\n\n".join([" ".join(lines), md_table(["segment", "revenue", "share", "index", "per user", "buyers",
                                                      "CLV mean", "CLV median", "P(alive)"], rows)])


def rfm_summary(con: Any, money_cond: str, obs_end: pd.Timestamp, unit: str = "week") -> pd.DataFrame:
    """The BG/NBD summary per customer: frequency (repeat transaction days), recency and T (in
    `unit`s), mean spend of repeat transactions, over money events on or before `obs_end` (a day)."""
    with single_threaded(con):  # float sums in a fixed order, so reruns give the same fit
        df = con.execute(f"""
            WITH tx AS (SELECT e.user_id, CAST(e.ts AS DATE) AS d, sum(e.value) AS v FROM events e
                        WHERE ({money_cond}) AND CAST(e.ts AS DATE) <= DATE '{obs_end.date()}' GROUP BY ALL),
            r AS (SELECT user_id, d, v, row_number() OVER (PARTITION BY user_id ORDER BY d) AS rn FROM tx)
            SELECT user_id, (count(*) - 1)::DOUBLE AS frequency,
                   date_diff('day', min(d), max(d))::DOUBLE AS recency_days,
                   date_diff('day', min(d), DATE '{obs_end.date()}')::DOUBLE AS t_days,
                   avg(v) FILTER (WHERE rn > 1) AS monetary
            FROM r GROUP BY user_id ORDER BY user_id""").df()
    df["user_id"] = df["user_id"].astype(str)
    df["recency"] = df.pop("recency_days") / UNIT_DAYS[unit]
    df["T"] = df.pop("t_days") / UNIT_DAYS[unit]
    return df[["user_id", "frequency", "recency", "T", "monetary"]]


def _fit(make: Any, args: tuple[np.ndarray, ...], first: float, what: str) -> tuple[Any, float]:
    """Fit with the first penalizer, retrying larger ones when the optimizer fails or the
    parameters come out non-finite or non-positive (all of BG/NBD's and Gamma-Gamma's are > 0)."""
    from threadpoolctl import threadpool_limits

    errors = []
    for pen in sorted({float(first), *[p for p in PENALIZERS if p > first]}):
        try:
            # lifetimes prints the optimizer's report before raising on non-convergence: keep it
            # off the user's terminal (the reason is recorded instead).
            with threadpool_limits(1), warnings.catch_warnings(), np.errstate(all="ignore"), \
                    contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                model = make(pen)
                model.fit(*[pd.Series(a) for a in args])
            params = np.asarray(list(model.params_.values), dtype=float)
            if not (np.all(np.isfinite(params)) and np.all(params > 0)):
                raise FitError(f"parameters {np.round(params, 4).tolist()}")
            return model, pen
        except Exception as exc:  # lifetimes raises plain errors on convergence; each one is a reason
            errors.append(f"penalizer {pen:g}: {type(exc).__name__}: {str(exc)[:80]}")
    raise FitError(f"the {what} model did not fit ({'; '.join(errors)})")


def _lifetimes() -> Any:
    """Import lifetimes quietly: it sets a pandas option at import that pandas 3 warns about."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import lifetimes
    except ImportError as exc:
        raise FitError(f"the lifetimes package is not installed ({exc})") from exc
    return lifetimes


def fit_bgnbd(frequency: np.ndarray, recency: np.ndarray, T: np.ndarray, penalizer: float = 0.0) -> tuple[Any, float]:
    BetaGeoFitter = _lifetimes().BetaGeoFitter

    return _fit(lambda pen: BetaGeoFitter(penalizer_coef=pen), (frequency, recency, T), penalizer, "BG/NBD")


def fit_gamma_gamma(frequency: np.ndarray, monetary: np.ndarray, penalizer: float = 0.0) -> tuple[Any, float]:
    GammaGammaFitter = _lifetimes().GammaGammaFitter

    model, pen = _fit(lambda p: GammaGammaFitter(penalizer_coef=p), (frequency, monetary), penalizer, "Gamma-Gamma")
    if model.params_["q"] <= 1:
        raise FitError(f"the Gamma-Gamma fit has q = {model.params_['q']:.3f} <= 1, so the mean spend is infinite")
    return model, pen


def expected_spend(gg: Any, frequency: np.ndarray, monetary: np.ndarray) -> np.ndarray:
    """E[spend per transaction | history]: (p (v + x m)) / (p x + q - 1), the Gamma-Gamma posterior
    mean (equal to lifetimes' conditional_expected_average_profit; x = 0 gives the population mean)."""
    p, q, v = (float(gg.params_[k]) for k in ("p", "q", "v"))
    return (p * (v + frequency * monetary)) / (p * frequency + q - 1.0)


def _library_version() -> str:
    try:
        from importlib.metadata import version

        return f"lifetimes {version('lifetimes')}"
    except Exception:
        return "lifetimes"


@hookimpl
def register_analyses(register):
    register("value", ValueAnalysis, description="revenue per segment (total, per user, share) and CLV from "
             "BG/NBD + Gamma-Gamma (lifetimes): mean/median CLV, P(alive)")
