"""Step time terms and run metrics against hand computations."""
import pytest

from planner.catalog import load_catalog, load_model
from planner.train.flops import hardware_flops_per_token, model_flops_per_token
from planner.train.step import Link, dp_allreduce_s, ring_allreduce_s, run_metrics, step_terms, virtual_stages

NO_LINK_COST = Link(efficiency=1.0, latency_s=0.0, hop_latency_s=0.0)


def _terms(m, gpu, eff=0.5, link=NO_LINK_COST, seq=2048, seqs=64, **lay):
    base = dict(tp=1, pp=1, dp=1, ep=1, cp=1, zero=0, recompute="none", micro_batch=1)
    base.update(lay)
    t = step_terms(m, seq, seqs, peak_flops_per_s=gpu.flops_per_s["bf16"], flops_efficiency=eff,
                   domain=gpu.scale_up_domain, scale_up_bytes_per_s=gpu.scale_up_bytes_per_s,
                   scale_out_bytes_per_s=gpu.scale_out_bytes_per_s, link=link, **base)
    return {k: float(v) for k, v in t.items()}


def test_ring_allreduce_by_hand():
    # 1 GB over 8 GPUs at 100 GB/s: 2·7/8·1e9/1e11 = 17.5 ms; plus 2·7 hops of 10 us
    assert float(ring_allreduce_s(1e9, 8, 1e11)) == pytest.approx(0.0175)
    assert float(ring_allreduce_s(1e9, 8, 1e11, 1e-5)) == pytest.approx(0.0175 + 14e-5)
    assert float(ring_allreduce_s(1e9, 1, 1e11)) == 0.0


def test_hierarchical_dp_allreduce_by_hand():
    link = Link(1.0, 0.0, 0.0)
    # 64 ranks, 8 per domain: inside 2·7/8·n/B_up, across 8 domains 2·7/8·(n/8)/B_out
    n, up, out = 8e9, 4e11, 5e10
    assert float(dp_allreduce_s(n, 64, 8, up, out, link)) == pytest.approx(1.75 * n / up + 1.75 * n / 8 / out)


def test_single_gpu_step_is_compute():
    cat = load_catalog()
    m, g = load_model("llama-3.1-8b"), cat.gpu("h100-sxm")
    t = _terms(m, g, seqs=64, micro_batch=4)
    hw = hardware_flops_per_token(m, 2048, "none")
    assert t["micro_batches"] == 16
    assert t["compute_s"] == pytest.approx(hw * 4 * 2048 / (g.flops_per_s["bf16"] * 0.5))
    assert t["step_s"] == pytest.approx(16 * t["compute_s"])
    assert t["bubble_fraction"] == 0.0


def test_1f1b_bubble_and_interleaving():
    cat = load_catalog()
    m, g = load_model("gpt3-175b"), cat.gpu("a100-80gb")
    # 96 layers on 8 stages = 12 per stage, m = 64 / 8 = 8 micro-batches (a multiple of p): interleaving v = 4
    t = _terms(m, g, seqs=64, pp=8, dp=1, micro_batch=8)
    assert float(virtual_stages(12, 8, 8)) == 4
    assert t["bubble_fraction"] == pytest.approx(7 / (4 * 8 + 7))
    assert t["pipeline_s"] == pytest.approx((8 + 7 / 4) * t["micro_batch_s"])
    # m not a multiple of p: plain 1F1B, bubble (p − 1)/(m + p − 1)
    t = _terms(m, g, seqs=60, pp=8, micro_batch=4)  # m = 15
    assert t["bubble_fraction"] == pytest.approx(7 / (15 + 7))
    assert t["pipeline_s"] == pytest.approx((15 + 7) * t["micro_batch_s"])


def test_tp_collectives_by_hand():
    cat = load_catalog()
    m, g = load_model("gpt3-175b"), cat.gpu("a100-80gb")
    t = _terms(m, g, tp=8, pp=96, seqs=96, micro_batch=1)  # one layer per stage
    act = 2048 * 12288 * 2  # b·s·h bf16 bytes
    per = 2 * 7 / 8 * act / g.scale_up_bytes_per_s
    assert t["tp_comm_s"] == pytest.approx(4 * per)  # 4 all-reduce equivalents per layer


def test_zero3_regathers_weights_every_micro_batch():
    cat = load_catalog()
    m, g = load_model("llama-3.1-8b"), cat.gpu("h100-sxm")
    z1 = _terms(m, g, dp=8, seqs=64, micro_batch=1, zero=1)
    z3 = _terms(m, g, dp=8, seqs=64, micro_batch=1, zero=3)
    assert z3["dp_comm_s"] > z1["dp_comm_s"] * 8 > 0
    assert z3["weights_bytes"] == pytest.approx(z1["weights_bytes"] / 8)


def test_run_metrics_by_hand():
    m = load_model("gpt3-175b")
    # 1,000 GPUs of 1e15 FLOP/s, a 4M-token step every 10 s, 1e12 tokens, goodput 0.9, $2/GPU-hour
    r = {k: float(v) for k, v in run_metrics(m, 2048, 4_000_000, 1e12, 10.0, 1000, 1e15, 2.0, 0.9, "none").items()}
    assert r["tokens_per_s"] == 400_000
    assert r["mfu"] == pytest.approx(model_flops_per_token(m, 2048) * 4e5 / 1e18)
    days = 1e12 / (4e5 * 0.9) / 86_400
    assert r["days"] == pytest.approx(days)
    assert r["gpu_hours"] == pytest.approx(1000 * days * 24)
    assert r["usd_total"] == pytest.approx(2.0 * 1000 * days * 24)
    assert r["usd_per_hour"] == 2000.0


def test_dp_latency_is_logarithmic_across_domains():
    link = Link(1.0, 8e-6, 15e-6)
    from planner.train.step import dp_latency_s

    # 64 ranks, 8 per domain: one in-domain collective + 2·log2(8) steps across domains
    assert float(dp_latency_s(64, 8, link)) == pytest.approx(8e-6 + 2 * 3 * 15e-6)
    assert float(dp_latency_s(8, 8, link)) == pytest.approx(8e-6)


def test_ep_all_to_all_and_cp_exchange_by_hand():
    cat = load_catalog()
    m, g = load_model("mixtral-8x7b"), cat.gpu("h100-sxm")  # 32 layers, all MoE, top-2, h 4096, 8 KV heads
    h, s = 4096, 4096
    t = _terms(m, g, seq=s, seqs=64, pp=32, dp=8, ep=4, micro_batch=1)  # one layer per stage
    act = s * h * 2  # b·s·h bf16 bytes of one micro-batch
    # 4 all-to-alls per MoE layer, each moving top-2 copies of the tokens, keeping 1/e: (e−1)/e · 2·act / B_up
    assert t["ep_comm_s"] == pytest.approx(4 * 3 / 4 * 2 * act / g.scale_up_bytes_per_s)
    # CP 2: each layer exchanges the other rank's K and V (2 · 8 heads · 128 · s/2 tokens · 2 bytes), forward and
    # backward: 2 · (c − 1) transfers per layer
    t = _terms(m, g, seq=s, seqs=64, pp=32, dp=2, cp=2, micro_batch=1)
    kv = s / 2 * (2 * 8 * 128) * 2
    assert t["cp_comm_s"] == pytest.approx(2 * 1 * kv / g.scale_up_bytes_per_s)
