"""A plain (non-editable) install ships `seglens`, its default plugins and prompts, and nothing
named `core` or `plugins` at the top level of site-packages."""
from __future__ import annotations

import subprocess
import sys

from helpers import REPO


def test_plain_install_layout(tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(REPO)], check=True, capture_output=True)
    top = {p.name for p in target.iterdir()}
    assert "seglens" in top and "core" not in top and "plugins" not in top and "prompts" not in top
    assert (target / "seglens" / "default_plugins" / "faiss_index.py").exists()
    assert (target / "seglens" / "prompts" / "__init__.py").exists()
    eps = next(target.glob("seglens-*.dist-info")) / "entry_points.txt"
    text = eps.read_text()
    assert "[seglens]" in text and "seglens.default_plugins.cluster_hdbscan" in text
    probe = subprocess.run(
        [sys.executable, "-c", "import seglens, seglens.default_plugins.cluster_hdbscan as m; print(m.__file__)"],
        capture_output=True, text=True, env={"PYTHONPATH": str(target)}, cwd=tmp_path)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.startswith(str(target))
