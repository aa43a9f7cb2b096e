"""`seglens explore RUN`: explore one run folder in an interactive session at the terminal, or run
the same commands from a script (`--script FILE`, `-` for stdin).

The read commands `segments`, `show`, `similar`, `compare` and `ask` are the command line's own
commands run on this run, so they print the same tables and take the same options (`--json`
included); `recommend` shares its computation and table with `seglens recommend` but keeps the
run's recommender in memory between calls. The session adds `users`, `user`, `export` and `edits`,
and the two edits `rename` and `merge` (seglens.run_edits: atomic, logged in the run's
edits.jsonl, reports rewritten).

Tab completes command names, options, segment ids, user ids (a binary search over the sorted ids,
so it stays instant for 100k users) and file names for `export`. The history is kept across
sessions in $SEGLENS_CACHE_DIR/explore_history (default ~/.cache/seglens/explore_history).
"""
from __future__ import annotations

import difflib
import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import click
import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

from seglens import hookimpl
from seglens.cli import NEGATIVE_NUMBER, negatives_as_arguments, valued_options
from seglens.errors import SeglensError
from seglens.runfolder import RunFolder

HISTORY_FILE = "explore_history"
QUIT = ("quit", "exit")


def history_path() -> Path:
    """Where the session history lives: next to the embedding cache, not in the run folder (which an
    edit swaps out, and which may be shared read-only)."""
    from seglens.embed_cache import cache_dir

    return cache_dir() / HISTORY_FILE


def _console() -> Console:
    return Console()


def _say(text: str) -> None:
    """Print text from the data as it is: never rich markup, never highlighted."""
    _console().print(Text(text), highlight=False)


# --- the session -------------------------------------------------------------------------------
class Session:
    """One run folder and what is worth keeping between commands (users, ids, the recommender);
    everything is re-read after an edit."""

    def __init__(self, run_dir: Path, root: click.Group) -> None:
        self.path = Path(run_dir)
        self.root = root
        self.commands = build_commands(root)
        self._con: Any = None
        self.reload()

    def reload(self) -> None:
        if self._con is not None:
            self._con.close()
        self.run = RunFolder(self.path)
        self._con = None
        self._users: Any = None
        self._sorted_ids: np.ndarray | None = None
        self._rows: dict[str, int] | None = None
        self._activity: Any = None
        self._rec: Any = None

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    # --- tables --------------------------------------------------------------------------------
    @property
    def users(self) -> Any:
        if self._users is None:
            self._users = self.run.users()
            self._users["user_id"] = self._users["user_id"].astype(str)
        return self._users

    def segments(self) -> list[dict[str, Any]]:
        return self.run.segments()

    def segment_names(self) -> dict[int, str]:
        return {int(s["id"]): s.get("name", "") for s in self.segments()}

    def sorted_user_ids(self) -> np.ndarray:
        if self._sorted_ids is None:
            self._sorted_ids = np.sort(self.users["user_id"].to_numpy(dtype=str))
        return self._sorted_ids

    def user_row(self, user_id: str) -> int:
        if self._rows is None:
            self._rows = {u: i for i, u in enumerate(self.users["user_id"])}
        if str(user_id) not in self._rows:
            raise SeglensError(f"user '{user_id}' is not in this run",
                               hint="user ids are matched as text; Tab completes them, `users N` lists some")
        return self._rows[str(user_id)]

    def activity(self) -> Any:
        """Events and last activity per user (from features.parquet), in users.parquet's order."""
        if self._activity is None:
            path = self.path / "features.parquet"
            cols = ["user_id", "n_events", "last_ts"]
            frame = pd.read_parquet(path, columns=cols) if path.exists() else pd.DataFrame(columns=cols)
            frame["user_id"] = frame["user_id"].astype(str)
            self._activity = self.users[["user_id"]].merge(frame, on="user_id", how="left")
        return self._activity

    def connect(self) -> Any:
        if self._con is None:
            self._con = self.run.connect()
        return self._con

    def recommender(self) -> Any:
        if self._rec is None:
            from seglens.default_plugins.analysis_recommendations import Recommender

            self._rec = Recommender.from_run(self.run)
        return self._rec

    def command(self, name: str) -> "ReplCommand":
        if name in self.commands:
            return self.commands[name]
        close = difflib.get_close_matches(name, [*self.commands, *QUIT], n=1)
        hint = f"did you mean `{close[0]}`? " if close else ""
        raise SeglensError(f"unknown command '{name}'", hint=hint + "`help` lists the commands")


# --- commands ----------------------------------------------------------------------------------
@dataclass
class ReplCommand:
    """A session command: its own Click command, or a `seglens` command run on the session's run."""

    name: str
    usage: str
    summary: str
    command: click.Command
    args: tuple[str, ...] = ()  # what each positional is, for completion: segment, user, path, command
    forward: bool = False
    edits: bool = False

    def invoke(self, session: Session, args: list[str]) -> None:
        if self.forward:
            self.command.main(args=[str(session.path), *args], prog_name=self.name, standalone_mode=False)
        else:
            self.command.main(args=list(args), prog_name=self.name, standalone_mode=False, obj=session)

    def options(self) -> list[str]:
        out = {"--help"}
        for p in self.command.params:
            if isinstance(p, click.Option):
                out.update([*p.opts, *p.secondary_opts])
        return sorted(out)

    def value_options(self) -> set[str]:
        return valued_options(self.command)


FORWARDED = [
    # name, seglens command, usage, summary, positional kinds
    ("segments", "show", "segments [--json]", "a table of the run's segments", ()),
    ("show", "show", "show N [--json]", "one segment's profile", ("segment",)),
    ("similar", "similar", "similar ID [-k K] [--json] | similar --segment N",
     "the users nearest user ID (FAISS), or the segments nearest segment N", ("user",)),
    ("compare", "compare", "compare A B [--top N] [--json] | compare A --rest",
     "how segment A differs from B (or from everyone else): tests and effect sizes", ("segment", "segment")),
    ("ask", "ask", 'ask "QUESTION" [--json]', "answer a question from the run's facts, citing segments", ()),
]


def build_commands(root: click.Group) -> dict[str, ReplCommand]:
    """The session's commands: the forwarded `seglens` ones that are installed, then its own."""
    out: dict[str, ReplCommand] = {}
    for name, target, usage, summary, kinds in FORWARDED:
        cmd = root.commands.get(target)
        if cmd is not None:
            out[name] = ReplCommand(name, usage, summary, cmd, kinds, forward=True)
    for rc in OWN:
        out[rc.name] = rc
    return dict(sorted(out.items()))


def _echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, ensure_ascii=False, default=str))


def _positive(value: int, option: str) -> None:
    if value < 1:
        raise SeglensError(f"{option} must be at least 1, got {value}")


# `users N`
def segment_members(session: Session, segment: int, limit: int) -> dict[str, Any]:
    """The most typical members of a segment: its representative users (nearest its centroid)
    first, then the others by membership probability."""
    seg = session.run.segment(segment)
    users = session.users
    act = session.activity()
    rows = np.flatnonzero(users["segment"].to_numpy() == int(segment))
    reps = [r["user_id"] for r in seg.get("profile", {}).get("representatives", [])]
    rank = {u: i for i, u in enumerate(reps)}
    ids = users["user_id"].to_numpy()[rows]
    prob = users["probability"].to_numpy()[rows]
    order = sorted(range(len(rows)), key=lambda j: (rank.get(ids[j], len(rank)), -prob[j], ids[j]))[:limit]
    out = []
    for j in order:
        last = act["last_ts"].iat[rows[j]] if len(act) else None
        events = act["n_events"].iat[rows[j]] if len(act) else None
        out.append({"user_id": ids[j], "probability": round(float(prob[j]), 4), "representative": ids[j] in rank,
                    "events": None if pd.isna(events) else int(events),
                    "last_active": None if pd.isna(last) else str(last)[:10]})
    return {"segment": int(segment), "name": seg.get("name", ""), "size": int(len(rows)), "users": out}


@click.command(name="users")
@click.argument("segment", type=int)
@click.option("--limit", type=int, default=20, show_default=True, help="How many users to list.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def users_cmd(session: Session, segment: int, limit: int, as_json: bool) -> None:
    """The most typical members of segment N: representative users first, then by membership."""
    _positive(limit, "--limit")
    res = segment_members(session, segment, limit)
    if as_json:
        _echo_json(res)
        return
    t = Table(title=Text(f"segment {res['segment']}: {res['name']} - {len(res['users'])} of {res['size']:,} users"))
    for col, just in (("user", "left"), ("membership", "right"), ("events", "right"), ("last active", "left"),
                      ("representative", "left")):
        t.add_column(col, justify=just)
    for u in res["users"]:
        t.add_row(Text(u["user_id"]), f"{u['probability']:.2f}", "" if u["events"] is None else f"{u['events']:,}",
                  u["last_active"] or "", "yes" if u["representative"] else "")
    _console().print(t)


# `user ID`
def user_history(session: Session, user_id: str, limit: int) -> tuple[int, list[dict[str, Any]]]:
    """The user's event count and newest `limit` events, with item titles when the run has a catalog."""
    con = session.connect()
    has_items = (session.path / "items.parquet").exists()
    title = "i.title" if has_items else "NULL"
    join = "LEFT JOIN items i USING (item_id)" if has_items else ""
    total = con.execute("SELECT count(*) FROM events WHERE user_id = ?", [str(user_id)]).fetchone()[0]
    rows = con.execute(
        f"SELECT e.ts, e.event, e.item_id, {title} AS title, e.value FROM events e {join} "
        "WHERE e.user_id = ? ORDER BY e.ts DESC, e.item_id LIMIT ?", [str(user_id), int(limit)]).fetchall()
    return int(total), [{"time": str(ts), "event": ev, "item_id": str(item), "title": ttl,
                         "value": None if pd.isna(val) else float(val)}
                        for ts, ev, item, ttl, val in rows]


def user_info(session: Session, user_id: str, n_history: int, k: int) -> dict[str, Any]:
    """Everything `user ID` shows: segment, recent history, recommendations."""
    from seglens.default_plugins.analysis_recommendations import user_recommendations

    row = session.user_row(user_id)
    seg = int(session.users["segment"].iat[row])
    total, history = user_history(session, user_id, n_history)
    recs = user_recommendations(session.run, session.recommender(), str(user_id), k)
    return {"user_id": str(user_id), "segment": seg, "segment_name": session.segment_names().get(seg, ""),
            "probability": round(float(session.users["probability"].iat[row]), 4), "events": total,
            "history": history, "recommendations": recs["items"]}


@click.command(name="user")
@click.argument("user_id")
@click.option("--history", "n_history", type=int, default=10, show_default=True, help="How many recent events.")
@click.option("-k", "k", type=int, default=5, show_default=True, help="How many recommendations.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def user_cmd(session: Session, user_id: str, n_history: int, k: int, as_json: bool) -> None:
    """One user: their segment, recent history and recommendations."""
    from seglens.default_plugins.analysis_recommendations import print_user_recommendations

    _positive(n_history, "--history")
    _positive(k, "-k")
    res = user_info(session, user_id, n_history, k)
    if as_json:
        _echo_json(res)
        return
    _say(f"user {res['user_id']}: segment {res['segment']} ({res['segment_name']}), membership "
         f"{res['probability']:.2f}, {res['events']:,} events")
    t = Table(title=f"recent history ({len(res['history'])} of {res['events']:,} events)")
    for col, just in (("time", "left"), ("event", "left"), ("item", "left"), ("value", "right")):
        t.add_column(col, justify=just)
    for h in res["history"]:
        t.add_row(h["time"][:16], Text(str(h["event"] or "")), Text(h["title"] or h["item_id"]),
                  "" if h["value"] is None else f"{h['value']:g}")
    _console().print(t)
    print_user_recommendations({"user_id": res["user_id"], "segment": res["segment"],
                                "segment_name": res["segment_name"], "items": res["recommendations"]})


@click.command(name="recommend")
@click.argument("user_id")
@click.option("-k", "k", type=int, default=10, show_default=True, help="How many items.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def recommend_cmd(session: Session, user_id: str, k: int, as_json: bool) -> None:
    """Unseen items for USER_ID, as `seglens recommend` (the run's recommender stays loaded)."""
    from seglens.default_plugins.analysis_recommendations import print_user_recommendations, user_recommendations

    _positive(k, "-k")
    session.user_row(user_id)
    res = user_recommendations(session.run, session.recommender(), str(user_id), k)
    if as_json:
        _echo_json(res)
    else:
        print_user_recommendations(res)


# edits
@click.command(name="rename")
@click.argument("segment", type=int)
@click.argument("name", nargs=-1, required=True)
@click.pass_obj
def rename_cmd(session: Session, segment: int, name: tuple[str, ...]) -> None:
    """Name segment N yourself (unique in the run; kept by later `seglens describe`)."""
    from seglens.run_edits import rename_segment

    try:
        entry = rename_segment(session.path, segment, " ".join(name))
    finally:
        session.reload()
    _say(f"segment {segment}: '{entry['before']['name']}' renamed '{entry['after']['name']}'; "
         f"logged in edits.jsonl, reports rewritten")


@click.command(name="merge")
@click.argument("a", type=int)
@click.argument("b", type=int)
@click.pass_obj
def merge_cmd(session: Session, a: int, b: int) -> None:
    """Move every user of segment B into A (B's id is retired), then redo analyses, A's description
    and the reports."""
    from seglens.run_edits import merge_segments

    try:
        entry = merge_segments(session.path, a, b)
    finally:
        session.reload()
    old_b = entry["before"][1]
    after = entry["after"]
    left = len([s for s in session.segments() if int(s["id"]) >= 0])
    _say(f"merged segment {b} ('{old_b['name']}', {old_b['size']:,} users) into {a}: now {after['size']:,} users, "
         f"named '{after['name']}'; {left} segments; analyses, description and reports redone in "
         f"{after['seconds']:.1f}s")


@click.command(name="export")
@click.argument("file", required=False, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def export_cmd(session: Session, file: Path | None, as_json: bool) -> None:
    """Write every user's segment and segment name to FILE (.csv or .parquet by its extension;
    default RUNNAME-segments.csv in the current folder)."""
    from seglens.default_plugins.analysis_recommendations import _out_format, _write

    path = Path(file) if file is not None else Path.cwd() / f"{session.path.name}-segments.csv"
    fmt = _out_format(path)
    if path.is_dir():
        raise SeglensError("the export path is a folder", file=path, hint="give a file name ending .csv or .parquet")
    frame = session.users[["user_id", "segment"]].copy()
    frame["segment_name"] = frame["segment"].map(session.segment_names()).fillna("")
    _write(frame, path, fmt)
    res = {"file": str(path.resolve()), "rows": int(len(frame)), "format": fmt}
    if as_json:
        _echo_json(res)
    else:
        _say(f"wrote {res['rows']:,} memberships (user_id, segment, segment_name) to {res['file']}")


def _change(entry: dict[str, Any]) -> str:
    before, after = entry.get("before"), entry.get("after") or {}
    if entry.get("command") == "rename":
        return f"segment {after.get('segment')}: '{before.get('name')}' -> '{after.get('name')}'"
    if entry.get("command") == "merge":
        a, b = before
        return (f"{b['segment']} ('{b['name']}', {b['size']:,}) into {a['segment']} ('{a['name']}', {a['size']:,}) "
                f"-> {after.get('size', 0):,} users, '{after.get('name')}'")
    return json.dumps(entry.get("arguments"))


@click.command(name="edits")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def edits_cmd(session: Session, as_json: bool) -> None:
    """The run's edit log (edits.jsonl), oldest first."""
    from seglens.run_edits import read_edits

    entries = read_edits(session.path)
    if as_json:
        _echo_json(entries)
        return
    if not entries:
        _say("this run has not been edited")
        return
    t = Table(title=f"{len(entries)} edits")
    for col in ("time", "command", "change"):
        t.add_column(col)
    for e in entries:
        t.add_row(e.get("time", ""), e.get("command", ""), Text(_change(e)))
    _console().print(t)


@click.command(name="help")
@click.argument("command", required=False)
@click.pass_obj
def help_cmd(session: Session, command: str | None) -> None:
    """The commands, or one command's usage and options."""
    if command:
        rc = session.command(command)
        _say(rc.usage)
        _say(rc.summary + ".")
        if rc.forward:
            _say(f"(`seglens {rc.command.name}` on this run; the same options:)")
        for p in rc.command.params:
            if isinstance(p, click.Option):
                _say(f"  {', '.join(p.opts):<22} {p.help or ''}")
        return
    t = Table(title="commands", show_header=False, box=None)
    t.add_column("usage", style="bold")
    t.add_column("what")
    for rc in session.commands.values():
        t.add_row(Text(rc.usage), Text(rc.summary))
    t.add_row(Text("quit | exit | Ctrl-D"), Text("leave (Ctrl-C cancels the line being typed)"))
    _console().print(t)
    _say(f"Tab completes commands, segment ids and user ids; history: {history_path()}; `help COMMAND` for options.")


OWN = [
    ReplCommand("users", "users N [--limit K] [--json]", "representative and most probable members of segment N",
                users_cmd, ("segment",)),
    ReplCommand("user", "user ID [--history N] [-k K] [--json]", "a user's segment, recent history and "
                "recommendations", user_cmd, ("user",)),
    ReplCommand("recommend", "recommend ID [-k K] [--json]", "unseen items for a user (segment list blended "
                "with FAISS neighbours)", recommend_cmd, ("user",)),
    ReplCommand("rename", 'rename N "new name"', "name a segment yourself (unique; later describes keep it)",
                rename_cmd, ("segment",), edits=True),
    ReplCommand("merge", "merge A B", "move B's users into A; analyses, A's description and reports redone",
                merge_cmd, ("segment", "segment"), edits=True),
    ReplCommand("export", "export [FILE] [--json]", "write user_id, segment, segment_name to .csv or .parquet",
                export_cmd, ("path",)),
    ReplCommand("edits", "edits [--json]", "the run's edit log", edits_cmd),
    ReplCommand("help", "help [COMMAND]", "this list, or one command's options", help_cmd, ("command",)),
]


# --- running one line ----------------------------------------------------------------------------
def split_line(line: str) -> list[str]:
    """Words as a shell would split them (quotes group, `#` starts a comment)."""
    try:
        return shlex.split(line, comments=True)
    except ValueError as exc:
        raise SeglensError(f"cannot split the line into words: {exc}",
                           hint='close the quotes, e.g. rename 3 "Weekend cooks"') from None


def execute(session: Session, line: str) -> bool:
    """Run one line; False when it asks to leave. A mistake raises SeglensError (one line)."""
    words = split_line(line)
    if not words:
        return True
    name, args = words[0], words[1:]
    if name in QUIT:
        return False
    rc = session.command(name)
    try:
        rc.invoke(session, negatives_as_arguments(args, rc.value_options()))
    except click.exceptions.Exit:
        pass
    except click.ClickException as exc:
        raise SeglensError(exc.format_message(), hint=f"`help {name}` shows its usage") from None
    return True


# --- completion ----------------------------------------------------------------------------------
def _positional_index(words: list[str], rc: ReplCommand) -> int:
    """How many positionals precede the word being completed (option values are skipped)."""
    takes_value = rc.value_options()
    n, skip = 0, False
    for w in words[1:-1]:
        if skip:
            skip = False
        elif w.startswith("-") and not NEGATIVE_NUMBER.match(w):
            skip = w in takes_value
        else:
            n += 1
    return n


def prefix_matches(sorted_ids: np.ndarray, prefix: str, limit: int = 200) -> list[str]:
    """Ids starting with `prefix`, by binary search in the sorted ids (fast for any run size)."""
    start = int(np.searchsorted(sorted_ids, prefix, side="left"))
    out = []
    for i in range(start, min(len(sorted_ids), start + limit)):
        if not sorted_ids[i].startswith(prefix):
            break
        out.append(str(sorted_ids[i]))
    return out


def completions(session: Session, text: str) -> Iterator[tuple[str, str]]:
    """(word, note) pairs completing the last word of `text`."""
    words = text.split()
    if not text or text[-1].isspace():
        words.append("")
    word = words[-1]
    if len(words) == 1:
        for name, rc in session.commands.items():
            if name.startswith(word):
                yield name, rc.summary
        for name in QUIT:
            if name.startswith(word):
                yield name, "leave"
        return
    rc = session.commands.get(words[0])
    if rc is None:
        return
    if word.startswith("-") and not NEGATIVE_NUMBER.match(word):
        yield from ((o, "") for o in rc.options() if o.startswith(word))
        return
    if not rc.args or words[-2] in rc.value_options():  # nothing to offer for an option's value
        return
    kind = rc.args[min(_positional_index(words, rc), len(rc.args) - 1)]
    if kind == "segment":
        for sid, name in session.segment_names().items():
            if str(sid).startswith(word):
                yield str(sid), name
    elif kind == "user":
        yield from ((u, "") for u in prefix_matches(session.sorted_user_ids(), word))
    elif kind == "command":
        yield from ((n, "") for n in session.commands if n.startswith(word))


def make_completer(session: Session) -> Any:
    from prompt_toolkit.completion import Completer, Completion, PathCompleter
    from prompt_toolkit.document import Document

    paths = PathCompleter(expanduser=True)

    class ExploreCompleter(Completer):
        def get_completions(self, document: Any, complete_event: Any) -> Iterable[Any]:
            text = document.text_before_cursor
            words = text.split()
            word = "" if not text or text[-1].isspace() else words[-1]
            rc = session.commands.get(words[0]) if words and (len(words) > 1 or not word) else None
            if rc is not None and rc.args == ("path",) and not word.startswith("-"):
                yield from paths.get_completions(Document(word, len(word)), complete_event)
                return
            for value, note in completions(session, text):
                yield Completion(value, start_position=-len(word), display_meta=note)

    return ExploreCompleter()


# --- the two modes -------------------------------------------------------------------------------
def _interrupted(rc_name: str | None, session: Session) -> None:
    edit = rc_name in session.commands and session.commands[rc_name].edits
    click.echo("interrupted" + ("; the edit was discarded and the run is unchanged" if edit else ""), err=True)


def _first_word(line: str) -> str | None:
    parts = line.split()
    return parts[0] if parts else None


def interactive(session: Session) -> None:
    """The terminal session: prompt, completion, history; errors print one line and it goes on."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    hist = history_path()
    try:
        hist.parent.mkdir(parents=True, exist_ok=True)
        history: Any = FileHistory(str(hist))
    except OSError:
        history = InMemoryHistory()
    prompt = PromptSession(history=history, completer=make_completer(session), complete_while_typing=False)
    counts = session.run.manifest.get("counts", {})
    _say(f"{session.path}: {len(session.users):,} users in {counts.get('segments', '?')} segments. "
         "`help` lists the commands, Tab completes, Ctrl-D leaves.")
    while True:
        try:
            line = prompt.prompt(f"{session.path.name}> ")
        except KeyboardInterrupt:
            continue
        except EOFError:
            break
        try:
            if not execute(session, line):
                break
        except SeglensError as exc:
            click.echo(f"error: {exc.one_line()}", err=True)
        except (KeyboardInterrupt, click.exceptions.Abort):
            _interrupted(_first_word(line), session)
        except Exception as exc:  # one failing command must not end the session
            if type(exc).__name__ == "InterruptException":  # DuckDB's Ctrl-C
                _interrupted(_first_word(line), session)
            else:
                click.echo(f"internal error: {type(exc).__name__}: {exc} (please report it)", err=True)


def run_script(session: Session, source: str) -> None:
    """Run a script's lines in order; the first error stops it (exit 2) naming the line."""
    if source == "-":
        label, text = "<stdin>", sys.stdin.read()
    else:
        path = Path(source)
        if not path.is_file():
            raise SeglensError("no such script file", file=path, hint="give a text file with one command per line")
        label, text = str(path), path.read_text(encoding="utf-8")
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            if not execute(session, line):
                return
        except SeglensError as exc:
            raise SeglensError(f"line {number} ({line.strip()}): {exc.one_line()}", file=label) from None


@click.command(name="explore")
@click.argument("run_dir", metavar="RUN", type=click.Path(path_type=Path))
@click.option("--script", metavar="FILE", help="Run the commands in FILE, one per line (- reads stdin), "
              "instead of an interactive session; the first error stops with exit code 2.")
@click.pass_context
def explore_cmd(ctx: click.Context, run_dir: Path, script: str | None) -> None:
    """Explore a run interactively: segments, users, comparisons, recommendations, questions, and
    edits (rename, merge) saved atomically with an edit log. `help` inside lists the commands."""
    root = ctx.find_root().command
    if script is None and not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise SeglensError("an interactive session needs a terminal",
                           hint="pass --script FILE, or --script - to read the commands from stdin")
    session = Session(run_dir, root)  # type: ignore[arg-type]
    try:
        if script is not None:
            run_script(session, script)
        else:
            interactive(session)
    finally:
        session.close()


@hookimpl
def register_commands(cli: Any) -> None:
    cli.add_command(explore_cmd)
