"""The stages in order: load, features, embed, index, reduce, cluster, analyse, describe, report.

Each stage is a pure step whose outputs the run folder persists with a checkpoint. The checkpoint
records a fingerprint of everything the stage depends on (inputs, its config, upstream
fingerprints), so `--resume` redoes exactly the stages whose inputs changed.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
from rich.markup import escape

from . import __version__, atomic, plugins, progress
from .features import compute_features, load_features
from .errors import InterruptedRun, SeglensError, StageFailed
from .model import AnalysisContext, Dataset, Embeddings, LoadRequest, Segmentation
from .reporting import write_reports
from .runfolder import RunWriter

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    out: Path
    n_users: int
    n_events: int
    n_segments: int
    noise_share: float
    seconds: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)


def _fp(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Pipeline:
    """Runs (or resumes) one segmentation run into a run folder."""

    def __init__(self, request: LoadRequest, config: dict[str, Any], out: Path, *,
                 force: bool = False, resume: bool = False) -> None:
        self.request = request
        self.config = config
        self.writer = RunWriter(out, force=force, resume=resume)
        self.seconds: dict[str, float] = {}
        self.reused: list[str] = []
        self.used_plugins: dict[str, dict[str, str]] = {}
        self.warnings: list[str] = []

    # --- helpers ------------------------------------------------------------------------------
    def _stage(self, name: str, fingerprint: str, compute: Callable[[], list[str]],
               restore: Callable[[], None]) -> None:
        if self.writer.is_done(name, fingerprint):
            log.info("stage %s: reusing finished output", name)
            restore()
            self.reused.append(name)
            self.seconds[name] = float(self.writer.checkpoint(name).get("seconds", 0.0))
            return
        t0 = time.perf_counter()
        progress.status(f"[dim]{name}…[/dim]")
        try:
            files = compute()
        except (SeglensError, KeyboardInterrupt, StageFailed):
            raise
        except Exception as exc:
            raise self._plugin_failure(name, exc) from exc
        self.seconds[name] = round(time.perf_counter() - t0, 3)
        self.writer.mark_done(name, fingerprint, self.seconds[name], files)
        log.info("stage %s: %.2fs", name, self.seconds[name])

    def _plugin_failure(self, stage_name: str, exc: Exception) -> "StageFailed":
        """A stage that crashed inside a plugin names that plugin, so the user knows whom to report it
        to (a third-party clusterer, say) instead of seeing an anonymous internal error."""
        record = self.used_plugins.get(_STAGE_PLUGIN.get(stage_name, stage_name))
        who = f"plugin '{record['plugin']}' ({_STAGE_PLUGIN.get(stage_name, stage_name)} '{record['name']}')" \
            if record else "seglens"
        return StageFailed(f"stage '{stage_name}' failed in {who}: {type(exc).__name__}: {exc}")

    def _use(self, stage: str, name: str) -> Any:
        """Create the implementation and record it (with its plugin's version) for the manifest."""
        obj = self._use_named(stage, name)
        self.used_plugins[stage] = self._plugin_record(stage, name)
        return obj

    # --- the run ------------------------------------------------------------------------------
    def run(self) -> RunSummary:
        try:
            return self._run()
        except SeglensError:
            self.writer.discard_if_empty()  # a mistake found before any stage finished leaves nothing
            raise
        except KeyboardInterrupt as exc:
            self.writer.discard_if_empty()
            if isinstance(exc, InterruptedRun) or not self.writer.staging.exists():
                raise
            raise InterruptedRun(str(self.writer.staging)) from exc

    def _check_names(self) -> None:
        """Fail on a misspelt stage name before spending minutes on loading and embedding."""
        cfg = self.config
        wanted = [("embedder", cfg["embed"]["strategy"]), ("reducer", cfg["reduce"]["method"]),
                  ("reducer", cfg["reduce"]["map_method"]), ("clusterer", cfg["cluster"]["method"]),
                  ("describer", cfg["describe"]["describer"])]
        wanted += [("analysis", a) for a in cfg["analyses"]] + [("reporter", f) for f in cfg["report"]["formats"]]
        for stage, name in wanted:
            if name not in plugins.registrations(stage):
                known = ", ".join(sorted(plugins.registrations(stage))) or "none"
                raise SeglensError(f"no {stage} called '{name}'",
                                   hint=f"available: {known}; `seglens plugins` lists what each plugin offers")
        # A map-only reducer (t-SNE: at most 2 components) as the clustering space fails here, not
        # after the embedding stage.
        method, n = cfg["reduce"]["method"], int(cfg["reduce"]["n_components"])
        limit = getattr(plugins.registrations("reducer")[method].factory, "max_components", None)
        if limit is not None and n > int(limit):
            raise SeglensError(f"reduce.method '{method}' gives at most {limit} dimensions, but "
                               f"reduce.n_components is {n}",
                               hint=f"keep '{method}' for the map (reduce.map_method={method}) and use umap or pca "
                                    "for reduce.method")

    def _run(self) -> RunSummary:
        from . import ingest

        self._check_names()

        cfg = self.config
        w = self.writer
        inputs_fp = inputs_fingerprint(self.request)
        fp_load = _fp(inputs_fp, cfg["load"], self.request.columns.__dict__, self.request.format,
                      self.request.value_kind)
        state: dict[str, Any] = {}

        # 1. load ------------------------------------------------------------------------------
        def load() -> list[str]:
            ds = ingest.load_dataset(self.request, cfg["load"])
            state["dataset"] = ds
            for table in ("events", "items", "user_attrs"):
                tmp = w.path(f".{table}.parquet.tmp")
                ds.con.execute(f"COPY (SELECT * FROM {table} ORDER BY ALL) TO '{tmp}' (FORMAT parquet)")
                os.replace(tmp, w.path(f"{table}.parquet"))
            atomic.write_json(w.path("dataset.json"), _dataset_meta(ds))
            return ["events.parquet", "items.parquet", "user_attrs.parquet", "dataset.json"]

        def load_restore() -> None:
            state["dataset"] = _restore_dataset(w.staging)

        self._stage("load", fp_load, load, load_restore)
        ds: Dataset = state["dataset"]
        for msg in ds.warnings:  # duplicates dropped, catalog coverage, rows a format drops: say so now
            progress.info(f"[yellow]warning:[/yellow] {escape(msg)}")
        self.used_plugins["loader"] = {"name": ds.loader, "plugin": plugins.plugin_of("loader", ds.loader),
                                       "version": plugins.version_of(plugins.plugin_of("loader", ds.loader))}
        self.warnings.extend(ds.warnings)

        # 2. features --------------------------------------------------------------------------
        fp_feat = _fp(fp_load, "features-v1")

        def features() -> list[str]:
            f = compute_features(ds)
            state["features"] = f
            atomic.write_parquet(w.path("features.parquet"), f.table)
            atomic.write_json(w.path("features_meta.json"), {"category_names": f.table.attrs.get("category_names", {})})
            return ["features.parquet", "features_meta.json"]

        def features_restore() -> None:
            meta = json.loads(w.path("features_meta.json").read_text())
            state["features"] = load_features(pd.read_parquet(w.path("features.parquet")), meta["category_names"])

        self._stage("features", fp_feat, features, features_restore)
        feats = state["features"]

        # 3. embed -----------------------------------------------------------------------------
        strategy = cfg["embed"]["strategy"]
        if strategy in ("item-pool", "history-text") and not ds.has_catalog:
            msg = (f"no item catalog with text: embedding strategy '{strategy}' needs item titles, "
                   "so users are embedded from behaviour features instead")
            progress.info(f"[yellow]warning:[/yellow] {msg}")
            self.warnings.append(msg)
            strategy = "behaviour"
        fp_embed = _fp(fp_feat, strategy, cfg["embed"], cfg["history"])
        embedder = self._use("embedder", strategy)

        def embed() -> list[str]:
            e = embedder.embed(ds, feats)
            _check_order(e, feats)
            state["embeddings"] = e
            atomic.write_npy(w.path("embeddings.npy"), e.vectors.astype(np.float32))
            files = ["embeddings.npy"]
            if e.item_vectors is not None and e.item_ids is not None:
                atomic.write_npy(w.path("item_vectors.npy"), e.item_vectors.astype(np.float32))
                atomic.write_parquet(w.path("item_vectors.parquet"), pd.DataFrame({"item_id": e.item_ids}))
                files += ["item_vectors.npy", "item_vectors.parquet"]
            atomic.write_json(w.path("embed_meta.json"), {"strategy": e.strategy, "model": e.model, "seconds": e.seconds})
            return files + ["embed_meta.json"]

        def embed_restore() -> None:
            meta = json.loads(w.path("embed_meta.json").read_text())
            item_ids = item_vecs = None
            if w.path("item_vectors.npy").exists():
                item_vecs = np.load(w.path("item_vectors.npy"))
                item_ids = pd.read_parquet(w.path("item_vectors.parquet"))["item_id"].to_numpy(dtype=object)
            state["embeddings"] = Embeddings(feats.user_ids, np.load(w.path("embeddings.npy")), meta["strategy"],
                                             meta["model"], item_ids, item_vecs)

        self._stage("embed", fp_embed, embed, embed_restore)
        emb: Embeddings = state["embeddings"]

        # 4. index -----------------------------------------------------------------------------
        fp_index = _fp(fp_embed, cfg["index"])
        index = self._use("index", cfg["index"].get("method", "faiss"))

        def build_index() -> list[str]:
            index.build(emb.vectors)
            atomic.write_with(w.path("index.faiss"), index.save)
            return ["index.faiss"]

        self._stage("index", fp_index, build_index, lambda: index.load(w.path("index.faiss")))

        # 5. reduce ----------------------------------------------------------------------------
        fp_reduce = _fp(fp_embed, cfg["reduce"], cfg["seed"])
        reducer = self._use("reducer", cfg["reduce"]["method"])
        mapper = reducer if cfg["reduce"]["map_method"] == cfg["reduce"]["method"] else \
            self._use_named("reducer", cfg["reduce"]["map_method"])

        def reduce() -> list[str]:
            reduced = reducer.reduce(emb.vectors, int(cfg["reduce"]["n_components"]), int(cfg["seed"]))
            t0 = time.perf_counter()
            coords = mapper.reduce(emb.vectors, 2, int(cfg["seed"]))
            map_seconds = time.perf_counter() - t0
            atomic.write_npy(w.path("reduced.npy"), reduced.astype(np.float32))
            atomic.write_npy(w.path("coords.npy"), coords.astype(np.float32))
            atomic.write_json(w.path("map.json"), self._map_record(mapper, map_seconds))
            return ["reduced.npy", "coords.npy", "map.json"]

        self._stage("reduce", fp_reduce, reduce, lambda: None)
        reduced = np.load(w.path("reduced.npy"))
        coords = np.load(w.path("coords.npy"))

        # 6. cluster ---------------------------------------------------------------------------
        fp_cluster = _fp(fp_reduce, cfg["cluster"])
        clusterer = self._use("clusterer", cfg["cluster"]["method"])

        def cluster() -> list[str]:
            result = clusterer.cluster(reduced, int(cfg["seed"]))
            labels = _relabel_by_size(np.asarray(result.labels, dtype=np.int64))
            users = pd.DataFrame({
                "user_id": feats.user_ids.astype(str),
                "segment": labels,
                "probability": np.asarray(result.probabilities, dtype=np.float64),
                "x": coords[:, 0].astype(np.float64),
                "y": coords[:, 1].astype(np.float64),
            })
            atomic.write_parquet(w.path("users.parquet"), users)
            atomic.write_json(w.path("cluster.json"), {"quality": result.quality, "params": result.params})
            return ["users.parquet", "cluster.json"]

        self._stage("cluster", fp_cluster, cluster, lambda: None)
        users = pd.read_parquet(w.path("users.parquet"))
        cluster_meta = json.loads(w.path("cluster.json").read_text())
        seg = Segmentation(users["segment"].to_numpy(), users["probability"].to_numpy(), reduced, coords,
                           cluster_meta["quality"], cluster_meta["params"])

        # 7. analyse ---------------------------------------------------------------------------
        names = list(cfg["analyses"])
        fp_analyse = _fp(fp_cluster, fp_index, names, cfg["analysis"])
        ctx = AnalysisContext(ds, feats, emb, seg, index, cfg)

        def analyse() -> list[str]:
            from .analyses import run_analyses

            files = run_analyses(ctx, names, w.staging, self._use_named)
            return files

        self._stage("analyse", fp_analyse, analyse, lambda: None)
        for name in names:
            self.used_plugins[f"analysis:{name}"] = self._plugin_record("analysis", name)

        # 8. describe --------------------------------------------------------------------------
        describer_name = cfg["describe"]["describer"]
        fp_describe = _fp(fp_analyse, cfg["describe"])

        def describe() -> list[str]:
            from .describing import describe_run

            warnings = describe_run(w.staging, self._use("describer", describer_name), cfg)
            atomic.write_json(w.path("describe.json"), {"warnings": warnings})
            return ["segments.json", "describe.json"]

        self._stage("describe", fp_describe, describe, lambda: None)
        self.used_plugins["describer"] = self._plugin_record("describer", describer_name)
        self.warnings.extend(json.loads(w.path("describe.json").read_text())["warnings"])

        # 9. manifest and report ---------------------------------------------------------------
        segments = json.loads(w.path("segments.json").read_text())
        n_users = len(users)
        summary = RunSummary(
            out=w.out,
            n_users=n_users,
            n_events=int(ds.stats.get("n_events", 0)),
            n_segments=len([s for s in segments if s["id"] >= 0]),
            noise_share=float((users["segment"] < 0).mean()) if n_users else 0.0,
            seconds=self.seconds,
            warnings=self.warnings,
            reused=self.reused,
        )
        self._write_manifest(ds, summary)
        t0 = time.perf_counter()
        from .runfolder import RunFolder

        run = RunFolder(w.staging)
        write_reports(run, list(cfg["report"]["formats"]), {**cfg["report"], "seed": cfg["seed"]})
        for fmt in cfg["report"]["formats"]:
            self.used_plugins[f"reporter:{fmt}"] = self._plugin_record("reporter", fmt)
        self.seconds["report"] = round(time.perf_counter() - t0, 3)
        self._write_manifest(ds, summary)
        w.finish()
        return summary

    def _use_named(self, stage: str, name: str) -> Any:
        options = dict(self.config.get(_section(stage), {}))
        options["seed"] = self.config["seed"]
        return plugins.create(stage, name, options)

    def _map_record(self, mapper: Any, seconds: float) -> dict[str, Any]:
        """How the 2-D map was made (method, plugin, input, seed, settings), for map.json, the
        manifest and the reports' captions; `seglens map --save` writes the same record."""
        method = self.config["reduce"]["map_method"]
        plugin = plugins.plugin_of("reducer", method)
        return {"method": method, "plugin": plugin, "version": plugins.version_of(plugin),
                "input": "embeddings.npy", "seed": int(self.config["seed"]), "seconds": round(seconds, 3),
                "settings": dict(getattr(mapper, "settings", {}) or {}), "source": "run"}

    def _plugin_record(self, stage: str, name: str) -> dict[str, str]:
        plugin = plugins.plugin_of(stage, name)
        return {"name": name, "plugin": plugin, "version": plugins.version_of(plugin)}

    def _write_manifest(self, ds: Dataset, summary: RunSummary) -> None:
        manifest = {
            "seglens_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "python": platform.python_version(),
            "seed": self.config["seed"],
            "config": self.config,
            "inputs": [i.__dict__ for i in ds.inputs],
            "loader": ds.loader,
            "value_kind": ds.value_kind,
            "has_catalog": ds.has_catalog,
            "plugins": self.used_plugins,
            "map": _read_json(self.writer.path("map.json")),
            "index": self.used_plugins.get("index", {"plugin": "faiss"}),
            "counts": {
                "users": summary.n_users,
                "events": summary.n_events,
                "items": int(ds.stats.get("n_items", 0)),
                "segments": summary.n_segments,
                "noise_users": int(round(summary.noise_share * summary.n_users)),
            },
            "stats": ds.stats,
            "warnings": self.warnings,
            "seconds": self.seconds,
            "reused_stages": self.reused,
        }
        atomic.write_json(self.writer.path("manifest.json"), manifest)


def inputs_fingerprint(request: LoadRequest) -> list[Any]:
    """Size and content hash of every input file (every file inside a folder input), so a resumed
    run notices when the data changed under it. A missing path is left for the loader to report."""
    out: list[Any] = []
    for path in (request.events, request.items, request.users):
        if path is None:
            continue
        p = Path(path)
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p] if p.is_file() else []
        for f in files:
            h = hashlib.sha256()
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
            out.append([str(f), f.stat().st_size, h.hexdigest()])
        if not files:
            out.append([str(p), "missing"])
    return out


# Which implementation a stage runs, by its key in `used_plugins` (the analyse stage names its own).
_STAGE_PLUGIN = {"load": "loader", "embed": "embedder", "index": "index", "reduce": "reducer",
                 "cluster": "clusterer", "describe": "describer"}


def _section(stage: str) -> str:
    return {"embedder": "embed", "index": "index", "reducer": "reduce", "clusterer": "cluster",
            "analysis": "analysis", "describer": "describe", "reporter": "report", "loader": "load"}[stage]


def _check_order(e: Embeddings, feats: Any) -> None:
    if len(e.user_ids) != len(feats.user_ids) or not np.array_equal(
        np.asarray(e.user_ids, dtype=object).astype(str), feats.user_ids.astype(str)
    ):
        raise RuntimeError("embedder returned users in a different order than the features table")


def _relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Number segments 0..K-1 from largest to smallest (noise stays -1), so ids read naturally."""
    out = np.full_like(labels, -1)
    ids, counts = np.unique(labels[labels >= 0], return_counts=True)
    order = ids[np.lexsort((ids, -counts))]
    for new, old in enumerate(order):
        out[labels == old] = new
    return out


def _dataset_meta(ds: Dataset) -> dict[str, Any]:
    return {
        "inputs": [i.__dict__ for i in ds.inputs],
        "value_kind": ds.value_kind,
        "has_catalog": ds.has_catalog,
        "has_user_attrs": ds.has_user_attrs,
        "loader": ds.loader,
        "warnings": ds.warnings,
        "stats": ds.stats,
    }


def _restore_dataset(folder: Path) -> Dataset:
    import duckdb

    from .model import InputFile

    meta = json.loads((folder / "dataset.json").read_text())
    con = duckdb.connect()
    for table in ("events", "items", "user_attrs"):
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_parquet(?)", [str(folder / f"{table}.parquet")])
    return Dataset(con=con, inputs=[InputFile(**i) for i in meta["inputs"]], value_kind=meta["value_kind"],
                   has_catalog=meta["has_catalog"], has_user_attrs=meta["has_user_attrs"], loader=meta["loader"],
                   warnings=meta["warnings"], stats=meta["stats"])


def restore_dataset(folder: Path) -> Dataset:
    """The dataset of a finished run, rebuilt from its Parquet files (no original logs needed)."""
    return _restore_dataset(Path(folder))


def _read_json(path: Path) -> Any:
    """A small JSON file of this run, or None when an older run (resumed) never wrote it."""
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
