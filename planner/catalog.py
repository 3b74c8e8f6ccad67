"""Load the shipped catalog (accelerators, perf parameters, model presets), merge a user catalog file, and
resolve the names users type."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from .errors import InputError, did_you_mean
from .files import read_toml  # noqa: F401  (re-exported: planner.catalog.read_toml)
from .numbers import is_number
from .perf.params import PerfParams
from .specs.accelerator import PRICE_TIERS, Accelerator, accelerator_from_entry
from .specs.model import ModelSpec, model_from_config, model_from_path
from .text import check_text

try:  # installed: the wheel ships catalog/ as the data package planner.data (planner.catalog is this module)
    CATALOG = resources.files("planner.data")
except (ModuleNotFoundError, TypeError):  # a source checkout on sys.path without installing
    CATALOG = Path(__file__).resolve().parent.parent / "catalog"


def normalize_name(name: str) -> str:
    """'H100_SXM 80GB' -> 'h100-sxm-80gb'."""
    return re.sub(r"[^a-z0-9.]+", "-", name.strip().lower()).strip("-")


@dataclass(frozen=True)
class Catalog:
    accelerators: Mapping[str, Accelerator]
    perf: PerfParams
    price_tier: str
    sources: tuple[str, ...] = field(default=())

    def gpu(self, name: str) -> Accelerator:
        key = normalize_name(name)
        if key in self.accelerators:
            return self.accelerators[key]
        for acc in self.accelerators.values():
            if key in {normalize_name(a) for a in acc.aliases}:
                return acc
        raise InputError(f"unknown GPU {name!r}{did_you_mean(key, self.accelerators)}"
                         f"; known: {', '.join(sorted(self.accelerators))}")

    def gpus(self, names: str | list[str] | None) -> list[Accelerator]:
        if names is None:
            return [self.accelerators[k] for k in sorted(self.accelerators)]
        if isinstance(names, str):
            names = [n for n in names.split(",") if n.strip()]
        if not names:
            raise InputError("--gpus is empty")
        seen: dict[str, Accelerator] = {}
        for n in names:
            acc = self.gpu(n)
            seen[acc.id] = acc
        return [seen[k] for k in sorted(seen)]


def _accelerator_entries(doc: Mapping[str, Any], where: str) -> list[Mapping[str, Any]]:
    entries = doc.get("accelerator", [])
    if not isinstance(entries, list):
        raise InputError(f"{where}: 'accelerator' must be an array of tables ([[accelerator]])")
    return entries


# Upper bounds on user [perf] values (the lower bounds and types are PerfParams.updated's). Beyond them a value is
# a unit slip (ms typed as s) and the search's integer scales would overflow: its objective range shrinks as
# 2^62 / max_batch (planner/search/table.py), and no decode step is rows of the micro-batch table above 32768.
PERF_MAX: dict[str, float] = {
    "step_overhead_s": 10.0, "allreduce_latency_s": 10.0, "p2p_latency_s": 10.0, "head_stage_overhead_s": 10.0,
    "max_batched_tokens": 10_000_000, "max_batch": 32_768,
}


def _check_perf(table: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(table, Mapping):
        raise InputError(f"{where}: [perf] must be a table")
    for key, hi in PERF_MAX.items():
        v = table.get(key)
        if is_number(v) and v > hi:
            raise InputError(f"{where}: perf parameter {key!r} = {v!r} is above its plausible maximum {hi:g}")
    return table


def load_catalog(user_file: str | Path | None = None, price_tier: str | None = None) -> Catalog:
    """The shipped catalog, optionally extended/overridden by `user_file` (same schema; entries with a known id
    override only the fields they give, e.g. a negotiated `usd_per_hour`)."""
    shipped = _shipped_docs()
    user_doc: Mapping[str, Any] = {}
    if user_file is not None:
        user_doc = read_toml(Path(user_file))
    user_tier = user_doc.get("default_price_tier")
    if user_tier is not None and user_tier not in PRICE_TIERS:
        raise InputError(f"{user_file}: default_price_tier: unknown price tier {user_tier!r}"
                         f"{did_you_mean(str(user_tier), PRICE_TIERS)} (tiers: {', '.join(PRICE_TIERS)})")
    tier = price_tier or user_tier or shipped[0].get("default_price_tier", "market")
    if tier not in PRICE_TIERS:
        raise InputError(f"unknown price tier {tier!r} (tiers: {', '.join(PRICE_TIERS)})")
    accs: dict[str, Accelerator] = {}
    for e in _accelerator_entries(shipped[0], "catalog/accelerators.toml"):
        a = accelerator_from_entry(e, "catalog/accelerators.toml", tier)
        accs[a.id] = a
    perf = PerfParams().updated(shipped[1].get("perf", {}), "catalog/perf.toml")
    perf = perf.with_profiles(shipped[1].get("profile", {}), "catalog/perf.toml")
    perf = perf.updated(shipped[2].get("fitted", {}), "catalog/calibration/fit.toml")
    perf = perf.with_profiles(shipped[2].get("profile", {}), "catalog/calibration/fit.toml")
    sources = ["catalog/accelerators.toml", "catalog/perf.toml", "catalog/calibration/fit.toml"]
    if user_file is not None:
        where = str(user_file)
        top = ("accelerator", "perf", "profile", "default_price_tier", "schema_version", "compiled", "measured")
        for key in sorted(set(user_doc) - set(top)):
            raise InputError(f"{where}: unknown top-level key {key!r}{did_you_mean(key, top)} "
                             f"(known: {', '.join(top)})")
        probe = Catalog(accs, perf, tier)
        for e in _accelerator_entries(user_doc, where):
            base = None
            if isinstance(e, Mapping) and isinstance(e.get("id"), str):
                try:
                    base = probe.gpu(e["id"])
                except InputError:
                    base = None
            a = accelerator_from_entry(e, where, tier, base=base)
            if base is not None and base.id != a.id:
                a = accelerator_from_entry({**e, "id": base.id}, where, tier, base=base)
            accs[a.id] = a
        perf = perf.updated(_check_perf(user_doc.get("perf", {}), where), where)
        profiles = user_doc.get("profile", {})
        if isinstance(profiles, Mapping):
            for name, table in profiles.items():
                _check_perf(table, f"{where} [profile.{name}]")
        perf = perf.with_profiles(profiles, where)
        sources.append(where)
    return Catalog(accs, perf, tier, tuple(sources))


@lru_cache(maxsize=1)
def _shipped_docs() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    fit = CATALOG / "calibration" / "fit.toml"
    return (read_toml(CATALOG / "accelerators.toml", "catalog/accelerators.toml"),
            read_toml(CATALOG / "perf.toml", "catalog/perf.toml"),
            read_toml(fit, "catalog/calibration/fit.toml") if fit.is_file() else {})


# ---- models ------------------------------------------------------------------------------------------------------
def model_presets() -> list[str]:
    return sorted(p.name[:-5] for p in (CATALOG / "models").iterdir() if p.name.endswith(".json"))


def load_model(name_or_path: str | Path) -> ModelSpec:
    """A preset id (`llama-3.1-70b`), a local `config.json`, or a local model folder holding one."""
    text = check_text(str(name_or_path), "model")
    path = Path(text)
    if path.suffix == ".json" or path.is_dir() or "/" in text or path.exists():
        if not path.exists():
            raise InputError(f"{text}: no such file or folder")
        return model_from_path(path)
    key = normalize_name(text)
    presets = model_presets()
    if key not in presets:
        raise InputError(f"unknown model {text!r}{did_you_mean(key, presets)}; presets: {', '.join(presets)}"
                         " (or pass a config.json path)")
    res = CATALOG / "models" / f"{key}.json"
    cfg = json.loads(res.read_text(encoding="utf-8"))
    return model_from_config(cfg, name=key, where=f"catalog/models/{key}.json")


def published_params() -> dict[str, Any]:
    return read_toml(CATALOG / "models" / "published.toml", "catalog/models/published.toml")
