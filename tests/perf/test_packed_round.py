"""The steady-state round under chunked prefill (perf.estimate.packed_chunk, perf/batching.py): the prompts that
arrive in a cycle ride on its steps packed under the token budget, each step one forward pass, so a round is
never cheaper than its tokens' FLOPs at peak (issue 12, item 3)."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from planner import api
from planner.perf.estimate import Config, estimate, hardware, packed_chunk
from planner.perf.step import embedding_step, layer_step, lm_head_step
from planner.specs.workload import Workload


def test_packed_chunk_by_hand():
    # sparse arrivals (1 sequence, ISL 4000, OSL 10: 400 prompt tokens per step): the prompt's own 4000-token
    # chunk rides alone on one step in ten; nothing is packed
    c, share, extra = packed_chunk(4000, 10, 1, 1, 4000.0, 8192)
    assert (float(c), float(share), float(extra)) == (4000.0, 1.0, 0.0)
    # 64 sequences, ISL 16, OSL 1: 64 prompts of 16 tokens arrive per step, 1024 tokens in one pass; each prompt's
    # one chunk is 16/1024 of that step
    c, share, extra = packed_chunk(16, 1, 64, 64, 16.0, 8192)
    assert (float(c), float(share), float(extra)) == (1024.0, 16 / 1024, 0.0)
    # 1000 sequences, ISL 16, OSL 1: 16,000 tokens arrive per step but only 8192 − 1000 fit; 16000/7192 steps per
    # cycle carry chunks, the round repeats the decode step 16000/7192 − 1 more times: each prompt's chunk carries
    # 16/7192 of a full step and (1 − 7192/16000) · 16/7192 of a decode step
    c, share, extra = packed_chunk(16, 1, 1000, 1000, 16.0, 8192)
    assert float(c) == 7192.0 and float(share) == pytest.approx(16 / 7192, rel=1e-15)
    assert float(extra) == pytest.approx(16 / 7192 * (1 - 7192 / 16000), rel=1e-12)


def test_memory_bound_round_is_unchanged(preset, h100, round_params):
    """Batch 4, ISL 1000, OSL 200: 20 prompt tokens arrive per step, fewer than one prompt (1000), so a prompt's
    chunk rides alone: the round is the cycle plus B/OSL prompts' lone-chunk stalls, as before packing."""
    m = preset("llama-3.1-70b")
    e = estimate(m, Config(gpu=h100, tp=8, batch=4), Workload(isl=1000, osl=200), round_params)
    hw = hardware(h100, "bf16", 8)
    kw = dict(tp=8, ep=1, weight_bytes=2.0, kv_bytes=2.0, sequences=0.0, context_from=0.0, context_to=0.0,
              reads_cache=False)
    mixed = layer_step(m, hw, round_params, tokens=4, chunk_tokens=1000, chunk_attended_tokens=500,
                       chunk_kv_read_tokens=0, **kw).time_s
    alone = layer_step(m, hw, round_params, tokens=4, **kw).time_s
    stall = (80 * (mixed - alone)
             + embedding_step(m, hw, round_params, tokens=1004).time_s
             - embedding_step(m, hw, round_params, tokens=4).time_s
             + lm_head_step(m, hw, round_params, tp=8, logit_tokens=5).time_s
             - lm_head_step(m, hw, round_params, tp=8, logit_tokens=4).time_s)
    assert e.prefill_stall_s == pytest.approx(float(stall), rel=1e-12)
    assert e.output_tokens_per_s == pytest.approx(4 / (e.decode_cycle_s + 4 / 200 * e.prefill_stall_s), rel=1e-12)


def test_small_osl_round_is_one_pass_over_all_its_tokens(preset, h100, round_params):
    """Batch 64, ISL 16, OSL 1 (the issue's case, TP8 bf16 here): each cycle the 64 decode tokens and 64 · 16 =
    1024 prompt tokens go through one forward pass (weights read once, 64 prompts completed: 64 more logit
    rows); by hand, the shared GEMMs alone of 1088 tokens are compute-bound, and the round cannot beat them."""
    m = preset("llama-3.1-70b")
    e = estimate(m, Config(gpu=h100, tp=8, batch=64), Workload(isl=16, osl=1), round_params)
    hw = hardware(h100, "bf16", 8)
    p = round_params
    kw = dict(tp=8, ep=1, weight_bytes=2.0, kv_bytes=2.0)
    # the decode step: 64 sequences at contexts 16 … 17
    dec = layer_step(m, hw, p, tokens=64, sequences=64, context_from=16, context_to=17, reads_cache=True, **kw)
    # the one mixed pass: the decode tokens (their attention cancels in the increment, kept here) + 1024 chunk
    # tokens attending 8 keys each on average
    mixed = layer_step(m, hw, p, tokens=64, sequences=64, context_from=16, context_to=17, reads_cache=True,
                       chunk_tokens=1024, chunk_attended_tokens=8, chunk_kv_read_tokens=0, **kw)
    step = (80 * mixed.time_s + embedding_step(m, hw, p, tokens=1088).time_s
            + lm_head_step(m, hw, p, tp=8, logit_tokens=128).time_s + p.step_overhead_s)
    round_s = 64 / e.output_tokens_per_s
    assert round_s == pytest.approx(float(step), rel=1e-9)
    # TPOT: the other 63 requests' prompts (63/64 of the packed increment)
    cycle = 80 * dec.time_s + embedding_step(m, hw, p, tokens=64).time_s + lm_head_step(
        m, hw, p, tp=8, logit_tokens=64).time_s + p.step_overhead_s
    assert e.decode_cycle_s == pytest.approx(float(cycle), rel=1e-9)
    assert e.tpot_s == pytest.approx(float(cycle) + 63 / 64 * float(step - cycle), rel=1e-9)
    # hand floor: 2 · 855,654,400 shared weights per layer · 1088 tokens / 8 GPUs at 989.4 TFLOP/s × 0.5
    assert round_s > 80 * 2 * 855_654_400 * 1088 / 8 / (989.4e12 * 0.5)
    assert e.mfu < 1.0


def test_issue_case_mfu_below_one(catalog):
    """The issue's reproduction: 2,189 tok/s and MFU 1.31 before packing."""
    e = api.estimate("llama-3.1-70b", "h100-sxm", tp=2, weights="fp8", kv="fp8", batch=64, isl=16, osl=1,
                     catalog=catalog)
    assert e.mfu < 1.0 and e.mbu < 1.0


def test_overflowing_round_repeats_the_decode_step(preset, h100, round_params):
    """ISL 16, OSL 1 at batch 1024 (one stage): 16,384 prompt tokens arrive per cycle, 8192 − 1024 = 7168 fit in a
    step, so the round is 16384/7168 full mixed steps of 1024 decode + 7168 prompt tokens."""
    m = preset("llama-3.1-70b")
    e = estimate(m, Config(gpu=h100, tp=8, batch=1024), Workload(isl=16, osl=1), round_params)
    hw = hardware(h100, "bf16", 8)
    p = round_params
    kw = dict(tp=8, ep=1, weight_bytes=2.0, kv_bytes=2.0, tokens=1024, sequences=1024, context_from=16,
              context_to=17, reads_cache=True)
    mixed = layer_step(m, hw, p, chunk_tokens=7168, chunk_attended_tokens=8, chunk_kv_read_tokens=0, **kw)
    step = (80 * mixed.time_s + embedding_step(m, hw, p, tokens=8192).time_s
            + lm_head_step(m, hw, p, tp=8, logit_tokens=1024 + 448).time_s + p.step_overhead_s)
    assert 1024 / e.output_tokens_per_s == pytest.approx(16384 / 7168 * float(step), rel=1e-9)
    assert e.mfu < 1.0


CASES = st.fixed_dictionaries({
    "model": st.sampled_from(["llama-3.1-8b", "llama-3.1-70b", "mixtral-8x7b", "qwen3-235b-a22b", "gemma-2-27b"]),
    "gpu": st.sampled_from(["h100-sxm", "a100-80gb", "l40s", "h200"]),
    "tp": st.sampled_from([1, 2, 4, 8]),
    "pp": st.sampled_from([1, 1, 2, 3, 4]),
    "micro_batch": st.one_of(st.sampled_from([64, 256, 1024]), st.integers(1, 2048)),
    "isl": st.sampled_from([1, 16, 128, 128, 2000, 8000, 32000]),
    "osl": st.sampled_from([1, 1, 2, 16, 500, 2000]),
    "weights": st.sampled_from(["bf16", "fp8"]),
    "prefill_first": st.booleans(),
})


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(CASES)
@example({"model": "llama-3.1-70b", "gpu": "h100-sxm", "tp": 2, "pp": 1, "micro_batch": 64, "isl": 16, "osl": 1,
          "weights": "fp8", "prefill_first": False})  # the issue's case: MFU 1.31 before packing
@example({"model": "mixtral-8x7b", "gpu": "h100-sxm", "tp": 2, "pp": 2, "micro_batch": 256, "isl": 128, "osl": 1,
          "weights": "fp8", "prefill_first": False})
def test_mfu_and_mbu_at_most_one(catalog, case):
    """Whatever the batch, lengths, pipeline depth or scheduling, the replica cannot run the model's FLOPs faster
    than its GPUs' peak nor read its decode bytes faster than their HBM."""
    c = dict(case)
    pf = c.pop("prefill_first")
    cat = catalog if not pf else _prefill_first(catalog)
    mb = c.pop("micro_batch")
    try:
        e = api.estimate(c.pop("model"), c.pop("gpu"), batch=mb * c["pp"], kv=c["weights"], catalog=cat, **c)
    except Exception as err:  # configurations the model rejects (TP over the heads, PP over the layers)
        if type(err).__name__ == "InputError":
            return
        raise
    assert e.mfu <= 1.0 + 1e-9, (case, e.mfu)
    assert e.mbu <= 1.0 + 1e-9, (case, e.mbu)


def _prefill_first(catalog):
    from dataclasses import replace
    return replace(catalog, perf=replace(catalog.perf, prefill_first=True))
