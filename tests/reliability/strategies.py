"""Hypothesis strategies for random planning requests: models (dense, GQA/MQA, MoE with shared experts, MLA, and
presets), catalogs of made-up accelerators, workloads, demands and SLOs. A `Scenario` turns into files (a user
catalog TOML, a config.json) and the keyword arguments of planner.api.plan / frontier."""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from planner.catalog import load_catalog, load_model

from .checker import Ask

PRESETS = ("llama-3.1-8b", "llama-3.1-70b", "mixtral-8x7b", "qwen3-235b-a22b", "deepseek-v3", "llama-2-70b")
SHIPPED_GPUS = ("h100-sxm", "a100-80gb", "l40s", "mi300x", "h200", "b200")


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


@st.composite
def model_configs(draw) -> dict[str, Any]:
    """A Hugging Face style config.json of a random decoder."""
    heads = draw(st.sampled_from([1, 2, 4, 8, 12, 16, 20, 32, 40, 64, 96, 128]))
    head_dim = draw(st.sampled_from([32, 64, 80, 128]))
    cfg: dict[str, Any] = {
        "hidden_size": heads * head_dim * draw(st.sampled_from([1, 1, 1, 2])),
        "num_hidden_layers": draw(st.integers(1, 96)),
        "num_attention_heads": heads,
        "num_key_value_heads": draw(st.sampled_from(_divisors(heads))),
        "head_dim": head_dim,
        "intermediate_size": draw(st.integers(1, 96)) * 256,
        "vocab_size": draw(st.integers(1000, 260_000)),
        "max_position_embeddings": 131072,
        "hidden_act": draw(st.sampled_from(["silu", "gelu"])),
        "tie_word_embeddings": draw(st.booleans()),
    }
    kind = draw(st.sampled_from(["dense", "dense", "mixtral", "deepseek"]))
    if kind == "mixtral":
        e = draw(st.sampled_from([2, 4, 8, 16, 64]))
        cfg.update(num_local_experts=e, num_experts_per_tok=draw(st.integers(1, min(4, e))))
    elif kind == "deepseek":
        e = draw(st.sampled_from([8, 16, 64, 256]))
        cfg.update(n_routed_experts=e, num_experts_per_tok=draw(st.integers(1, min(8, e))),
                   moe_intermediate_size=draw(st.integers(1, 16)) * 128, n_shared_experts=draw(st.integers(0, 2)),
                   first_k_dense_replace=draw(st.integers(0, min(3, cfg["num_hidden_layers"]))), moe_layer_freq=1)
        if draw(st.booleans()):  # multi-head latent attention
            cfg.update(kv_lora_rank=draw(st.sampled_from([128, 256, 512])), q_lora_rank=0, qk_rope_head_dim=64,
                       qk_nope_head_dim=128, v_head_dim=128)
    return cfg


@st.composite
def accelerators(draw, n: int) -> dict[str, Any]:
    bf16 = draw(st.floats(50, 2500))
    tflops = {"bf16": bf16, "fp16": bf16}
    if draw(st.booleans()):
        tflops["fp8"] = 2 * bf16
    if draw(st.booleans()):
        tflops["int8"] = 2 * bf16
    return {
        "id": f"rand-gpu-{n}", "name": f"Random GPU {n}",
        "memory_gib": draw(st.floats(16, 288)), "hbm_tb_s": draw(st.floats(0.3, 8.0)), "tflops": tflops,
        "scale_up": {"domain_size": draw(st.sampled_from([1, 2, 4, 8, 16, 72])), "gb_s": draw(st.floats(16, 1800))},
        "scale_out": {"gbit_s": draw(st.floats(25, 800))},
        "prices": {"market": {"usd_per_hour": round(draw(st.floats(0.1, 15.0)), 4)}},
    }


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    return repr(v)


def catalog_toml(entries: list[dict[str, Any]], overrides: dict[str, float] | None = None) -> str:
    """A user catalog file: `entries` as [[accelerator]] tables, `overrides` as id -> usd_per_hour."""
    out = []
    for e in entries:
        out.append("[[accelerator]]")
        for k, v in e.items():
            if not isinstance(v, dict):
                out.append(f"{k} = {_toml_value(v)}")
        for k, v in e.items():
            if isinstance(v, dict) and k != "prices":
                out.append(f"[accelerator.{k}]")
                out += [f"{kk} = {_toml_value(vv)}" for kk, vv in v.items()]
        for tier, p in e.get("prices", {}).items():
            out.append(f"[accelerator.prices.{tier}]")
            out += [f"{kk} = {_toml_value(vv)}" for kk, vv in p.items()]
    for gid, price in (overrides or {}).items():
        out += ["[[accelerator]]", f"id = {json.dumps(gid)}", f"usd_per_hour = {price!r}"]
    return "\n".join(out) + "\n"


@dataclass
class Scenario:
    model: dict[str, Any] | str  # a config dict, or a preset id
    gpus_new: list[dict[str, Any]]
    gpus_shipped: list[str]
    isl: int
    osl: int
    min_tokens_per_s_user: float
    ttft_ms: float | None = None
    rate_rps: float | None = None
    output_tokens_per_s: float | None = None
    weights: tuple[str, ...] = ("bf16", "fp8", "int8")
    kv: tuple[str, ...] = ("bf16", "fp8")
    max_gpus: int | None = None
    max_gpus_per_type: dict[str, int] = field(default_factory=dict)
    price_overrides: dict[str, float] = field(default_factory=dict)

    @property
    def gpu_ids(self) -> tuple[str, ...]:
        return tuple(sorted([g["id"] for g in self.gpus_new] + list(self.gpus_shipped)))

    def write(self, folder: Path) -> dict[str, Any]:
        """Write the files; return planner.api keyword arguments (model, catalog, gpus, SLOs, ...)."""
        folder.mkdir(parents=True, exist_ok=True)
        cat = folder / "catalog.toml"
        cat.write_text(catalog_toml(self.gpus_new, self.price_overrides), encoding="utf-8")
        if isinstance(self.model, str):
            model = self.model
        else:
            (folder / "config.json").write_text(json.dumps(self.model), encoding="utf-8")
            model = str(folder / "config.json")
        kw: dict[str, Any] = dict(model=model, isl=self.isl, osl=self.osl, catalog=str(cat),
                                  gpus=",".join(self.gpu_ids), min_tokens_per_s_user=self.min_tokens_per_s_user,
                                  weights=",".join(self.weights), kv=",".join(self.kv))
        for k in ("ttft_ms", "rate_rps", "output_tokens_per_s", "max_gpus"):
            if getattr(self, k) is not None:
                kw[k] = getattr(self, k)
        if self.max_gpus_per_type:
            kw["max_gpus_per_type"] = dict(self.max_gpus_per_type)
        return kw

    def ask(self, kw: dict[str, Any]) -> tuple[Ask, Any]:
        """The checker's restatement of the request, and the catalog (loaded through the public loader)."""
        cat = load_catalog(kw["catalog"])
        demand = self.output_tokens_per_s if self.output_tokens_per_s is not None else \
            (None if self.rate_rps is None else self.rate_rps * self.osl)
        ask = Ask(model=load_model(kw["model"]), isl=self.isl, osl=self.osl, tpot_s=1.0 / self.min_tokens_per_s_user,
                  ttft_s=None if self.ttft_ms is None else self.ttft_ms / 1000.0, demand_tokens_per_s=demand,
                  gpus=self.gpu_ids, weights=self.weights, kv=self.kv, max_gpus=self.max_gpus,
                  max_gpus_per_type={cat.gpu(k).id: n for k, n in self.max_gpus_per_type.items()})
        return ask, cat

    def with_(self, **changes: Any) -> "Scenario":
        return replace(self, **changes)


def _log_int(lo: int, hi: int):
    return st.integers(0, 1000).map(lambda u: int(round(lo * (hi / lo) ** (u / 1000))))


def _log_float(lo: float, hi: float):
    return st.integers(0, 1000).map(lambda u: lo * (hi / lo) ** (u / 1000))


@st.composite
def scenarios(draw, demand: bool | None = None) -> Scenario:
    model: dict[str, Any] | str = draw(st.one_of(model_configs(), st.sampled_from(PRESETS)))
    n_new = draw(st.integers(0, 2))
    new = [draw(accelerators(i)) for i in range(n_new)]
    shipped = draw(st.lists(st.sampled_from(SHIPPED_GPUS), min_size=0 if n_new else 1, max_size=2, unique=True))
    isl, osl = draw(_log_int(1, 32_000)), draw(_log_int(1, 4_000))
    # ISL + OSL within the model's context (beyond it is an input error, tested in tests/specs/test_context.py)
    if isinstance(model, dict):
        model = {**model, "max_position_embeddings": max(model.get("max_position_embeddings", 4096), isl + osl)}
    else:
        isl = max(1, min(isl, load_model(model).max_context - osl))
    s = Scenario(model=model, gpus_new=new, gpus_shipped=shipped, isl=isl, osl=osl,
                 min_tokens_per_s_user=draw(_log_float(2.0, 150.0)))
    if draw(st.booleans()):
        s.ttft_ms = draw(_log_float(20.0, 60_000.0))
    with_demand = draw(st.booleans()) if demand is None else demand
    if with_demand:
        if draw(st.booleans()):
            s.rate_rps = draw(_log_float(0.01, 50.0))
        else:
            s.output_tokens_per_s = draw(_log_float(10.0, 50_000.0))
    s.weights = tuple(draw(st.lists(st.sampled_from(["bf16", "fp8", "int8", "int4"]), min_size=1, max_size=3,
                                    unique=True)))
    s.kv = tuple(draw(st.lists(st.sampled_from(["bf16", "fp8", "int8"]), min_size=1, max_size=2, unique=True)))
    if draw(st.integers(0, 3)) == 0:
        s.max_gpus = draw(_log_int(1, 512))
    if draw(st.integers(0, 4)) == 0:
        s.max_gpus_per_type = {draw(st.sampled_from(s.gpu_ids)): draw(_log_int(1, 256))}
    return s


# ---- boundary values: every size at the edge of what validation accepts -------------------------------------------
def _edge(lo: float, hi: float):
    return st.sampled_from([lo, hi, (lo * hi) ** 0.5])


@st.composite
def boundary_scenarios(draw) -> Scenario:
    """Requests at the limits the edge validation accepts (planner/specs: FIELD_RANGES, MAX_CONFIG_FIELD,
    MAX_TOKENS): whatever passes validation must be planned, found infeasible, or refused in one line."""
    from planner.specs.model import MAX_CONFIG_FIELD

    heads = draw(st.sampled_from([1, 64, MAX_CONFIG_FIELD["num_attention_heads"]]))
    cfg: dict[str, Any] = {
        "hidden_size": draw(st.sampled_from([1, 64, 8192, MAX_CONFIG_FIELD["hidden_size"]])),
        "num_hidden_layers": draw(st.sampled_from([1, 2, 126, MAX_CONFIG_FIELD["num_hidden_layers"]])),
        "num_attention_heads": heads, "num_key_value_heads": draw(st.sampled_from([1, heads])),
        "head_dim": draw(st.sampled_from([1, 128, MAX_CONFIG_FIELD["head_dim"]])),
        "intermediate_size": draw(st.sampled_from([1, 4096, MAX_CONFIG_FIELD["intermediate_size"]])),
        "vocab_size": draw(st.sampled_from([1, 32000, MAX_CONFIG_FIELD["vocab_size"]])),
    }
    if draw(st.booleans()):
        cfg.update(num_local_experts=draw(st.sampled_from([2, 1000, MAX_CONFIG_FIELD["num_local_experts"]])),
                   num_experts_per_tok=1)
    gpu = {"id": "edge-gpu", "memory_gib": draw(_edge(0.01, 1000.0)), "hbm_tb_s": draw(_edge(0.01, 1000.0)),
           "tflops": {"bf16": draw(_edge(1.0, 1e6)), "fp8": draw(_edge(1.0, 1e6))},
           "scale_up": {"domain_size": draw(st.sampled_from([1, 8, 100_000])), "gb_s": draw(_edge(0.01, 1e6))},
           "scale_out": {"gbit_s": draw(_edge(0.01, 1e7))},
           "prices": {"market": {"usd_per_hour": round(draw(_edge(1e-4, 100.0)), 4)}}}
    s = Scenario(model=cfg, gpus_new=[gpu], gpus_shipped=[], isl=draw(st.sampled_from([1, 1000, 10_000_000])),
                 osl=draw(st.sampled_from([1, 1000, 131_072])),
                 min_tokens_per_s_user=draw(st.sampled_from([1e-3, 1.0, 100.0, 1e6])), weights=("bf16", "fp8"))
    if draw(st.booleans()):
        s.ttft_ms = draw(st.sampled_from([1e-3, 1e3, 1e12]))
    if draw(st.booleans()):
        s.output_tokens_per_s = draw(st.sampled_from([1e-3, 1e3, 1e6]))
    if draw(st.booleans()):
        s.max_gpus = draw(st.sampled_from([1, 1_000_000]))
    return s
