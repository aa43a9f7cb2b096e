"""`report.html`: one self-contained, offline page per run; the `json` reporter; `seglens report`.

The page holds an overview (users, events, period, segments, noise share, quality figures, config
and seed), an interactive 2-D map of users coloured by segment (hover: the segment, the user and the
user's three most recent titles), a card per segment, the similarity heatmap, the most significant
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

`json` writes `report.json`: the manifest summary (counts, period, seed, config, plugins, inputs,
warnings, seconds), each analysis's run-level facts, and every segment as in segments.json.

`seglens report RUN --format html|md|json [-o FILE]` writes one report, by default into the run folder
(atomically, like every file seglens writes).
"""
from __future__ import annotations

import datetime as _dt
import html as _html
import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import numpy as np

from seglens import atomic, hookimpl, plugins
from seglens.default_plugins.map_command import DEFAULT_MAX_POINTS, segment_colours, stratified_sample
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


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_clean(v) for v in obj.tolist()]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(float(obj)) else None
    if obj is None or isinstance(obj, str):
        return obj
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    return str(obj)


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


def _d(x: Any) -> dict[str, Any]:
    return x if isinstance(x, dict) else {}


def _l(x: Any) -> list[Any]:
    return x if isinstance(x, list) else []


def _label(name: str) -> str:
    return str(name).replace("_", " ")


def _rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


# --- data from the run folder ------------------------------------------------------------------------
def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except (OSError, ValueError):
        log.warning("could not read %s", path)
        return {}


def _read_parquet(path: Path):
    if not path.exists():
        return None
    try:
        import pandas as pd

        return pd.read_parquet(path)
    except Exception as exc:  # a table another plugin writes differently must not sink the report
        log.warning("could not read %s: %s", path, exc)
        return None


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
                "hover_items": bool(self.titles)}

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
        name = self.run.path.name
        name = name.removesuffix(".partial")
        env = jinja2.Environment(autoescape=True, undefined=jinja2.ChainableUndefined, trim_blocks=True,
                                 lstrip_blocks=True)
        template = env.from_string(TEMPLATE)
        page = template.render(
            run_name=name, seed=str(self.m.get("seed", "")), created=str(self.m.get("created", "")), version=str(self.m.get("seglens_version", "")),
            overview=overview, map=map_info, summary=summary, cards=cards, similarity=similarity,
            differences=differences, extra=extra, appendix=appendix, problems=self.problems,
            plotlyjs=Markup(_plotly_js()), figures=Markup(safe_json(self.figures)), css=Markup(CSS), js=Markup(JS),
        )
        log.debug("report.html rendered in %.2fs", time.perf_counter() - t0)
        return page


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


def report_json(run: RunFolder) -> dict[str, Any]:
    m = run.manifest
    analyses = _d(_read_json(run.path / "analyses.json"))
    stats = _d(m.get("stats"))
    return _clean({
        "format": "seglens-report/1",
        "run": run.path.name.removesuffix(".partial"),
        "summary": {
            "seglens_version": m.get("seglens_version"), "created": m.get("created"), "seed": m.get("seed"),
            "loader": m.get("loader"), "value_kind": m.get("value_kind"), "has_catalog": m.get("has_catalog"),
            "counts": m.get("counts", {}), "period": {"first": stats.get("first_ts"), "last": stats.get("last_ts")},
            "quality": {**_d(_d(_d(analyses.get("profile")).get("facts")).get("quality")),
                        **{k: v for k, v in _d(_d(analyses.get("quality")).get("facts")).items()
                           if not isinstance(v, (dict, list))}},
            "config": m.get("config", {}), "plugins": m.get("plugins", {}), "inputs": m.get("inputs", []),
            "warnings": m.get("warnings", []), "seconds": m.get("seconds", {}),
        },
        "analyses": {name: ({"skipped": a.get("skipped")} if _d(a).get("skipped") else _d(a).get("facts", {}))
                     for name, a in analyses.items()},
        "segments": run.segments(),
    })


class JsonReporter:
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options

    def write(self, run: RunFolder, path: Path) -> Path:
        return atomic.write_json(Path(path), report_json(run))


@hookimpl
def register_reporters(register):
    register("html", HtmlReporter, description="report.html: one self-contained interactive page (works offline)")
    register("json", JsonReporter, description="report.json: the segments and the manifest summary")


# --- the command -------------------------------------------------------------------------------------
@click.command(name="report")
@click.argument("run_dir", metavar="RUN", type=click.Path(path_type=Path))
@click.option("--format", "fmt", default="html", show_default=True, help="html, md, json, or another reporter.")
@click.option("-o", "--out", type=click.Path(path_type=Path), default=None,
              help="The file to write (default RUN/report.<ext>).")
@click.option("--max-points", type=int, default=None,
              help=f"Largest number of users on the map (default {DEFAULT_MAX_POINTS:,}; larger runs are sampled).")
def report_cmd(run_dir: Path, fmt: str, out: Path | None, max_points: int | None) -> None:
    """Write a report of a finished run (HTML by default) without recomputing anything."""
    from rich.markup import escape
    from seglens import progress
    from seglens.errors import SeglensError
    from seglens.reporting import EXTENSIONS

    run = RunFolder(run_dir)
    fmt = {"markdown": "md"}.get(fmt, fmt)
    names = sorted(n for n in plugins.registrations("reporter") if not n.startswith(SECTION_PREFIX))
    if fmt not in names:
        raise SeglensError(f"no report format '{fmt}'", hint=f"available: {', '.join(names)}")
    cfg = _d(run.manifest.get("config"))
    options = {**_d(cfg.get("report")), "seed": cfg.get("seed", run.manifest.get("seed", 0))}
    if max_points is not None:
        if max_points < 1:
            raise SeglensError("--max-points must be at least 1")
        options["map_max_points"] = max_points
    target = Path(out) if out is not None else run.path / f"report.{EXTENSIONS.get(fmt, fmt)}"
    if target.exists() and target.is_dir():
        raise SeglensError("the output path is a folder", file=target, hint="give a file name with -o")
    t0 = time.perf_counter()
    plugins.create("reporter", fmt, options).write(run, target)
    progress.info(escape(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB, {time.perf_counter() - t0:.1f}s)"))


@hookimpl
def register_commands(cli):
    cli.add_command(report_cmd)


# --- page -----------------------------------------------------------------------------------------------
CSS = r"""
:root{--bg:#f4f6f9;--card:#fff;--ink:#1c2330;--muted:#5f6b7a;--line:#e3e7ed;--soft:#f7f8fa;--accent:#2f5fd0;
--good:#1a7f4b;--good-bg:#e6f5ec;--warn:#9a6200;--warn-bg:#fdf3dc;--bad:#b42318;--bad-bg:#fdeceb;
--font:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans","Liberation Sans",sans-serif;
--mono:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace}
*{box-sizing:border-box}
html{scroll-behavior:smooth}
body{margin:0;background:var(--bg);color:var(--ink);font:15px/1.5 var(--font);-webkit-font-smoothing:antialiased}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
.top{background:#17213a;color:#fff;padding:26px 0 0}
.wrap{max-width:1240px;margin:0 auto;padding:0 28px}
.brand{font-size:12px;letter-spacing:.14em;text-transform:uppercase;color:#9fb3da;font-weight:600}
.top h1{margin:4px 0 2px;font-size:28px;font-weight:650;letter-spacing:-.01em}
.top .sub{color:#c3cee3;margin:0 0 18px;font-size:14px}
.top nav{display:flex;flex-wrap:wrap;gap:2px}
.top nav a{color:#dbe4f5;padding:9px 14px;font-size:14px;border-radius:8px 8px 0 0}
.top nav a:hover{background:rgba(255,255,255,.08);text-decoration:none}
main{padding:8px 0 40px}
section{margin:28px 0}
h2{font-size:21px;margin:0 0 12px;font-weight:650;letter-spacing:-.01em}
h3{margin:0;font-size:19px;font-weight:650}
h4{margin:0 0 8px;font-size:12px;text-transform:uppercase;letter-spacing:.07em;color:var(--muted);font-weight:650}
.panel{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:20px 22px;box-shadow:0 1px 2px rgba(16,24,40,.04)}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:12px;margin-bottom:14px}
.kpi{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:14px 16px}
.kpi .k{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.06em;font-weight:600}
.kpi .v{font-size:24px;font-weight:680;margin-top:2px;font-variant-numeric:tabular-nums;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.kpi .s{font-size:12px;color:var(--muted)}
.kpi.wide{grid-column:span 2}.kpi.wide .v{font-size:21px;padding-top:3px}
.cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:14px}
dl.kv{display:grid;grid-template-columns:auto 1fr;gap:4px 16px;margin:0;font-size:14px}
dl.kv dt{color:var(--muted)}dl.kv dd{margin:0;font-variant-numeric:tabular-nums;overflow-wrap:anywhere}
table{border-collapse:collapse;width:100%;font-size:14px}
th{text-align:left;font-size:12px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted);font-weight:650;padding:8px 10px;border-bottom:1px solid var(--line);white-space:nowrap}
td{padding:8px 10px;border-bottom:1px solid var(--line);vertical-align:top}
tr:last-child td{border-bottom:0}
td.segname{min-width:200px}
td.nowrap{white-space:nowrap}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.tablewrap{overflow-x:auto}
.sw{display:inline-block;width:11px;height:11px;border-radius:3px;margin-right:7px;vertical-align:-1px;background:var(--c)}
.sharebar{display:inline-block;height:7px;border-radius:4px;background:var(--c);opacity:.75;vertical-align:middle;margin-right:8px}
.muted{color:var(--muted)}.small{font-size:13px}
.note{font-size:13px;color:var(--muted);margin:10px 0 0}
.warnings{border-left:4px solid #f59e0b;background:#fffaf0}
.warnings ul{margin:6px 0 0;padding-left:18px}
.plot{width:100%;min-height:120px}
.plot-map{height:620px}
.card{background:var(--card);border:1px solid var(--line);border-radius:14px;margin:18px 0;overflow:hidden;box-shadow:0 1px 3px rgba(16,24,40,.05)}
.card>header{padding:16px 22px 14px;border-bottom:1px solid var(--line);border-top:5px solid var(--c);display:flex;flex-wrap:wrap;align-items:baseline;gap:8px 14px}
.card .sid{color:var(--muted);font-weight:600;margin-right:4px}
.card .meta{color:var(--muted);font-size:14px}
.card .body{padding:18px 22px 20px}
.desc{font-size:16px;margin:0 0 14px;max-width:80ch}
.badge{display:inline-block;font-size:12px;font-weight:600;padding:2px 9px;border-radius:999px;background:#eef1f5;color:#3b4656}
.badge.good{background:var(--good-bg);color:var(--good)}.badge.warn{background:var(--warn-bg);color:var(--warn)}.badge.bad{background:var(--bad-bg);color:var(--bad)}
.badges{display:flex;gap:6px;flex-wrap:wrap;margin-left:auto}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(340px,1fr));gap:18px 28px;margin-top:16px}
.grid3{display:grid;grid-template-columns:repeat(auto-fit,minmax(260px,1fr));gap:18px 28px;margin-top:16px}
.block{min-width:0}
ul.clean{margin:0;padding-left:18px}ul.clean li{margin:3px 0}
ul.actions li::marker{content:"\2192  ";color:var(--c)}
.bars{display:grid;grid-template-columns:minmax(0,1.25fr) minmax(0,1fr) auto;gap:5px 10px;align-items:center;font-size:14px}
.bars .lab{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.bars .track{position:relative;height:12px;background:var(--soft);border-radius:6px}
.bars .fill{position:absolute;left:0;top:0;bottom:0;border-radius:6px;background:var(--c);opacity:.85}
.bars .one{position:absolute;top:-3px;bottom:-3px;width:0;border-left:1.5px dashed #8a94a3}
.bars .val{font-variant-numeric:tabular-nums;color:#3b4656;font-size:13px;text-align:right}
.stack{display:flex;height:22px;border-radius:6px;overflow:hidden;background:var(--soft)}
.stack span{display:block;height:100%}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;margin-top:7px;font-size:13px;color:#3b4656}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;vertical-align:-1px}
.dropped{margin:0 0 14px;font-size:14px;background:#fff8f0;border:1px solid #f5dcc0;border-radius:8px;padding:8px 12px}
.dropped summary{cursor:pointer;color:#8a4b00;font-weight:600}
.dropped li{margin:5px 0}.dropped q{font-style:italic}
.stat-table td{padding:4px 8px 4px 0;border:0}.stat-table td.n{padding-right:0}
.stat-table td.ref{color:var(--muted);font-size:13px;text-align:right;white-space:nowrap;padding-left:12px}
ol.recs{margin:0;padding-left:22px}ol.recs li{margin:3px 0}
.chip{display:inline-block;padding:2px 9px;border:1px solid var(--line);border-radius:999px;font-size:13px;margin:2px 4px 2px 0;background:var(--soft)}
.reps{font-size:14px}.reps code{font-family:var(--mono);font-size:13px;background:var(--soft);padding:1px 6px;border-radius:5px}
code,pre{font-family:var(--mono)}
pre{background:#0f172a;color:#e2e8f0;padding:14px 16px;border-radius:10px;overflow:auto;font-size:12.5px;line-height:1.45;max-height:480px}
pre.notes{background:var(--soft);color:var(--ink);border:1px solid var(--line)}
details.more{border-bottom:1px solid var(--line);padding:2px 0}details.more:last-child{border-bottom:0}
details.more>summary{cursor:pointer;font-weight:600;font-size:14px;margin:6px 0}
.hash{font-family:var(--mono);font-size:12px;word-break:break-all}
.effect{display:inline-block;height:8px;background:#7c8db5;border-radius:4px;vertical-align:middle;margin-right:8px}
footer{color:var(--muted);font-size:13px;text-align:center;padding:20px 0 40px}
@media (max-width:700px){.wrap{padding:0 14px}.plot-map{height:460px}.bars{grid-template-columns:minmax(0,1fr) 90px auto}}
@media print{body{background:#fff}.top{background:#fff;color:#000}.top nav{display:none}.card,.panel,.kpi{box-shadow:none;break-inside:avoid}}
"""

JS = r"""
(function () {
  var holder = document.getElementById('seglens-figures');
  var specs = holder ? JSON.parse(holder.textContent) : {};
  var els = Array.prototype.slice.call(document.querySelectorAll('[data-fig]'));
  if (typeof window.Plotly === 'undefined') {
    els.forEach(function (el) { el.textContent = 'The charts need JavaScript (plotly.js is inside this file).'; });
    return;
  }
  var config = {displaylogo: false, responsive: true, typesetMath: false,
                modeBarButtonsToRemove: ['select2d', 'lasso2d', 'autoScale2d'],
                toImageButtonOptions: {format: 'png', scale: 2, filename: 'seglens'}};
  function webgl() {
    try { var c = document.createElement('canvas');
          return !!(window.WebGLRenderingContext && (c.getContext('webgl') || c.getContext('experimental-webgl'))); }
    catch (e) { return false; }
  }
  function draw(el) {
    if (el.getAttribute('data-drawn')) { return; }
    el.setAttribute('data-drawn', '1');
    var spec = specs[el.getAttribute('data-fig')];
    if (!spec) { return; }
    if (spec.webgl && webgl()) {
      spec.data.forEach(function (t) { if (t.type === 'scatter') { t.type = 'scattergl'; } });
    }
    Plotly.newPlot(el, spec.data, spec.layout, config);
  }
  window.seglensDrawAll = function () { els.forEach(draw); };
  if ('IntersectionObserver' in window) {
    var io = new IntersectionObserver(function (entries) {
      entries.forEach(function (en) { if (en.isIntersecting) { io.unobserve(en.target); draw(en.target); } });
    }, {rootMargin: '300px 0px'});
    els.forEach(function (el) { if (el.hasAttribute('data-eager')) { draw(el); } else { io.observe(el); } });
  } else {
    els.forEach(draw);
  }
  window.addEventListener('beforeprint', window.seglensDrawAll);
})();
"""

TEMPLATE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="seglens {{ version }}">
<link rel="icon" href="data:,">
<title>{{ run_name }} · seglens segment report</title>
<style>{{ css }}</style>
</head>
<body>
<header class="top">
  <div class="wrap">
    <div class="brand">seglens · segment report</div>
    <h1>{{ run_name }}</h1>
    <p class="sub">{% if created %}created {{ created }}{% endif %}{% if version %} · seglens {{ version }}{% endif %}</p>
    <nav>
      <a href="#overview">Overview</a>
      {% if map %}<a href="#map">Map</a>{% endif %}
      {% if cards %}<a href="#segments">Segments</a>{% endif %}
      {% if similarity %}<a href="#similarity">Similarity</a>{% endif %}
      {% if differences %}<a href="#differences">Differences</a>{% endif %}
      {% for x in extra %}<a href="#extra-{{ loop.index }}">{{ x.title }}</a>{% endfor %}
      <a href="#appendix">Method</a>
    </nav>
  </div>
</header>
<main class="wrap">

<section id="overview">
  <h2>Overview</h2>
  <div class="kpis">
    {% for k, v, s in overview.kpis %}
    <div class="kpi{{ ' wide' if k == 'period' }}"><div class="k">{{ k }}</div><div class="v" title="{{ v }}">{{ v }}</div>{% if s %}<div class="s">{{ s }}</div>{% endif %}</div>
    {% endfor %}
  </div>
  <div class="cols">
    {% if overview.quality %}
    <div class="panel"><h4>Segmentation quality</h4>
      <dl class="kv">{% for k, v in overview.quality %}<dt>{{ k }}</dt><dd>{{ v }}</dd>{% endfor %}</dl>
    </div>
    {% endif %}
    <div class="panel"><h4>Configuration</h4>
      <dl class="kv">{% for k, v in overview.config %}<dt>{{ k }}</dt><dd>{{ v }}</dd>{% endfor %}</dl>
    </div>
  </div>
  {% if overview.warnings %}
  <div class="panel warnings" style="margin-top:14px"><h4>Warnings</h4>
    <ul>{% for w in overview.warnings %}<li>{{ w }}</li>{% endfor %}</ul>
  </div>
  {% endif %}
  {% if summary and summary.rows %}
  <div class="panel tablewrap" style="margin-top:14px">
    <h4>Segments at a glance</h4>
    <table>
      <thead><tr><th class="n">#</th><th>segment</th><th class="n">users</th><th>share</th><th>most lifted categories</th>
        {% if summary.value %}<th class="n" title="share of all revenue">revenue</th><th class="n" title="customer lifetime value per user">CLV/user</th>{% endif %}
        {% if summary.life %}<th class="n" title="share of users at risk or churned">at risk</th>{% endif %}
        {% if summary.growth %}<th class="n" title="active users, last periods vs the ones before">growth</th>{% endif %}
        <th class="n" title="share of the description's sentences backed by the facts">grounded</th></tr></thead>
      <tbody>
      {% for r in summary.rows %}
      <tr style="--c:{{ r.colour }}">
        <td class="n">{{ r.id }}</td>
        <td class="segname"><span class="sw"></span>{% if r.card %}<a href="#seg-{{ r.id }}">{{ r.name }}</a>{% else %}<span class="muted">{{ r.name }}</span>{% endif %}</td>
        <td class="n">{{ r.size }}</td>
        <td class="n" style="text-align:left"><span class="sharebar" style="width:{{ r.share_w * 0.8 }}px"></span>{{ r.share }}</td>
        <td class="small">{{ r.cats }}</td>
        {% if summary.value %}<td class="n">{{ r.revenue }}</td><td class="n">{{ r.clv }}</td>{% endif %}
        {% if summary.life %}<td class="n">{{ r.risk }}</td>{% endif %}
        {% if summary.growth %}<td class="n">{{ r.growth }}</td>{% endif %}
        <td class="n">{{ r.grounding }}</td>
      </tr>
      {% endfor %}
      </tbody>
    </table>
  </div>
  {% endif %}
</section>

{% if map %}
<section id="map">
  <h2>Map of users</h2>
  <div class="panel">
    <div id="map-plot" class="plot plot-map" data-fig="map" data-eager></div>
    <p class="note">Each point is a user, placed by a 2-D projection of the user vectors (nearby users behave alike; the axes have no units) and coloured by segment.
    {% if map.sampled %}<strong>Showing a stratified sample of {{ "{:,}".format(map.points) }} of {{ "{:,}".format(map.users) }} users</strong> (at most {{ "{:,}".format(map.max_points) }}, every segment kept; legend counts are for all users).{% else %}All {{ "{:,}".format(map.users) }} users are shown.{% endif %}
    {{ " " }}{% if map.hover_items %}Hover a point for the user's three most recent items.{% endif %} Click a legend entry to hide a segment; double-click to isolate it.</p>
  </div>
</section>
{% endif %}

{% if cards %}
<section id="segments">
  <h2>Segments</h2>
  {% for c in cards %}
  <article class="card" id="seg-{{ c.id }}" style="--c:{{ c.colour }}">
    <header>
      <h3><span class="sid">#{{ c.id }}</span>{{ c.name }}</h3>
      <span class="meta">{{ c.size }} users · {{ c.share }}</span>
      <span class="badges">
        {% for b in c.badges %}<span class="badge {{ b.level }}" title="{{ b.title }}">{{ b.text }}</span>{% endfor %}
        {% if c.grounding and c.grounding.score %}<span class="badge {{ c.grounding.level }}" title="share of the description's sentences backed by the facts">grounding {{ c.grounding.score }}</span>{% endif %}
      </span>
    </header>
    <div class="body">
      {% if c.description %}<p class="desc">{{ c.description }}</p>{% endif %}
      {% if c.grounding and c.grounding.dropped %}
      <details class="dropped"><summary>{{ c.grounding.dropped|length }} sentence{{ "s" if c.grounding.dropped|length != 1 }} dropped by the grounding check</summary>
        <ul class="clean">{% for d in c.grounding.dropped %}<li><q>{{ d.sentence }}</q> <span class="muted">({{ d.field }}) — {{ d.reason }}</span></li>{% endfor %}</ul>
      </details>
      {% endif %}
      {% if c.traits or c.actions %}
      <div class="grid2">
        {% if c.traits %}<div class="block"><h4>Traits</h4><ul class="clean">{% for t in c.traits %}<li>{{ t }}</li>{% endfor %}</ul></div>{% endif %}
        {% if c.actions %}<div class="block"><h4>Suggested actions</h4><ul class="clean actions">{% for a in c.actions %}<li>{{ a }}</li>{% endfor %}</ul></div>{% endif %}
      </div>
      {% endif %}
      {% if c.categories or c["items"] %}
      <div class="grid2">
        {% for title, bars in (("Lifted categories", c.categories), ("Lifted items", c["items"])) if bars %}
        <div class="block"><h4>{{ title }} <span class="muted" style="text-transform:none;letter-spacing:0;font-weight:400">(lift; dashed line = like everyone)</span></h4>
          <div class="bars">
          {% for b in bars %}
            <div class="lab" title="{{ b.label }}">{{ b.label }}</div>
            <div class="track" title="{{ b.note }}"><div class="fill" style="width:{{ b.w }}%"></div>{% if b.one %}<div class="one" style="left:{{ b.one }}%"></div>{% endif %}</div>
            <div class="val">{{ b.lift }}</div>
          {% endfor %}
          </div>
        </div>
        {% endfor %}
      </div>
      {% endif %}
      {% if c.stats %}
      <div class="grid3">
        {% for title, rows in c.stats %}
        <div class="block"><h4>{{ title }}</h4>
          <table class="stat-table">{% for k, v, ref in rows %}<tr><td>{{ k }}</td><td class="n"><strong>{{ v }}</strong></td><td class="ref">{% if ref %}{% if title == "Behaviour" %}all {{ ref }}{% else %}{{ ref }}{% endif %}{% endif %}</td></tr>{% endfor %}</table>
        </div>
        {% endfor %}
      </div>
      {% endif %}
      {% if c.lifecycle or c.satisfaction %}
      <div class="grid2">
        {% if c.lifecycle %}
        <div class="block"><h4>Lifecycle mix</h4>
          <div class="stack">{% for p in c.lifecycle.parts %}<span style="width:{{ p.w }}%;background:{{ p.colour }}" title="{{ p.title }}"></span>{% endfor %}</div>
          <div class="legend">{% for p in c.lifecycle.parts %}<span title="{{ p.title }}"><i style="background:{{ p.colour }}"></i>{{ p.label }} {{ p.share }}</span>{% endfor %}</div>
          {% if c.lifecycle.note %}<p class="note">{{ c.lifecycle.note }}</p>{% endif %}
        </div>
        {% endif %}
        {% if c.satisfaction %}
        <div class="block"><h4>Satisfaction</h4>
          <table class="stat-table">{% for k, v in c.satisfaction.stats %}<tr><td>{{ k }}</td><td class="n"><strong>{{ v }}</strong></td></tr>{% endfor %}</table>
          {% if c.satisfaction.dist %}
          <div class="bars" style="margin-top:8px">
            {% for d in c.satisfaction.dist %}<div class="lab">rating {{ d.level }}</div><div class="track"><div class="fill" style="width:{{ d.w }}%"></div></div><div class="val">{{ d.share }}</div>{% endfor %}
          </div>
          {% endif %}
        </div>
        {% endif %}
      </div>
      {% endif %}
      {% if c.growth %}
      <div class="grid2">
        <div class="block"><h4>Growth</h4>
          <table class="stat-table">{% for k, v in c.growth.stats %}<tr><td>{{ k }}</td><td class="n"><strong>{{ v }}</strong></td></tr>{% endfor %}</table>
        </div>
        {% if c.growth.fig %}<div class="block"><h4>Active users with forecast</h4><div class="plot" style="height:230px" data-fig="{{ c.growth.fig }}"></div></div>{% endif %}
      </div>
      {% endif %}
      {% if c.recommendations or c.differences %}
      <div class="grid2">
        {% if c.recommendations %}
        <div class="block"><h4>Top recommendations</h4>
          <ol class="recs">{% for r in c.recommendations %}<li>{{ r.title }} {% if r.note %}<span class="muted small">({{ r.note }})</span>{% endif %}</li>{% endfor %}</ol>
        </div>
        {% endif %}
        {% if c.differences %}
        <div class="block"><h4>What sets them apart</h4>
          <table class="stat-table">
            <tr><td></td><td class="n muted small">segment</td><td class="ref">rest</td><td class="ref">effect</td></tr>
            {% for d in c.differences %}<tr><td>{{ d.what }}</td><td class="n"><strong>{{ d.seg }}</strong></td><td class="ref">{{ d.rest }}</td><td class="ref">{{ d.effect }}</td></tr>{% endfor %}
          </table>
        </div>
        {% endif %}
      </div>
      {% endif %}
      {% if c.preferences %}
      <div class="grid2">
        {% if c.preferences.bands %}<div class="block"><h4>Price bands</h4>{% for b in c.preferences.bands %}<span class="chip" title="{{ b.share }} of purchases">{{ b.label }}: {{ b.lift }}</span>{% endfor %}</div>{% endif %}
        {% if c.preferences.under %}<div class="block"><h4>Under-indexed categories</h4>{% for u in c.preferences.under %}<span class="chip">{{ u }}</span>{% endfor %}</div>{% endif %}
      </div>
      {% endif %}
      {% if c.nearest or c.representatives %}
      <div class="grid2">
        {% if c.nearest %}
        <div class="block"><h4>Nearest segments</h4>
          {% for n in c.nearest %}<div style="--c:{{ n.colour }}"><span class="sw"></span><a href="#seg-{{ n.id }}">#{{ n.id }} {{ n.name }}</a> <span class="muted small">{{ n.note }}</span></div>{% endfor %}
        </div>
        {% endif %}
        {% if c.representatives %}
        <div class="block reps"><h4>Representative users</h4>
          {% for r in c.representatives %}<div><code>{{ r.user_id }}</code>{% if r.similarity %} <span class="muted small">similarity {{ r.similarity }}</span>{% endif %}{% if r.recent %}<div class="muted small" style="margin:0 0 4px 4px">recent: {{ r.recent|join(" · ") }}</div>{% endif %}</div>{% endfor %}
        </div>
        {% endif %}
      </div>
      {% endif %}
      {% if c.describer %}<p class="note">Described by <strong>{{ c.describer }}</strong>.</p>{% endif %}
    </div>
  </article>
  {% endfor %}
</section>
{% endif %}

{% if similarity %}
<section id="similarity">
  <h2>How similar the segments are</h2>
  <div class="panel">
    <div class="plot" data-fig="similarity"></div>
    <p class="note">From {{ similarity.source }}. Red = alike, white = unrelated, blue = opposite tastes; the diagonal (a segment with itself) is left blank.</p>
    {% if similarity.pairs %}
    <h4 style="margin-top:14px">Most similar pairs</h4>
    <table><thead><tr><th>pair</th><th class="n">centroid cosine</th><th class="n">item overlap</th></tr></thead><tbody>
    {% for p in similarity.pairs %}<tr><td><a href="#seg-{{ p.a }}">#{{ p.a }} {{ p.a_name }}</a> &amp; <a href="#seg-{{ p.b }}">#{{ p.b }} {{ p.b_name }}</a></td><td class="n">{{ p.cos }}</td><td class="n">{{ p.jac }}</td></tr>{% endfor %}
    </tbody></table>
    {% endif %}
  </div>
</section>
{% endif %}

{% if differences %}
<section id="differences">
  <h2>Most significant differences</h2>
  <div class="cols">
    {% if differences.rows %}
    <div class="panel tablewrap"><h4>Across all segments</h4>
      <table><thead><tr><th>measure</th><th>test</th><th title="ε²: Kruskal-Wallis epsilon squared; V: Cramér's V">effect size</th><th class="n">adjusted p</th></tr></thead><tbody>
      {% for r in differences.rows %}<tr><td>{{ r.what }}</td><td class="muted">{{ r.test }}</td><td class="nowrap"><span class="effect" style="width:{{ r.w * 0.9 }}px"></span>{{ r.effect }}</td><td class="n">{{ r.p }}</td></tr>{% endfor %}
      </tbody></table>
    </div>
    {% endif %}
    {% if differences.per %}
    <div class="panel"><h4>Each segment against everyone else</h4>
      {% for p in differences.per %}
      <div style="--c:{{ p.colour }};margin-bottom:8px"><span class="sw"></span><a href="#seg-{{ p.id }}"><strong>#{{ p.id }} {{ p.name }}</strong></a>
        <div class="small muted" style="margin-left:18px">{{ p["items"]|join("; ") }}</div></div>
      {% endfor %}
    </div>
    {% endif %}
  </div>
  {% if differences.note %}<p class="note">{{ differences.note }}.</p>{% endif %}
</section>
{% endif %}

{% for x in extra %}
<section id="extra-{{ loop.index }}">
  <h2>{{ x.title }}</h2>
  <div class="panel">{% if x.error %}<p class="muted">{{ x.error }}</p>{% else %}{{ x.html }}{% endif %}</div>
</section>
{% endfor %}

{% if appendix %}
<section id="appendix">
  <h2>Method and reproducibility</h2>
  <div class="cols">
    <div class="panel"><h4>Run</h4><dl class="kv">{% for k, v in appendix.run %}<dt>{{ k }}</dt><dd>{{ v }}</dd>{% endfor %}</dl>
      <p class="note">Rerunning on the same inputs (fingerprints below) with the configuration below and seed {{ seed }} gives the same segments.</p></div>
    {% if appendix.seconds %}
    <div class="panel"><h4>Seconds per stage (total {{ appendix.total }})</h4>
      <table class="stat-table">{% for s in appendix.seconds %}<tr><td>{{ s.stage }}</td><td style="width:55%"><span class="effect" style="width:{{ s.w }}%;background:#9fb0d3"></span></td><td class="n">{{ s.s }}</td></tr>{% endfor %}</table>
    </div>
    {% endif %}
  </div>
  {% if appendix.inputs %}
  <div class="panel tablewrap" style="margin-top:14px"><h4>Inputs</h4>
    <table><thead><tr><th>role</th><th>file</th><th>format</th><th class="n">bytes</th><th>sha256</th></tr></thead><tbody>
    {% for i in appendix.inputs %}<tr><td>{{ i.role }}</td><td class="small" style="overflow-wrap:anywhere">{{ i.path }}</td><td>{{ i.format }}</td><td class="n">{{ i.bytes }}</td><td class="hash">{{ i.sha256 }}</td></tr>{% endfor %}
    </tbody></table>
  </div>
  {% endif %}
  {% if appendix.plugins %}
  <div class="panel tablewrap" style="margin-top:14px"><h4>Plugins</h4>
    <table><thead><tr><th>stage</th><th>implementation</th><th>plugin</th><th>version</th></tr></thead><tbody>
    {% for p in appendix.plugins %}<tr><td>{{ p.stage }}</td><td>{{ p.name }}</td><td>{{ p.plugin }}</td><td>{{ p.version }}</td></tr>{% endfor %}
    </tbody></table>
  </div>
  {% endif %}
  {% if appendix.analyses %}
  <div class="panel" style="margin-top:14px"><h4>Analyses</h4>
    {% for a in appendix.analyses %}
    <details class="more"><summary>{{ a.name }}{% if a.skipped %} <span class="badge warn">skipped: {{ a.skipped }}</span>{% endif %}</summary>
      {% if a.notes %}<pre class="notes">{{ a.notes }}</pre>{% else %}<p class="muted small">No notes.</p>{% endif %}
    </details>
    {% endfor %}
  </div>
  {% endif %}
  <div class="panel" style="margin-top:14px"><h4>Configuration</h4><pre>{{ appendix.config }}</pre></div>
  {% if problems %}
  <div class="panel warnings" style="margin-top:14px"><h4>Parts left out of this report</h4>
    <ul>{% for p in problems %}<li>{{ p }}</li>{% endfor %}</ul></div>
  {% endif %}
</section>
{% endif %}
</main>
<footer>Generated by seglens {{ version }} · a single self-contained file: it works offline and loads nothing from the network.</footer>
<script>{{ plotlyjs }}</script>
<script type="application/json" id="seglens-figures">{{ figures }}</script>
<script>{{ js }}</script>
</body>
</html>
"""
