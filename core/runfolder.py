"""The run folder: the single source of truth after a run.

A run is built in a sibling staging folder `<name>.partial/` with one checkpoint file per finished
stage, and only swapped into place when every stage is done. So an interrupted run leaves nothing
half-written where the user asked for output, and `--resume` picks the staging folder (or a finished
run) back up, reusing each stage whose fingerprint still matches.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import atomic
from .errors import SeglensError

MANIFEST = "manifest.json"
CHECKPOINTS = "stages"
REQUIRED_FILES = ("manifest.json", "users.parquet", "segments.json", "embeddings.npy", "index.faiss")


class RunWriter:
    """Stages a run folder and swaps it into place at the end."""

    def __init__(self, out: Path, *, force: bool = False, resume: bool = False) -> None:
        self.out = Path(out)
        self.staging = self.out.with_name(self.out.name + ".partial")
        if self.out.exists() and not self.out.is_dir():
            raise SeglensError("output path exists and is not a folder", file=self.out, hint="choose another -o")
        if self.out.exists() and not (force or resume):
            raise SeglensError(
                "run folder already exists",
                file=self.out,
                hint="pass --force to replace it, --resume to reuse its finished stages, or another -o",
            )
        if force and not resume and self.staging.exists():
            shutil.rmtree(self.staging)
        if resume and not self.staging.exists() and (self.out / MANIFEST).exists():
            shutil.copytree(self.out, self.staging)
        elif self.staging.exists() and not resume:
            shutil.rmtree(self.staging)
        self.staging.mkdir(parents=True, exist_ok=True)
        (self.staging / CHECKPOINTS).mkdir(exist_ok=True)

    def path(self, name: str) -> Path:
        return self.staging / name

    def checkpoint(self, stage: str) -> dict[str, Any] | None:
        p = self.staging / CHECKPOINTS / f"{stage}.json"
        if not p.exists():
            return None
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except ValueError:
            return None

    def is_done(self, stage: str, fingerprint: str) -> bool:
        cp = self.checkpoint(stage)
        return bool(cp) and cp.get("fingerprint") == fingerprint and all(
            (self.staging / f).exists() for f in cp.get("files", [])
        )

    def mark_done(self, stage: str, fingerprint: str, seconds: float, files: list[str], **extra: Any) -> None:
        atomic.write_json(
            self.staging / CHECKPOINTS / f"{stage}.json",
            {"fingerprint": fingerprint, "seconds": round(seconds, 3), "files": files, **extra},
        )

    def discard_if_empty(self) -> None:
        """Remove the staging folder if no stage finished in it (nothing worth resuming)."""
        stages = self.staging / CHECKPOINTS
        if self.staging.exists() and not any(stages.glob("*.json")):
            shutil.rmtree(self.staging, ignore_errors=True)

    def finish(self) -> Path:
        """Swap the staging folder into place; the old run (with --force) goes only after."""
        return swap_into_place(self.staging, self.out)


def swap_into_place(staging: Path, out: Path) -> Path:
    """Move a finished staging folder to `out` (a run, or an edited copy of one); an existing `out` is
    renamed aside first and deleted only once the new one is in place."""
    staging, out = Path(staging), Path(out)
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}-{int(time.time())}")
        os.replace(out, old)
    os.replace(staging, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out


class RunFolder:
    """Read access to a finished run, for every command that explores one."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise SeglensError("no such run folder", file=self.path, hint="pass the -o folder of `seglens run`")
        missing = [f for f in REQUIRED_FILES if not (self.path / f).exists()]
        if missing:
            raise SeglensError(
                f"not a complete seglens run folder (missing {', '.join(missing)})",
                file=self.path,
                hint="run `seglens run ... -o FOLDER` or `seglens run --resume` to finish it",
            )
        self.manifest: dict[str, Any] = json.loads((self.path / MANIFEST).read_text(encoding="utf-8"))

    # --- tables -------------------------------------------------------------------------------
    def users(self):
        import pandas as pd

        return pd.read_parquet(self.path / "users.parquet")

    def segments(self) -> list[dict[str, Any]]:
        return json.loads((self.path / "segments.json").read_text(encoding="utf-8"))

    def segment(self, segment_id: int) -> dict[str, Any]:
        for seg in self.segments():
            if int(seg["id"]) == int(segment_id):
                return seg
        ids = ", ".join(str(s["id"]) for s in self.segments())
        raise SeglensError(f"no segment {segment_id} in this run", file=self.path, hint=f"segments: {ids}")

    def embeddings(self) -> np.ndarray:
        return np.load(self.path / "embeddings.npy", mmap_mode="r", allow_pickle=False)

    def features(self):
        import pandas as pd

        return pd.read_parquet(self.path / "features.parquet")

    def index(self) -> Any:
        from . import plugins

        used = self.manifest.get("index", {})  # {"name", "plugin", "version"}; older runs: {"plugin": name}
        kind = used.get("name", used.get("plugin", "faiss"))
        idx = plugins.create("index", kind, self.manifest.get("config", {}).get("index", {}))
        idx.load(self.path / "index.faiss")
        return idx

    def connect(self) -> Any:
        """A DuckDB connection with views on the run's events, items and user attributes."""
        import duckdb

        con = duckdb.connect()
        for table in ("events", "items", "user_attrs"):
            p = self.path / f"{table}.parquet"
            if p.exists():
                literal = "'" + str(p).replace("'", "''") + "'"  # views cannot take parameters
                con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet({literal})")
        return con

    def user_row(self, user_id: str) -> int:
        users = self.users()
        hits = np.flatnonzero(users["user_id"].astype(str).to_numpy() == str(user_id))
        if len(hits) == 0:
            raise SeglensError(f"user '{user_id}' is not in this run", file=self.path / "users.parquet",
                               hint="user ids are matched as text; `seglens show RUN N` lists a segment's users")
        return int(hits[0])

    def save_segments(self, segments: list[dict[str, Any]]) -> None:
        atomic.write_json(self.path / "segments.json", segments)


def load_context(run: RunFolder) -> Any:
    """Rebuild the AnalysisContext of a finished run from its files alone (no original logs), so
    commands like compare and recommend, and re-analysis, work from the run folder."""
    import pandas as pd

    from .features import load_features
    from .model import AnalysisContext, Embeddings, Segmentation
    from .pipeline import restore_dataset

    p = run.path
    ds = restore_dataset(p)
    meta = json.loads((p / "features_meta.json").read_text(encoding="utf-8"))
    feats = load_features(pd.read_parquet(p / "features.parquet"), meta["category_names"])
    emb_meta = json.loads((p / "embed_meta.json").read_text(encoding="utf-8"))
    item_ids = item_vecs = None
    if (p / "item_vectors.npy").exists():
        item_vecs = np.load(p / "item_vectors.npy")
        item_ids = pd.read_parquet(p / "item_vectors.parquet")["item_id"].to_numpy(dtype=object)
    emb = Embeddings(feats.user_ids, np.load(p / "embeddings.npy"), emb_meta["strategy"], emb_meta["model"],
                     item_ids, item_vecs)
    users = run.users()
    cluster = json.loads((p / "cluster.json").read_text(encoding="utf-8"))
    seg = Segmentation(users["segment"].to_numpy(), users["probability"].to_numpy(), np.load(p / "reduced.npy"),
                       users[["x", "y"]].to_numpy(), cluster.get("quality", {}), cluster.get("params", {}))
    ctx = AnalysisContext(ds, feats, emb, seg, run.index(), run.manifest["config"])
    for s in run.segments():
        ctx.profiles[int(s["id"])] = {k: v for k, v in s.items() if isinstance(v, dict)}
    return ctx
