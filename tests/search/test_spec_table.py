"""Speculative decoding in the search table (Request.spec): the integer terms the optimizer sees are the
spec-adjusted ones `perf.estimate` computes for the same draft and γ (verification over γ+1 tokens per sequence,
γ draft passes per cycle, per expected emitted token), conservative and, on one stage, tight."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from planner.perf.estimate import Config, SpecDecode, estimate
from planner.perf.specdec import expected_tokens_per_step, per_token_decode_terms
from planner.search.table import BYTES_PER_MEM_UNIT, NS_PER_S, evaluate

from .instances import CATALOG, INSTANCES, models, requests, tabulate


def test_per_token_terms_by_hand():
    # pp 2: layer 1 ms, extras (first 3 ms, middle 0.5 ms, last 2 ms), hop 0.2 ms; draft pass 4 ms, γ 3, α 0.5:
    # E = 1 + .5 + .25 + .125 = 1.875; each extra gains 3·4/2 = 6 ms; everything / 1.875
    layer, (first, mid, last), hop = per_token_decode_terms(1e-3, (3e-3, 0.5e-3, 2e-3), 0.2e-3, 2, 4e-3, 0.5, 3)
    assert float(layer) == pytest.approx(1e-3 / 1.875)
    assert [float(first), float(mid), float(last)] == pytest.approx([9e-3 / 1.875, 6.5e-3 / 1.875, 8e-3 / 1.875])
    assert float(hop) == pytest.approx(0.2e-3 / 1.875)
    # the cycle per token of 10 + 10 layers: pp·(max stage + hop) = 2·(10 ms + 9 ms + 0.2 ms)/E — the target cycle
    # 2·(10 + 3 + 0.2) = 26.4 ms plus γ·t_draft = 12 ms, over E
    cycle = 2 * (max(10 * layer + first, 10 * layer + last) + hop)
    assert float(cycle) == pytest.approx((26.4e-3 + 12e-3) / 1.875)


SPEC_SETTINGS = settings(INSTANCES, max_examples=40)


@SPEC_SETTINGS
@given(req=requests(demand=False), draft=models(), gamma=st.integers(1, 8), alpha=st.floats(0.0, 0.95),
       data=st.data())
def test_spec_rows_are_conservative_and_tight_against_estimate(req, draft, gamma, alpha, data):
    req = replace(req, spec=SpecDecode(replace(draft, name="draft"), gamma, alpha))
    tl = tabulate(req)
    assume(tl is not None)
    t, lim = tl
    i = data.draw(st.integers(0, len(t) - 1))
    r = t.rows[i]
    assert req.spec.draft.num_heads % r.tp == 0  # rows the draft cannot run TP-way on are not enumerated
    L = t.num_layers
    cuts = sorted(data.draw(st.lists(st.integers(1, L - 1), min_size=r.pp - 1, max_size=r.pp - 1, unique=True)))
    lay = tuple(b - a for a, b in zip([0] + cuts, cuts + [L]))
    ev = evaluate(t, i, lay, lim)
    cfg = Config(gpu=r.gpu, tp=r.tp, pp=r.pp, ep=r.ep, batch=r.batch, weights=r.weights, kv=r.kv, dp=r.dp,
                 layers_per_stage=lay, spec=req.spec)
    e = estimate(req.model, cfg, replace(req.workload, rate_rps=None, output_tokens_per_s=None), CATALOG.perf)
    assert e.tpot_s * NS_PER_S <= ev.tpot_ns * (1 + 1e-12)
    assert e.ttft_s * NS_PER_S <= ev.ttft_ns * (1 + 1e-12)
    if "memory" not in ev.violated:
        assert e.fits
    if r.pp == 1:  # one stage: the same formula, each term rounded up to whole ns (stalls: per prompt)
        assert ev.tpot_ns <= e.tpot_s * NS_PER_S * (1 + 1e-4) + 1000
        assert ev.ttft_ns <= e.ttft_s * NS_PER_S * (1 + 1e-4) + 1000


def _llama_request(spec=None, **kw):
    from planner.search.space import Request
    from planner.specs.workload import SLO, Workload

    from planner.catalog import load_model

    return Request(model=load_model("llama-3.1-70b"), workload=Workload(isl=1000, osl=200), slo=SLO(tpot_s=0.05),
                   gpus=(CATALOG.gpu("h100-sxm"),), weights=("fp8",), kv=("fp8",), pp=(1, 2), tp=(2, 4),
                   micro_batches=(1, 8, 64), spec=spec, **kw)


def test_draft_memory_sits_on_the_first_stage():
    from planner.catalog import load_model

    draft = load_model("llama-3.1-8b")
    spec = SpecDecode(draft, 4, 0.8)
    (t0, _), (t1, _) = tabulate(_llama_request()), tabulate(_llama_request(spec))
    assert [r for r in t0.rows] == [r for r in t1.rows]
    for i, r in enumerate(t1.rows):
        # the 8B draft in fp8 TP-way (its 16-bit embedding and head too) and its fp8 KV for the batch at 1200 tokens
        w = ((8_030_261_248 - 2 * 128256 * 4096) * 1 + 2 * 128256 * 4096 * 2) / r.tp
        kv = r.batch * 32 * 2 * 8 * 128 * 1 * 1200 / r.tp
        first = t1.fixed_mem_single_kib[i] if r.pp == 1 else t1.fixed_mem_kib[i, 0]
        base = t0.fixed_mem_single_kib[i] if r.pp == 1 else t0.fixed_mem_kib[i, 0]
        assert (first - base) * BYTES_PER_MEM_UNIT == pytest.approx(w + kv, abs=2 * BYTES_PER_MEM_UNIT)
        if r.pp > 1:  # the other stages hold no draft
            assert list(t1.fixed_mem_kib[i, 1:]) == list(t0.fixed_mem_kib[i, 1:])


def test_verification_runs_gamma_plus_one_tokens_per_sequence():
    """The table's per-layer decode term is the target's step over (γ+1)·micro-batch tokens, divided by E."""
    from planner.catalog import load_model
    from planner.perf.estimate import hardware, step_terms
    from planner.units import BYTES_PER_ELEMENT

    spec = SpecDecode(load_model("llama-3.1-8b"), 3, 0.6)
    t, _ = tabulate(_llama_request(spec))
    p = CATALOG.perf.for_gpu("h100-sxm", CATALOG.gpu("h100-sxm").family)
    for i, r in enumerate(t.rows):
        hw = hardware(r.gpu, r.weights, r.tp, r.dp)
        st_ = step_terms(load_model("llama-3.1-70b"), hw, p, tp=r.tp, ep=1, weight_bytes=BYTES_PER_ELEMENT["fp8"],
                         kv_bytes=BYTES_PER_ELEMENT["fp8"], micro_batch=r.micro_batch, isl=1000, osl=200,
                         tokens_per_seq=4)
        per_token = float(st_.decode_layer.time_s) / float(expected_tokens_per_step(0.6, 3))
        assert t.dec_ns_per_kind[i, 0] == int(np.ceil(per_token * NS_PER_S - 1e-9))


def test_spec_rows_need_an_engine_that_runs_a_draft_model():
    """vLLM 0.11.0 refuses a separate draft model (catalog/engines/support.toml), so a spec request pinned to it
    has no rows; unpinned, the rows are those SGLang or TensorRT-LLM run."""
    from planner.catalog import load_model
    from planner.engines import engines_for
    from planner.search.space import enumerate_rows

    spec = SpecDecode(load_model("llama-3.1-8b"), 4, 0.8)
    assert enumerate_rows(_llama_request(spec, engine="vllm"), CATALOG.perf.max_batch) == []
    assert enumerate_rows(_llama_request(None, engine="vllm"), CATALOG.perf.max_batch)
    rows = enumerate_rows(_llama_request(spec), CATALOG.perf.max_batch)
    assert rows
    for r in rows:
        runs = engines_for(r.gpu.id, r.weights, r.kv, r.tp, r.pp, r.ep, r.dp, True)
        assert runs and "vllm" not in runs
