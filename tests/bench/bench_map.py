"""Time the 2-D map methods (umap, tsne, pca) on finished runs, and say how well each map keeps segments.

Each method runs in a fresh child process (this script with --child) that loads the run's
embeddings.npy (or reduced.npy with --space reduced), creates the reducer by name through the plugin
registry exactly as the pipeline and `seglens map --method` do, and computes the coordinates; the
parent reads the child's wall time, CPU time and peak RSS from os.wait4 and the 1-minute load
average meanwhile. "seconds" is the coordinate computation alone (imports and loading excluded);
"wall" is the whole child process. "agreement" is the share of (up to 5,000 sampled) assigned users
whose 10 nearest neighbours on the map mostly share their segment: a map that scatters a segment
scores low.

    .venv/bin/python tests/bench/bench_map.py RUN [RUN ...] --methods tsne,pca,umap
    .venv/bin/python tests/bench/bench_map.py --demo 10000,100000 --out /tmp/bench-map   # build runs first

--demo N builds a planted demo run of N users with the default pipeline (PCA for clustering and the
map, so that building it is quick; only its embeddings and segments are used), once per folder.
Not a pytest test; timings are never asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def child(run: Path, method: str, space: str, out: Path, seed: int | None) -> None:
    """Compute one map in this process and write its coordinates and timing."""
    import numpy as np

    from seglens import plugins
    from seglens.runfolder import RunFolder

    r = RunFolder(run)
    vectors = np.load(run / ("reduced.npy" if space == "reduced" else "embeddings.npy"))
    cfg = r.manifest.get("config", {})
    seed = int(cfg.get("seed", 42) if seed is None else seed)
    reducer = plugins.create("reducer", method, {**cfg.get("reduce", {}), "seed": seed})
    t0 = time.perf_counter()
    coords = reducer.reduce(vectors, 2, seed)
    seconds = time.perf_counter() - t0
    np.save(out, np.asarray(coords, dtype=np.float32), allow_pickle=False)
    out.with_suffix(".json").write_text(json.dumps({"seconds": round(seconds, 2),
                                                    "settings": getattr(reducer, "settings", {})}, default=str))


def agreement(coords, labels, seed: int = 0) -> float:
    """Share of sampled assigned users whose 10 map neighbours are mostly in their own segment."""
    import numpy as np
    from sklearn.neighbors import NearestNeighbors

    keep = np.flatnonzero(labels >= 0)
    rng = np.random.default_rng(seed)
    sample = rng.choice(keep, size=min(5000, len(keep)), replace=False)
    nn = NearestNeighbors(n_neighbors=11).fit(coords[keep])
    _, idx = nn.kneighbors(coords[sample])
    same = (labels[keep][idx[:, 1:]] == labels[sample][:, None]).mean(axis=1)
    return round(float((same > 0.5).mean()), 4)


def measure(run: Path, method: str, space: str, work: Path, seed: int | None) -> dict:
    import numpy as np
    import pandas as pd

    out = work / f"{run.name}-{method}-{space}.npy"
    cmd = [sys.executable, __file__, "--child", str(run), "--methods", method, "--space", space, "--coords", str(out)]
    if seed is not None:
        cmd += ["--seed", str(seed)]
    loads: list[float] = []
    done = threading.Event()

    def sample_load() -> None:
        while not done.wait(5):
            loads.append(os.getloadavg()[0])

    threading.Thread(target=sample_load, daemon=True).start()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    done.set()
    row = {"run": str(run), "method": method, "space": space, "exit": os.waitstatus_to_exitcode(status),
           "wall": round(wall, 1), "cpu": round(usage.ru_utime + usage.ru_stime, 1),
           "peak_rss_mb": round(usage.ru_maxrss / 1024),
           "load": round(sum(loads) / len(loads), 1) if loads else round(os.getloadavg()[0], 1)}
    if row["exit"] == 0:
        info = json.loads(out.with_suffix(".json").read_text())
        labels = pd.read_parquet(run / "users.parquet")["segment"].to_numpy()
        coords = np.load(out)
        row.update(users=len(labels), seconds=info["seconds"], settings=info["settings"],
                   finite=bool(np.isfinite(coords).all()), agreement=agreement(coords, labels))
    return row


def demo_run(n: int, root: Path) -> Path:
    """A planted demo run of n users (PCA reduce, keywords, profile only), built once."""
    run = root / f"demo-{n // 1000}k"
    if (run / "manifest.json").is_file():
        return run
    from seglens.default_plugins.demo_data import generate_demo

    files = generate_demo(root / f"data-{n // 1000}k", n_users=n, seed=42)
    cmd = [sys.executable, "-m", "seglens", "-q", "run", str(files.events), "--items", str(files.items), "--users",
           str(files.users), "-o", str(run), "--force", "--describer", "keywords", "--set", "reduce.method=pca",
           "--set", "reduce.map_method=pca", "--set", 'analyses=["profile"]', "--set", 'report.formats=["md"]']
    subprocess.run(cmd, check=True, cwd=REPO)
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="*", type=Path, help="finished run folders")
    ap.add_argument("--methods", default="tsne,pca,umap", help="comma list of reducer names")
    ap.add_argument("--space", default="embeddings", choices=["embeddings", "reduced"])
    ap.add_argument("--demo", default="", help="comma list of user counts: build planted demo runs first")
    ap.add_argument("--out", type=Path, help="folder for demo runs and coordinates (default: a temp dir)")
    ap.add_argument("--seed", type=int, default=None, help="default: each run's own seed")
    ap.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--coords", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.methods, args.space, args.coords, args.seed)
        return
    work = args.out or Path(tempfile.mkdtemp(prefix="seglens-bench-map-"))
    work.mkdir(parents=True, exist_ok=True)
    runs = list(args.runs) + [demo_run(int(n), work) for n in args.demo.split(",") if n.strip()]
    if not runs:
        ap.error("give run folders or --demo N")
    print(f"# seglens map benchmark: {os.cpu_count()} cores; coordinates in {work}", flush=True)
    rows = []
    for run in runs:
        for method in [m for m in args.methods.split(",") if m]:
            row = measure(run, method, args.space, work, args.seed)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print()
    print(f"{'run':>28}  {'method':>6}  {'users':>8}  {'seconds':>8}  {'wall':>7}  {'cpu':>7}  {'peakMB':>6}  "
          f"{'load':>4}  agreement")
    for r in rows:
        print(f"{Path(r['run']).name[-28:]:>28}  {r['method']:>6}  {r.get('users', 0):>8,}  "
              f"{r.get('seconds', float('nan')):>8.1f}  {r['wall']:>7.1f}  {r['cpu']:>7.1f}  {r['peak_rss_mb']:>6}  "
              f"{r['load']:>4}  {r.get('agreement', 'FAILED')}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=str))


if __name__ == "__main__":
    main()
