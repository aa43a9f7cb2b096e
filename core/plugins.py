"""The plugin manager: the one piece of global state seglens keeps.

Built-in plugins and third-party ones load through the same entry-point group, `seglens`, so the
built-ins prove the hooks are enough. `SEGLENS_LOAD_PLUGINS=a,b` restricts loading to those names
(entry-point names or module names), which makes tests and bug reports reproducible.
"""
from __future__ import annotations

import importlib.metadata as md
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Callable

import pluggy

from . import hookspecs
from .errors import PluginError, SeglensError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "seglens"
STAGES = {
    "loader": "register_loaders",
    "embedder": "register_embedders",
    "index": "register_indexes",
    "reducer": "register_reducers",
    "clusterer": "register_clusterers",
    "analysis": "register_analyses",
    "describer": "register_describers",
    "reporter": "register_reporters",
}


@dataclass
class Registration:
    """One named implementation of a stage, and the plugin that offered it."""

    stage: str
    name: str
    factory: Callable[..., Any]
    plugin: str
    description: str = ""


@dataclass
class PluginInfo:
    name: str
    module: str
    version: str
    distribution: str
    hooks: list[str] = field(default_factory=list)


pm = pluggy.PluginManager("seglens")
pm.add_hookspecs(hookspecs)
_loaded = False
_infos: dict[str, PluginInfo] = {}


def _allowed() -> set[str] | None:
    raw = os.environ.get("SEGLENS_LOAD_PLUGINS")
    if raw is None:
        return None
    return {p.strip() for p in raw.split(",") if p.strip()}


def load_plugins() -> pluggy.PluginManager:
    """Load every entry point in the `seglens` group once; name the culprit when one fails."""
    global _loaded
    if _loaded:
        return pm
    _loaded = True
    allowed = _allowed()
    for dist in md.distributions():
        for ep in dist.entry_points:
            if ep.group != ENTRY_POINT_GROUP:
                continue
            if allowed is not None and ep.name not in allowed and ep.value not in allowed:
                continue
            if pm.get_plugin(ep.name) is not None:
                continue
            try:
                module = ep.load()
            except Exception as exc:  # a broken plugin must not hide behind a bare traceback
                raise PluginError(
                    f"plugin '{ep.name}' ({ep.value}, from {dist.metadata['Name']}) failed to import: "
                    f"{type(exc).__name__}: {exc}",
                    hint="fix or uninstall it, or set SEGLENS_LOAD_PLUGINS to skip it",
                ) from exc
            try:
                pm.register(module, name=ep.name)
            except Exception as exc:
                raise PluginError(
                    f"plugin '{ep.name}' could not be registered: {exc}",
                    hint="check its hook names and signatures against seglens.hookspecs",
                ) from exc
            _infos[ep.name] = PluginInfo(
                name=ep.name,
                module=ep.value,
                version=dist.version,
                distribution=dist.metadata["Name"],
            )
    return pm


def plugin_infos() -> list[PluginInfo]:
    """Every loaded plugin with the hooks it implements."""
    load_plugins()
    out = []
    for name, info in sorted(_infos.items()):
        plugin = pm.get_plugin(name)
        info.hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        out.append(info)
    return out


def registrations(stage: str) -> dict[str, Registration]:
    """All implementations of a stage, by name; calls each plugin's hook with its own `register`."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}")
    load_plugins()
    found: dict[str, Registration] = {}
    caller = getattr(pm.hook, STAGES[stage])
    # Call each implementation separately so we know which plugin registered which name.
    for impl in reversed(caller.get_hookimpls()):
        plugin_name = impl.plugin_name

        def register(name: str, factory: Callable[..., Any], description: str = "", *, _p=plugin_name) -> None:
            found[name] = Registration(stage, name, factory, _p, description)

        try:
            impl.function(register=register)
        except Exception as exc:
            raise PluginError(
                f"plugin '{plugin_name}' raised in {STAGES[stage]}: {type(exc).__name__}: {exc}"
            ) from exc
    return found


def create(stage: str, name: str, options: dict[str, Any] | None = None) -> Any:
    """Instantiate the implementation of `stage` called `name` with its config options."""
    regs = registrations(stage)
    if name not in regs:
        known = ", ".join(sorted(regs)) or "none"
        raise SeglensError(
            f"no {stage} called '{name}'",
            hint=f"available: {known}; `seglens plugins` lists what each plugin offers",
        )
    reg = regs[name]
    try:
        return reg.factory(dict(options or {}))
    except SeglensError:
        raise
    except Exception as exc:
        raise PluginError(
            f"plugin '{reg.plugin}' failed to create {stage} '{name}': {type(exc).__name__}: {exc}"
        ) from exc


def plugin_of(stage: str, name: str) -> str:
    reg = registrations(stage).get(name)
    return reg.plugin if reg else "?"


def version_of(plugin_name: str) -> str:
    load_plugins()
    info = _infos.get(plugin_name)
    return info.version if info else "?"
