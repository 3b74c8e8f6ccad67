"""Fit the perf model's profiles (catalog/perf.toml [profile.*]) to measurements with provenance.

Data (catalog/calibration/, each row with its source, engine, GPU, parallelism, batch, ISL/OSL, precisions, metric):
- h100-sxm-pytorch-bf16.json: decode steps, prefills and micro-benchmarks timed on a real H100 SXM in plain
  PyTorch with CUDA graphs (engine "pytorch": kernels only, no serving overheads; provenance in the .md beside it);
- trtllm_perf_overview.toml: NVIDIA's TensorRT-LLM v1.0 max-throughput tables (H100, H200, B200, GB200);
- trtllm_v0.9_performance.toml: TensorRT-LLM 0.9.0's static-batch throughput and batch-1 first-token tables (A100
  FP16, L40S/H100/H200 FP8) for Llama-2-7B/70B, Mistral-7B, Mixtral-8x7B;
- dstack_deepseek_r1.toml: dstack's DeepSeek-R1 runs on 8x MI300X and 8x H200 under vLLM and SGLang (offline
  throughput, online TPOT);
- jetstream_pytorch_tpu.toml: JetStream-PyTorch's TPU v5e-8 serving throughput (Llama-2-7B/13B, Llama-3-8B);
- deepseek_wide_ep.toml: DeepSeek-V3 prefill and decode pools with wide expert parallelism and attention data
  parallelism (SGLang on 4-9 H100 nodes, DeepSeek's H800 profile), per-node tokens/s ("check": never fitted).

Every dataset is split by a fixed rule (`split_of`) into fitted and held-out rows. Each profile in FIT_PLAN is
fitted in order on its fitted rows, minimizing the mean squared log error by coordinate search; the held-out rows
only measure the result.

    python -m planner.perf.calibrate            # print the fit and the error tables
    python -m planner.perf.calibrate --write    # also write catalog/calibration/fit.toml
    python -m planner.perf.calibrate --write --only ampere,ada   # refit these profiles, keep the others
    python -m planner.perf.calibrate --report   # no fit: the shipped catalog's error tables (README)
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..catalog import CATALOG, load_catalog, load_model, read_toml
from ..specs.model import model_from_config
from ..specs.workload import Workload
from ..units import BYTES_PER_ELEMENT
from .estimate import Config, estimate, hardware, step_terms
from .kernels import attention_occupancy, gemm_flops_efficiency
from .params import PerfParams
from .roofline import compute_time_s, memory_time_s
from .step import embedding_step, layer_step, lm_head_step

# TensorRT-LLM page: trtllm-bench with --kv_cache_free_gpu_mem_fraction 0.95 "in many cases".
RUN_RESERVE_FRACTION = 0.05
# The page does not state the KV-cache dtype; FP8 KV fits better than BF16 (the earlier fit's finding), so the
# FP8 checkpoints are assumed to run with an FP8 KV cache.
RUN_KV_PRECISION = "fp8"
# Held out (never fitted): these TensorRT-LLM ISL/OSL pairs on every GPU, and these shared-H100 cases.
HELD_OUT_TRTLLM = {(1000, 1000), (2048, 2048), (5000, 500)}
HELD_OUT_TRTLLM_V09 = {(2048, 2048)}
HELD_OUT_TTFT_V09 = {"mistral-7b"}
HELD_OUT_DSTACK_OSL = {1600}
HELD_OUT_DSTACK_CONCURRENCY = {16, 64}
HELD_OUT_JETSTREAM = {"llama-2-13b"}
# vLLM V0's default max_num_seqs (docs.vllm.ai engine arguments): the most sequences a 0.7.x server runs at once.
VLLM_V0_MAX_NUM_SEQS = 256
HELD_OUT_H100 = {("decode_step", "llama-3.1-8b", 16, 4096), ("decode_step", "llama-3.1-8b", 64, 1024),
                 ("decode_step", "llama-3.1-70b-20layers", 64, 2048), ("prefill", "llama-3.1-8b", 1, 2048)}


@dataclass(frozen=True)
class Row:
    """One measurement. `metric` is what `value` measures (SI units); `layers` overrides the model's layer count
    (a truncated stack); `batch` None means the largest batch that fits (max-throughput runs). `split`: "fit",
    "held-out" (never fitted), "reference" (an upper bound such as a lone GEMM, reported only) or "check"
    (reported, never fitted, outside the held-out target: a regime the model is known not to cover, dstack_rows)."""

    dataset: str
    source: str
    engine: str
    gpu: str
    model: str
    metric: str
    value: float
    tp: int = 1
    pp: int = 1
    ep: int = 1
    batch: int | None = 1
    isl: int = 0
    osl: int = 0
    weights: str = "bf16"
    kv: str = "bf16"
    layers: int | None = None
    split: str = "fit"
    # True: `batch` is the number of requests submitted at once, an upper bound; the engine runs as many of them
    # concurrently as its KV cache holds (the model's max_batch), at most `batch`
    fill: bool = False
    dp: int = 1  # attention data-parallel groups (the *_per_node metrics: `batch` is per group)
    redundant_experts: int = 0
    two_batch_overlap: bool = False  # the run split each step into two overlapped micro-batches (step.py)

    @property
    def label(self) -> str:
        shape = f"B{self.batch}" if self.batch is not None else "Bmax"
        return f"{self.model} {self.gpu} {self.engine} TP{self.tp} {self.weights} {shape} {self.isl}/{self.osl} {self.metric}"


# ---- datasets -------------------------------------------------------------------------------------------------------
def gpu_run_rows(doc: Mapping[str, Any], *, dataset: str, source: str, gpu: str,
                 held_out: Callable[[Mapping[str, Any]], bool] = lambda case: False) -> list[Row]:  # noqa: E501
    """Rows of a GPU run in the format of h100-sxm-pytorch-bf16.json (also what `planner calibrate --measure`
    records): decode steps and prefills of a (truncated) layer stack, and micro-benchmarks."""
    rows: list[Row] = []
    micro = doc.get("micro_benchmarks", {})
    common = dict(dataset=dataset, source=source, engine="pytorch", gpu=gpu, model="-")
    # A bare HBM read and a lone 8192^3 GEMM are upper bounds no layer reaches (a decode step streams at ~0.9 of the
    # read-only rate; prefill GEMMs run at ~0.6 of peak against 0.8 in the lone GEMM): reported, not fitted.
    if "read_only_TBps" in micro:
        rows.append(Row(**common, metric="hbm_read_bytes_per_s", value=float(micro["read_only_TBps"]) * 1e12,
                        split="reference"))
    for dtype in ("bf16", "fp8"):
        key = f"{dtype}_gemm_8192_TFLOPs"
        if key in micro:
            rows.append(Row(**common, metric="gemm_flops_per_s", value=float(micro[key]) * 1e12, batch=8192,
                            weights=dtype, split="reference"))
    for key, value in sorted(micro.items()):
        if key.startswith("skinny_gemm_b") and key.endswith("_s"):
            b = int(key[len("skinny_gemm_b"):-2])
            rows.append(Row(**common, metric="skinny_gemm_s", value=float(value), batch=b))
    for case in doc.get("cases", []):
        model = re.sub(r"-\d+layers$", "", str(case["model"]))  # "llama-3.1-70b-20layers": a truncated stack
        n_layers = int(case["layers"])
        split = "held-out" if held_out(case) else "fit"
        if case["kind"] == "decode_step":
            rows.append(Row(dataset=dataset, source=source, engine="pytorch", gpu=gpu, model=model,
                            metric="decode_step_s", value=float(case["step_s"]), batch=int(case["batch"]),
                            isl=int(case["context"]), layers=n_layers, split=split))
        elif case["kind"] == "decode_attention":  # one layer's attention kernel over its KV cache
            rows.append(Row(dataset=dataset, source=source, engine="pytorch", gpu=gpu, model=model,
                            metric="decode_attention_s", value=float(case["step_s"]), batch=int(case["batch"]),
                            isl=int(case["context"]), layers=1, split=split))
        elif case["kind"] == "prefill":
            rows.append(Row(dataset=dataset, source=source, engine="pytorch", gpu=gpu, model=model,
                            metric="prefill_s", value=float(case["step_s"]), batch=1, isl=int(case["seq"]),
                            layers=n_layers, split=split))
    return rows


def shared_h100_rows() -> list[Row]:
    path = CATALOG / "calibration" / "h100-sxm-pytorch-bf16.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    source = (f"catalog/calibration/h100-sxm-pytorch-bf16.json (measured {doc.get('measured')} on "
              f"{doc.get('gpu')}, {doc.get('software')}; method in h100-sxm-pytorch-bf16.md)")

    def held(case: Mapping[str, Any]) -> bool:
        key = (case["kind"], case["model"], case["batch"], case.get("context", case.get("seq")))
        return key in HELD_OUT_H100

    return gpu_run_rows(doc, dataset="h100-pytorch", source=source, gpu="h100-sxm", held_out=held)


def trtllm_rows() -> list[Row]:
    doc = read_toml(CATALOG / "calibration" / "trtllm_perf_overview.toml",
                    "catalog/calibration/trtllm_perf_overview.toml")
    out = []
    for r in doc["row"]:
        isl, osl = int(r["isl"]), int(r["osl"])
        out.append(Row(dataset="trtllm-perf-overview", source=str(doc["source"]), engine="trtllm", gpu=r["gpu"],
                       model=r["model"], metric="output_tokens_per_s", value=float(r["value"]), tp=int(r["tp"]),
                       pp=int(r["pp"]), batch=None, isl=isl, osl=osl, weights=r["precision"], kv=RUN_KV_PRECISION,
                       split="held-out" if (isl, osl) in HELD_OUT_TRTLLM else "fit"))
    return out


def trtllm_v09_rows() -> list[Row]:
    """TensorRT-LLM 0.9.0 tables: static batches (throughput per GPU, turned into the run's total) and batch-1
    first-token latencies. Ampere and Ada rows are split by HELD_OUT_TRTLLM_V09; Hopper rows are all held out
    (hopper.trtllm is fitted on the v1.0 tables, these check it on another release and batching mode)."""
    doc = read_toml(CATALOG / "calibration" / "trtllm_v0.9_performance.toml",
                    "catalog/calibration/trtllm_v0.9_performance.toml")
    out = []
    for r in doc["row"]:
        tp, isl, osl = int(r["tp"]), int(r["isl"]), int(r["osl"])
        if r["metric"] == "output_tokens_per_s_per_gpu":
            metric, value, held = "output_tokens_per_s", float(r["value"]) * tp, (isl, osl) in HELD_OUT_TRTLLM_V09
        else:  # "ttft_ms"
            metric, value, held = "ttft_s", float(r["value"]) / 1e3, r["model"] in HELD_OUT_TTFT_V09
        if r["gpu"] in ("h100-sxm", "h200"):
            held = True
        out.append(Row(dataset="trtllm-v0.9", source=str(doc["source"]), engine="trtllm", gpu=r["gpu"],
                       model=r["model"], metric=metric, value=value, tp=tp, batch=int(r["batch"]), isl=isl, osl=osl,
                       weights=r["weights"], kv=r["kv"], split="held-out" if held else "fit"))
    return out


def dstack_rows() -> list[Row]:
    """dstack's DeepSeek-R1 runs (TP8, FP8 weights, bf16 KV): offline output throughput of N requests submitted at
    once (vLLM runs at most VLLM_V0_MAX_NUM_SEQS of them), online median TPOT at a concurrency. Split "check":
    reported, never fitted, and outside the held-out target: both GPUs run these early-2025 MoE/MLA kernels 2-4x
    below what the model predicts from dense-model kernel fractions (README Known limits). What is fitted is the
    MI300X/H200 ratio (paired_rows), split there by HELD_OUT_DSTACK_*."""
    doc = read_toml(CATALOG / "calibration" / "dstack_deepseek_r1.toml", "catalog/calibration/dstack_deepseek_r1.toml")
    out = []
    for r in doc["row"]:
        isl, osl = int(r["isl"]), int(r["osl"])
        common = dict(dataset="dstack-deepseek-r1", source=str(doc["source"]), engine=r["engine"], gpu=r["gpu"],
                      model="deepseek-v3", tp=8, isl=isl, osl=osl, weights="fp8", kv="bf16")
        if r["kind"] == "offline":
            n = int(r["num_requests"])
            batch = min(n, VLLM_V0_MAX_NUM_SEQS) if r["engine"] == "vllm" else n
            out.append(Row(**common, metric="output_tokens_per_s",
                           value=float(r["total_output_tokens"]) / float(r["elapsed_time_s"]), batch=batch, fill=True,
                           split="check"))
        else:
            out.append(Row(**common, metric="tpot_s", value=float(r["median_tpot_ms"]) / 1e3,
                           batch=int(r["max_concurrency"]), split="check"))
    return out


def jetstream_rows() -> list[Row]:
    """JetStream-PyTorch on TPU v5e-8: output throughput at a fixed server batch, ShareGPT requests taken as their
    mean lengths (doc's isl/osl)."""
    doc = read_toml(CATALOG / "calibration" / "jetstream_pytorch_tpu.toml",
                    "catalog/calibration/jetstream_pytorch_tpu.toml")
    isl, osl = int(doc["isl"]), int(doc["osl"])
    return [Row(dataset="jetstream-pytorch", source=str(doc["source"]), engine="jetstream", gpu=r["gpu"],
                model=r["model"], metric="output_tokens_per_s", value=float(r["value"]), tp=int(r["tp"]),
                batch=int(r["batch"]), isl=isl, osl=osl, weights=r["weights"], kv=r["kv"],
                split="held-out" if r["model"] in HELD_OUT_JETSTREAM else "fit") for r in doc["row"]]


GPUS_PER_NODE = 8  # the per-node figures of deepseek_wide_ep.toml are 8-GPU H100/H800 nodes


def wide_ep_rows() -> list[Row]:
    """DeepSeek-V3 pools with wide EP (deepseek_wide_ep.toml): each pool TP1 with one attention-DP group per GPU
    and EP over all its GPUs. Prefill rows: input tokens/s per node with `batch` = prompts per GPU in a step
    (tokens per GPU / ISL); decode rows: output tokens/s per node at `batch` sequences per GPU. "balanced"
    routing (perfect EPLB, DeepSeek's profile) is modelled as every expert redundant (the busiest rank carries
    the mean load, moe.busiest_rank_load_ratio), "eplb" with the file's 32 redundant experts. Rows run with
    two-batch overlap unless they say otherwise (the file's `two_batch_overlap`, a row's own). Split "check"."""
    doc = read_toml(CATALOG / "calibration" / "deepseek_wide_ep.toml", "catalog/calibration/deepseek_wide_ep.toml")
    out = []
    for r in doc["row"]:
        gpus = int(r["nodes"]) * GPUS_PER_NODE
        ep = int(r["ep"])
        if ep != gpus:
            raise ValueError(f"deepseek_wide_ep.toml: EP {ep} is not the pool's {gpus} GPUs")
        isl = int(r["isl"])
        prefill = r["phase"] == "prefill"
        batch = int(r["tokens_per_gpu"]) // isl if prefill else int(r["batch_per_gpu"])
        redundant = 256 if r["routing"] == "balanced" else 32
        tbo = r.get("two_batch_overlap", doc["two_batch_overlap"])
        if not isinstance(tbo, bool):
            raise ValueError(f"deepseek_wide_ep.toml: two_batch_overlap must be true or false, got {tbo!r}")
        out.append(Row(dataset="deepseek-wide-ep", source=str(doc["source"]), engine="sglang", gpu=r["gpu"],
                       model="deepseek-v3",
                       metric="prefill_tokens_per_s_per_node" if prefill else "decode_tokens_per_s_per_node",
                       value=float(r["tokens_per_s_per_node"]), tp=1, ep=ep, dp=gpus, batch=batch, isl=isl,
                       osl=0 if prefill else int(r["osl"]), weights="fp8", kv="bf16", split="check",
                       redundant_experts=redundant, two_batch_overlap=tbo))
    return out


def load_rows() -> list[Row]:
    return (shared_h100_rows() + trtllm_rows() + trtllm_v09_rows() + dstack_rows() + jetstream_rows()
            + wide_ep_rows())


# ---- prediction -----------------------------------------------------------------------------------------------------
_MODELS: dict[str, Any] = {}


def _model(name: str):
    """A catalog preset, or a model config kept with the calibration data (catalog/calibration/models/)."""
    if name not in _MODELS:
        local = CATALOG / "calibration" / "models" / f"{name}.json"
        if local.is_file():
            cfg = json.loads(local.read_text(encoding="utf-8"))
            _MODELS[name] = model_from_config(cfg, name=name, where=f"catalog/calibration/models/{name}.json")
        else:
            _MODELS[name] = load_model(name)
    return _MODELS[name]


def predict(row: Row, params: PerfParams, catalog=None) -> float:
    """The model's value of `row.metric` for the row's configuration, under `params` with the row's engine."""
    cat = catalog or load_catalog()
    gpu = cat.gpu(row.gpu)
    if row.two_batch_overlap:
        params = replace(params, two_batch_overlap=True)
    p = params.with_engine(row.engine).for_gpu(gpu.id, gpu.family)
    hw = hardware(gpu, row.weights)
    if row.metric == "hbm_read_bytes_per_s":
        return gpu.hbm_bytes_per_s * p.hbm_efficiency
    if row.metric in ("gemm_flops_per_s", "skinny_gemm_s"):
        # [T, K] x [K, N]: K = 8192, N = 28672 for the skinny shapes, N = 8192 for the square one
        t, k = float(row.batch or 1), 8192.0
        n = 8192.0 if row.metric == "gemm_flops_per_s" else 28672.0
        eta_max = p.prefill_flops_efficiency if row.metric == "gemm_flops_per_s" else p.flops_efficiency
        eff = gemm_flops_efficiency(t, n, gpu.sm_count, eta_max, p.gemm_tile_tokens, p.gemm_tile_cols)
        wb = BYTES_PER_ELEMENT[row.weights]
        time = max(float(compute_time_s(2 * t * k * n, hw.peak_flops_per_s, eff)),
                   float(memory_time_s(k * n * wb + 2 * t * (k + n), hw.hbm_bytes_per_s, p.hbm_efficiency)))
        return 2 * t * k * n / time if row.metric == "gemm_flops_per_s" else time
    m = _model(row.model)
    if row.metric == "decode_attention_s":
        # B sequences' K and V at `context` tokens, read at the occupancy B · KV heads allow (kernels.py)
        b, ctx = float(row.batch or 1), float(row.isl)
        kv_bytes = b * ctx * 2 * m.num_kv_heads * m.head_dim * BYTES_PER_ELEMENT[row.kv]
        occ = attention_occupancy(b, m.num_kv_heads, ctx, gpu.sm_count, p.attention_ctas_per_sm,
                                  p.attention_split_kv_tokens)
        flops = b * m.attention_flops_per_token_per_context * ctx
        return max(float(compute_time_s(flops, hw.attention_flops_per_s, p.attention_flops_efficiency)),
                   float(memory_time_s(kv_bytes, hw.hbm_bytes_per_s, p.hbm_efficiency * occ)))
    if row.metric in ("decode_step_s", "prefill_s", "ttft_s"):
        layers = row.layers or m.num_layers
        t = step_terms(m, hw, p, tp=row.tp, ep=row.ep, weight_bytes=BYTES_PER_ELEMENT[row.weights],
                       kv_bytes=BYTES_PER_ELEMENT[row.kv], micro_batch=row.batch or 1, isl=row.isl, osl=0)
        if row.metric == "decode_step_s":
            return float(layers * t.decode_layer.time_s + t.decode_first.time_s + t.decode_last.time_s
                         + p.step_overhead_s)
        return float(layers * t.prefill_layer.time_s + t.prefill_first.time_s + t.prefill_last.time_s
                     + p.step_overhead_s)
    if row.metric == "prefill_tokens_per_s_per_node":
        # one prefill step of `batch` whole prompts in every DP group (one group per GPU at TP1), all layers + the
        # first stage's embedding and the last's LM head (one logit row per prompt); per GPU, times 8 per node
        hw = hardware(gpu, row.weights, row.tp, row.dp)
        tokens = float(row.batch * row.isl)
        layer = layer_step(m, hw, p, tp=row.tp, ep=row.ep, dp=row.dp, weight_bytes=BYTES_PER_ELEMENT[row.weights],
                           kv_bytes=BYTES_PER_ELEMENT[row.kv], tokens=tokens * row.dp,
                           sequences=float(row.batch * row.dp), context_from=0.0, context_to=float(row.isl),
                           reads_cache=False, redundant_experts=row.redundant_experts, prefill=True)
        step = (m.num_layers * float(layer.time_s) + float(embedding_step(m, hw, p, tokens=tokens).time_s)
                + float(lm_head_step(m, hw, p, tp=row.tp, logit_tokens=float(row.batch)).time_s) + p.step_overhead_s)
        return tokens / step * GPUS_PER_NODE
    if row.metric == "decode_tokens_per_s_per_node":
        # the decode pool's cycle at `batch` sequences per GPU (no prefill in its steps), contexts isl … isl + osl
        cfg = Config(gpu=gpu, tp=row.tp, ep=row.ep, dp=row.dp, batch=int(row.batch) * row.dp, weights=row.weights,
                     kv=row.kv, redundant_experts=row.redundant_experts)
        e = estimate(m, cfg, Workload(isl=row.isl, osl=row.osl), params.with_engine(row.engine))
        return float(row.batch) / e.decode_cycle_s * GPUS_PER_NODE
    if row.metric in ("output_tokens_per_s", "tpot_s"):
        run = params.with_engine(row.engine)
        if row.dataset == "trtllm-perf-overview":
            run = replace(run, memory_reserve_fraction=RUN_RESERVE_FRACTION)
        w = Workload(isl=row.isl, osl=row.osl)
        cfg = Config(gpu=gpu, tp=row.tp, pp=row.pp, ep=row.ep, batch=1, weights=row.weights, kv=row.kv)
        batch = row.batch
        if batch is None or row.fill:
            fits = max(1, min(estimate(m, cfg, w, run).max_batch, run.max_batch))
            batch = fits if batch is None else min(batch, fits)
        e = estimate(m, replace(cfg, batch=batch), w, run)
        return e.output_tokens_per_s if row.metric == "output_tokens_per_s" else e.tpot_s
    raise ValueError(f"unknown metric {row.metric!r}")


def errors(rows: Sequence[Row], params: PerfParams, catalog=None) -> np.ndarray:
    """Signed relative error (predicted − measured) / measured per row."""
    cat = catalog or load_catalog()
    pred = np.array([predict(r, params, cat) for r in rows])
    obs = np.array([r.value for r in rows])
    return (pred - obs) / obs


# ---- fitting --------------------------------------------------------------------------------------------------------
def paired_rows(rows: Sequence[Row], params: PerfParams, catalog=None) -> list[Row]:
    """MI300X rows of dstack's DeepSeek-R1 vLLM runs, each scaled by the model's error on the H200 row of the same
    engine, metric, lengths and batch: value · predicted(H200) / measured(H200). Fitting these fits the MI300X/H200
    ratio the model gets wrong, not the shortfall of those engines' MoE/MLA kernels that both GPUs show. Splits
    follow the MI300X row."""
    cat = catalog or load_catalog()
    key = lambda r: (r.engine, r.metric, r.isl, r.osl, r.batch)  # noqa: E731
    h200 = {key(r): r for r in rows if r.dataset == "dstack-deepseek-r1" and r.gpu == "h200" and r.engine == "vllm"}
    out = []
    for r in rows:
        if r.dataset != "dstack-deepseek-r1" or r.gpu != "mi300x" or key(r) not in h200:
            continue
        ref = h200[key(r)]
        scale = predict(ref, params, cat) / ref.value
        held = r.osl in HELD_OUT_DSTACK_OSL or (r.metric == "tpot_s" and r.batch in HELD_OUT_DSTACK_CONCURRENCY)
        out.append(replace(r, dataset=PAIRED_DATASET, value=r.value * scale, split="held-out" if held else "fit"))
    return out


@dataclass(frozen=True)
class FitStep:
    """Fit `names` of profile `profile` ("base": the [perf] values under every profile) on the fitted rows that
    `select` picks, from `start`."""

    profile: str
    names: tuple[str, ...]
    select: Callable[[Row], bool]
    start: Mapping[str, float]
    why: str
    # search bounds of this step over BOUNDS (parameter -> (low, high))
    bounds: Mapping[str, tuple[float, float]] = field(default_factory=dict)


PAIRED_DATASET = "dstack-deepseek-r1 mi300x/h200"
# What the family fits change: the kernel fractions only. The fixed per-layer and per-step times stay the measured
# H100 ones: they are properties of the engine and its launch path, and the only Ampere/Ada runs recorded are a
# 2024 static-batch TensorRT-LLM (fitted with them free, A100 took 0.27 ms per layer and L40S 0.21 ms: a batch-1
# Llama-3.1-8B decode step on A100 would cost ~17 ms instead of ~11 ms, a guess no vLLM/SGLang run here supports).
_FAMILY_TERMS = ("hbm_efficiency", "flops_efficiency", "prefill_flops_efficiency")
_FAMILY_START = {"hbm_efficiency": 0.8, "flops_efficiency": 0.6, "prefill_flops_efficiency": 0.6}
# No kernel streams HBM faster than a bare read: 3.079 of the H100 SXM's 3.35 TB/s (h100-sxm-pytorch-bf16.json
# micro_benchmarks.read_only_TBps; tests/perf/test_calibrate.py recomputes it). The ampere, ada and tpu fits below,
# on serving throughput alone, are held under that fraction: unbounded, the A100 fit put hbm_efficiency at 0.99,
# carrying in that term what that engine release does differently (README Known limits). CDNA3 is not (yet): held
# there, a dense int4 plan over H100 and MI300X in tests/reliability became a near-tie whose CP-SAT search ran out
# of its time limit in the tie-break stage on a loaded machine (search.cpsat.tie_breaks raised then; 11e23ac fixed that).
BARE_HBM_READ_FRACTION = 0.919
_FAMILY_BOUNDS = MappingProxyType({"hbm_efficiency": (1e-3, BARE_HBM_READ_FRACTION)})

FIT_PLAN = (
    FitStep("base", ("hbm_efficiency", "flops_efficiency", "prefill_flops_efficiency", "attention_flops_efficiency",
                       "layer_overhead_s", "attention_ctas_per_sm", "step_overhead_s"),
            lambda r: r.dataset == "h100-pytorch",
            {"hbm_efficiency": 0.9, "flops_efficiency": 0.8, "prefill_flops_efficiency": 0.7,
             "attention_flops_efficiency": 0.5,
             "layer_overhead_s": 50e-6, "attention_ctas_per_sm": 0.5, "step_overhead_s": 1e-4},
            "Kernel fractions measured on a real H100 in PyTorch with CUDA graphs; the base [perf] values, so that\n"
            "# families without measurements of their own (ampere, ada, cdna3, tpu) assume Hopper's fractions"),
    FitStep("hopper.trtllm", ("hbm_efficiency", "flops_efficiency", "prefill_flops_efficiency", "layer_overhead_s",
                              "step_overhead_s"),
            lambda r: r.dataset == "trtllm-perf-overview" and r.gpu in ("h100-sxm", "h200"),
            {"hbm_efficiency": 0.8, "flops_efficiency": 0.5, "prefill_flops_efficiency": 0.6, "layer_overhead_s": 2e-5,
             "step_overhead_s": 1e-3},
            "TensorRT-LLM v1.0 FP8 max-throughput runs on H100/H200"),
    FitStep("blackwell.trtllm", ("hbm_efficiency", "flops_efficiency", "prefill_flops_efficiency", "layer_overhead_s",
                              "step_overhead_s"),
            lambda r: r.dataset == "trtllm-perf-overview" and r.gpu in ("b200", "gb200"),
            {"hbm_efficiency": 0.8, "flops_efficiency": 0.5, "prefill_flops_efficiency": 0.6, "layer_overhead_s": 2e-5,
             "step_overhead_s": 1e-3},
            "TensorRT-LLM v1.0 FP4 max-throughput runs on B200/GB200"),
    # TensorRT-LLM 0.9.0's own fixed time per layer on A100 and L40S, in the family.engine profile so that vLLM and
    # SGLang there keep the H100-measured one: its batch-1 first tokens of 128-token prompts ran 3-11 ms above
    # the kernel terms, growing with the layer count (Llama-2-70B TP4 ~130 us per layer, 7B ~105 us on A100),
    # a per-layer cost rather than a per-request one
    FitStep("ampere.trtllm", ("layer_overhead_s",), lambda r: r.dataset == "trtllm-v0.9" and r.gpu.startswith("a100"),
            {"layer_overhead_s": 8e-5},
            "TensorRT-LLM 0.9.0's fixed time per layer on A100 (before the ampere fractions; other engines on Ampere\n"
            "# keep the H100-measured per-layer time)"),
    FitStep("ada.trtllm", ("layer_overhead_s",), lambda r: r.dataset == "trtllm-v0.9" and r.gpu in ("l40s", "l4"),
            {"layer_overhead_s": 8e-5},
            "TensorRT-LLM 0.9.0's fixed time per layer on L40S (before the ada fractions; other engines on Ada keep\n"
            "# the H100-measured per-layer time)"),
    FitStep("ampere", _FAMILY_TERMS, lambda r: r.dataset == "trtllm-v0.9" and r.gpu.startswith("a100"),
            _FAMILY_START,
            "TensorRT-LLM 0.9.0 FP16 static-batch throughput and batch-1 first-token runs on A100: every engine on\n"
            "# Ampere uses them (the only Ampere measurements recorded)", _FAMILY_BOUNDS),
    FitStep("ada", _FAMILY_TERMS, lambda r: r.dataset == "trtllm-v0.9" and r.gpu in ("l40s", "l4"), _FAMILY_START,
            "TensorRT-LLM 0.9.0 FP8 static-batch throughput and batch-1 first-token runs on L40S: every engine on\n"
            "# Ada uses them (the only Ada measurements recorded)", _FAMILY_BOUNDS),
    FitStep("cdna3", ("hbm_efficiency", "flops_efficiency", "prefill_flops_efficiency"),
            lambda r: r.dataset == PAIRED_DATASET, {"hbm_efficiency": 0.8, "flops_efficiency": 0.6,
                                                    "prefill_flops_efficiency": 0.6},
            "MI300X against H200 on the same DeepSeek-R1 vLLM runs (dstack): the MI300X value scaled by the model's\n"
            "# error on the matching H200 row, so that the fit sees the vendor difference and not the MoE/MLA engine\n"
            "# shortfall both GPUs share (README Known limits)"),
    FitStep("tpu", ("hbm_efficiency", "flops_efficiency", "layer_overhead_s"),
            lambda r: r.dataset == "jetstream-pytorch", {"hbm_efficiency": 0.6, "flops_efficiency": 0.5,
                                                         "layer_overhead_s": 1e-4},
            "JetStream-PyTorch serving throughput on TPU v5e-8 (ShareGPT taken at its mean lengths): every engine on\n"
            "# TPU uses them (the only TPU measurements recorded)", _FAMILY_BOUNDS),
)
# Search bounds per parameter (efficiencies in (0, 1], times in s).
BOUNDS = {"layer_overhead_s": (0.0, 1e-3), "step_overhead_s": (0.0, 0.05),
          "attention_ctas_per_sm": (0.0, 16.0)}


def fit_profile(rows: Sequence[Row], base: PerfParams, step: FitStep, catalog=None, rounds: int = 40) -> dict[str, float]:
    """Coordinate search of step.names (multiplicative steps, halved when no move helps) on mean squared log
    error over `rows`."""
    cat = catalog or load_catalog()
    obs = np.log([r.value for r in rows])

    def loss(values: Mapping[str, float]) -> float:
        p = with_fitted(base, {step.profile: values})
        pred = np.array([predict(r, p, cat) for r in rows])
        return float(np.mean((np.log(pred) - obs) ** 2))

    best = dict(step.start)
    best_loss = loss(best)
    scale = {k: 0.4 for k in step.names}
    for _ in range(rounds):
        improved = False
        for k in step.names:
            moved = True
            while moved:  # keep stepping while it helps, then try the other direction
                moved = False
                for factor in (1 + scale[k], 1 / (1 + scale[k])):
                    lo, hi = step.bounds.get(k, BOUNDS.get(k, (1e-3, 1.0)))
                    v = min(hi, max(lo, best[k] * factor if best[k] > 0 else hi * 1e-3))
                    if v == best[k]:
                        continue
                    trial = {**best, k: v}
                    l = loss(trial)
                    if l < best_loss - 1e-15:
                        best, best_loss, moved, improved = trial, l, True, True
                        break
            if not improved:
                scale[k] /= 2
        if max(scale.values()) < 1e-4:
            break
    return best


def fit_all(rows: Sequence[Row], base: PerfParams, catalog=None, only: Sequence[str] | None = None,
            kept: Mapping[str, Mapping[str, float]] | None = None) -> dict[str, dict[str, float]]:
    """Run FIT_PLAN in order on the fitted split; each step sees the profiles fitted before it. With `only`, the
    other steps are not refitted: their values come from `kept` (the shipped fit.toml)."""
    cat = catalog or load_catalog()
    fitted: dict[str, dict[str, float]] = {}
    p = base
    for step in FIT_PLAN:
        if only is not None and step.profile not in only:
            if kept and step.profile in kept:
                fitted[step.profile] = {k: float(v) for k, v in kept[step.profile].items()}
                p = with_fitted(p, {step.profile: fitted[step.profile]})
            continue
        pool = list(rows) + (paired_rows(rows, p, cat) if step.profile == "cdna3" else [])
        chosen = [r for r in pool if r.split == "fit" and step.select(r)]
        if not chosen:
            continue
        values = fit_profile(chosen, p, step, cat)
        fitted[step.profile] = values
        p = with_fitted(p, {step.profile: values})
    return fitted


def shipped_fit() -> dict[str, dict[str, float]]:
    """The fitted values in catalog/calibration/fit.toml, by FIT_PLAN profile name ("base": [fitted])."""
    doc = read_toml(CATALOG / "calibration" / "fit.toml", "catalog/calibration/fit.toml")
    out = {"base": dict(doc.get("fitted", {}))}
    out.update({k: dict(v) for k, v in doc.get("profile", {}).items()})
    return out


def with_fitted(p: PerfParams, fitted: Mapping[str, Mapping[str, float]]) -> PerfParams:
    """`p` with fitted values: "base" updates the [perf] values, every other name its profile."""
    base = fitted.get("base")
    if base:
        p = p.updated(dict(base), "fit")
    return p.with_profiles({k: dict(v) for k, v in fitted.items() if k != "base"}, "fit")


# ---- reporting ------------------------------------------------------------------------------------------------------
def error_table(rows: Sequence[Row], errs: np.ndarray, catalog=None) -> list[dict[str, Any]]:
    """Signed median, median |error| and worst |error| per (family, engine, metric, split); rows fitted against
    the H200 (paired_rows) are their own metric, suffixed " vs h200"."""
    cat = catalog or load_catalog()
    groups: dict[tuple[str, str, str, str], list[float]] = {}
    for r, e in zip(rows, errs):
        metric = r.metric + (" vs h200" if r.dataset == PAIRED_DATASET else "")
        key = (cat.gpu(r.gpu).family, r.engine, metric, r.split)
        groups.setdefault(key, []).append(float(e))
    out = []
    for key in sorted(groups):
        a = np.array(groups[key])
        out.append({"family": key[0], "engine": key[1], "metric": key[2], "split": key[3], "rows": len(a),
                    "signed_median": float(np.median(a)), "median_abs": float(np.median(np.abs(a))),
                    "worst_abs": float(np.max(np.abs(a)))})
    return out


def format_table(table: Sequence[Mapping[str, Any]]) -> str:
    lines = ["| family | engine | metric | split | rows | signed median | median abs | worst abs |",
             "|---|---|---|---|---:|---:|---:|---:|"]
    for t in table:
        lines.append(f"| {t['family']} | {t['engine']} | {t['metric']} | {t['split']} | {t['rows']} | "
                     f"{t['signed_median']:+.1%} | {t['median_abs']:.1%} | {t['worst_abs']:.1%} |")
    return "\n".join(lines)


def fit_toml(fitted: Mapping[str, Mapping[str, float]], table: Sequence[Mapping[str, Any]]) -> str:
    lines = ["# Written by `python -m planner.perf.calibrate --write`; do not edit by hand.",
             "# Data and splits: planner/perf/calibrate.py (catalog/calibration/*). [fitted] overrides catalog/perf.toml's",
             "# [perf] values, each [profile.*] below the profile of the same name.",
             "schema_version = 2", 'command = "python -m planner.perf.calibrate --write"', ""]
    for step in FIT_PLAN:
        if step.profile not in fitted:
            continue
        lines.append(f"# {step.why}")
        lines.append("[fitted]" if step.profile == "base" else f'[profile."{step.profile}"]')
        lines += [f"{k} = {v:.6g}" for k, v in fitted[step.profile].items()]
        lines.append("")
    for t in table:
        lines.append("[[error]]")
        lines += [f'{k} = "{v}"' if isinstance(v, str) else f"{k} = {v:.4f}" if isinstance(v, float) else f"{k} = {v}"
                  for k, v in t.items()]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help="write catalog/calibration/fit.toml")
    ap.add_argument("--rows", action="store_true", help="print every row's error")
    ap.add_argument("--only", help="comma-separated FIT_PLAN profiles to refit (base, hopper.trtllm, ampere, ...); "
                                   "the others keep their values in fit.toml")
    ap.add_argument("--report", action="store_true",
                    help="no fit: the error tables of the shipped catalog (what README's accuracy section shows)")
    args = ap.parse_args(argv)
    cat = load_catalog()
    rows = load_rows()
    base = cat.perf
    if args.report:
        rows = rows + paired_rows(rows, base, cat)
        errs = errors(rows, base, cat)
        print(format_table(error_table(rows, errs, cat)))
        if args.rows:
            for r, e in zip(rows, errs):
                print(f"  {r.split:8s} {r.label:80s} measured {r.value:11.5g}  error {e:+.1%}")
        return 0
    only = None
    if args.only:
        only = [x.strip() for x in args.only.split(",") if x.strip()]
        unknown = sorted(set(only) - {s.profile for s in FIT_PLAN})
        if unknown:
            print(f"--only: unknown profile(s) {', '.join(unknown)} (known: "
                  f"{', '.join(s.profile for s in FIT_PLAN)})", file=sys.stderr)
            return 2
    # the profiles being refitted start from nothing: a term the new fit leaves out must not linger from fit.toml
    refit = {s.profile for s in FIT_PLAN if only is None or s.profile in only} - {"base"}
    base = replace(base, profiles=MappingProxyType({k: v for k, v in base.profiles.items() if k not in refit}))
    fitted = fit_all(rows, base, cat, only=only, kept=shipped_fit())
    p = with_fitted(base, fitted)
    rows = rows + paired_rows(rows, p, cat)
    errs = errors(rows, p, cat)
    for name, values in fitted.items():
        print(f"[{'fitted' if name == 'base' else 'profile.' + name}]", {k: float(f"{v:.4g}") for k, v in values.items()})
    table = error_table(rows, errs, cat)
    print(format_table(table))
    if args.rows:
        for r, e in zip(rows, errs):
            print(f"  {r.split:8s} {r.label:80s} measured {r.value:11.5g}  error {e:+.1%}")
    if args.write:
        path = Path(str(CATALOG)) / "calibration" / "fit.toml"
        path.write_text(fit_toml(fitted, table), encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
