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
]


@pytest.mark.parametrize("model,kw", CASES)
def test_tables_reproduce_estimate(catalog, preset, model, kw):
    kw = dict(kw)
    spec = kw.pop("spec", None)
    if spec:
        kw["spec"] = SpecDecode(preset(spec[0]), spec[1], spec[2])
    cfg = Config(gpu=catalog.gpu("h100-sxm"), **kw)
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
