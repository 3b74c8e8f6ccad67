"""`planner calibrate --measure`: time the kernels the perf model prices on the user's own GPU, fit the kernel terms
to them, and write a catalog TOML that `--catalog` accepts.

Measured (PyTorch, random weights, every timed step captured in a CUDA graph and replayed; ~2 minutes on an H100):
- HBM read bandwidth (a reduction over 2 GiB);
- GEMMs: skinny [B, h] x [h, N] for B = 1 … 1024 (decode shapes) and one large square GEMM (reference only);
- decode attention over a grid of batch x context (one layer's KV cache, GQA as the model has it);
- a decode step and a prefill of a synthetic stack of the model's layers (RMSNorm, fused QKV, KV-cache write,
  attention, O, RMSNorm, fused gate/up, SiLU·up, down; embedding and LM head), as many layers as fit in memory.

The record has the format of catalog/calibration/h100-sxm-pytorch-bf16.json, so `fit_record` (no GPU needed, tested
on that recorded data) turns either into a `[profile."<gpu-id>"]` table: the fitted kernel terms for that GPU,
applied over its family's values by `PerfParams.for_gpu`."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Mapping

from ..errors import InputError
from .calibrate import FitStep, error_table, errors, fit_profile, format_table, gpu_run_rows, with_fitted

# The kernel terms a GPU run determines (the engine terms need a serving engine: catalog/perf.toml).
MEASURED_TERMS = ("hbm_efficiency", "flops_efficiency", "prefill_flops_efficiency", "attention_flops_efficiency",
                  "layer_overhead_s", "attention_ctas_per_sm", "step_overhead_s")


# ---- fitting (CPU) ----------------------------------------------------------------------------------------------
def fit_record(record: Mapping[str, Any], gpu_id: str, catalog,
               rounds: int = 40) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Fit MEASURED_TERMS for `gpu_id` to a GPU-run record; returns (values, error table rows per family/metric)."""
    gpu = catalog.gpu(gpu_id)
    rows = [r for r in gpu_run_rows(record, dataset="measured", source=str(record.get("gpu", gpu.id)), gpu=gpu.id)
            if r.split != "reference"]
    if not any(r.metric in ("decode_step_s", "prefill_s") for r in rows):
        raise InputError("the record has no decode_step or prefill cases to fit")
    base = catalog.perf
    start = {k: float(getattr(base.with_engine("pytorch").for_gpu(gpu.id, gpu.family), k)) for k in MEASURED_TERMS}
    start = {k: (v if v > 0 else {"attention_ctas_per_sm": 0.5}.get(k, 1e-5))
             for k, v in start.items()}
    step = FitStep(f"{gpu.id}.pytorch", MEASURED_TERMS, lambda r: True, start, f"measured on {gpu.id}")
    values = fit_profile(rows, base, step, catalog, rounds=rounds)
    fitted = with_fitted(base, {gpu.id: values})
    table = error_table(rows, errors(rows, fitted, catalog), catalog)
    return values, table


def catalog_toml(gpu_id: str, values: Mapping[str, float], record: Mapping[str, Any],
                 table: list[dict[str, Any]]) -> str:
    """A user catalog with the fitted `[profile."<gpu-id>"]` (accepted by `--catalog`)."""
    lines = [f"# Written by `planner calibrate --measure` on {record.get('gpu', gpu_id)} ({record.get('software', '')}),",
             f"# measured {record.get('measured', '')}. Kernel terms fitted to the measurements; serving-engine terms",
             "# (step overhead, KV split) still come from the shipped engine profiles.",
             "schema_version = 1", f'measured = "{record.get("measured", "")}"', "",
             f'[profile."{gpu_id}"]']
    lines += [f"{k} = {v:.6g}" for k, v in values.items() if k != "step_overhead_s"]
    lines += ["", f'[profile."{gpu_id}.pytorch"]  # a bare forward pass: the measured per-step time',
              f"step_overhead_s = {values.get('step_overhead_s', 0.0):.6g}", ""]
    lines += ["# fit error on the measurements (signed median, median |error|, worst |error|):"]
    lines += [f"#   {t['metric']}: {t['signed_median']:+.1%}, {t['median_abs']:.1%}, {t['worst_abs']:.1%} "
              f"over {t['rows']} rows" for t in table]
    return "\n".join(lines) + "\n"


def run(gpu_id: str, out: Path, catalog, model_name: str = "llama-3.1-8b", record_path: Path | None = None,
        echo=print) -> int:
    """Measure (or, with `record_path`, read a recorded run), fit, write `out`, print the fit error. Returns 0."""
    gpu = catalog.gpu(gpu_id)
    if record_path is not None:
        try:
            record = json.loads(Path(record_path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise InputError(f"{record_path}: cannot read a measurement record ({e})") from None
    else:
        record = measure(catalog, model_name)
        raw = out.with_suffix(".json")
        raw.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        echo(f"measurements: {raw}")
    values, table = fit_record(record, gpu.id, catalog)
    out.write_text(catalog_toml(gpu.id, values, record, table), encoding="utf-8")
    echo(format_table(table))
    echo(f"wrote {out} (use: --catalog {out})")
    return 0


# ---- measuring (GPU) --------------------------------------------------------------------------------------------
def _torch():
    """torch with a CUDA device, or InputError (one line, exit 2)."""
    try:
        import torch  # noqa: PLC0415
    except ImportError:
        raise InputError("planner calibrate --measure needs PyTorch: pip install 'inference-planner[measure]'") from None
    if not torch.cuda.is_available():
        raise InputError("planner calibrate --measure needs a CUDA GPU; none is visible to PyTorch")
    return torch


def _graph_time_s(torch, fn, replays: int = 20) -> float:
    """Mean time of `fn` captured in a CUDA graph and replayed (3 warm-ups outside the graph)."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    graph.replay()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(replays):
        graph.replay()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / 1000.0 / replays


def measure(catalog, model_name: str = "llama-3.1-8b") -> dict[str, Any]:
    """Run the measurements on the current CUDA device; returns the record (see module docstring)."""
    from ..catalog import load_model

    torch = _torch()
    import torch.nn.functional as F  # noqa: PLC0415

    m = load_model(model_name)
    dev, bf16 = "cuda", torch.bfloat16
    h, f, H, Hkv, d, V = (m.hidden_size, m.dense_intermediate_size, m.num_heads, m.num_kv_heads, m.head_dim,
                          m.vocab_size)
    micro: dict[str, float] = {}
    began = time.time()
    x = torch.empty(2 << 30, dtype=torch.uint8, device=dev).view(torch.float32)
    t = _graph_time_s(torch, lambda: torch.sum(x))
    micro["read_only_TBps"] = round(x.numel() * 4 / t / 1e12, 4)
    del x
    a = torch.randn(8192, 8192, dtype=bf16, device=dev)
    t = _graph_time_s(torch, lambda: a @ a)
    micro["bf16_gemm_8192_TFLOPs"] = round(2 * 8192 ** 3 / t / 1e12, 1)
    w = torch.randn(8192, 28672, dtype=bf16, device=dev)
    for b in (1, 16, 64, 128, 256, 512, 1024):
        xb = torch.randn(b, 8192, dtype=bf16, device=dev)
        micro[f"skinny_gemm_b{b}_s"] = _graph_time_s(torch, lambda xb=xb: xb @ w)
    del a, w

    # a synthetic stack of the model's layers, as many as fit in ~60 % of free memory at the largest case
    cases_spec = [("decode_step", 1, 1024), ("decode_step", 8, 1024), ("decode_step", 32, 1024),
                  ("decode_step", 128, 1024), ("decode_step", 1, 4096), ("decode_step", 16, 4096),
                  ("decode_step", 1, 8192), ("prefill", 1, 512), ("prefill", 1, 2048), ("prefill", 1, 8192)]
    layer_bytes = (m.layer_shared_params + 0.0) * 2
    kv_max = max(b * c for k, b, c in cases_spec if k == "decode_step") * 2 * Hkv * d * 2
    free, _ = torch.cuda.mem_get_info()
    layers = int(max(1, min(m.num_layers, (0.6 * free - 2 * V * h * 2) // (layer_bytes + kv_max))))
    ln = [torch.ones(h, dtype=bf16, device=dev) for _ in range(2)]
    W = [dict(qkv=torch.randn(h, (H + 2 * Hkv) * d, dtype=bf16, device=dev) * 0.02,
              o=torch.randn(H * d, h, dtype=bf16, device=dev) * 0.02,
              up=torch.randn(h, 2 * f, dtype=bf16, device=dev) * 0.02,
              down=torch.randn(f, h, dtype=bf16, device=dev) * 0.02) for _ in range(layers)]
    emb = torch.randn(V, h, dtype=bf16, device=dev) * 0.02
    head = torch.randn(h, V, dtype=bf16, device=dev) * 0.02

    def norm(z, g):
        return z * torch.rsqrt(z.float().pow(2).mean(-1, keepdim=True) + 1e-5).to(z.dtype) * g

    def forward(tokens, kv, pos, decode: bool):
        B, T = tokens.shape
        z = emb[tokens]
        for i, w in enumerate(W):
            qkv = norm(z, ln[0]) @ w["qkv"]
            q, k, v = qkv.split([H * d, Hkv * d, Hkv * d], dim=-1)
            q = q.view(B, T, Hkv, H // Hkv, d).permute(0, 2, 1, 3, 4).reshape(B, Hkv, T * (H // Hkv), d)
            k = k.view(B, T, Hkv, d).transpose(1, 2)
            v = v.view(B, T, Hkv, d).transpose(1, 2)
            if decode:  # write the new token's K/V, attend over the whole cache (query heads as rows per KV head)
                kv[i][0][:, :, pos:pos + 1] = k
                kv[i][1][:, :, pos:pos + 1] = v
                att = F.scaled_dot_product_attention(q, kv[i][0], kv[i][1])
            else:
                att = F.scaled_dot_product_attention(q.view(B, Hkv, T, H // Hkv, d).transpose(2, 3)
                                                     .reshape(B, H, T, d),
                                                     k.repeat_interleave(H // Hkv, 1),
                                                     v.repeat_interleave(H // Hkv, 1), is_causal=True)
            att = att.reshape(B, -1, H * d) if decode else att.transpose(1, 2).reshape(B, T, H * d)
            z = z + att @ w["o"]
            g, u = (norm(z, ln[1]) @ w["up"]).chunk(2, dim=-1)
            z = z + (F.silu(g) * u) @ w["down"]
        last = z[:, -1:] if not decode else z
        return torch.argmax(norm(last, ln[0]) @ head, dim=-1)

    cases = []
    # decode attention alone over a grid of batch x context: one layer's KV cache, GQA query rows per KV head
    for b in (1, 8, 64):
        for ctx in (1024, 4096, 16384):
            kc = torch.randn(b, Hkv, ctx, d, dtype=bf16, device=dev)
            vc = torch.randn(b, Hkv, ctx, d, dtype=bf16, device=dev)
            q = torch.randn(b, Hkv, H // Hkv, d, dtype=bf16, device=dev)
            cases.append({"kind": "decode_attention", "model": model_name, "layers": 1, "batch": b, "context": ctx,
                          "step_s": _graph_time_s(torch, lambda: F.scaled_dot_product_attention(q, kc, vc))})
            del kc, vc
    for kind, b, ctx in cases_spec:
        if time.time() - began > 150:  # keep the whole run near two minutes
            break
        if kind == "decode_step":
            kv = [(torch.zeros(b, Hkv, ctx, d, dtype=bf16, device=dev),
                   torch.zeros(b, Hkv, ctx, d, dtype=bf16, device=dev)) for _ in range(layers)]
            tok = torch.zeros(b, 1, dtype=torch.long, device=dev)
            step = _graph_time_s(torch, lambda: forward(tok, kv, ctx - 1, True))
            cases.append({"kind": kind, "model": f"{model_name}-{layers}layers", "layers": layers, "batch": b,
                          "context": ctx, "step_s": step})
            del kv
        else:
            tok = torch.zeros(1, ctx, dtype=torch.long, device=dev)
            step = _graph_time_s(torch, lambda: forward(tok, None, 0, False), replays=5)
            cases.append({"kind": kind, "model": f"{model_name}-{layers}layers", "layers": layers, "batch": 1,
                          "seq": ctx, "step_s": step})
        torch.cuda.empty_cache()
    return {"gpu": torch.cuda.get_device_name(), "software": f"PyTorch {torch.__version__}, CUDA graphs",
            "measured": time.strftime("%Y-%m-%d"), "micro_benchmarks": micro, "cases": cases,
            "wall_s": round(time.time() - began, 1)}

