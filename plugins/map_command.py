"""The 2-D map of users, shared by the reports, and `seglens map RUN -o map.png`.

- `stratified_sample(labels, max_points, seed)`: the rows drawn on a map. Every user when the run
  has at most `max_points`; otherwise a seeded sample that keeps every segment (noise included)
  represented: each segment first gets a floor of points (up to 200, at most its size), the rest of
  the budget is shared in proportion to size. The same seed draws the same sample.
- `segment_colours(ids)`: one colour per segment id, the same in the HTML map, the PNG map and the
  Markdown charts (noise is grey).
- `write_map_png(run, path)` and `write_categories_png(segment, path)`: matplotlib PNGs (Agg canvas,
  no pyplot state), used by `seglens map` and embedded by the Markdown report.

Text from the data reaches matplotlib only through `mpl_text`, which escapes `$` so that a segment name
or category cannot switch on mathtext (and cannot make the drawing fail).
"""
from __future__ import annotations

import colorsys
from pathlib import Path
from typing import Any

import click
import numpy as np

from seglens import atomic, hookimpl
from seglens.runfolder import RunFolder

DEFAULT_MAX_POINTS = 20_000
NOISE_COLOUR = "#b4b9c0"
# Tableau 10, then ten further distinct hues; beyond 20 segments colours come from the golden angle.
PALETTE = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#6b7fd7",
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f3c8d", "#11a579",
]


def segment_colours(ids: list[int] | np.ndarray) -> dict[int, str]:
    """A colour per segment id: PALETTE by rank of the (non-negative) id, grey for noise."""
    out: dict[int, str] = {}
    for sid in sorted({int(i) for i in ids}):
        if sid < 0:
            out[sid] = NOISE_COLOUR
            continue
        if sid < len(PALETTE):
            out[sid] = PALETTE[sid]
        else:
            h = (sid * 0.618033988749895) % 1.0
            r, g, b = colorsys.hls_to_rgb(h, 0.45, 0.65)
            out[sid] = f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"
    return out


def stratified_sample(labels: np.ndarray, max_points: int, seed: int = 0) -> np.ndarray:
    """Sorted row indices of at most `max_points` rows (more only if there are more segments than
    points), keeping every label represented; all rows when there are few enough."""
    labels = np.asarray(labels)
    n = len(labels)
    max_points = max(1, int(max_points))
    if n <= max_points:
        return np.arange(n)
    ids, sizes = np.unique(labels, return_counts=True)
    k = len(ids)
    floor = np.minimum(sizes, max(1, min(200, max_points // (2 * k))))
    budget = max(0, max_points - int(floor.sum()))
    spare = sizes - floor
    extra = np.zeros_like(sizes)
    if budget and spare.sum():
        extra = np.minimum(spare, np.floor(spare * budget / spare.sum()).astype(sizes.dtype))
        # hand out the rounding remainder to the largest remaining segments, one each
        left = budget - int(extra.sum())
        for i in np.argsort(-(spare - extra), kind="stable"):
            if left <= 0:
                break
            if extra[i] < spare[i]:
                extra[i] += 1
                left -= 1
    quota = floor + extra
    rng = np.random.default_rng(seed)
    rows = []
    for sid, q in zip(ids, quota):
        members = np.flatnonzero(labels == sid)
        rows.append(members if q >= len(members) else rng.choice(members, size=int(q), replace=False))
    return np.sort(np.concatenate(rows))


def segment_names(run: RunFolder) -> dict[int, str]:
    out = {}
    for s in run.segments():
        sid = int(s.get("id", -1))
        out[sid] = str(s.get("name") or ("Unassigned users" if sid < 0 else f"Segment {sid}"))
    return out


def map_sample(run: RunFolder, max_points: int = DEFAULT_MAX_POINTS, seed: int | None = None):
    """(users frame of the sampled rows with x, y, segment; total number of users)."""
    users = run.users()
    seed = int(run.manifest.get("seed", 0) if seed is None else seed)
    rows = stratified_sample(users["segment"].to_numpy(), max_points, seed)
    return users.iloc[rows].reset_index(drop=True), len(users)


def mpl_text(text: Any, limit: int = 60) -> str:
    """Data text made safe for matplotlib: one line, truncated, `$` escaped (no mathtext)."""
    s = " ".join(str(text).split())
    if len(s) > limit:
        s = s[: limit - 1] + "\u2026"
    return s.replace("$", r"\$")


def _save(fig: Any, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    return atomic.write_with(Path(path), lambda tmp: fig.savefig(tmp, format="png", facecolor="white",
                                                               bbox_inches="tight", pad_inches=0.25))


def write_map_png(run: RunFolder, path: Path, max_points: int = DEFAULT_MAX_POINTS, seed: int | None = None,
                  dpi: int = 110) -> dict[str, Any]:
    """The map of users coloured by segment, legend with names; returns what was drawn."""
    from matplotlib.figure import Figure

    sample, total = map_sample(run, max_points, seed)
    names = segment_names(run)
    colours = segment_colours(list(names) + sample["segment"].tolist())
    counts = run.users()["segment"].value_counts().to_dict() if len(sample) < total else \
        sample["segment"].value_counts().to_dict()
    ids = sorted(set(sample["segment"].tolist()), key=lambda s: (s >= 0, s))  # noise first, underneath
    fig = Figure(figsize=(11, 7), dpi=dpi)
    ax = fig.add_axes((0.02, 0.04, 0.66, 0.86))
    size = 9 if len(sample) < 2000 else 4 if len(sample) < 10000 else 2
    for sid in ids:
        pts = sample[sample["segment"] == sid]
        label = f"#{sid} {mpl_text(names.get(sid, ''), 40)} ({counts.get(sid, len(pts)):,})" if sid >= 0 else \
            f"unassigned ({counts.get(sid, len(pts)):,})"
        ax.scatter(pts["x"], pts["y"], s=size, c=colours[sid], alpha=0.75 if sid >= 0 else 0.45, linewidths=0,
                   label=label, rasterized=True)
    for sid in ids:
        if sid < 0:
            continue
        pts = sample[sample["segment"] == sid]
        ax.annotate(f"{sid}", (float(pts["x"].median()), float(pts["y"].median())), ha="center", va="center",
                    fontsize=9, fontweight="bold", color="#1f2937",
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": colours[sid], "alpha": 0.85})
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_color("#d0d5dd")
    n_seg = len([s for s in names if s >= 0])
    title = f"{total:,} users in {n_seg} segments"
    if len(sample) < total:
        title += f" (stratified sample of {len(sample):,})"
    fig.suptitle(title, x=0.02, ha="left", fontsize=13, fontweight="bold", color="#1f2937")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8 if len(ids) <= 20 else 6,
              ncol=1 if len(ids) <= 24 else 2, markerscale=max(1.0, 12 / size) ** 0.5, title="segments",
              title_fontsize=9, alignment="left")
    _save(fig, path)
    return {"points": len(sample), "users": int(total), "segments": len(ids), "sampled": len(sample) < total}


def write_categories_png(segment: dict[str, Any], path: Path, colour: str = PALETTE[0], top: int = 8,
                         dpi: int = 100) -> Path | None:
    """A horizontal bar chart of a segment's most lifted categories (lift, with shares); None when the
    segment has no category facts."""
    from matplotlib.figure import Figure

    rows = [r for r in (segment.get("profile") or {}).get("top_categories") or []
            if isinstance(r, dict) and isinstance(r.get("lift"), (int, float))][:top]
    if not rows:
        return None
    rows = rows[::-1]
    labels = [mpl_text(r.get("category", "?"), 32) for r in rows]
    lifts = [float(r["lift"]) for r in rows]
    fig = Figure(figsize=(7, 0.42 * len(rows) + 1.0), dpi=dpi)
    ax = fig.add_axes((0.30, 0.14, 0.62, 0.86 - 0.5 / (0.42 * len(rows) + 1.0)))
    ax.barh(range(len(rows)), lifts, color=colour, height=0.65)
    ax.axvline(1.0, color="#6b7280", linewidth=1, linestyle="--")
    ax.set_yticks(range(len(rows)), labels, fontsize=9)
    ax.set_xlabel("lift (segment share / population share; 1 = like everyone)", fontsize=8, color="#4b5563")
    for i, r in enumerate(rows):
        share, pop = r.get("share"), r.get("population_share")
        note = f"{r['lift']:.2f}x"
        if isinstance(share, (int, float)) and isinstance(pop, (int, float)):
            note += f"  ({share:.1%} vs {pop:.1%})"
        ax.text(float(r["lift"]), i, "  " + note, va="center", fontsize=8, color="#374151")
    ax.set_xlim(0, max(lifts) * 1.45 + 0.1)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="x", labelsize=8)
    name = mpl_text(segment.get("name") or f"Segment {segment.get('id')}", 50)
    fig.suptitle(f"#{segment.get('id')} {name}: lifted categories", x=0.02, ha="left", fontsize=10,
                 fontweight="bold", color="#1f2937")
    return _save(fig, path)


@click.command(name="map")
@click.argument("run_dir", metavar="RUN", type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), default=None,
              help="The PNG to write (default RUN/map.png).")
@click.option("--max-points", type=int, default=DEFAULT_MAX_POINTS, show_default=True,
              help="Larger runs are drawn from a stratified sample that keeps every segment.")
@click.option("--dpi", type=int, default=110, show_default=True)
def map_cmd(run_dir: Path, out: Path | None, max_points: int, dpi: int) -> None:
    """Draw the 2-D map of a run's users, coloured by segment, as a PNG."""
    from rich.markup import escape
    from seglens import progress

    run = RunFolder(run_dir)
    out = Path(out) if out is not None else run.path / "map.png"
    info = write_map_png(run, out, max_points=max_points, dpi=dpi)
    note = f" (stratified sample of {info['points']:,} of {info['users']:,} users)" if info["sampled"] else ""
    progress.info(escape(f"wrote {out}{note}"))


@hookimpl
def register_commands(cli):
    cli.add_command(map_cmd)
