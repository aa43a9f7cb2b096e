"""The 2-D map of users, shared by the reports, and `seglens map RUN -o map.png`.

- `stratified_sample(labels, max_points, seed)`: the rows drawn on a map. Every user when the run
  has at most `max_points`; otherwise a seeded sample that keeps every segment (noise included)
  represented: each segment first gets a floor of points (up to 200, at most its size), the rest of
  the budget is shared in proportion to size. The same seed draws the same sample.
- `segment_colours(ids)`: one colour per segment id, the same in the HTML map, the PNG map and the
  Markdown charts (noise is grey).
- `write_map_png(run, path)` and `write_categories_png(segment, path)`: matplotlib PNGs (Agg canvas,
  no pyplot state), used by `seglens map` and embedded by the Markdown report.
- `map_info(run)`, `describe_map(info)`, `map_details(info)`: how the run's coordinates were made (method, input, seed,
  settings), from the manifest's `map` record, for the reports' captions and appendices.
- `compute_map(run, method)` and `save_map(run, coords, record)`: `seglens map --method NAME`
  recomputes the coordinates of a finished run with any registered reducer (umap, tsne, pca) from its
  saved embeddings.npy (or reduced.npy with `--space reduced`), without re-running the pipeline.
  With `--save` they replace the run's map: users.parquet `x`/`y`, coords.npy, map.json, the manifest
  (`map` record, `plugins.map`, `config.reduce.map_method`), one line in edits.jsonl and the reports,
  all in one edit transaction (`seglens.run_edits`): a staging copy swapped in at the end, so an
  interrupted save leaves the old run exactly as it was.

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
from seglens.errors import SeglensError
from seglens.runfolder import RunFolder

DEFAULT_MAX_POINTS = 20_000
MAP_FILE = "map.json"  # the pipeline's (or the last `seglens map --save`'s) record of how the map was made
METHOD_LABELS = {"umap": "UMAP", "tsne": "t-SNE (openTSNE)", "pca": "PCA"}
SPACES = {"embeddings": "embeddings.npy", "reduced": "reduced.npy"}  # --space: what the map is computed from
INPUT_LABELS = {"embeddings.npy": "the user vectors (embeddings.npy)",
                "reduced.npy": "the clustering space (reduced.npy)"}
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


def map_info(run: RunFolder) -> dict[str, Any]:
    """How the run's map coordinates were made: the manifest's `map` record (method, plugin, version,
    input, seed, seconds, settings, source), or for a run made before it was recorded, the configured
    `reduce.map_method` (flagged `recorded: False`). `label` is the method's display name."""
    m = run.manifest if isinstance(run.manifest, dict) else {}
    rec = m.get("map")
    if isinstance(rec, dict) and rec.get("method"):
        info = dict(rec)
    else:
        reduce = (m.get("config") or {}).get("reduce") if isinstance(m.get("config"), dict) else None
        method = (reduce or {}).get("map_method") if isinstance(reduce, dict) else None
        info = {"method": str(method or "umap"), "input": "embeddings.npy", "recorded": False}
    info["label"] = METHOD_LABELS.get(str(info["method"]), str(info["method"]))
    return info


def describe_map(info: dict[str, Any]) -> str:
    """What placed the users, for captions: e.g. `t-SNE (openTSNE) of the user vectors (embeddings.npy)`."""
    source = INPUT_LABELS.get(str(info.get("input") or "embeddings.npy"), str(info.get("input")))
    return f"{info.get('label') or info.get('method')} of {source}"


def map_details(info: dict[str, Any]) -> str:
    """The settings worth knowing, e.g. `perplexity 30, 250 iterations, FFT gradients`; may be empty."""
    s = info.get("settings") if isinstance(info.get("settings"), dict) else {}
    parts = []
    if isinstance(s.get("perplexity"), (int, float)):
        parts.append(f"perplexity {s['perplexity']:g}")
    if s.get("n_iter") is not None:
        parts.append(f"{s['n_iter']} iterations")
    if s.get("gradient"):
        parts.append({"fft": "FFT gradients", "bh": "Barnes-Hut gradients"}.get(str(s["gradient"]), str(s["gradient"])))
    if s.get("fallback"):
        parts.append(str(s["fallback"]))
    if info.get("source") and info.get("source") != "run":
        parts.append(f"by {info['source']}")
    return ", ".join(parts)


def map_record(method: str, input_file: str, seed: int, seconds: float, settings: dict[str, Any],
               source: str) -> dict[str, Any]:
    """The `map` record kept in map.json and the manifest."""
    from seglens import plugins

    plugin = plugins.plugin_of("reducer", method)
    return {"method": method, "plugin": plugin, "version": plugins.version_of(plugin), "input": input_file,
            "seed": int(seed), "seconds": round(float(seconds), 3), "settings": dict(settings or {}), "source": source}


def compute_map(run: RunFolder, method: str, space: str = "embeddings", seed: int | None = None
                ) -> tuple[np.ndarray, dict[str, Any]]:
    """2-D coordinates for every user of a finished run by the reducer named `method`, from the saved
    vectors (the run's own `[reduce]` options and seed unless `seed` is given), and their record."""
    import time

    from seglens import plugins

    if space not in SPACES:
        raise SeglensError(f"unknown map space '{space}'", hint=f"use {' or '.join(SPACES)}")
    cfg = run.manifest.get("config") if isinstance(run.manifest.get("config"), dict) else {}
    seed = int(cfg.get("seed", run.manifest.get("seed", 42)) if seed is None else seed)
    path = run.path / SPACES[space]
    if not path.exists():
        raise SeglensError(f"this run has no {SPACES[space]}", file=run.path,
                           hint="use --space embeddings" if space == "reduced" else "rerun the pipeline")
    vectors = np.load(path, allow_pickle=False)
    n_users = len(run.users())
    if vectors.ndim != 2 or len(vectors) != n_users:
        raise SeglensError(f"{SPACES[space]} has {len(vectors)} rows for {n_users} users", file=path,
                           hint="the run folder is inconsistent; rerun it with --force")
    reduce_opts = cfg.get("reduce") if isinstance(cfg.get("reduce"), dict) else {}
    reducer = plugins.create("reducer", method, {**reduce_opts, "seed": seed})
    t0 = time.perf_counter()
    coords = np.asarray(reducer.reduce(vectors, 2, seed), dtype=np.float32)
    seconds = time.perf_counter() - t0
    if coords.shape != (n_users, 2) or not np.isfinite(coords).all():
        raise RuntimeError(f"reducer '{method}' returned {coords.shape} coordinates"
                           + ("" if np.isfinite(coords).all() else " with non-finite values"))
    return coords, map_record(method, SPACES[space], seed, seconds, getattr(reducer, "settings", {}),
                              "seglens map --save")


def save_map(run: RunFolder, coords: np.ndarray, record: dict[str, Any]) -> list[str]:
    """Make `coords` the run's map, in one edit transaction; returns the reports rewritten."""
    from seglens.run_edits import append_edit, edit_transaction, regenerate_reports

    before = {k: v for k, v in map_info(run).items() if k in ("method", "input", "seed")}
    with edit_transaction(run.path) as folder:
        staged = RunFolder(folder)
        users = staged.users()
        users["x"] = coords[:, 0].astype(np.float64)
        users["y"] = coords[:, 1].astype(np.float64)
        atomic.write_parquet(folder / "users.parquet", users)
        atomic.write_npy(folder / "coords.npy", coords.astype(np.float32))
        atomic.write_json(folder / MAP_FILE, record)
        m = staged.manifest
        m["map"] = record
        m.setdefault("plugins", {})["map"] = {k: record[k] for k in ("plugin", "version")} | {"name": record["method"]}
        if isinstance(m.get("config"), dict):
            m["config"].setdefault("reduce", {})["map_method"] = record["method"]
        atomic.write_json(folder / "manifest.json", m)
        append_edit(folder, "map", {"method": record["method"], "input": record["input"], "seed": record["seed"]},
                    before, {k: record[k] for k in ("method", "input", "seed")})
        written = regenerate_reports(folder)
    return written


def map_sample(run: RunFolder, max_points: int = DEFAULT_MAX_POINTS, seed: int | None = None, users: Any = None):
    """(users frame of the sampled rows with x, y, segment; total number of users). `users` replaces
    the run's own table (e.g. with recomputed coordinates)."""
    users = run.users() if users is None else users
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
                  dpi: int = 110, users: Any = None, method: str | None = None) -> dict[str, Any]:
    """The map of users coloured by segment, legend with names; returns what was drawn. `users` (a
    users table with other x, y) and `method` (its display name) draw recomputed coordinates."""
    from matplotlib.figure import Figure

    all_users = run.users() if users is None else users
    sample, total = map_sample(run, max_points, seed, users=all_users)
    names = segment_names(run)
    colours = segment_colours(list(names) + sample["segment"].tolist())
    counts = all_users["segment"].value_counts().to_dict() if len(sample) < total else \
        sample["segment"].value_counts().to_dict()
    label = method or map_info(run)["label"]
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
    title = f"{total:,} users in {n_seg} segments, placed by {mpl_text(label, 40)}"
    if len(sample) < total:
        title += f" (stratified sample of {len(sample):,})"
    fig.suptitle(title, x=0.02, ha="left", fontsize=13, fontweight="bold", color="#1f2937")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8 if len(ids) <= 20 else 6,
              ncol=1 if len(ids) <= 24 else 2, markerscale=max(1.0, 12 / size) ** 0.5, title="segments",
              title_fontsize=9, alignment="left")
    _save(fig, path)
    return {"points": len(sample), "users": int(total), "segments": len(ids), "sampled": len(sample) < total,
            "method": label}


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
@click.option("--method", default=None, metavar="NAME",
              help="Recompute the coordinates with this reducer: umap, tsne or pca (default: draw the run's own).")
@click.option("--space", type=click.Choice(sorted(SPACES)), default="embeddings", show_default=True,
              help="With --method: map the user vectors (embeddings.npy) or the clustering space (reduced.npy).")
@click.option("--seed", type=int, default=None, help="With --method: the seed (default: the run's).")
@click.option("--save", is_flag=True, help="With --method: make the new coordinates the run's map "
              "(users.parquet, coords.npy, manifest, reports), atomically.")
@click.option("--max-points", type=int, default=DEFAULT_MAX_POINTS, show_default=True,
              help="Larger runs are drawn from a stratified sample that keeps every segment.")
@click.option("--dpi", type=int, default=110, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable summary of what was drawn (and saved).")
def map_cmd(run_dir: Path, out: Path | None, method: str | None, space: str, seed: int | None, save: bool,
            max_points: int, dpi: int, as_json: bool) -> None:
    """Draw the 2-D map of a run's users, coloured by segment, as a PNG; with --method, recompute the
    coordinates first (UMAP, t-SNE or PCA) without re-running the pipeline."""
    import json

    from rich.markup import escape
    from seglens import progress

    run = RunFolder(run_dir)
    if method is None and (save or seed is not None or space != "embeddings"):
        raise SeglensError("--save, --seed and --space only apply with --method",
                           hint="e.g. `seglens map RUN --method tsne --save`")
    if max_points < 1:
        raise SeglensError("--max-points must be at least 1")
    out = Path(out) if out is not None else run.path / "map.png"
    if out.exists() and out.is_dir():
        raise SeglensError("the output path is a folder", file=out, hint="give a PNG file name with -o")
    users, record, reports = None, map_info(run), []
    if method is not None:
        coords, record = compute_map(run, method, space, seed)
        record["label"] = METHOD_LABELS.get(method, method)
        if save:
            reports = save_map(run, coords, {k: v for k, v in record.items() if k != "label"})
            run = RunFolder(run.path)
        else:
            users = run.users()
            users["x"], users["y"] = coords[:, 0].astype(np.float64), coords[:, 1].astype(np.float64)
    info = write_map_png(run, out, max_points=max_points, dpi=dpi, users=users, method=record["label"])
    if as_json:
        click.echo(json.dumps({"file": str(out), **info, "map": {k: v for k, v in record.items() if k != "label"},
                               "saved": bool(save), "reports": reports}, indent=2, ensure_ascii=False, default=str))
        return
    note = f" (stratified sample of {info['points']:,} of {info['users']:,} users)" if info["sampled"] else ""
    details = map_details(record)
    progress.info(escape(f"wrote {out}{note}; users placed by {describe_map(record)}" + (f" ({details})" if details else "")))
    if save:
        progress.info(escape(f"saved the {record['label']} map into {run.path}; rewrote {', '.join(reports) or 'no reports'}"))


@hookimpl
def register_commands(cli):
    cli.add_command(map_cmd)
