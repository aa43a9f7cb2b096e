"""The `json` reporter: `report.json`, one file with everything a script needs about a run.

It holds the manifest summary (counts, period, seed, quality, config, plugins, inputs, warnings,
seconds, how the map was drawn), each analysis's run-level facts (or why it was skipped), and every
segment exactly as in segments.json. `format` names the layout (`seglens-report/1`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from seglens import atomic, hookimpl
from seglens.default_plugins.report_data import as_dict, clean, read_json, run_name
from seglens.runfolder import RunFolder


def report_json(run: RunFolder) -> dict[str, Any]:
    m = run.manifest
    analyses = as_dict(read_json(run.path / "analyses.json"))
    stats = as_dict(m.get("stats"))
    return clean({
        "format": "seglens-report/1",
        "run": run_name(run.path),
        "summary": {
            "seglens_version": m.get("seglens_version"), "created": m.get("created"), "seed": m.get("seed"),
            "loader": m.get("loader"), "value_kind": m.get("value_kind"), "has_catalog": m.get("has_catalog"),
            "counts": m.get("counts", {}), "period": {"first": stats.get("first_ts"), "last": stats.get("last_ts")},
            "quality": {**as_dict(as_dict(as_dict(analyses.get("profile")).get("facts")).get("quality")),
                        **{k: v for k, v in as_dict(as_dict(analyses.get("quality")).get("facts")).items()
                           if not isinstance(v, (dict, list))}},
            "config": m.get("config", {}), "plugins": m.get("plugins", {}), "inputs": m.get("inputs", []),
            "warnings": m.get("warnings", []), "seconds": m.get("seconds", {}), "map": m.get("map", {}),
        },
        "analyses": {name: ({"skipped": a.get("skipped")} if as_dict(a).get("skipped") else as_dict(a).get("facts", {}))
                     for name, a in analyses.items()},
        "segments": run.segments(),
    })


class JsonReporter:
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options

    def write(self, run: RunFolder, path: Path) -> Path:
        return atomic.write_json(Path(path), report_json(run))


@hookimpl
def register_reporters(register):
    register("json", JsonReporter, description="report.json: the segments and the manifest summary")
