"""`PerfParams`: every named assumption of the performance model, with defaults from catalog/perf.toml.

Efficiency terms differ by accelerator family (kernels: Hopper's wgmma GEMMs, CDNA3's MFMA, TPU's MXU) and by
serving engine (scheduler, sampling, CUDA graphs, attention kernels). The catalog ships them as named profiles,
`[profile.<family>]`, `[profile.<engine>]`, `[profile."<family>.<engine>"]` and per accelerator id
`[profile.<gpu>]`; `for_gpu()` applies them over the base values in that order (later wins), so a
`planner calibrate --measure` catalog for one GPU overrides its family's fit."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping, Sequence

import numpy as np

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..errors import InputError
from ..numbers import is_real

ENGINES = ("vllm", "sglang", "trtllm")
DEFAULT_ENGINE = "vllm"
# Also accepted: "pytorch", a bare forward pass captured in a CUDA graph (no scheduler, sampling or batching
# overheads): what the shared H100 data and `planner calibrate --measure` time; "jetstream", Google's TPU serving
# engine, which only calibration data names (catalog/calibration/jetstream_pytorch_tpu.toml).
PROFILE_ENGINES = ENGINES + ("pytorch", "jetstream")
# Fields that are not numeric perf assumptions (the profile tables and which engine they were resolved for).
_META = ("engine", "profiles", "profile")


def _catalog_dir() -> Any:
    """Where the shipped catalog lives (the same place as planner.catalog.CATALOG, which imports this module)."""
    try:  # installed: the wheel ships catalog/ as the data package planner.data
        return resources.files("planner.data")
    except (ModuleNotFoundError, TypeError):  # a source checkout on sys.path without installing
        return Path(__file__).resolve().parent.parent.parent / "catalog"


def shipped_defaults() -> dict[str, Any]:
    """The base perf values, from their one source: catalog/perf.toml's [perf] table with the fitted values of
    catalog/calibration/fit.toml's [fitted] over it (`python -m planner.perf.calibrate --write` writes those).
    PerfParams() takes its defaults from here, so a bare PerfParams() is the calibrated model (profiles aside:
    those are the catalog's, planner.catalog.load_catalog().perf)."""
    base = _catalog_dir()
    perf = tomllib.loads((base / "perf.toml").read_text(encoding="utf-8")).get("perf", {})
    fit_file = base / "calibration" / "fit.toml"
    fitted = tomllib.loads(fit_file.read_text(encoding="utf-8")).get("fitted", {}) if fit_file.is_file() else {}
    return {**perf, **fitted}


_SHIPPED = shipped_defaults()


def _default(name: str) -> Any:
    if name not in _SHIPPED:
        raise KeyError(f"catalog/perf.toml [perf] has no {name!r}: every PerfParams field takes its default there")
    return _SHIPPED[name]


@dataclass(frozen=True)
class PerfParams:
    # Defaults: catalog/perf.toml [perf] with catalog/calibration/fit.toml [fitted] over it (shipped_defaults).
    # Fraction of peak HBM bandwidth the decode kernels reach.
    hbm_efficiency: float = float(_default("hbm_efficiency"))
    # Largest fraction of dense peak FLOP/s the GEMMs reach in decode steps and in prefill (large token counts).
    flops_efficiency: float = float(_default("flops_efficiency"))
    prefill_flops_efficiency: float = float(_default("prefill_flops_efficiency"))
    # Fraction of 16-bit peak the attention core (QK^T, softmax, PV: flash-attention kernels) reaches.
    attention_flops_efficiency: float = float(_default("attention_flops_efficiency"))
    # Output tile of a GEMM kernel (tokens × columns): a GEMM of T tokens computes whole tiles in whole waves over
    # the SMs, so its efficiency rises with T (kernels.wave_efficiency; 0: off).
    gemm_tile_tokens: float = float(_default("gemm_tile_tokens"))
    gemm_tile_cols: float = float(_default("gemm_tile_cols"))
    # Smallest M tile of a grouped MoE GEMM: each touched expert pads its tokens to the smallest power-of-two
    # multiple of this that holds them, at most gemm_tile_tokens (kernels.moe_tile_tokens; 0: gemm_tile_tokens).
    moe_min_tile_tokens: float = float(_default("moe_min_tile_tokens"))
    # Tokens a grouped MoE GEMM's launch sees up to which its M tile stays at most gemm_tile_tokens / 2
    # (kernels.moe_tile_tokens; 0: no such cap).
    moe_full_tile_batch_tokens: float = float(_default("moe_full_tile_batch_tokens"))
    # Decode attention saturates HBM once it has attention_ctas_per_sm work items per SM (0: always saturated);
    # a work item is one (sequence, KV head, KV split); split-KV kernels cut the context into chunks of
    # attention_split_kv_tokens (0: no split).
    attention_ctas_per_sm: float = float(_default("attention_ctas_per_sm"))
    attention_split_kv_tokens: float = float(_default("attention_split_kv_tokens"))
    # Fixed time per layer per forward step (kernel launches and small kernels; smaller under CUDA graphs).
    layer_overhead_s: float = float(_default("layer_overhead_s"))
    step_overhead_s: float = float(_default("step_overhead_s"))
    link_efficiency: float = float(_default("link_efficiency"))
    allreduce_latency_s: float = float(_default("allreduce_latency_s"))
    p2p_latency_s: float = float(_default("p2p_latency_s"))
    memory_reserve_fraction: float = float(_default("memory_reserve_fraction"))
    max_batched_tokens: int = int(_default("max_batched_tokens"))
    head_stage_overhead_s: float = float(_default("head_stage_overhead_s"))
    max_batch: int = int(_default("max_batch"))
    prefill_first: bool = bool(_default("prefill_first"))
    # Two-batch overlap of MoE layers with EP > 1 (step.two_batch_overlap_step).
    two_batch_overlap: bool = bool(_default("two_batch_overlap"))
    engine: str = DEFAULT_ENGINE
    # name -> {parameter: value}; see the module docstring for how they combine
    profiles: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: MappingProxyType({}))
    # the profile tables that for_gpu applied (for the JSON: which profile was used)
    profile: tuple[str, ...] = ()

    def updated(self, values: Mapping[str, Any], where: str) -> "PerfParams":
        return replace(self, **_checked(self, values, where))

    def with_profiles(self, tables: Mapping[str, Any], where: str) -> "PerfParams":
        """Add or override `[profile.<name>]` tables (each validated like a [perf] table)."""
        if not isinstance(tables, Mapping):
            raise InputError(f"{where}: [profile] must be a table of tables ([profile.hopper])")
        merged = {k: dict(v) for k, v in self.profiles.items()}
        for name, table in tables.items():
            if not isinstance(table, Mapping):
                raise InputError(f"{where}: [profile.{name}] must be a table")
            _checked(self, table, f"{where} [profile.{name}]")
            merged.setdefault(str(name), {}).update(table)
        return replace(self, profiles=MappingProxyType({k: MappingProxyType(v) for k, v in merged.items()}))

    def with_engine(self, engine: str | None) -> "PerfParams":
        e = DEFAULT_ENGINE if engine is None else str(engine).strip().lower()
        if e not in PROFILE_ENGINES:
            raise InputError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        return replace(self, engine=e)

    def for_gpu(self, gpu_id: str, family: str) -> "PerfParams":
        """These parameters with the profiles of this accelerator applied: family, engine, family.engine, GPU id,
        GPU id.engine (later wins). `profile` records the tables used."""
        names = [n for n in (family, self.engine, f"{family}.{self.engine}", gpu_id, f"{gpu_id}.{self.engine}")
                 if n and n in self.profiles]
        changes: dict[str, Any] = {}
        for n in names:
            changes.update(self.profiles[n])
        kinds = {f.name: f.type for f in fields(self)}
        changes = {k: (v if kinds[k] in ("bool", bool) else int(v) if kinds[k] in ("int", int) else float(v))
                   for k, v in changes.items()}
        return replace(self, **changes, profile=tuple(names))

    def same_terms(self, a: str, b: str, gpus: Sequence[tuple[str, str]]) -> bool:
        """Whether engines `a` and `b` resolve to the same numeric parameters on every (GPU id, family) of `gpus`
        (then an estimate under either profile gives the same figures)."""
        def terms(engine: str, gpu: tuple[str, str]) -> tuple[Any, ...]:
            p = self.with_engine(engine).for_gpu(*gpu)
            return tuple(getattr(p, f.name) for f in fields(p) if f.name not in _META)

        return all(terms(a, g) == terms(b, g) for g in gpus)

    def for_rows(self, gpus: Sequence[tuple[str, str]]) -> "PerfParams":
        """`for_gpu` for each row's (GPU id, family), as one PerfParams whose numeric fields are numpy arrays over
        the rows where the profiles make them differ (for the vectorized search table)."""
        keys = sorted(set(gpus))
        resolved = [self.for_gpu(*k) for k in keys]
        index = np.array([keys.index(g) for g in gpus] if len(keys) > 1 else [0] * len(gpus), dtype=np.int64)
        changes: dict[str, Any] = {}
        for f in fields(self):
            if f.name in _META:
                continue
            values = [getattr(r, f.name) for r in resolved]
            if len(set(values)) > 1:
                changes[f.name] = np.asarray(values, dtype=bool if f.type in ("bool", bool) else float)[index]
            elif values:
                changes[f.name] = values[0]
        return replace(self, **changes, profile=())


def _checked(p: PerfParams, values: Mapping[str, Any], where: str) -> dict[str, Any]:
    known = {f.name: f for f in fields(p) if f.name not in _META}
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise InputError(f"{where}: unknown perf parameter {key!r} (known: {', '.join(sorted(known))})")
        if known[key].type in ("bool", bool):
            if not isinstance(value, bool):
                raise InputError(f"{where}: perf parameter {key!r} must be true or false, got {value!r}")
            changes[key] = value
            continue
        if not is_real(value) or value < 0:
            raise InputError(f"{where}: perf parameter {key!r} must be a number >= 0, got {value!r}")
        if key.endswith("_efficiency") and not 0 < value <= 1:
            raise InputError(f"{where}: perf parameter {key!r} must be in (0, 1], got {value!r}")
        if key == "memory_reserve_fraction" and value >= 1:
            raise InputError(f"{where}: perf parameter {key!r} must be < 1, got {value!r}")
        if known[key].type in ("int", int):
            if value != int(value) or value < 1:
                raise InputError(f"{where}: perf parameter {key!r} must be a positive integer, got {value!r}")
            value = int(value)
        changes[key] = value
    return changes
