"""`report.html`: one self-contained, offline page per run.

The page holds an overview (users, events, period, segments, noise share, quality figures, config
and seed), an interactive 2-D map of users coloured by segment (hover: the segment, the user and the
user's three most recent titles; the caption names the method that placed the users: UMAP, t-SNE or
PCA), a card per segment, the similarity heatmap, the most significant
differences between segments, sections added by other plugins, and a method and reproducibility
appendix (config, seed, plugins with versions, input fingerprints, seconds per stage). Every part is
drawn only when the run holds its data: a run made with the `profile` analysis alone gives a shorter
page, never an error. A part whose data has an unexpected shape is left out and named in the appendix.

Offline and quick to open: plotly.js is inlined once from the installed `plotly` package (no CDN, no
external fonts); figures are plain JSON handed to `Plotly.newPlot`, the map is drawn at once and the
smaller charts when scrolled into view. Runs with more than `map_max_points` users (default 20,000,
`--set report.map_max_points=N` or `seglens report --max-points N`) show a seeded stratified sample
that keeps every segment, and say so. Above 3,000 points the map uses WebGL when the browser has it.

Escaping: the Jinja2 template has autoescape on, so every string from the data (titles, categories,
segment names, descriptions, user ids, paths) is HTML-escaped. Text shown by plotly (hover, legend,
axis labels) is escaped before it enters the figure (plotly renders a small HTML subset itself), and
the figures' JSON sits in a `<script type="application/json">` block with `<`, `>` and `&` written as
`\\u003c`, `\\u003e` and `\\u0026`, so no string can close the script or open a comment.

Adding a section from another plugin (no extra hook): register a *reporter* whose name starts with
`html-section:`; its object has `section(run) -> (title, html) | None`. The HTML reporter calls every
such registration, in name order, and places the sections after the built-in ones. `title` is plain
text (escaped here); `html` is inserted as it is, so the plugin must escape any data it puts in it
(e.g. with `markupsafe.escape`). A section that raises is replaced by a one-line note. Such a
registration is not a report format: do not list it in `report.formats`.

    from markupsafe import escape
    from seglens import hookimpl

    class ChurnNote:
        def __init__(self, options): ...
        def section(self, run):
            worst = max(run.segments(), key=lambda s: s.get("lifecycle", {}).get("at_risk_or_churned_share", 0))
            return "Churn watch", f"<p>Most at risk: {escape(worst['name'])}</p>"

    @hookimpl
    def register_reporters(register):
        register("html-section:churn", ChurnNote, description="a churn note in report.html")

The page itself lives in package data beside this module, `report_templates/`: the Jinja2 template
`report.html.j2`, the stylesheet `report.css` and the script `report.js` (which draws the figures).
They are read once per process and inlined into every page, so the page still loads nothing.

Elsewhere: the `json` reporter is `report_json.py`, the `seglens report` command `report_command.py`,
and the tolerant readers both reporters share `report_data.py`.
"""
from __future__ import annotations

import datetime as _dt
import functools
import html as _html
import json
import logging
import math
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from seglens import atomic, hookimpl, plugins
from seglens.default_plugins import map_command
from seglens.default_plugins.map_command import DEFAULT_MAX_POINTS, segment_colours, stratified_sample
from seglens.default_plugins.report_data import as_dict as _d
from seglens.default_plugins.report_data import as_list as _l
from seglens.default_plugins.report_data import clean as _clean
from seglens.default_plugins.report_data import read_json as _read_json
from seglens.default_plugins.report_data import read_parquet as _read_parquet
from seglens.default_plugins.report_data import run_name
from seglens.runfolder import RunFolder

log = logging.getLogger(__name__)

SECTION_PREFIX = "html-section:"
WEBGL_ABOVE = 3000
LIFECYCLE_STAGES = [("new", "new", "#60a5fa"), ("active", "active", "#22c55e"),
                    ("reactivated", "reactivated", "#a3e635"), ("at_risk", "at risk", "#f59e0b"),
                    ("churned", "churned", "#ef4444")]


# --- escaping and small formatting helpers ---------------------------------------------------------
def safe_json(obj: Any) -> str:
    """JSON that can sit inside a <script> element: no `<`, `>` or `&` survive (so neither `</script>`
    nor `<!--` can appear), and NaN/inf become null."""
    text = json.dumps(_clean(obj), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def ptext(value: Any, limit: int = 0) -> str:
    """Data text for plotly (hover, legend, tick labels): plotly parses a small HTML subset, so `&`,
    `<` and `>` are escaped (plotly turns the entities back into characters in text nodes)."""
    s = " ".join(str(value).split())
    if limit and len(s) > limit:
        s = s[: limit - 1] + "\u2026"
    s = _html.escape(s, quote=False)
    return "\u200b" + s if s.startswith("$") else s  # never a LaTeX string


def _isnum(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) and math.isfinite(float(x))


def fnum(x: Any) -> str:
    if not _isnum(x):
        return "" if x is None else str(x)
    if isinstance(x, (int, np.integer)):
        return f"{int(x):,}"
    x = float(x)
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:,.1f}".rstrip("0").rstrip(".") if x != int(x) else f"{int(x):,}"
    return f"{x:.3g}"


def fpct(x: Any, digits: int = 1) -> str:
    return f"{float(x) * 100:.{digits}f}%" if _isnum(x) else ""


def _label(name: str) -> str:
    return str(name).replace("_", " ")


def _rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


# --- data from the run folder ------------------------------------------------------------------------
def recent_titles(run: RunFolder, user_ids: list[str], k: int = 3) -> dict[str, list[str]]:
    """Each given user's `k` most recent distinct items (titles, else ids), by DuckDB over the run's
    events.parquet and items.parquet, for these users only."""
    events, items = run.path / "events.parquet", run.path / "items.parquet"
    if not user_ids or not events.exists():
        return {}
    import duckdb
    import pandas as pd

    con = duckdb.connect()
    try:
        con.register("wanted", pd.DataFrame({"user_id": pd.Series([str(u) for u in user_ids], dtype=object)}))
        params = [str(events)]
        items_sql = "SELECT NULL::VARCHAR AS item_id, NULL::VARCHAR AS title WHERE false"
        if items.exists():
            cols = {r[0] for r in con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(items)]).fetchall()}
            if {"item_id", "title"} <= cols:
                items_sql = ("SELECT CAST(item_id AS VARCHAR) AS item_id, any_value(CAST(title AS VARCHAR)) AS title "
                             "FROM read_parquet(?) GROUP BY 1")
                params.append(str(items))
        rows = con.execute(f"""
            WITH ui AS (
                SELECT CAST(e.user_id AS VARCHAR) AS user_id, CAST(e.item_id AS VARCHAR) AS item_id,
                       max(e.ts) AS last_ts
                FROM read_parquet(?) e
                WHERE CAST(e.user_id AS VARCHAR) IN (SELECT user_id FROM wanted)
                GROUP BY 1, 2),
            ranked AS (
                SELECT user_id, item_id,
                       row_number() OVER (PARTITION BY user_id ORDER BY last_ts DESC NULLS LAST, item_id) AS rn
                FROM ui)
            SELECT r.user_id, list(coalesce(nullif(trim(i.title), ''), r.item_id) ORDER BY r.rn) AS titles
            FROM ranked r LEFT JOIN ({items_sql}) i ON i.item_id = r.item_id
            WHERE r.rn <= {int(k)}
            GROUP BY r.user_id""", params).fetchall()
        return {str(u): [str(t) for t in titles] for u, titles in rows}
    except Exception as exc:
        log.warning("recent items for the map could not be read: %s", exc)
        return {}
    finally:
        con.close()


# --- the report ----------------------------------------------------------------------------------------
class HtmlReport:
    """Builds the page's view model from a run folder and renders the template."""

    def __init__(self, run: RunFolder, options: dict[str, Any]) -> None:
        self.run = run
        self.options = options
        self.m = run.manifest if isinstance(run.manifest, dict) else {}
        self.segments = [s for s in _l(run.segments()) if isinstance(s, dict) and "id" in s]
        self.analyses = _d(_read_json(run.path / "analyses.json"))
        self.ids = [int(s["id"]) for s in self.segments]
        self.colours = segment_colours(self.ids or [0])
        self.names = {int(s["id"]): str(s.get("name") or ("Unassigned users" if int(s["id"]) < 0
                                                          else f"Segment {s['id']}")) for s in self.segments}
        self.map = map_command.map_info(run)  # how the map coordinates were made (method, input, settings)
        self.figures: dict[str, Any] = {}
        self.problems: list[str] = []
        self.titles: dict[str, list[str]] = {}

    def facts(self, analysis: str) -> dict[str, Any]:
        return _d(_d(self.analyses.get(analysis)).get("facts"))

    def safely(self, what: str, build: Callable[[], Any]) -> Any:
        try:
            return build()
        except Exception as exc:  # one odd section must not cost the whole report
            log.warning("report.html: %s left out: %s: %s", what, type(exc).__name__, exc)
            self.problems.append(f"{what}: {type(exc).__name__}: {exc}")
            return None

    # -- overview
    def overview(self) -> dict[str, Any]:
        counts, stats = _d(self.m.get("counts")), _d(self.m.get("stats"))
        prof_q = _d(self.facts("profile").get("quality"))
        qual = self.facts("quality")
        users = counts.get("users", stats.get("n_users"))
        noise = counts.get("noise_users")
        kpis = [("users", fnum(users), ""), ("events", fnum(counts.get("events", stats.get("n_events"))), ""),
                ("items", fnum(counts.get("items", stats.get("n_items"))), "")]
        first, last = stats.get("first_ts"), stats.get("last_ts")
        if first and last:
            kpis.append(("period", *self._period(first, last)))
        kpis.append(("segments", fnum(counts.get("segments", len([i for i in self.ids if i >= 0]))), ""))
        noise_share = qual.get("noise_share", prof_q.get("noise_share"))
        if not _isnum(noise_share) and _isnum(noise) and _isnum(users) and users:
            noise_share = noise / users
        if _isnum(noise_share):
            kpis.append(("noise", fpct(noise_share), f"{fnum(noise)} users unassigned" if _isnum(noise) else ""))
        quality = []
        for key, label in (("silhouette", "silhouette"), ("relative_validity", "DBCV (relative validity)")):
            v = qual.get(key, prof_q.get(key))
            if _isnum(v):
                quality.append((label, f"{float(v):.3f}"))
        if _isnum(qual.get("stability_mean_jaccard")):
            quality.append(("stability (mean Jaccard)", f"{float(qual['stability_mean_jaccard']):.2f}"))
        if _isnum(qual.get("seed_ari")):
            quality.append(("agreement across seeds (ARI)", f"{float(qual['seed_ari']):.2f}"))
        if qual.get("dissolving_segments"):
            quality.append(("dissolving segments", ", ".join(map(str, _l(qual["dissolving_segments"])))))
        cfg = _d(self.m.get("config"))
        plug = _d(self.m.get("plugins"))
        config = [("seed", str(self.m.get("seed", cfg.get("seed", "")))),
                  ("loader", str(self.m.get("loader", ""))), ("values", str(self.m.get("value_kind", "")))]
        embed = _d(cfg.get("embed"))
        if embed:
            config.append(("embedding", f"{embed.get('strategy', '')} \u00b7 {embed.get('model', '')}"))
        if cfg.get("reduce"):
            config.append(("reducer", str(_d(cfg["reduce"]).get("method", ""))))
        config.append(("map", str(self.map["label"])))
        cl = _d(cfg.get("cluster"))
        if cl:
            config.append(("clusterer", f"{cl.get('method', '')} (min cluster size {cl.get('min_cluster_size', '')})"))
        describer = _d(plug.get("describer")).get("name") or _d(cfg.get("describe")).get("describer")
        if describer:
            config.append(("describer", str(describer)))
        return {"kpis": kpis, "quality": quality, "config": config,
                "warnings": [str(w) for w in _l(self.m.get("warnings"))]}

    @staticmethod
    def _period(first: Any, last: Any) -> tuple[str, str]:
        """(a short label, the exact dates with the span) for the overview."""
        exact = f"{str(first)[:10]} to {str(last)[:10]}"
        try:
            a, b = _dt.datetime.fromisoformat(str(first)), _dt.datetime.fromisoformat(str(last))
        except ValueError:
            return exact, ""
        days = (b - a).days
        span = f"{days / 365.25:.1f} years" if days >= 730 else f"{days / 30.44:.0f} months" if days >= 61 else \
            f"{days} days"
        label = f"{a:%b %Y} \u2013 {b:%b %Y}" if days >= 28 else f"{a:%d %b} \u2013 {b:%d %b %Y}"
        return label, f"{exact} ({span})"

    def summary_rows(self) -> dict[str, Any]:
        has_value = any(_d(s.get("value")) for s in self.segments)
        has_life = any(_d(s.get("lifecycle")) for s in self.segments)
        has_growth = any(_d(s.get("growth")) for s in self.segments)
        max_share = max([float(s.get("share", 0) or 0) for s in self.segments] or [1]) or 1
        rows = []
        for s in self.segments:
            sid = int(s["id"])
            cats = [f"{c.get('category')} ({float(c['lift']):.1f}\u00d7)" for c in
                    _l(_d(s.get("profile")).get("top_categories"))[:3] if isinstance(c, dict) and _isnum(c.get("lift"))]
            v, lc, g = _d(s.get("value")), _d(s.get("lifecycle")), _d(s.get("growth"))
            rows.append({
                "id": sid, "name": self.names[sid], "colour": self.colours.get(sid, "#999"), "card": sid >= 0,
                "size": fnum(s.get("size")), "share": fpct(s.get("share")),
                "share_w": round(100 * float(s.get("share", 0) or 0) / max_share, 1),
                "cats": ", ".join(cats),
                "revenue": fpct(v.get("revenue_share")) if has_value else None,
                "clv": fnum(v.get("clv_per_user", v.get("clv_mean"))) if has_value else None,
                "risk": fpct(lc.get("at_risk_or_churned_share")) if has_life else None,
                "growth": (f"{float(g['active_growth']):+.1%}" if _isnum(g.get("active_growth")) else "") if has_growth
                else None,
                "grounding": fpct(s.get("grounding"), 0) if _isnum(s.get("grounding")) else "",
            })
        return {"rows": rows, "value": has_value, "life": has_life, "growth": has_growth}

    # -- map
    def map_figure(self) -> dict[str, Any] | None:
        users = self.run.users()
        if not len(users) or not {"x", "y", "segment"} <= set(users.columns):
            return None
        max_points = int(self.options.get("map_max_points", DEFAULT_MAX_POINTS) or DEFAULT_MAX_POINTS)
        seed = int(self.options.get("seed", self.m.get("seed", 0)) or 0)
        rows = stratified_sample(users["segment"].to_numpy(), max_points, seed)
        sample = users.iloc[rows]
        reps = [str(r.get("user_id")) for s in self.segments
                for r in _l(_d(s.get("profile")).get("representatives")) if isinstance(r, dict)]
        self.titles = recent_titles(self.run, sample["user_id"].astype(str).tolist() + reps)
        counts = users["segment"].value_counts().to_dict()
        n_pts = len(sample)
        size = 7 if n_pts < 1500 else 5 if n_pts < 6000 else 3.5 if n_pts < 15000 else 2.5
        traces, annotations = [], []
        order = sorted(set(sample["segment"].astype(int).tolist()), key=lambda s: (s >= 0, s))
        for sid in order:
            pts = sample[sample["segment"].to_numpy() == sid]
            colour = self.colours.get(sid, "#999999")
            name = self.names.get(sid, f"Segment {sid}")
            head = f"<b>{ptext(name, 60)}</b>" + (f" (#{sid})" if sid >= 0 else "")
            text = []
            for uid in pts["user_id"].astype(str):
                t = self.titles.get(uid, [])
                recent = "".join(f"<br>\u2022 {ptext(x, 70)}" for x in t)
                text.append(f"{head}<br>user {ptext(uid, 40)}" + (f"<br><i>recent items</i>{recent}" if t else ""))
            label = f"#{sid} {ptext(name, 40)}" if sid >= 0 else ptext(name, 40)
            traces.append({
                "type": "scatter", "mode": "markers", "name": f"{label} ({counts.get(sid, len(pts)):,})",
                "x": np.round(pts["x"].to_numpy(dtype=float), 4), "y": np.round(pts["y"].to_numpy(dtype=float), 4),
                "text": text, "hovertemplate": "%{text}<extra></extra>",
                "marker": {"color": colour, "size": size if sid >= 0 else size * 0.8,
                           "opacity": 0.8 if sid >= 0 else 0.45, "line": {"width": 0}},
            })
            if sid >= 0 and len(pts):
                annotations.append({"x": float(pts["x"].median()), "y": float(pts["y"].median()), "text": f"<b>{sid}</b>",
                                    "showarrow": False, "font": {"size": 11, "color": "#111827"}, "yshift": 15,
                                    "bgcolor": "rgba(255,255,255,0.85)", "bordercolor": colour, "borderwidth": 1.5,
                                    "borderpad": 2})
        self.figures["map"] = {
            "webgl": n_pts > WEBGL_ABOVE,
            "data": traces,
            "layout": {"height": 620, "margin": {"l": 10, "r": 10, "t": 34, "b": 10}, "hovermode": "closest",
                       "xaxis": {"visible": False}, "yaxis": {"visible": False},
                       "legend": {"itemsizing": "constant", "font": {"size": 12}, "bgcolor": "rgba(255,255,255,0)",
                                  "y": 1, "yanchor": "top", "title": {"text": "<b>segments</b> (users)"}},
                       "annotations": annotations, "paper_bgcolor": "#ffffff", "plot_bgcolor": "#ffffff",
                       "hoverlabel": {"align": "left", "font": {"size": 12}}},
        }
        return {"points": n_pts, "users": len(users), "sampled": n_pts < len(users), "max_points": max_points,
                "hover_items": bool(self.titles), "method": map_command.describe_map(self.map),
                "details": map_command.map_details(self.map)}

    # -- cards
    def card(self, s: dict[str, Any]) -> dict[str, Any]:
        sid = int(s["id"])
        p = _d(s.get("profile"))
        c: dict[str, Any] = {"id": sid, "name": self.names[sid], "colour": self.colours.get(sid, "#999"),
                             "size": fnum(s.get("size")), "share": fpct(s.get("share")),
                             "description": str(s.get("description") or ""),
                             "describer": str(s.get("describer") or "")}
        part = lambda what, f: self.safely(f"segment {sid} {what}", f)
        c["grounding"] = part("grounding", lambda: self._grounding(s))
        c["traits"] = [str(t) for t in _l(s.get("traits")) if t]
        c["actions"] = [str(a) for a in _l(s.get("actions")) if a]
        c["badges"] = part("quality", lambda: self._badges(s)) or []
        c["categories"] = part("categories", lambda: self._bars(_l(p.get("top_categories")), "category"))
        c["items"] = part("items", lambda: self._bars(_l(p.get("top_items")), "title"))
        c["behaviour"] = part("behaviour", lambda: self._behaviour(p))
        c["value"] = part("value", lambda: self._value(_d(s.get("value"))))
        c["lifecycle"] = part("lifecycle", lambda: self._lifecycle(_d(s.get("lifecycle"))))
        c["growth"] = part("growth", lambda: self._growth(sid, _d(s.get("growth"))))
        c["satisfaction"] = part("satisfaction", lambda: self._satisfaction(_d(s.get("satisfaction"))))
        c["prediction"] = part("prediction", lambda: self._prediction(_d(s.get("prediction"))))
        c["recommendations"] = part("recommendations", lambda: self._recommendations(_d(s.get("recommendations"))))
        c["preferences"] = part("preferences", lambda: self._preferences(_d(s.get("preferences"))))
        c["differences"] = part("differences", lambda: self._differences(_d(s.get("differences"))))
        c["nearest"] = part("similarity", lambda: self._nearest(_d(s.get("similarity"))))
        c["representatives"] = part("representatives", lambda: self._representatives(_l(p.get("representatives"))))
        c["stats"] = [(t, rows) for t, rows in (("Behaviour", c["behaviour"]), ("Value and CLV", c["value"]),
                                                 ("Next period", c["prediction"])) if rows]
        return c

    def _grounding(self, s: dict[str, Any]) -> dict[str, Any] | None:
        score = s.get("grounding")
        dropped = [{"sentence": str(_d(u).get("sentence", u if isinstance(u, str) else "")),
                    "reason": str(_d(u).get("reason", "")), "field": str(_d(u).get("field", "description"))}
                   for u in _l(s.get("ungrounded"))]
        if not _isnum(score) and not dropped:
            return None
        level = "good" if _isnum(score) and score >= 0.9 else "warn" if _isnum(score) and score >= 0.6 else "bad"
        return {"score": fpct(score, 0) if _isnum(score) else "", "level": level, "dropped": dropped}

    def _badges(self, s: dict[str, Any]) -> list[dict[str, str]]:
        q = _d(s.get("quality"))
        out = []
        if q.get("stability"):
            lvl = {"stable": "good", "patterns": "warn"}.get(str(q["stability"]), "bad")
            j = f" (Jaccard {float(q['stability_jaccard']):.2f})" if _isnum(q.get("stability_jaccard")) else ""
            out.append({"text": f"{q['stability']}{j}", "level": lvl, "title": "stability under resampling"})
        if _isnum(q.get("silhouette")):
            out.append({"text": f"silhouette {float(q['silhouette']):.2f}", "level": "plain", "title": "silhouette"})
        if _isnum(_d(s.get("profile")).get("membership_mean")):
            out.append({"text": f"membership {float(s['profile']['membership_mean']):.2f}", "level": "plain",
                        "title": "mean clusterer membership probability"})
        return out

    @staticmethod
    def _bars(rows: list[Any], key: str, top: int = 8) -> list[dict[str, Any]] | None:
        rows = [r for r in rows if isinstance(r, dict) and _isnum(r.get("lift"))][:top]
        if not rows:
            return None
        hi = max(float(r["lift"]) for r in rows) or 1.0
        out = []
        for r in rows:
            note = []
            if _isnum(r.get("share")) and _isnum(r.get("population_share")):
                note.append(f"{fpct(r['share'])} of the segment's events vs {fpct(r['population_share'])} overall")
            if _isnum(r.get("users")):
                note.append(f"{fnum(r['users'])} users")
            out.append({"label": str(r.get(key) or r.get("item_id") or r.get("category") or "?"),
                        "lift": f"{float(r['lift']):.2f}\u00d7", "w": round(100 * float(r["lift"]) / hi, 1),
                        "one": round(100 / hi, 1) if hi > 1 else None, "note": "; ".join(note)})
        return out

    def _behaviour(self, p: dict[str, Any]) -> list[tuple[str, str, str]] | None:
        rfm, act = _d(p.get("rfm")), _d(p.get("activity"))
        pop = _d(self.facts("profile").get("population"))
        prfm, pact = _d(pop.get("rfm")), _d(pop.get("activity"))
        spec = [("events_median", "events per user (median)", rfm, prfm), ("active_days_mean", "active days (mean)", rfm, prfm),
                ("frequency_per_month_median", "events per month (median)", rfm, prfm),
                ("recency_days_median", "days since last event (median)", rfm, prfm),
                ("tenure_days_median", "tenure in days (median)", rfm, prfm),
                ("monetary_mean", "value per user (mean)", rfm, prfm), ("rating_mean", "mean rating", rfm, prfm),
                ("peak_hour", "peak hour", act, pact), ("peak_weekday", "peak weekday", act, pact),
                ("weekend_share", "weekend share", act, pact), ("night_share", "night share", act, pact)]
        out = []
        for key, label, src, ref in spec:
            if key not in src or src[key] is None:
                continue
            f = fpct if key.endswith("_share") else fnum
            out.append((label, f(src[key]), f(ref.get(key)) if ref.get(key) is not None else ""))
        return out or None

    @staticmethod
    def _value(v: dict[str, Any]) -> list[tuple[str, str, str]] | None:
        if not v:
            return None
        out = []
        if _isnum(v.get("revenue_total")):
            out.append(("revenue", fnum(v["revenue_total"]),
                        f"{fpct(v.get('revenue_share'))} of all" if _isnum(v.get("revenue_share")) else ""))
        if _isnum(v.get("revenue_per_user_mean")):
            out.append(("revenue per user (mean)", fnum(v["revenue_per_user_mean"]),
                        f"index {float(v['value_index']):.2f}" if _isnum(v.get("value_index")) else ""))
        if _isnum(v.get("buyers_share")):
            out.append(("buyers", fpct(v["buyers_share"]), ""))
        months = v.get("clv_months")
        horizon = f" ({months} months)" if months else ""
        if _isnum(v.get("clv_mean")):
            out.append((f"CLV per customer{horizon}", fnum(v["clv_mean"]),
                        f"median {fnum(v['clv_median'])}" if _isnum(v.get("clv_median")) else ""))
        if _isnum(v.get("clv_per_user")):
            out.append(("CLV per user", fnum(v["clv_per_user"]),
                        f"{fpct(v.get('clv_share'))} of all CLV" if _isnum(v.get("clv_share")) else ""))
        if _isnum(v.get("p_alive_mean")):
            out.append(("P(alive) (mean)", f"{float(v['p_alive_mean']):.2f}", ""))
        if _isnum(v.get("expected_purchases_mean")):
            out.append(("expected purchases (mean)", fnum(v["expected_purchases_mean"]), ""))
        return out or None

    @staticmethod
    def _lifecycle(lc: dict[str, Any]) -> dict[str, Any] | None:
        shares, counts, vs = _d(lc.get("stage_shares")), _d(lc.get("stage_counts")), _d(lc.get("vs_population"))
        parts = []
        for key, label, colour in LIFECYCLE_STAGES:
            if _isnum(shares.get(key)) and shares[key] > 0:
                title = f"{label}: {fpct(shares[key])}"
                if _isnum(counts.get(key)):
                    title += f" ({fnum(counts[key])} users)"
                if _isnum(vs.get(key)):
                    title += f", {float(vs[key]):.2f}\u00d7 the population's share"
                parts.append({"label": label, "share": fpct(shares[key]), "w": round(100 * float(shares[key]), 2),
                              "colour": colour, "title": title})
        if not parts:
            return None
        extra = []
        if _isnum(lc.get("at_risk_or_churned_share")):
            extra.append(f"at risk or churned: {fpct(lc['at_risk_or_churned_share'])}")
        if _isnum(lc.get("typical_gap_days")):
            extra.append(f"typical gap between visits: {fnum(lc['typical_gap_days'])} days")
        return {"parts": parts, "note": "; ".join(extra)}

    def _growth(self, sid: int, g: dict[str, Any]) -> dict[str, Any] | None:
        if not g:
            return None
        stats = []
        period = str(g.get("period") or "period")
        if _isnum(g.get("active_users_last_period")):
            stats.append((f"active users, last {period}", fnum(g["active_users_last_period"])))
        if _isnum(g.get("new_members_last_period")):
            stats.append((f"new members, last {period}", fnum(g["new_members_last_period"])))
        if _isnum(g.get("active_growth")):
            stats.append(("growth of active users", f"{float(g['active_growth']):+.1%}"))
        if _isnum(g.get("trend_per_period")):
            stats.append((f"trend per {period}", f"{float(g['trend_per_period']):+.1%}"))
        fc = _d(g.get("active_users_forecast_next"))
        if _isnum(fc.get("mean")):
            band = f" [{fnum(fc.get('lower'))}, {fnum(fc.get('upper'))}]" if _isnum(fc.get("lower")) else ""
            stats.append((f"forecast, next {period}", f"{fnum(fc['mean'])}{band}"))
        fig = self._growth_figure(sid, period)
        if not stats and not fig:
            return None
        return {"stats": stats, "fig": fig}

    def _growth_figure(self, sid: int, period: str) -> str | None:
        if not hasattr(self, "_growth_tables"):
            self._growth_tables = (_read_parquet(self.run.path / "growth_series.parquet"),
                                   _read_parquet(self.run.path / "growth_forecast.parquet"))
        series, forecast = self._growth_tables
        if series is None or not {"segment", "period_start", "active_users"} <= set(series.columns):
            return None
        ser = series[series["segment"] == sid].sort_values("period_start")
        if ser.empty:
            return None
        colour = self.colours.get(sid, "#4e79a7")
        x = [str(v)[:10] for v in ser["period_start"]]
        y = ser["active_users"].astype(float).tolist()
        traces = [{"type": "scatter", "mode": "lines+markers", "name": "active users", "x": x, "y": y,
                   "line": {"color": colour, "width": 2}, "marker": {"size": 4},
                   "hovertemplate": "%{x}: %{y:,.0f} active<extra></extra>"}]
        if forecast is not None and {"segment", "series", "period_start", "mean", "lower", "upper"} <= set(forecast.columns):
            fc = forecast[(forecast["segment"] == sid) & (forecast["series"] == "active_users")].sort_values("period_start")
            if not fc.empty:
                fx = [x[-1]] + [str(v)[:10] for v in fc["period_start"]]
                up = [y[-1]] + fc["upper"].astype(float).tolist()
                lo = [y[-1]] + fc["lower"].astype(float).tolist()
                mean = [y[-1]] + fc["mean"].astype(float).tolist()
                traces += [
                    {"type": "scatter", "mode": "lines", "x": fx, "y": up, "line": {"width": 0}, "showlegend": False,
                     "hoverinfo": "skip"},
                    {"type": "scatter", "mode": "lines", "x": fx, "y": lo, "line": {"width": 0}, "fill": "tonexty",
                     "fillcolor": _rgba(colour, 0.18), "name": "forecast interval", "hoverinfo": "skip"},
                    {"type": "scatter", "mode": "lines", "x": fx, "y": mean, "name": "forecast",
                     "line": {"color": colour, "width": 2, "dash": "dot"},
                     "hovertemplate": "%{x}: %{y:,.0f} forecast<extra></extra>"},
                ]
        key = f"growth-{sid}"
        self.figures[key] = {"data": traces, "layout": {
            "height": 230, "margin": {"l": 44, "r": 10, "t": 8, "b": 30}, "showlegend": True,
            "legend": {"orientation": "h", "y": -0.22, "font": {"size": 11}},
            "xaxis": {"type": "date", "gridcolor": "#eef0f3"},
            "yaxis": {"title": {"text": f"active users per {ptext(period)}", "font": {"size": 11}},
                      "gridcolor": "#eef0f3", "rangemode": "tozero"},
            "paper_bgcolor": "#ffffff", "plot_bgcolor": "#ffffff"}}
        return key

    @staticmethod
    def _satisfaction(sat: dict[str, Any]) -> dict[str, Any] | None:
        r = _d(sat.get("ratings"))
        if not r:
            return None
        stats = []
        if _isnum(r.get("mean")):
            ci = _l(r.get("mean_ci"))
            stats.append(("mean rating", f"{float(r['mean']):.2f}" + (
                f" [{float(ci[0]):.2f}, {float(ci[1]):.2f}]" if len(ci) == 2 and all(map(_isnum, ci)) else "")))
        if _isnum(r.get("mean_vs_population")):
            stats.append(("vs population", f"{float(r['mean_vs_population']):+.2f}"))
        if _isnum(r.get("low_share")):
            stats.append(("low ratings", fpct(r["low_share"])))
        if _isnum(r.get("ratings")):
            stats.append(("ratings", f"{fnum(r['ratings'])} by {fnum(r.get('raters'))} raters" if _isnum(r.get("raters"))
                          else fnum(r["ratings"])))
        dist = [(str(k), float(v)) for k, v in _d(r.get("distribution")).items() if _isnum(v)]
        hi = max([v for _, v in dist] or [1]) or 1
        return {"stats": stats, "dist": [{"level": k, "share": fpct(v, 0), "w": round(100 * v / hi, 1)} for k, v in dist]}

    @staticmethod
    def _prediction(pr: dict[str, Any]) -> list[tuple[str, str, str]] | None:
        out = []
        if _isnum(pr.get("p_active_next_mean")):
            out.append(("P(active next period)", fpct(pr["p_active_next_mean"]), ""))
        if _isnum(pr.get("predicted_churn_rate")):
            out.append(("predicted churn", fpct(pr["predicted_churn_rate"]), ""))
        if _isnum(pr.get("expected_spend_next_mean")):
            out.append(("expected spend next period", fnum(pr["expected_spend_next_mean"]), "per user"))
        return out or None

    @staticmethod
    def _recommendations(rec: dict[str, Any]) -> list[dict[str, str]] | None:
        out = []
        for r in _l(rec.get("top_items"))[:6]:
            if not isinstance(r, dict):
                continue
            note = []
            if _isnum(r.get("lift")):
                note.append(f"{float(r['lift']):.1f}\u00d7 lift")
            if _isnum(r.get("users")):
                note.append(f"{fnum(r['users'])} users")
            out.append({"title": str(r.get("title") or r.get("item_id") or "?"), "note": ", ".join(note)})
        return out or None

    @staticmethod
    def _preferences(pref: dict[str, Any]) -> dict[str, Any] | None:
        under = [f"{c.get('category')} ({float(c['lift']):.2f}\u00d7)" for c in _l(pref.get("categories_under"))[:5]
                 if isinstance(c, dict) and _isnum(c.get("lift"))]
        bands = [{"label": str(b.get("band")), "lift": f"{float(b['lift']):.2f}\u00d7", "share": fpct(b.get("share"))}
                 for b in _l(pref.get("price_bands")) if isinstance(b, dict) and _isnum(b.get("lift"))]
        if not under and not bands:
            return None
        return {"under": under, "bands": bands}

    @staticmethod
    def _differences(diff: dict[str, Any]) -> list[dict[str, str]] | None:
        out = []
        for r in _l(diff.get("features_vs_rest"))[:4]:
            if not isinstance(r, dict):
                continue
            eff = r.get("cohens_d")
            out.append({"what": _label(r.get("feature", "?")), "seg": fnum(r.get("segment_mean")),
                        "rest": fnum(r.get("rest_mean")), "effect": f"d = {float(eff):+.2f}" if _isnum(eff) else "",
                        "dir": str(r.get("direction", ""))})
        for r in _l(diff.get("categories_vs_rest"))[:3]:
            if not isinstance(r, dict):
                continue
            eff = r.get("cohens_h")
            out.append({"what": f"users with {r.get('category', '?')}", "seg": fpct(r.get("segment_users_share"), 0),
                        "rest": fpct(r.get("rest_users_share"), 0),
                        "effect": f"h = {float(eff):+.2f}" if _isnum(eff) else "", "dir": str(r.get("direction", ""))})
        return out or None

    def _nearest(self, sim: dict[str, Any]) -> list[dict[str, Any]] | None:
        out = []
        for r in _l(sim.get("nearest"))[:3]:
            if not isinstance(r, dict) or r.get("segment") is None:
                continue
            other = int(r["segment"])
            note = []
            if _isnum(r.get("centroid_cosine")):
                note.append(f"cosine {float(r['centroid_cosine']):.2f}")
            if _isnum(r.get("item_jaccard")):
                note.append(f"item overlap {float(r['item_jaccard']):.2f}")
            out.append({"id": other, "name": self.names.get(other, f"Segment {other}"),
                        "colour": self.colours.get(other, "#999"), "note": ", ".join(note)})
        return out or None

    def _representatives(self, reps: list[Any]) -> list[dict[str, Any]] | None:
        out = []
        for r in reps[:5]:
            if not isinstance(r, dict) or r.get("user_id") is None:
                continue
            uid = str(r["user_id"])
            out.append({"user_id": uid, "similarity": f"{float(r['similarity']):.2f}" if _isnum(r.get("similarity")) else "",
                        "recent": self.titles.get(uid, [])})
        return out or None

    # -- run-level sections
    def similarity(self) -> dict[str, Any] | None:
        real = [i for i in self.ids if i >= 0]
        if len(real) < 2:
            return None
        table = _read_parquet(self.run.path / "segment_similarity.parquet")
        z = jac = None
        source = ""
        if table is not None and {"segment_a", "segment_b", "centroid_cosine"} <= set(table.columns):
            pos = {sid: i for i, sid in enumerate(real)}
            z = np.full((len(real), len(real)), np.nan)
            jac = np.full_like(z, np.nan)
            for row in table.itertuples(index=False):
                a, b = int(row.segment_a), int(row.segment_b)
                if a in pos and b in pos:
                    z[pos[a], pos[b]] = float(row.centroid_cosine)
                    if hasattr(row, "item_jaccard"):
                        jac[pos[a], pos[b]] = float(row.item_jaccard)
            source = "the similarity analysis (cosine of the segments' mean user vectors; item overlap in the hover)"
        else:
            path = self.run.path / "segment_centroids.npy"
            if not path.exists():
                return None
            c = np.load(path, allow_pickle=False).astype(float)
            if c.ndim != 2 or c.shape[0] != len(real):
                return None
            norms = np.linalg.norm(c, axis=1, keepdims=True)
            c = c / np.where(norms > 0, norms, 1.0)
            z = c @ c.T
            source = "cosine of the segments' centroids (segment_centroids.npy; the similarity analysis did not run)"
        z = np.array(z, dtype=float)
        off = z[~np.eye(len(real), dtype=bool)]
        off = off[np.isfinite(off)]
        top = max(0.2, math.ceil(float(np.abs(off).max()) * 10) / 10) if off.size else 1.0
        labels = [f"#{sid} {ptext(self.names[sid], 26)}" for sid in real]
        np.fill_diagonal(z, np.nan)
        hover = [[f"{labels[i]}<br>{labels[j]}<br>cosine {z[i, j]:.2f}" +
                  (f"<br>item overlap {jac[i, j]:.2f}" if jac is not None and np.isfinite(jac[i, j]) else "")
                  for j in range(len(real))] for i in range(len(real))]
        n = len(real)
        self.figures["similarity"] = {"data": [{
            "type": "heatmap", "z": np.round(z, 3), "x": labels, "y": labels, "customdata": hover,
            "hovertemplate": "%{customdata}<extra></extra>", "hoverongaps": False,
            "colorscale": [[0, "#2c6db5"], [0.5, "#f7f7f7"], [1, "#c43c2f"]],
            "zmid": 0, "zmin": -top, "zmax": top, "texttemplate": "%{z:.2f}" if n <= 16 else "",
            "textfont": {"size": 10}, "colorbar": {"title": {"text": "cosine"}, "thickness": 12}}],
            "layout": {"height": max(380, min(920, 170 + 34 * n)), "margin": {"l": 200, "r": 20, "t": 34, "b": 160},
                       "xaxis": {"tickangle": -40, "automargin": True, "showgrid": False},
                       "yaxis": {"autorange": "reversed", "automargin": True, "showgrid": False},
                       "paper_bgcolor": "#ffffff", "plot_bgcolor": "#ffffff"}}
        pairs = []
        for r in _l(self.facts("similarity").get("most_similar_pairs"))[:5]:
            segs = _l(_d(r).get("segments"))
            if len(segs) == 2:
                a, b = int(segs[0]), int(segs[1])
                pairs.append({"a": a, "b": b, "a_name": self.names.get(a, ""), "b_name": self.names.get(b, ""),
                              "cos": f"{float(r['centroid_cosine']):.2f}" if _isnum(r.get("centroid_cosine")) else "",
                              "jac": f"{float(r['item_jaccard']):.2f}" if _isnum(r.get("item_jaccard")) else ""})
        return {"source": source, "pairs": pairs}

    def differences(self) -> dict[str, Any] | None:
        facts = self.facts("differences")
        rows = []
        for r in _l(facts.get("across_segments"))[:12]:
            if not isinstance(r, dict):
                continue
            if r.get("category") is not None:
                what = f"users with {r['category']}"
            else:
                what = _label(r.get("feature", "?"))
            eff_name, eff = ("\u03b5\u00b2", r.get("epsilon_sq")) if _isnum(r.get("epsilon_sq")) else \
                ("V", r.get("cramers_v"))
            rows.append({"what": what, "test": str(r.get("test", "")),
                         "effect": f"{eff_name} {float(eff):.2f}" if _isnum(eff) else "",
                         "w": round(100 * min(1.0, float(eff)), 1) if _isnum(eff) else 0,
                         "p": f"{float(r['p_adj']):.1e}" if _isnum(r.get("p_adj")) else ""})
        per = []
        for s in self.segments:
            d = _d(s.get("differences"))
            best = [x for x in _l(d.get("features_vs_rest"))[:2] + _l(d.get("categories_vs_rest"))[:2] if isinstance(x, dict)]
            if not best:
                continue
            items = []
            for x in best:
                if "category" in x:
                    items.append(f"users with {x['category']}: {fpct(x.get('segment_users_share'), 0)} vs "
                                 f"{fpct(x.get('rest_users_share'), 0)}")
                else:
                    items.append(f"{_label(x.get('feature', '?'))}: {fnum(x.get('segment_mean'))} vs "
                                 f"{fnum(x.get('rest_mean'))}")
            per.append({"id": int(s["id"]), "name": self.names[int(s["id"])], "colour": self.colours.get(int(s["id"]), "#999"),
                        "items": items, "n": d.get("significant_tests")})
        if not rows and not per:
            return None
        note = []
        if facts.get("comparison"):
            note.append(str(facts["comparison"]))
        if facts.get("correction"):
            note.append(f"p adjusted by {facts['correction']}")
        if _isnum(facts.get("tests")):
            note.append(f"{fnum(facts['tests'])} tests")
        return {"rows": rows, "per": per, "note": "; ".join(note)}

    def extra_sections(self) -> list[dict[str, Any]]:
        out = []
        regs = plugins.registrations("reporter")
        for name in sorted(n for n in regs if n.startswith(SECTION_PREFIX)):
            try:
                obj = plugins.create("reporter", name, self.options)
                res = obj.section(self.run)
                if not res:
                    continue
                title, body = res
                from markupsafe import Markup

                out.append({"title": str(title), "html": Markup(str(body)), "name": name})
            except Exception as exc:
                log.warning("report.html: section %s failed: %s", name, exc)
                out.append({"title": name[len(SECTION_PREFIX):], "html": None, "name": name,
                            "error": f"this section could not be drawn: {type(exc).__name__}: {exc}"})
        return out

    def appendix(self) -> dict[str, Any]:
        m = self.m
        plug = []
        for stage, rec in _d(m.get("plugins")).items():
            rec = _d(rec)
            plug.append({"stage": str(stage), "name": str(rec.get("name", "")), "plugin": str(rec.get("plugin", "")),
                         "version": str(rec.get("version", ""))})
        inputs = [{"role": str(_d(i).get("role", "")), "path": str(_d(i).get("path", "")),
                   "format": str(_d(i).get("format", "")), "bytes": fnum(_d(i).get("bytes")),
                   "sha256": str(_d(i).get("sha256", ""))} for i in _l(m.get("inputs"))]
        secs = [(str(k), float(v)) for k, v in _d(m.get("seconds")).items() if _isnum(v)]
        hi = max([v for _, v in secs] or [1]) or 1
        total = sum(v for _, v in secs)
        try:
            from seglens.config import to_toml

            config = to_toml(_d(m.get("config")))
        except Exception:
            config = json.dumps(m.get("config", {}), indent=2, ensure_ascii=False, default=str)
        analyses = []
        for name, a in self.analyses.items():
            a = _d(a)
            analyses.append({"name": str(name), "skipped": str(a["skipped"]) if a.get("skipped") else "",
                             "notes": str(a.get("markdown") or "")})
        run = [("seglens", str(m.get("seglens_version", ""))), ("python", str(m.get("python", ""))),
               ("created", str(m.get("created", ""))), ("seed", str(m.get("seed", "")))]
        if m.get("reused_stages"):
            run.append(("reused stages", ", ".join(map(str, _l(m["reused_stages"])))))
        where = map_command.describe_map(self.map)
        if map_command.map_details(self.map):
            where += f"; {map_command.map_details(self.map)}"
        if _isnum(self.map.get("seed")):
            where += f", seed {int(self.map['seed'])}"
        if _isnum(self.map.get("seconds")):
            where += f", {float(self.map['seconds']):,.1f} s"
        run.append(("map", where))
        return {"plugins": plug, "inputs": inputs, "config": config, "analyses": analyses, "run": run,
                "seconds": [{"stage": k, "s": f"{v:,.2f}", "w": round(100 * v / hi, 1)} for k, v in secs],
                "total": f"{total:,.1f}"}

    # -- everything
    def render(self) -> str:
        import jinja2
        from markupsafe import Markup

        t0 = time.perf_counter()
        overview = self.safely("overview", self.overview) or {"kpis": [], "quality": [], "config": [], "warnings": []}
        map_info = self.safely("map", self.map_figure)
        summary = self.safely("segment table", self.summary_rows)
        cards = [c for c in (self.safely(f"segment {s['id']}", lambda s=s: self.card(s))
                             for s in self.segments if int(s["id"]) >= 0) if c]
        similarity = self.safely("similarity", self.similarity)
        differences = self.safely("differences", self.differences)
        extra = self.safely("plugin sections", self.extra_sections) or []
        appendix = self.safely("appendix", self.appendix)
        env = jinja2.Environment(autoescape=True, undefined=jinja2.ChainableUndefined, trim_blocks=True,
                                 lstrip_blocks=True)
        template = env.from_string(page_asset("report.html.j2"))
        page = template.render(
            run_name=run_name(self.run.path), seed=str(self.m.get("seed", "")), created=str(self.m.get("created", "")),
            version=str(self.m.get("seglens_version", "")),
            overview=overview, map=map_info, summary=summary, cards=cards, similarity=similarity,
            differences=differences, extra=extra, appendix=appendix, problems=self.problems,
            plotlyjs=Markup(_plotly_js()), figures=Markup(safe_json(self.figures)),
            css=Markup(page_asset("report.css")), js=Markup(page_asset("report.js")),
        )
        log.debug("report.html rendered in %.2fs", time.perf_counter() - t0)
        return page


TEMPLATES = "report_templates"


@functools.cache
def page_asset(name: str) -> str:
    """A file of the page (template, CSS, JS) from the package data, read once per process.

    Through importlib.resources, so it is found in an editable checkout and in a plain install alike;
    a missing file means a broken install, which the message says."""
    try:
        return (resources.files("seglens.default_plugins") / TEMPLATES / name).read_text(encoding="utf-8")
    except (FileNotFoundError, OSError) as exc:
        raise RuntimeError(f"seglens is installed without its report template {TEMPLATES}/{name}; "
                           "reinstall seglens") from exc


_PLOTLY_JS: str | None = None


def _plotly_js() -> str:
    global _PLOTLY_JS
    if _PLOTLY_JS is None:
        try:
            from plotly.offline import get_plotlyjs
        except ImportError as exc:
            from seglens.errors import SeglensError

            raise SeglensError("the HTML report needs the plotly package",
                               hint="pip install plotly (or use --format md)") from exc
        js = get_plotlyjs()
        # never the case in a plotly release; if it were, it would end the <script> element early
        _PLOTLY_JS = js.replace("</script", "<\\/script").replace("<!--", "<\\!--")
    return _PLOTLY_JS


class HtmlReporter:
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options

    def write(self, run: RunFolder, path: Path) -> Path:
        return atomic.write_text(Path(path), HtmlReport(run, self.options).render())


@hookimpl
def register_reporters(register):
    register("html", HtmlReporter, description="report.html: one self-contained interactive page (works offline)")
