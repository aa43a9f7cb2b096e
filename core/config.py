"""Every default in one place, printed by `seglens config show`.

Config is a nested dict: DEFAULTS, then a TOML file (`--config`), then `--set section.key=value`.
Each stage's section is handed to the implementation chosen for it, so plugins read their own
options from the same section without seglens knowing them in advance.
"""
from __future__ import annotations

import copy
import json
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]
from pathlib import Path
from typing import Any

from .errors import SeglensError

DEFAULTS: dict[str, Any] = {
    "seed": 42,
    "load": {
        "format": "auto",
        "value_kind": "auto",  # rating | amount | quantity | none | auto (the loader decides)
        "min_events_per_user": 1,
    },
    "history": {
        "max_items": 40,  # items rendered per user for history-text and LLM prompts
        "max_chars": 1000,
    },
    "embed": {
        "strategy": "item-pool",  # item-pool | history-text | behaviour
        "model": "all-MiniLM-L6-v2",  # a packaged model name, a model folder, or a sentence-transformers name
        "batch_size": 64,
        "half_life_days": 365.0,  # recency weighting for item-pool, relative to each user's last event
        "max_items_per_user": 200,
        "idf": True,  # down-weight items that most users consume
        "center": True,  # subtract the population's mean vector before normalizing
        "behaviour_weight": 0.0,  # >0 appends scaled behaviour features to item-pool vectors
        "cache": True,
        "device": "cpu",
    },
    "index": {"method": "faiss", "kind": "auto"},  # method: an index plugin's name; kind: auto | flat | hnsw | ivf
    "reduce": {
        "method": "umap",
        "n_components": 5,
        "n_neighbors": 15,
        "min_dist": 0.0,
        "metric": "cosine",
        "map_method": "umap",  # umap | tsne | pca : the 2-D map
        "n_epochs": "auto",  # UMAP's default up to 10k users; 100 (clustering) and 50 (map) above
        "init": "auto",  # spectral up to 10k users, pca above
    },
    "cluster": {
        "method": "hdbscan",  # hdbscan | kmeans
        "min_cluster_size": "auto",
        "min_samples": "auto",
        "selection": "eom",
        "assign_noise": False,
        "k": "auto",
    },
    "analysis": {  # options for every analysis plugin (each reads the keys it knows)
        "top_n": 10,
        "min_support": 5,
        "representatives": 5,
        "silhouette_sample": 5000,
        # quality: clusterboot stability and ARI across seeds
        "stability_boots": 10,
        "stability_fraction": 0.8,
        "stability_max_rows": 20000,
        "seed_runs": 3,
        # similarity and differences
        "similarity_items": 500,
        "similarity_nearest": 3,
        "differences_top": 5,
        "differences_top_categories": 3,
        "differences_alpha": 0.05,
        "features_top": 0,  # 0 = every feature per segment
        # time-based analyses: growth, lifecycle, prediction
        "period": "auto",  # month | week | auto (month when the history spans >= 182 days)
        "growth_min_periods": 6,
        "growth_window": 3,
        "growth_horizon": 3,
        "growth_interval": 0.9,
        "growth_min_forecast_users": 10,
        "lifecycle_risk_factor": 2.0,
        "lifecycle_churn_factor": 4.0,
        "lifecycle_horizon_days": 365,
        "lifecycle_min_gaps": 3,
        # value: BG/NBD + Gamma-Gamma customer lifetime value
        "clv_months": 12,
        "clv_discount_monthly": 0.01,
        "clv_time_unit": "week",
        "clv_penalizer": 0.0,
        "clv_min_customers": 20,
        "clv_min_repeat_customers": 10,
        "clv_calibration_end": "",
        "prediction_min_users": 30,
        "prediction_max_iter": 100,
        # preferences, recommendations, satisfaction
        "preferences_top_n": 5,
        "confidence": 0.95,
        "price_bands": 4,
        "sentiment_max_texts": 200000,
        "recs_list_size": 100,
        "recs_prior_strength": "auto",
        "recs_lift_exponent": 1.0,
        "recs_segment_weight": 0.3,
        "recs_neighbour_weight": 0.7,
        "recs_neighbours": 20,
        "recs_top_n": 5,
    },
    # In order: later analyses may read earlier ones' facts (similarity reads profile's lifted items).
    "analyses": ["profile", "features", "quality", "similarity", "differences", "preferences", "recommendations",
                 "satisfaction", "growth", "lifecycle", "value", "prediction"],
    "describe": {
        "describer": "keywords",  # keywords | local | openai (see README: why keywords is the default for now)
        "model": "",  # local: smollm2 (default), gemma3-270m, a model folder or .gguf; openai: the server's model
        "base_url": "http://127.0.0.1:11434/v1",  # openai: any OpenAI-compatible server
        "api_key_env": "OPENAI_API_KEY",  # openai: the env var holding the key (sent only if set)
        "timeout": 60,
        "retries": 3,
        "concurrency": "auto",  # requests in flight: 1 for local, 4 for openai
        "max_tokens": 300,
        "reply_format": "auto",  # json | lines | auto (lines for local models, json for servers)
        "constrain_lines": True,  # local models: decode exactly the NAME/DESCRIPTION/TRAIT/ACTION lines
        "temperature": 0.0,
        "context_tokens": "auto",
        "prompts_dir": "",  # a folder of .j2 files overriding the shipped prompts
        "cache": True,
    },
    "report": {"formats": ["md", "html"], "map_max_points": 20000, "md_charts": True},
}


def _merge(base: dict, extra: dict, top: bool = True) -> dict:
    """Deep-merge `extra` into `base`; unknown top-level sections are a mistake, unknown keys
    inside a section are left for the plugin that reads that section."""
    for key, value in extra.items():
        if top and key not in base:
            raise SeglensError(
                f"unknown config section '{key}'",
                hint=f"known sections: {', '.join(DEFAULTS)}",
            )
        if isinstance(base.get(key), dict) and isinstance(value, dict):
            _merge(base[key], value, top=False)
        else:
            base[key] = value
    return base


def _parse_value(raw: str) -> Any:
    low = raw.strip()
    if low.lower() in ("true", "false"):
        return low.lower() == "true"
    try:
        return json.loads(low)
    except ValueError:
        return low


def build_config(file: Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """DEFAULTS, then the TOML file, then `key.sub=value` overrides."""
    cfg = copy.deepcopy(DEFAULTS)
    if file is not None:
        path = Path(file)
        if not path.is_file():
            raise SeglensError("config file not found", file=path, hint="pass an existing TOML file to --config")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SeglensError(f"not valid TOML: {exc}", file=path) from exc
        _merge(cfg, data)
    return apply_overrides(cfg, overrides)


def apply_overrides(cfg: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Apply `section.key=value` strings to a config dict (values parsed as JSON when they can be)."""
    for item in overrides:
        if "=" not in item:
            raise SeglensError(f"--set expects section.key=value, got '{item}'")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        patch: dict[str, Any] = {}
        node = patch
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = _parse_value(raw)
        _merge(cfg, patch)
    return cfg


def to_toml(cfg: dict[str, Any]) -> str:
    """Render config as TOML (flat scalars first, then one table per section)."""

    def fmt(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(fmt(x) for x in v) + "]"
        return json.dumps(str(v))

    lines = [f"{k} = {fmt(v)}" for k, v in cfg.items() if not isinstance(v, dict)]
    for k, v in cfg.items():
        if isinstance(v, dict):
            lines.append(f"\n[{k}]")
            lines.extend(f"{kk} = {fmt(vv)}" for kk, vv in v.items() if not isinstance(vv, dict))
    return "\n".join(lines) + "\n"
