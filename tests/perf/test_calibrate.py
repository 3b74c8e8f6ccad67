"""planner/perf/calibrate.py: calibration rows, prediction, fitting (on CPU, with recorded data) and the shipped
fit's errors against the issue's targets."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from planner.catalog import CATALOG
from planner.perf import calibrate as cal
from planner.perf.params import PerfParams


@pytest.fixture(scope="module")
def rows():
    return cal.load_rows()


def test_shared_h100_rows_parse_with_provenance(rows):
    h = [r for r in rows if r.dataset == "h100-pytorch"]
    kinds = {m: sum(r.metric == m for r in h) for m in {r.metric for r in h}}
    assert kinds == {"hbm_read_bytes_per_s": 1, "gemm_flops_per_s": 2, "skinny_gemm_s": 7, "decode_step_s": 14,
                     "prefill_s": 5}
    assert all(r.engine == "pytorch" and r.gpu == "h100-sxm" and "h100-sxm-pytorch-bf16" in r.source for r in h)
    seventy = [r for r in h if r.model == "llama-3.1-70b"]
    assert seventy and all(r.layers == 20 for r in seventy)  # "llama-3.1-70b-20layers": 20 of the 80 layers
    assert sum(r.split == "held-out" for r in h) == len(cal.HELD_OUT_H100)
    t = [r for r in rows if r.dataset == "trtllm-perf-overview"]
    assert len(t) == 100 and sum(r.split == "held-out" for r in t) == 30  # 3 of 10 ISL/OSL pairs held out


def test_published_datasets_parse_with_provenance(rows):
    import tomllib
    v09 = [r for r in rows if r.dataset == "trtllm-v0.9"]
    assert len(v09) == 96 and {r.gpu for r in v09} == {"a100-80gb", "l40s", "h100-sxm", "h200"}
    assert all("TensorRT-LLM/blob/v0.9.0" in r.source and r.engine == "trtllm" for r in v09)
    doc = tomllib.loads((cal.CATALOG / "calibration" / "trtllm_v0.9_performance.toml").read_text(encoding="utf-8"))
    first = doc["row"][0]  # printed per GPU; the row carries the run's total over its TP GPUs
    r0 = next(r for r in v09 if (r.model, r.gpu, r.isl, r.osl, r.batch, r.metric) == (
        first["model"], first["gpu"], first["isl"], first["osl"], first["batch"], "output_tokens_per_s"))
    assert r0.value == first["value"] * first["tp"]
    ttft = [r for r in v09 if r.metric == "ttft_s"]
    assert len(ttft) == 32 and all(r.batch == 1 and r.osl == 1 for r in ttft)
    # Ampere/Ada: (2048, 2048) and Mistral's first-token rows held out; Hopper rows all held out
    assert all(r.split == "held-out" for r in v09 if r.gpu in ("h100-sxm", "h200"))
    assert sum(r.split == "held-out" for r in v09 if r.gpu in ("a100-80gb", "l40s")) == 2 * (4 + 2)
    ds = [r for r in rows if r.dataset == "dstack-deepseek-r1"]
    assert len(ds) == 75 and all(r.split == "check" and r.model == "deepseek-v3" and r.tp == 8 for r in ds)
    assert all(r.batch <= cal.VLLM_V0_MAX_NUM_SEQS for r in ds if r.engine == "vllm")
    js = [r for r in rows if r.dataset == "jetstream-pytorch"]
    assert len(js) == 6 and all(r.gpu == "tpu-v5e" and (r.isl, r.osl) == (110, 305) for r in js)


def test_paired_rows_fit_the_mi300x_to_h200_ratio(rows, catalog):
    """Each MI300X vLLM row becomes value · predicted(H200) / measured(H200) for the H200 run of the same engine,
    metric, lengths and batch; split by HELD_OUT_DSTACK_*."""
    p = catalog.perf
    paired = cal.paired_rows(rows, p, catalog)
    assert paired and all(r.gpu == "mi300x" and r.engine == "vllm" for r in paired)
    r = next(x for x in paired if x.metric == "tpot_s" and x.batch == 4)
    mi = next(x for x in rows if x.dataset == "dstack-deepseek-r1" and x.gpu == "mi300x" and x.engine == "vllm"
              and x.metric == "tpot_s" and x.batch == 4)
    h2 = next(x for x in rows if x.dataset == "dstack-deepseek-r1" and x.gpu == "h200" and x.engine == "vllm"
              and x.metric == "tpot_s" and x.batch == 4)
    assert (mi.value, h2.value) == (0.04616849698, 0.02573463239)  # median TPOT ms / 1000 as recorded
    assert r.value == pytest.approx(mi.value * cal.predict(h2, p, catalog) / h2.value, rel=1e-12)
    assert r.split == "fit" and all(x.split == "held-out" for x in paired if x.osl == 1600)
    # 3200/3200 has no H200 vLLM run: no pair
    assert not [x for x in paired if x.osl == 3200]


def test_first_token_row_is_the_batch_1_prefill(catalog):
    row = cal.Row(dataset="t", source="t", engine="trtllm", gpu="a100-80gb", model="llama-2-7b", metric="ttft_s",
                  value=1.0, batch=1, isl=2048, osl=1, weights="fp16", kv="fp16")
    p = catalog.perf
    assert cal.predict(row, p, catalog) == cal.predict(replace(row, metric="prefill_s"), p, catalog)


def test_fill_caps_the_batch_at_what_the_kv_cache_holds(catalog):
    """Offline runs submit N requests at once; the engine runs as many as fit (the model's max_batch)."""
    row = cal.Row(dataset="t", source="t", engine="sglang", gpu="mi300x", model="deepseek-v3",
                  metric="output_tokens_per_s", value=1.0, tp=8, batch=100000, isl=3200, osl=800, weights="fp8",
                  fill=True)
    from planner.perf.estimate import Config, estimate
    from planner.specs.workload import Workload
    run = catalog.perf.with_engine("sglang")
    cfg = Config(gpu=catalog.gpu("mi300x"), tp=8, batch=1, weights="fp8", kv="bf16")
    w = Workload(isl=3200, osl=800)
    fits = estimate(cal._model("deepseek-v3"), cfg, w, run).max_batch
    assert 1 < fits < 100000
    expect = estimate(cal._model("deepseek-v3"), replace(cfg, batch=min(fits, run.max_batch)), w, run)
    assert cal.predict(row, catalog.perf, catalog) == expect.output_tokens_per_s
    assert cal.predict(replace(row, batch=4), catalog.perf, catalog) == estimate(
        cal._model("deepseek-v3"), replace(cfg, batch=4), w, run).output_tokens_per_s


def test_predicted_decode_bytes_match_the_recorded_byte_counts(rows, catalog):
    """With every efficiency 1 and no fixed costs, a batch-1 decode step is its bytes at the nominal 3.35 TB/s:
    the run recorded the bytes it read (weights incl. embedding and head, KV), an independent check of the
    model's byte accounting."""
    p = PerfParams(hbm_efficiency=1.0, flops_efficiency=1.0, prefill_flops_efficiency=1.0,
                   attention_flops_efficiency=1.0, step_overhead_s=0.0, layer_overhead_s=0.0,
                   attention_ctas_per_sm=0.0, gemm_tile_tokens=0.0, gemm_tile_cols=0.0)
    import json
    doc = json.loads((cal.CATALOG / "calibration" / "h100-sxm-pytorch-bf16.json").read_text())
    for case in doc["cases"]:
        if case["kind"] != "decode_step" or case["batch"] != 1:
            continue
        row = next(r for r in rows if r.metric == "decode_step_s" and r.batch == 1 and r.isl == case["context"]
                   and r.layers == case["layers"])
        # the recorded weight bytes count the whole embedding table (128,256 x hidden x 2 B); a step reads one row
        hidden = 4096 if row.model == "llama-3.1-8b" else 8192
        recorded = (case["weight_bytes"] - 128256 * hidden * 2 + case["kv_bytes"]) / 3.35e12
        # the model also reads that row, its norms and writes one KV token: < 0.2 % more
        assert cal.predict(row, p, catalog) == pytest.approx(recorded, rel=2e-3)


def test_fit_recovers_known_parameters_from_synthetic_rows(rows, catalog):
    """Rows generated by the model with known parameters are fitted back from another start."""
    truth = {"hbm_efficiency": 0.7, "layer_overhead_s": 40e-6, "attention_ctas_per_sm": 0.5}
    base = PerfParams(flops_efficiency=0.8, prefill_flops_efficiency=0.6, attention_flops_efficiency=0.4,
                      gemm_tile_tokens=128.0, gemm_tile_cols=128.0, step_overhead_s=0.0)
    source = [r for r in rows if r.metric == "decode_step_s"]
    known = base.updated(truth, "truth")
    synthetic = [replace(r, value=cal.predict(r, known, catalog)) for r in source]
    step = cal.FitStep("base", tuple(truth), lambda r: True,
                       {"hbm_efficiency": 0.9, "layer_overhead_s": 10e-6, "attention_ctas_per_sm": 0.2}, "test")
    got = cal.fit_profile(synthetic, base, step, catalog)
    for k, v in truth.items():
        assert got[k] == pytest.approx(v, rel=0.03), k


def test_with_fitted_sets_base_values_and_profiles():
    p = cal.with_fitted(PerfParams(), {"base": {"hbm_efficiency": 0.5}, "hopper.trtllm": {"hbm_efficiency": 0.9}})
    assert p.hbm_efficiency == 0.5
    assert p.with_engine("trtllm").for_gpu("h200", "hopper").hbm_efficiency == 0.9
    assert p.with_engine("vllm").for_gpu("h200", "hopper").hbm_efficiency == 0.5


def test_shipped_fit_meets_the_targets_on_the_shared_h100_data(rows, catalog):
    """Issue 14: on the shared H100 data, median |error| <= 5 % and no batch-1 row beyond 10 %."""
    h = [r for r in rows if r.dataset == "h100-pytorch" and r.split != "reference"]
    e = cal.errors(h, catalog.perf, catalog)
    assert np.median(np.abs(e)) <= 0.05
    for r, err in zip(h, e):
        if r.batch == 1:
            assert abs(err) <= 0.10, r.label


def test_shipped_fit_held_out_signed_median_within_15_percent(rows, catalog):
    """Issue 14: on the held-out split, no family's signed median error exceeds ±15 % (CDNA3: the MI300X/H200
    pairs it is fitted on; the absolute DeepSeek-R1 rows are split "check", README Known limits)."""
    held = [r for r in rows + cal.paired_rows(rows, catalog.perf, catalog) if r.split == "held-out"]
    e = cal.errors(held, catalog.perf, catalog)
    table = cal.error_table(held, e, catalog)
    families = {t["family"] for t in table}
    assert families == {"hopper", "blackwell", "ampere", "ada", "cdna3", "tpu"}
    for fam in families:
        errs = [x for r, x in zip(held, e) if catalog.gpu(r.gpu).family == fam]
        assert abs(np.median(errs)) <= 0.15, fam
    # and every (family, engine, metric) group of the README's table
    for t in table:
        assert abs(t["signed_median"]) <= 0.15, t


def test_family_hbm_bound_is_the_measured_bare_read(catalog):
    """The family fits' HBM bound is the shared H100 run's bare read over the H100 SXM's peak bandwidth."""
    doc = json.loads((CATALOG / "calibration" / "h100-sxm-pytorch-bf16.json").read_text())
    fraction = doc["micro_benchmarks"]["read_only_TBps"] * 1e12 / catalog.gpu("h100-sxm").hbm_bytes_per_s
    assert cal.BARE_HBM_READ_FRACTION == pytest.approx(fraction, abs=5e-4)
    steps = {s.profile: s for s in cal.FIT_PLAN}
    for fam in ("ampere", "ada", "tpu"):
        assert steps[fam].bounds["hbm_efficiency"][1] == cal.BARE_HBM_READ_FRACTION
        assert catalog.perf.for_gpu("-", fam).hbm_efficiency <= cal.BARE_HBM_READ_FRACTION


def test_decode_attention_row_by_hand(catalog):
    """A recorded decode-attention kernel (one layer, batch 1, 8192 tokens of Llama-3.1-8B's 8 KV heads): its
    K and V bytes at the occupancy 8 work items allow against 0.5 per SM on 132 SMs."""
    row = cal.Row(dataset="m", source="m", engine="pytorch", gpu="h100-sxm", model="llama-3.1-8b",
                  metric="decode_attention_s", value=1.0, batch=1, isl=8192, layers=1)
    p = PerfParams(hbm_efficiency=0.8, attention_ctas_per_sm=0.5)
    kv_bytes = 8192 * 2 * 8 * 128 * 2
    assert cal.predict(row, p, catalog) == pytest.approx(kv_bytes / (3.35e12 * 0.8 * 8 / 66), rel=1e-12)
    # 64 sequences saturate HBM: 512 items >= 66
    assert cal.predict(replace(row, batch=64), p, catalog) == pytest.approx(64 * kv_bytes / (3.35e12 * 0.8), rel=1e-12)


def test_wide_ep_rows_parse_with_provenance(rows, catalog):
    """deepseek_wide_ep.toml: TP1 pools with one attention-DP group per GPU and EP over all of them, "check" only;
    a prefill row's batch is its prompts per GPU, a decode row's its sequences per GPU; every row runs two-batch
    overlap but the derived decode without it."""
    w = [r for r in rows if r.dataset == "deepseek-wide-ep"]
    assert len(w) == 7 and all(r.split == "check" and r.engine == "sglang" and "lmsys.org" in r.source for r in w)
    assert all(r.tp == 1 and r.dp == r.ep and r.model == "deepseek-v3" and r.weights == "fp8" for r in w)
    pre = {(r.isl, r.value): r for r in w if r.metric == "prefill_tokens_per_s_per_node"}
    assert pre[(1024, 57674.0)].batch == 16 and pre[(4096, 50302.0)].batch == 4 and pre[(4096, 50302.0)].ep == 32
    assert pre[(4096, 62713.0)].redundant_experts == 256  # balanced routing: every expert free to place
    dec, plain = (r for r in w if r.metric == "decode_tokens_per_s_per_node")
    assert (dec.ep, dec.batch, dec.isl, dec.value) == (72, 256, 2000, 22282.0)
    assert all(r.two_batch_overlap for r in w if r is not plain)
    assert not plain.two_batch_overlap and replace(plain, value=dec.value, two_batch_overlap=True) == dec
    # the decode row is the pool's cycle at 256 sequences per GPU: 256 / cycle per GPU, 8 GPUs per node
    from planner.perf.estimate import Config, estimate
    from planner.specs.workload import Workload
    e = estimate(cal._model("deepseek-v3"), Config(gpu=catalog.gpu("h100-sxm"), tp=1, dp=72, ep=72, batch=256 * 72,
                                                   weights="fp8", kv="bf16", redundant_experts=32),
                 Workload(isl=2000, osl=100), replace(catalog.perf, two_batch_overlap=True).with_engine("sglang"))
    assert cal.predict(dec, catalog.perf, catalog) == pytest.approx(256 / e.decode_cycle_s * 8, rel=1e-12)
    # a prefill row: 16,384 prompt tokens per GPU over the step's time, 8 GPUs per node; more prompt tokens
    # per GPU in the step never lowers the rate
    r = pre[(4096, 50302.0)]
    assert cal.predict(r, catalog.perf, catalog) <= cal.predict(replace(r, batch=8), catalog.perf, catalog) * 1.0001
