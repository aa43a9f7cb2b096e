"""`seglens explore`: the interactive session driven through a real pseudo-terminal (pexpect), and
`--script` through the real command line.

One small demo run (800 users, PCA instead of UMAP, three analyses, no Markdown charts) is built
once per module; every test that edits works on its own copy.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pexpect
import pytest

from helpers import seglens

pytestmark = pytest.mark.xdist_group("explore_runs")

FAST = ["--describer", "keywords", "--set", "reduce.method=pca", "--set", "reduce.map_method=pca",
        "--set", 'analyses=["profile","similarity","recommendations"]', "--set", "report.md_charts=false"]
HOSTILE = "<script>x</script> [bold]y[/bold]"


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("explore")
    r = seglens("demo", "--users", "800", "-o", root / "demo", *FAST)
    assert r.returncode == 0, r.stderr
    return root / "demo" / "run"


@pytest.fixture
def run(demo: Path, tmp_path: Path) -> Path:
    """A private copy of the demo run, named `run` (so the prompt is `run> `)."""
    dst = tmp_path / "work" / "run"
    shutil.copytree(demo, dst)
    return dst


def spawn(run: Path, home: Path) -> pexpect.spawn:
    """`seglens explore RUN` on a pseudo-terminal, with its own history folder."""
    env = {**os.environ, "SEGLENS_CACHE_DIR": str(home), "COLUMNS": "200", "NO_COLOR": "1", "TERM": "xterm",
           "PROMPT_TOOLKIT_NO_CPR": "1"}  # pexpect does not answer cursor-position requests
    child = pexpect.spawn(sys.executable, ["-m", "seglens", "explore", str(run)], env=env, encoding="utf-8",
                          timeout=60, dimensions=(50, 200))
    child.expect("users in")
    prompt(child)
    return child


def prompt(child: pexpect.spawn) -> None:
    child.expect(r"run>")


def command(child: pexpect.spawn, line: str, *expected: str) -> str:
    """Type a line, wait for each expected pattern in turn, then for the next prompt; the output."""
    child.sendline(line)
    seen = []
    for pattern in expected:
        child.expect(pattern)
        seen.append(child.before + child.after)
    prompt(child)
    return "".join(seen) + child.before


def leave(child: pexpect.spawn) -> None:
    child.sendline("quit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def seglens_stdin(*args: object, stdin: str) -> subprocess.CompletedProcess:
    """The real command line with `stdin` piped in (so not a terminal)."""
    return subprocess.run([sys.executable, "-m", "seglens", *map(str, args)], input=stdin, capture_output=True,
                          text=True, env={**os.environ, "COLUMNS": "200"}, timeout=300)


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def segments(run: Path) -> dict[int, dict]:
    return {int(s["id"]): s for s in json.loads((run / "segments.json").read_text())}


def unique_prefix(ids: list[str]) -> tuple[str, str]:
    """A user id and the shortest prefix of it that no other id starts with (shorter than the id)."""
    ids = sorted(ids)
    for uid in ids:
        for n in range(1, len(uid)):
            if sum(1 for other in ids if other.startswith(uid[:n])) == 1:
                return uid, uid[:n]
    raise AssertionError("every id is a prefix of another")


# --- reading --------------------------------------------------------------------------------------
def test_completion_read_commands_and_errors_on_a_terminal(demo: Path, tmp_path: Path):
    users = pd.read_parquet(demo / "users.parquet")
    uid, prefix = unique_prefix(users["user_id"].astype(str).tolist())
    seg = int(users.loc[users["user_id"] == uid, "segment"].iat[0])
    child = spawn(demo, tmp_path / "home")
    # a command name completed with Tab
    child.send("segm\t")
    child.expect("ents")
    child.send("\r")
    child.expect(r"800 users in \d+ segments")
    prompt(child)
    # a user id completed with Tab: the user's segment, history and recommendations
    child.send(f"user {prefix}\t")
    child.expect(uid[len(prefix):])
    child.send("\r")
    child.expect(f"user {uid}: segment {seg} ")
    child.expect("recent history")
    child.expect(f"recommendations for {uid}")
    prompt(child)
    # an option completed with Tab
    child.send("users 0 --li\t")
    child.expect("mit")
    child.send(" 3\r")
    child.expect(r"segment 0: .* 3 of [\d,]+ users")
    prompt(child)
    command(child, "show 0", "Lifted categories", "Representative users")
    command(child, "compare 0 1 --top 3", r"segment 0 \([\d,]+ users\) vs segment 1")
    command(child, "similar --segment 0", "segments most similar to 0")
    out = command(child, "segments --json", r'"name": "Unassigned users"')
    assert '"id": 0' in out
    command(child, "ask \"which segment is the largest?\"", r"\[segment 0\]")
    # mistakes: one line, and the session goes on
    command(child, "show 99", r"error: .*no segment 99 in this run")
    command(child, "shwo 1", r"error: unknown command 'shwo' \(did you mean `show`\?")
    command(child, "user nobody-here", r"error: user 'nobody-here' is not in this run")
    command(child, 'rename 1 "unclosed', r"error: cannot split the line")
    # Ctrl-C drops the line being typed: what follows is a fresh line
    child.send("bogus")
    child.sendintr()
    prompt(child)
    command(child, "users 1 --limit 2", r"segment 1: .* 2 of")
    child.sendeof()  # Ctrl-D leaves
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_history_is_kept_between_sessions(demo: Path, tmp_path: Path):
    home = tmp_path / "home"
    child = spawn(demo, home)
    command(child, "users 2 --limit 4", r"segment 2: .* 4 of")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    history = (home / "explore_history").read_text()
    assert "users 2 --limit 4" in history
    child = spawn(demo, home)
    child.send("\x1b[A")  # Up: the previous session's last command comes back
    child.expect("--limit 4")
    child.send("\r")
    child.expect(r"segment 2: .* 4 of")
    prompt(child)
    leave(child)


# --- editing --------------------------------------------------------------------------------------
def test_rename_saves_logs_escapes_and_survives_describe(run: Path, tmp_path: Path):
    before = segments(run)
    child = spawn(run, tmp_path / "home")
    command(child, f"rename 2 {json.dumps(HOSTILE)}", "renamed")
    out = command(child, "segments", "Unassigned users")
    assert HOSTILE in out  # shown as typed: not rich markup
    command(child, f"rename 3 {json.dumps(HOSTILE.upper())}", r"error: segment 2 is already called")
    command(child, "rename -1 Nobody", r"error: unassigned users \(-1\) are not a segment")
    command(child, "edits", "1 edits")
    leave(child)

    after = segments(run)
    assert after[2]["name"] == HOSTILE and after[2]["name_source"] == "human"
    assert {k: v["name"] for k, v in after.items() if k != 2} == {k: v["name"] for k, v in before.items() if k != 2}
    log = [json.loads(line) for line in (run / "edits.jsonl").read_text().splitlines()]
    assert len(log) == 1 and log[0]["command"] == "rename"
    assert log[0]["before"]["name"] == before[2]["name"] and log[0]["after"]["name"] == HOSTILE
    html = (run / "report.html").read_text()
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "<script>x</script>" not in html
    assert "\\<script\\>x\\</script\\>" in (run / "report.md").read_text()
    assert not list(run.parent.glob(".run.edit-partial"))

    # a later `seglens describe` writes descriptions again but keeps the analyst's name
    r = seglens("describe", run, "--describer", "keywords")
    assert r.returncode == 0, r.stderr
    assert HOSTILE in r.stdout  # its table prints the name as text, not markup
    assert segments(run)[2]["name"] == HOSTILE
    assert segments(run)[3]["name"] == before[3]["name"]


def test_merge_moves_users_recomputes_and_rewrites_reports(run: Path, tmp_path: Path):
    before = segments(run)
    users_before = pd.read_parquet(run / "users.parquet")
    b_users = set(users_before.loc[users_before["segment"] == 1, "user_id"])
    a_users = set(users_before.loc[users_before["segment"] == 0, "user_id"])
    report_before = (run / "report.html").read_text()
    child = spawn(run, tmp_path / "home")
    command(child, "merge 0 0", r"error: cannot merge segment 0 with itself")
    command(child, "merge 0 -1", r"error: unassigned users \(-1\) are not a segment")
    command(child, "merge 0 99", r"error: .*no segment 99 in this run")
    command(child, "merge 0 1", r"merged segment 1 .* into 0: now [\d,]+ users")
    out = command(child, "segments", "Unassigned users")
    assert f"in {len([k for k in before if k >= 0]) - 1} segments" in out
    command(child, "show 1", r"error: .*no segment 1 in this run")
    command(child, "users 0 --limit 1", r"1 of " + f"{len(a_users | b_users):,}" + " users")
    leave(child)

    after = segments(run)
    real = [k for k in after if k >= 0]
    assert len(real) == len([k for k in before if k >= 0]) - 1 and 1 not in after
    users = pd.read_parquet(run / "users.parquet")
    assert set(users.loc[users["segment"] == 0, "user_id"]) == a_users | b_users
    assert (users["segment"] == 1).sum() == 0
    merged = after[0]
    assert merged["size"] == before[0]["size"] + before[1]["size"]
    assert merged["profile"]["rfm"]["users"] == merged["size"]  # the profile was recomputed
    assert merged["description"].startswith(f"{merged['size']:,} users")  # and the description
    for k in real:
        if k != 0:
            assert after[k]["name"] == before[k]["name"] and after[k]["size"] == before[k]["size"]
    # the centroids: one per remaining segment; the merged one is the normalized mean of its users
    cents = np.load(run / "segment_centroids.npy")
    assert cents.shape[0] == len(real)
    emb = np.load(run / "embeddings.npy")
    mean = emb[(users["segment"] == 0).to_numpy()].mean(axis=0)
    assert np.allclose(cents[sorted(real).index(0)], mean / np.linalg.norm(mean), atol=1e-5)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["counts"]["segments"] == len(real)
    html = (run / "report.html").read_text()
    assert html != report_before and merged["name"] in html.replace("&amp;", "&")
    log = json.loads((run / "edits.jsonl").read_text().splitlines()[-1])
    assert log["command"] == "merge" and log["arguments"] == {"into": 0, "merged": 1}
    assert log["after"]["moved_users"] == len(b_users)


def test_a_failing_merge_leaves_the_run_unchanged(run: Path, tmp_path: Path):
    # the last step of the merge (writing the reports) fails for real: an unknown report format
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["config"]["report"]["formats"] = ["md", "html", "nope"]
    (run / "manifest.json").write_text(json.dumps(manifest))
    before = snapshot(run)
    child = spawn(run, tmp_path / "home")
    command(child, "merge 0 1", r"error: no reporter called 'nope'")
    command(child, "show 1", "Representative users")  # still there
    leave(child)
    assert snapshot(run) == before
    assert not (run.parent / ".run.edit-partial").exists()


def test_an_interrupted_merge_leaves_the_run_unchanged(run: Path, tmp_path: Path):
    before = snapshot(run)
    staging = run.parent / ".run.edit-partial"
    # Ctrl-C while the merge runs: the edit is discarded and the session goes on
    child = spawn(run, tmp_path / "home")
    child.sendline("merge 0 1")
    _wait_for(staging)
    child.sendintr()
    child.expect("interrupted; the edit was discarded and the run is unchanged")
    prompt(child)
    command(child, "show 1", "Representative users")
    leave(child)
    assert snapshot(run) == before and not staging.exists()
    # the process killed outright mid-merge: the run is untouched, the next edit clears the leftovers
    child = spawn(run, tmp_path / "home")
    child.sendline("merge 0 1")
    _wait_for(staging)
    child.kill(signal.SIGKILL)
    child.close()
    assert snapshot(run) == before
    r = seglens_stdin("explore", run, "--script", "-", stdin="merge 0 1\n")
    assert r.returncode == 0, r.stderr
    assert 1 not in segments(run) and not staging.exists()


def _wait_for(path: Path, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.01)


# --- scripts --------------------------------------------------------------------------------------
def test_script_runs_commands_and_stops_at_a_bad_line(run: Path, tmp_path: Path):
    out_csv = tmp_path / "members.csv"
    script = tmp_path / "cmds.txt"
    script.write_text(f"# read, rename, export\n\nsegments --json\nusers 0 --limit 2 --json\n"
                      f"rename 4 Weekend cooks\nexport {out_csv}\n")
    r = seglens("explore", run, "--script", script)
    assert r.returncode == 0, r.stderr
    first, second = _json_documents(r.stdout)[:2]
    assert first[0]["id"] == 0 and len(second["users"]) == 2
    assert "renamed 'Weekend cooks'" in r.stdout and str(out_csv) in r.stdout
    members = pd.read_csv(out_csv, dtype={"user_id": str})
    assert list(members.columns) == ["user_id", "segment", "segment_name"] and len(members) == 800
    assert set(members.loc[members["segment"] == 4, "segment_name"]) == {"Weekend cooks"}

    bad = tmp_path / "bad.txt"
    bad.write_text("segments --json\n# fine so far\nmerge 2 2\nsegments\n")
    r = seglens("explore", run, "--script", bad)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [(f"error: {bad}: line 3 (merge 2 2): cannot merge segment 2 with "
                                              "itself (give two different segment ids)")]
    assert r.stdout.count('"name": "Unassigned users"') == 1  # stopped before line 4


def test_explore_without_a_terminal_or_with_a_bad_run(demo: Path, tmp_path: Path):
    r = seglens_stdin("explore", demo, stdin="segments\n")
    assert r.returncode == 2
    assert r.stderr.strip() == ("error: an interactive session needs a terminal (pass --script FILE, or --script - "
                                "to read the commands from stdin)")
    r = seglens_stdin("explore", tmp_path / "nope", "--script", "-", stdin="segments\n")
    assert r.returncode == 2 and "no such run folder" in r.stderr
    r = seglens_stdin("explore", demo, "--script", tmp_path / "missing.txt", stdin="")
    assert r.returncode == 2 and "no such script file" in r.stderr


def _json_documents(text: str) -> list:
    """The JSON values printed one after another."""
    decoder, out, i = json.JSONDecoder(), [], 0
    while i < len(text):
        if text[i] in "[{":
            obj, i = decoder.raw_decode(text, i)
            out.append(obj)
        else:
            i += 1
    return out
