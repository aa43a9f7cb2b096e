"""`seglens demo`: generate a realistic synthetic service with planted personas, run the whole
pipeline on it, and score the segments against the planted truth (adjusted Rand index).

It is the quickest way to see seglens work end to end, offline, and a standing check that the
defaults recover structure that is really there.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from seglens import atomic, hookimpl, progress
from seglens.cli import config_from_options, pipeline_options, print_summary


def score_against_planted(run_dir: Path, labels_csv: Path) -> dict[str, Any]:
    """ARI of the run's segments against the planted personas, over all users and over non-noise."""
    import pandas as pd
    from sklearn.metrics import adjusted_rand_score

    users = pd.read_parquet(run_dir / "users.parquet")
    truth = pd.read_csv(labels_csv, dtype={"user_id": str})
    m = users.merge(truth, on="user_id", how="inner")
    planted = m["persona"] != "noise"
    found = m["segment"] >= 0
    both = planted & found
    return {
        "ari": round(float(adjusted_rand_score(m["persona"], m["segment"])), 4),
        "ari_planted_assigned": round(float(adjusted_rand_score(m.loc[both, "persona"], m.loc[both, "segment"])), 4),
        "users_scored": int(len(m)),
        "planted_personas": int(m.loc[planted, "persona"].nunique()),
        "segments_found": int(m.loc[found, "segment"].nunique()),
        "noise_share": round(float((~found).mean()), 4),
    }


@hookimpl
def register_commands(cli):
    @cli.command()
    @click.option("-o", "--out", type=click.Path(path_type=Path), default=Path("seglens-demo"), show_default=True,
                  help="Folder for the generated data (data/) and the run folder (run/).")
    @click.option("--users", "n_users", type=int, default=3000, show_default=True, help="How many users to simulate.")
    @pipeline_options
    def demo(out: Path, n_users: int, force: bool, resume: bool, **options: Any) -> None:
        """Simulate a service with planted personas, segment it, and print the ARI against them."""
        from seglens.default_plugins.demo_data import generate_demo
        from seglens.errors import SeglensError
        from seglens.model import LoadRequest
        from seglens.pipeline import Pipeline

        if n_users < 50:
            raise SeglensError(f"--users {n_users} is too few to plant 8 personas", hint="use at least 50")
        cfg = config_from_options(**options)
        run_dir = out / "run"
        if run_dir.exists() and not (force or resume):
            raise SeglensError("demo run folder already exists", file=run_dir,
                               hint="pass --force to replace it or -o for another folder")
        progress.info(f"generating {n_users:,} users into {out / 'data'}")
        files = generate_demo(out / "data", n_users=n_users, seed=int(cfg["seed"]))
        request = LoadRequest(events=files.events, items=files.items, users=files.users)
        summary = Pipeline(request, cfg, run_dir, force=force, resume=resume).run()
        print_summary(summary)
        score = score_against_planted(run_dir, files.labels)
        atomic.write_json(run_dir / "demo.json", {"planted": files.personas, "score": score})
        click.echo(f"ARI against planted personas: {score['ari']:.3f} "
                   f"(planted users in segments: {score['ari_planted_assigned']:.3f}; "
                   f"{score['segments_found']} segments for {score['planted_personas']} personas)")
