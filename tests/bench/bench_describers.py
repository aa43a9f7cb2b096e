"""Benchmark the describers on finished runs and print the issue's description-quality figures:
matching accuracy, grounding rate, fallbacks, seconds per segment and tokens per second.

Each describer re-describes a copy of the run through the real command line (`seglens describe`,
then `seglens evaluate --descriptions --json`) with the reply cache off, so figures are cold.

    .venv/bin/python tests/bench/bench_describers.py                     # demo (3,000 users) + ml-small
    .venv/bin/python tests/bench/bench_describers.py --runs demo --describers keywords,local:smollm2
    .venv/bin/python tests/bench/bench_describers.py --run-dir /path/to/run   # an existing run

Describers: keywords, local:MODEL (smollm2, gemma3-270m, a folder or .gguf), openai:MODEL@URL.
Not a pytest test. Prints the load average beside each row: a busy machine slows local models a lot.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
DEFAULT_DESCRIBERS = "keywords,local:smollm2,local:gemma3-270m"


def seglens(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seglens", *map(str, args)], capture_output=True, text=True)


def build_run(name: str, work: Path) -> Path:
    """A finished keyword-described run for a named scenario (built once per benchmark)."""
    out = work / f"{name}-run"
    if name == "demo" and (work / "demo" / "run" / "manifest.json").is_file():
        return work / "demo" / "run"  # built by an earlier call with the same --out
    if (out / "manifest.json").is_file():
        return out
    if name == "demo":
        r = seglens("-q", "demo", "-o", work / "demo")
        out = work / "demo" / "run"
    elif name == "ml-small":
        r = seglens("-q", "run", SHARED / "movielens-ml-latest-small", "-o", out, "--describer", "keywords")
    else:
        raise SystemExit(f"unknown run '{name}': use demo or ml-small, or --run-dir")
    if r.returncode != 0:
        raise SystemExit(f"building the {name} run failed: {r.stderr.strip()[-400:]}")
    return out


def describe_args(spec: str) -> list[str]:
    kind, _, model = spec.partition(":")
    args = ["--describer", "local" if kind == "local" else kind, "--set", "describe.cache=false"]
    if kind == "openai":
        model, _, url = model.partition("@")
        args += ["--set", f"describe.base_url={url}"]
    if model:
        args += ["--model", model]
    return args


def bench_one(run: Path, spec: str, work: Path) -> dict:
    copy = work / f"{run.name}-{spec.replace(':', '-').replace('/', '_')}"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(run, copy)
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    r = seglens("-q", "describe", copy, *describe_args(spec))
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        return {"describer": spec, "error": r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "failed"}
    ev = seglens("evaluate", copy, "--descriptions", "--json")
    d = json.loads(ev.stdout)["descriptions"] if ev.returncode == 0 else {}
    segs = [s for s in json.loads((copy / "segments.json").read_text()) if s["id"] >= 0]
    return {"describer": spec, "segments": d.get("segments"), "matching_accuracy": d.get("matching_accuracy"),
            "chance": d.get("chance"), "grounding_rate": d.get("grounding_rate"), "fallbacks": d.get("fallbacks"),
            "seconds_per_segment": d.get("seconds_per_segment"), "tokens_per_second": d.get("tokens_per_second"),
            "wall_seconds": round(wall, 1), "load_average": round(load, 2),
            "names": [s["name"] for s in segs],
            "fallback_reasons": sorted({s.get("description_meta", {}).get("fallback_reason", "")[:80]
                                        for s in segs} - {""})}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default="demo,ml-small", help="demo, ml-small (comma-separated)")
    ap.add_argument("--run-dir", type=Path, help="benchmark this finished run instead")
    ap.add_argument("--describers", default=DEFAULT_DESCRIBERS)
    ap.add_argument("--json", type=Path, help="also write the rows here")
    ap.add_argument("--out", type=Path, help="work folder (default: a temporary one)")
    a = ap.parse_args()
    work = a.out or Path(tempfile.mkdtemp(prefix="seglens-bench-describers-"))
    work.mkdir(parents=True, exist_ok=True)
    runs = {a.run_dir.name: a.run_dir} if a.run_dir else {n: build_run(n, work) for n in a.runs.split(",")}
    rows = []
    for name, run in runs.items():
        for spec in a.describers.split(","):
            row = {"run": name, **bench_one(run, spec, work)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"\n{'run':10} {'describer':20} {'match':>6} {'chance':>6} {'ground':>6} {'fallb':>5} "
          f"{'s/seg':>7} {'tok/s':>6} {'load':>5}")
    for r in rows:
        if "error" in r:
            print(f"{r['run']:10} {r['describer']:20} error: {r['error']}")
            continue
        print(f"{r['run']:10} {r['describer']:20} {r['matching_accuracy']!s:>6} {r['chance']!s:>6} "
              f"{r['grounding_rate']!s:>6} {r['fallbacks']!s:>5} {r['seconds_per_segment']!s:>7} "
              f"{r['tokens_per_second']!s:>6} {r['load_average']:>5}")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
