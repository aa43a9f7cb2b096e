"""`seglens demo` end to end: the README's main job must recover the planted personas."""
from __future__ import annotations

import json

from helpers import seglens


def test_demo_recovers_planted_personas(tmp_path):
    r = seglens("demo", "-o", tmp_path / "d", "--users", "1500", "--seed", "3")
    assert r.returncode == 0, r.stderr
    assert "ARI against planted personas" in r.stdout
    demo = json.loads((tmp_path / "d" / "run" / "demo.json").read_text())
    assert demo["score"]["ari"] >= 0.8, demo["score"]
    assert demo["score"]["segments_found"] >= 8
    assert len(demo["planted"]) >= 8
    assert (tmp_path / "d" / "data" / "labels.csv").exists()
    assert "Loading weights" not in r.stderr
    r = seglens("demo", "-o", tmp_path / "d", "--users", "1500")
    assert r.returncode == 2 and "--force" in r.stderr
