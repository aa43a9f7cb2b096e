"""Benchmark the whole pipeline, CSV files to report, and print a table of figures.

Each run is the real command line (`python -m seglens run ...`) in a fresh subprocess, so its peak
memory is its own (ru_maxrss from os.wait4 on that child) and its time includes start-up, imports and
model loading, as a user would see it. Every run gets an empty embedding cache (SEGLENS_CACHE_DIR set
to a new folder), so the figures are cold; --warm adds a second run on the same cache.

    .venv/bin/python tests/bench/bench_pipeline.py                       # all scenarios, both strategies
    .venv/bin/python tests/bench/bench_pipeline.py --scenarios demo-10k,ml-small --strategies item-pool
    .venv/bin/python tests/bench/bench_pipeline.py --all --json bench.json --out /tmp/bench

Not a pytest test (pytest collects test_*.py only). The project's goal: 100k users and about 3M
events from CSV to report in at most 5 minutes with item-pool, in under 4 GB.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
STAGES = ["load", "features", "embed", "index", "reduce", "cluster", "analyse", "describe", "report"]
SCENARIOS = {"demo-10k": 10_000, "demo-100k": 100_000, "ml-small": None}  # None: real data, no planted truth
STRATEGIES = ["item-pool", "history-text"]
HISTORY_TEXT_USERS_PER_S = 85  # MiniLM on 2 cores, from the embedder's own description
RENDER_MS_PER_USER = 12  # history rendering (per-user pandas), measured at 10k users
SLOW_ABOVE = 50_000  # history-text is skipped above this many users unless --all


def scenario_inputs(name: str, data_root: Path) -> tuple[list[str], Path | None]:
    """The input arguments of `seglens run` for a scenario, and the planted labels (demo only)."""
    if SCENARIOS[name] is None:
        return [str(SHARED / "movielens-ml-latest-small")], None
    folder = data_root / name
    return [str(folder / "events.csv"), "--items", str(folder / "items.csv"), "--users", str(folder / "users.csv")], \
        folder / "labels.csv"


def generate(name: str, data_root: Path) -> None:
    """Write a demo scenario's CSV files once (same seed, same bytes); real data needs nothing."""
    folder = data_root / name
    if SCENARIOS[name] is None or (folder / "labels.csv").is_file():
        return
    from seglens.default_plugins.demo_data import generate_demo

    t0 = time.perf_counter()
    generate_demo(folder, n_users=SCENARIOS[name], seed=42)
    print(f"# generated {name} in {time.perf_counter() - t0:.1f}s -> {folder}", flush=True)


def code_version() -> str:
    git = ["git", "-C", str(REPO)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "--", "core", "plugins", "pyproject.toml"],
                           capture_output=True, text=True).stdout.splitlines()
    return f"{head or 'unknown'}" + (f" + {len(dirty)} uncommitted files in core/, plugins/" if dirty else "")


def run_once(cmd: list[str], cache_dir: Path, log: Path) -> dict:
    """Run `cmd` in a fresh process: exit code, wall and CPU seconds, peak RSS MB of that process, and
    the machine's mean 1-minute load average meanwhile (above ~2 on 2 cores, others were competing)."""
    env = {**os.environ, "SEGLENS_CACHE_DIR": str(cache_dir), "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    loads: list[float] = []
    done = threading.Event()

    def sample_load() -> None:
        while not done.wait(5):
            loads.append(os.getloadavg()[0])

    sampler = threading.Thread(target=sample_load, daemon=True)
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, not all children's
    wall = time.perf_counter() - t0
    done.set()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"exit": proc.returncode, "total": round(wall, 2), "cpu": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024),  # Linux reports KiB
            "load": round(sum(loads) / len(loads), 1) if loads else round(os.getloadavg()[0], 1)}


def row_for(scenario: str, strategy: str, cache: str, run_dir: Path, labels: Path | None, measured: dict) -> dict:
    row = {"scenario": scenario, "strategy": strategy, "cache": cache, **measured, "run_dir": str(run_dir)}
    wall = measured["total"]
    manifest = run_dir / "manifest.json"
    if measured["exit"] != 0 or not manifest.is_file():
        return row
    m = json.loads(manifest.read_text())
    row.update(users=m["counts"]["users"], events=m["counts"]["events"], segments=m["counts"]["segments"],
               noise=round(m["counts"]["noise_users"] / max(m["counts"]["users"], 1), 4),
               seconds=m["seconds"], stage_sum=round(sum(m["seconds"].values()), 2),
               users_per_s=round(m["counts"]["users"] / wall, 1))
    analyses = run_dir / "analyses.json"
    if analyses.is_file():  # seconds per analysis, recorded by run_analyses (older runs lack them)
        row["analyses"] = {name: {"seconds": a.get("seconds"), "skipped": a.get("skipped")}
                           for name, a in json.loads(analyses.read_text()).items()}
    embed_meta = run_dir / "embed_meta.json"
    if embed_meta.is_file():
        row["embed_detail"] = json.loads(embed_meta.read_text()).get("seconds")
    if labels is not None:
        from seglens.default_plugins.demo import score_against_planted

        row["ari"] = score_against_planted(run_dir, labels)["ari"]
    return row


def print_table(rows: list[dict]) -> None:
    head = ["scenario", "strategy", "cache", "users", "events"] + STAGES + \
        ["total", "cpu", "users/s", "peakMB", "load", "ARI", "segs", "noise"]
    widths = [9, 12, 5, 7, 9] + [8] * len(STAGES) + [7, 7, 7, 6, 4, 6, 4, 6]
    print("  ".join(h.rjust(w) for h, w in zip(head, widths)))
    for r in rows:
        sec = r.get("seconds", {})
        cells = [r["scenario"], r["strategy"], r["cache"], f"{r.get('users', '-'):,}" if "users" in r else "-",
                 f"{r['events']:,}" if "events" in r else "-"]
        cells += [f"{sec[s]:.1f}" if s in sec else "-" for s in STAGES]
        cells += [f"{r['total']:.1f}", f"{r['cpu']:.1f}", f"{r.get('users_per_s', '-')}", f"{r['peak_rss_mb']}",
                  f"{r['load']}",
                  f"{r['ari']:.3f}" if "ari" in r else "-", str(r.get("segments", "-")),
                  f"{r['noise']:.1%}" if "noise" in r else "-"]
        if r["exit"] != 0:
            cells[-1] = f"FAILED exit {r['exit']}"
        print("  ".join(c.rjust(w) for c, w in zip(cells, widths)))


def print_analyses(rows: list[dict]) -> None:
    """Seconds per analysis of each run, slowest first, so the costly one is plain to see; the
    remainder is the stage's own overhead (building segments.json, writing files)."""
    for r in rows:
        per = r.get("analyses")
        if not per:
            continue
        stage = r.get("seconds", {}).get("analyse")
        timed = {k: v["seconds"] for k, v in per.items() if v.get("seconds") is not None}
        print(f"\nanalyses of {r['scenario']} {r['strategy']} {r['cache']} (analyse stage "
              f"{'-' if stage is None else f'{stage:.1f}'} s, sum of analyses {sum(timed.values()):.1f} s):")
        for name in sorted(per, key=lambda k: -(per[k].get("seconds") or 0.0)):
            sec = per[name].get("seconds")
            share = f"{sec / stage:6.1%}" if sec is not None and stage else "     -"
            skipped = f"  (skipped: {per[name]['skipped']})" if per[name].get("skipped") else ""
            print(f"  {name:>16}  {'-' if sec is None else f'{sec:8.2f}'} s  {share}{skipped}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"comma list of {', '.join(SCENARIOS)}")
    ap.add_argument("--strategies", default=",".join(STRATEGIES), help=f"comma list of {', '.join(STRATEGIES)}")
    ap.add_argument("--out", type=Path, help="folder for generated data and run folders (default: a temp dir)")
    ap.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    ap.add_argument("--all", action="store_true", help=f"also run history-text above {SLOW_ABOVE:,} users (slow)")
    ap.add_argument("--describer", default="keywords",
                    help="describer for every run (default keywords: offline, no LLM; pass local to time the LLM)")
    ap.add_argument("--warm", action="store_true", help="after each cold run, run again on the same cache")
    args = ap.parse_args()

    scenarios = [s for s in args.scenarios.split(",") if s]
    strategies = [s for s in args.strategies.split(",") if s]
    for name, known in [(s, SCENARIOS) for s in scenarios] + [(s, STRATEGIES + ["behaviour"]) for s in strategies]:
        if name not in known:
            ap.error(f"unknown name {name!r}; choose from {', '.join(known)}")
    out = args.out or Path(tempfile.mkdtemp(prefix="seglens-bench-"))
    out.mkdir(parents=True, exist_ok=True)

    plan, notes = [], []
    for scenario in scenarios:
        n = SCENARIOS[scenario]
        for strategy in strategies:
            if strategy == "history-text" and n and n > SLOW_ABOVE and not args.all:
                notes.append(f"# skipped {scenario} x history-text: at least {n / HISTORY_TEXT_USERS_PER_S / 60:.0f} "
                             f"minutes (encoding alone at ~{HISTORY_TEXT_USERS_PER_S} users/s; rendering the "
                             f"histories adds ~{RENDER_MS_PER_USER} ms/user) -- pass --all to run it")
                continue
            for cache in ["cold", "warm"] if args.warm else ["cold"]:
                plan.append((scenario, strategy, cache))

    inputs = {s: scenario_inputs(s, out / "data") for s in dict.fromkeys(p[0] for p in plan)}
    commands = []
    for scenario, strategy, cache in plan:
        run_dir = out / "runs" / f"{scenario}-{strategy}-{cache}"
        cmd = [sys.executable, "-m", "seglens", "run", *inputs[scenario][0], "-o", str(run_dir),
               "--strategy", strategy, "--describer", args.describer, "--force"]
        commands.append((scenario, strategy, cache, run_dir, cmd, out / "caches" / f"{scenario}-{strategy}"))

    print(f"# seglens pipeline benchmark: code {code_version()}; {os.cpu_count()} cores; output in {out}")
    print("# each run: a fresh process with an empty SEGLENS_CACHE_DIR (a warm run reuses its cold run's)")
    for scenario, strategy, cache, run_dir, cmd, cache_dir in commands:
        print(f"SEGLENS_CACHE_DIR={cache_dir} {shlex.join(cmd)}")
    for note in notes:
        print(note)
    print(flush=True)
    for scenario in inputs:
        generate(scenario, out / "data")

    rows = []
    for scenario, strategy, cache, run_dir, cmd, cache_dir in commands:
        if cache == "cold":
            shutil.rmtree(cache_dir, ignore_errors=True)  # empty: a cold run
            cache_dir.mkdir(parents=True)
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        log = run_dir.parent / f"{run_dir.name}.log"
        row = row_for(scenario, strategy, cache, run_dir, inputs[scenario][1], run_once(cmd, cache_dir, log))
        rows.append(row)
        print(f"# {scenario} {strategy} {cache}: exit {row['exit']}, {row['total']:.1f}s wall, {row['cpu']:.1f}s cpu, "
              f"{row['peak_rss_mb']} MB, load {row['load']}" + (f" (see {log})" if row["exit"] else ""), flush=True)

    print()
    print("seconds per stage (wall) from the run's manifest; total = wall time of the process (start-up, imports "
          "and model load included); cpu = its user+sys CPU seconds; users/s = users / total; peakMB = its max RSS; "
          "load = mean 1-min load average during the run (2 cores: above ~2.5 means other work competed)")
    print_table(rows)
    print_analyses(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
        print(f"\nrows written to {args.json}")
    if any(r["exit"] != 0 for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
