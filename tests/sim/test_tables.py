"""The simulator's step-time tables are the perf model: at the plan's own operating point they reproduce
`estimate()`'s decode cycle and TTFT exactly, for dense, pipelined, MoE and speculative plans."""
import numpy as np
import pytest

from planner.perf.estimate import Config, SpecDecode, estimate
from planner.specs.workload import Workload
from planner.sim.tables import build_tables

CASES = [
    ("llama-3.1-8b", dict(batch=64)),
    ("llama-3.1-70b", dict(tp=4, pp=2, batch=48)),
    ("mixtral-8x7b", dict(tp=2, ep=2, batch=32)),
    ("llama-3.1-70b", dict(tp=4, batch=16, spec=("llama-3.1-8b", 4, 0.7))),
    # several layer kinds on several stages: each stage timed by its own kinds (3 dense-first + 58 MoE layers;
    # Llama-4-Scout's 24 MoE layers interleaved with 24 dense ones)
    ("deepseek-v3", dict(gpu="h200", tp=8, pp=2, batch=32, weights="fp8", kv="fp8")),
    ("llama-4-scout", dict(tp=2, pp=3, batch=24)),
]


@pytest.mark.parametrize("model,kw", CASES)
def test_tables_reproduce_estimate(catalog, preset, model, kw):
    kw = dict(kw)
    spec = kw.pop("spec", None)
    if spec:
        kw["spec"] = SpecDecode(preset(spec[0]), spec[1], spec[2])
    cfg = Config(gpu=catalog.gpu(kw.pop("gpu", "h100-sxm")), **kw)
    w = Workload(isl=1024, osl=256)
    tb = build_tables(preset(model), cfg, w, catalog.perf, max_ctx=4096)
    est = estimate(preset(model), cfg, w, catalog.perf)
    # estimate decodes the full batch at the mean context isl + osl/2; its TTFT is one prompt of isl tokens
    assert tb.decode_step_s(cfg.batch, 1024 + 128) == pytest.approx(est.decode_cycle_s, rel=1e-12)
    assert float(np.interp(1024, tb.ctx_grid, tb.prefill_latency_s)) == pytest.approx(est.ttft_s, rel=1e-12)
    assert tb.kv_capacity_tokens == est.max_batch * (1024 + 256)


def test_decode_time_grows_with_batch_and_context(catalog, preset):
    cfg = Config(gpu=catalog.gpu("h100-sxm"), batch=32)
    tb = build_tables(preset("llama-3.1-8b"), cfg, Workload(isl=512, osl=128), catalog.perf, max_ctx=2048)
    assert np.all(np.diff(tb.decode_s[1:], axis=0) >= 0)  # more sequences, longer step
    # longer contexts, longer step (flat, up to float rounding, where split-KV work saturates nothing more)
    assert np.all(np.diff(tb.decode_s[1:], axis=1) >= -1e-12 * tb.decode_s[1:, 1:])
    assert np.all(tb.prefill_latency_s >= tb.prefill_busy_s)
    # the scalar lookup the event loop uses agrees with np.interp
    for c in (1.0, 333.3, 640.0, 2048.0, 5000.0):
        assert tb.decode_step_s(7, c) == pytest.approx(float(tb.decode_time_s(7, c)), rel=1e-12)


def test_plan_that_cannot_hold_a_sequence_is_an_input_error(catalog, preset):
    from planner.errors import InputError

    cfg = Config(gpu=catalog.gpu("l4"), batch=1)
    with pytest.raises(InputError, match="cannot hold a single sequence"):
        build_tables(preset("llama-3.1-70b"), cfg, Workload(isl=1024, osl=256), catalog.perf, max_ctx=2048)


CHUNK_CASES = CASES + [
    ("deepseek-v3", dict(gpu="h200", tp=4, dp=2, ep=8, batch=64, weights="fp8", kv="fp8")),
    ("gemma-2-27b", dict(tp=2, pp=2, batch=32)),  # sliding-window layers: the chunk attention is capped
]


def _chunk_steps(rng, batch: int, budget: int) -> list[tuple[int, int, float, int, int]]:
    """(running, chunk, Σ k·(offset + k/2), cached prefix, prompts done) of steps the event loop takes: a whole
    prompt, a first partial chunk, a later chunk of a long prompt, two prompts at once, many short prompts."""
    steps = []
    for _ in range(6):
        n = int(rng.integers(0, batch + 1))
        room = budget - n
        L = int(rng.integers(1, room + 1))
        steps.append((n, L, L * (0 + L / 2.0), 0, 1))
        k, o = int(rng.integers(1, room + 1)), int(rng.integers(1, 20_000))
        steps.append((n, k, k * (0 + k / 2.0), 0, 0))
        steps.append((n, k, k * (o + k / 2.0), o, int(rng.integers(0, 2))))
        a, b = int(rng.integers(1, room // 2 + 1)), int(rng.integers(1, room // 2 + 1))
        steps.append((n, a + b, a * (0 + a / 2.0) + b * (0 + b / 2.0), 0, 2))
    steps.append((0, budget, 100 * 40 * 20.0, 0, 100))  # 100 prompts of 40 tokens: beyond the LM-head table
    return steps


@pytest.mark.parametrize("model,kw", CHUNK_CASES)
def test_chunk_cost_tables_match_the_direct_perf_model(catalog, preset, model, kw):
    """The simulator's mixed-step cost comes from tables (one vectorized perf call per block of chunk sizes, plus
    the chunk-attention difference for chunks that do not start a prompt): equal to the direct per-step
    `prefill_chunk_terms` composition up to float rounding, and bit-identical for a whole prompt in one chunk on
    a dense model."""
    kw = dict(kw)
    spec = kw.pop("spec", None)
    if spec:
        kw["spec"] = SpecDecode(preset(spec[0]), spec[1], spec[2])
    cfg = Config(gpu=catalog.gpu(kw.pop("gpu", "h100-sxm")), **kw)
    tb = build_tables(preset(model), cfg, Workload(isl=1024, osl=256), catalog.perf, max_ctx=4096)
    cost = tb.chunk_cost
    rng = np.random.default_rng(7)
    for step in _chunk_steps(rng, cfg.batch, tb.max_batched_tokens):
        fast, ref = cost(*step), cost.reference(*step)
        assert fast == pytest.approx(ref, rel=1e-12, abs=1e-15), step
        n, k, keys, cached, done = step
        if not preset(model).is_moe and cached == 0 and keys == k * (k / 2.0) and done <= 1:
            assert fast == ref, step


MOE_BASE_CASES = [
    ("mixtral-8x22b", dict(gpu="mi325x", batch=128, weights="fp8", kv="fp8"), False),
    ("mixtral-8x7b", dict(tp=2, ep=2, pp=2, batch=96), False),  # loads running / 2: halves
    ("deepseek-v3", dict(gpu="h200", tp=4, dp=2, ep=8, batch=64, weights="fp8", kv="fp8"), False),
    ("deepseek-v3", dict(gpu="b200", tp=1, dp=8, ep=8, batch=256, weights="fp4", kv="fp8", redundant_experts=32),
     True),  # two-batch overlap on
    ("qwen3-235b-a22b", dict(gpu="gb200", tp=2, dp=2, ep=4, pp=3, batch=60, weights="fp8",
                             spec=("llama-3.2-1b", 3, 0.6)), False),  # loads (running / 3) · 4
]


@pytest.mark.parametrize("model,kw,tbo", MOE_BASE_CASES)
def test_moe_chunk_tables_are_the_per_load_calls(catalog, preset, model, kw, tbo):
    """MoE chunk terms computed for many decode loads in one vectorized call are the same floats as one call per
    load (so the simulation, and the plans it confirms, do not move): the decode-only layer step the mixed steps
    subtract (`chunk_base_layer_s`), tabulated over every load the event loop can pass ((running / pp) · q for
    running = 0 … batch), and the canonical mixed steps along a line met at LINE_FILL_MISSES loads (one chunk size,
    one step total, one chunk − load), filled at every load."""
    import dataclasses

    from planner.perf.estimate import chunk_base_layer_s
    from planner.sim.tables import LINE_FILL_MISSES

    kw = dict(kw)
    spec = kw.pop("spec", None)
    if spec:
        kw["spec"] = SpecDecode(preset(spec[0]), spec[1], spec[2])
    cfg = Config(gpu=catalog.gpu(kw.pop("gpu", "h100-sxm")), **kw)
    params = dataclasses.replace(catalog.perf, two_batch_overlap=True) if tbo else catalog.perf
    tb = build_tables(preset(model), cfg, Workload(isl=1024, osl=256), params, max_ctx=4096)
    rows = tb.chunk_cost.target
    q = 1 if cfg.spec is None else cfg.spec.draft_length + 1
    assert rows.decode_loads == tuple((r / cfg.pp) * q for r in range(cfg.batch + 1))
    rows._base(rows.decode_loads[-1])  # the event loop's first ask fills the table
    assert set(rows.base) == set(rows.decode_loads)
    scalar_kw = {k: v for k, v in rows.kw.items() if k != "pipeline_link_bytes_per_s"}
    diff = [d for d in rows.decode_loads
            if rows.base[d] != float(chunk_base_layer_s(rows.model, rows.hw, rows.p, decode_tokens=d, **scalar_kw))]
    assert not diff

    budget = tb.max_batched_tokens
    loads = [d for d in rows.decode_loads if d == int(d) and d > 0][:LINE_FILL_MISSES]
    asked = [(d, 1000, 1) for d in loads] + [(d, int(budget - d), 1) for d in loads] + [(d, int(d) + 7, 0) for d in loads]
    for d, k, done in asked:
        rows(d, k, k / 2.0, 0, done)
    filled = {key: terms for key, terms in rows.single.items() if key not in set(asked)}
    # the three lines at every load where the chunk is whole tokens (PP 2 and 3 give fractional loads)
    for d in rows.decode_loads:
        assert (d, 1000, 1) in rows.single
        if d == int(d):
            assert (d, int(budget - d), 1) in rows.single and (d, int(d) + 7, 0) in rows.single
    rng = np.random.default_rng(16)
    keys = list(filled)
    for i in rng.choice(len(keys), size=min(60, len(keys)), replace=False):
        d, k, done = keys[i]
        assert filled[keys[i]] == rows.direct(d, k, k / 2.0, 0, done, rows.base[d]), keys[i]


def test_stages_are_timed_by_their_own_layer_kinds(catalog, preset):
    """DeepSeek-V3 on two stages of 31 and 30 layers: stage 0 holds the 3 dense-first layers (a dense layer decodes
    far faster than a MoE layer), so stage 1, with 30 MoE layers against 28, is the slower one, as the plan's
    `layer_kinds_per_stage` says; timed by the average layer, the 31-layer stage 0 would be. Each stage is the sum
    of its kinds' layers (the kinds' one-layer times, hand-composed here), as in estimate()."""
    from planner.perf.estimate import hardware, step_terms
    from planner.perf.step import kind_models
    from planner.specs.cluster import pipeline_link_bytes_per_s
    from planner.units import BYTES_PER_ELEMENT

    model = preset("deepseek-v3")
    cfg = Config(gpu=catalog.gpu("h200"), tp=8, pp=2, batch=32, weights="fp8", kv="fp8", layers_per_stage=(31, 30))
    w = Workload(isl=1024, osl=256)
    tb = build_tables(model, cfg, w, catalog.perf, max_ctx=4096)
    est = estimate(model, cfg, w, catalog.perf)
    assert est.placement["layer_kinds_per_stage"] == [{"dense": 3, "moe": 28}, {"moe": 30}]
    stage, _ = tb.chunk_cost._decode_stage(cfg.batch)
    assert int(np.argmax(stage)) == 1
    p = catalog.perf.for_gpu("h200", cfg.gpu.family)
    kinds = {k.mlp: step_terms(km, hardware(cfg.gpu, "fp8", 8, 1), p, tp=8, ep=1, weight_bytes=BYTES_PER_ELEMENT["fp8"],
                               kv_bytes=BYTES_PER_ELEMENT["fp8"], micro_batch=16, isl=1024 + 128, osl=0,
                               pipeline_link_bytes_per_s=pipeline_link_bytes_per_s(cfg.gpu, 8, 2), chunked=False)
             for k, _, km in kind_models(model)}
    dense, moe = (float(kinds[k].decode_layer.time_s) for k in ("dense", "moe"))
    assert moe > 2 * dense
    first, last = float(kinds["dense"].decode_first.time_s), float(kinds["dense"].decode_last.time_s)
    hand = [3 * dense + 28 * moe + first + p.step_overhead_s, 30 * moe + last + p.step_overhead_s]
    assert stage.tolist() == pytest.approx(hand, rel=1e-12)
    assert tb.decode_step_s(cfg.batch, 1024 + 128) == pytest.approx(est.decode_cycle_s, rel=1e-12)


@pytest.mark.parametrize("model,isl,osl,batch,kw", [
    ("llama-3.1-70b", 16, 4, 64, dict(tp=2, weights="fp8", kv="fp8")),  # 256 prompt tokens per step, packed
    ("llama-3.1-70b", 16, 16, 64, dict(tp=2, weights="fp8", kv="fp8")),  # 64 per step: four prompts' chunks
    ("llama-3.1-70b", 2000, 8, 64, dict(tp=4)),  # 16,000 per step: beyond the budget, 16000/8128 steps
    ("mixtral-8x7b", 256, 8, 73, dict(tp=2)),  # MoE: 2,336 per step
])
def test_a_step_carrying_the_arriving_prompts_is_estimates_round(catalog, preset, model, isl, osl, batch, kw):
    """One stage, steady state: a step of the B decoders carrying the B·ISL/OSL prompt tokens that arrive per
    cycle, all in one forward pass (the simulator's mixed step), takes what estimate charges a round
    (perf.estimate.packed_chunk; beyond the token budget, the round is that many budget-full steps)."""
    m = preset(model)
    c = Config(gpu=catalog.gpu("h100-sxm"), batch=batch, **kw)
    w = Workload(isl=isl, osl=osl)
    e = estimate(m, c, w, catalog.perf)
    tb = build_tables(m, c, w, catalog.perf, isl + osl)
    arriving = batch * isl // osl
    room = tb.max_batched_tokens - batch
    steps = max(1.0, arriving / room)
    chunk = min(arriving, room)
    prompts = chunk / isl
    # whole prompts from their start: each token attends isl/2 keys on average, nothing cached
    step = (tb.mixed_extra_s(batch, chunk, chunk * isl / 2.0, 0, round(prompts))
            + tb.decode_step_s(batch, isl + osl / 2.0))
    assert batch / e.output_tokens_per_s == pytest.approx(steps * step, rel=2e-3)
