"""planner/train/oracle.py: the exhaustive test oracle for the training layout search — its enumeration counted by
hand on a small instance, and its choice (cheapest meeting the deadline; fastest within a budget; None)."""
from collections import Counter

from planner.catalog import load_catalog
from planner.specs.model import model_from_config
from planner.train import oracle
from planner.train.request import make_request
from planner.train.result import estimate, verify

TOY_DENSE = model_from_config({"hidden_size": 2048, "num_hidden_layers": 6, "num_attention_heads": 16,
                               "intermediate_size": 8192, "vocab_size": 32000, "hidden_act": "gelu",
                               "max_position_embeddings": 2048}, name="toy-dense")
CAT = load_catalog()
KW = dict(tokens=5e9, global_batch_tokens=4 * 2048, seq_len=2048, gpus="h100-sxm", catalog=CAT)


def test_layouts_on_two_gpus_counted_by_hand():
    req, _ = make_request(TOY_DENSE, num_gpus=2, deadline_days=30.0, **KW)
    lays = list(oracle.layouts(req))
    # 4 sequences per step: (micro-batch b, DP d) with b·d | 4 is (1,1) (1,2) (1,4) (2,1) (2,2) (4,1); TP · PP · DP = 2
    # GPUs (TP | 16 heads, PP | 6 layers or a power of two; no CP below 16k tokens, no EP for a dense model):
    # d = 1 → (tp, pp) = (1, 2) or (2, 1); d = 2 → (1, 1); d = 4 → none. 2 + 1 + 0 + 2 + 1 + 2 = 8 shapes, each
    # with 4 ZeRO stages × 3 recompute modes.
    assert len(lays) == 8 * 4 * 3
    shapes = Counter((x.micro_batch, x.dp, x.tp, x.pp) for x in lays)
    assert set(shapes) == {(1, 1, 1, 2), (1, 1, 2, 1), (1, 2, 1, 1), (2, 1, 1, 2), (2, 1, 2, 1), (2, 2, 1, 1),
                           (4, 1, 1, 2), (4, 1, 2, 1)}
    assert set(shapes.values()) == {12} and all(x.gpus == 2 and x.cp == 1 and x.ep == 1 for x in lays)


def test_best_is_the_cheapest_layout_meeting_the_deadline_and_the_fastest_within_a_budget():
    req, cat = make_request(TOY_DENSE, num_gpus=2, deadline_days=30.0, **KW)
    ok = [e for e in (estimate(req, x, cat.perf) for x in oracle.layouts(req)) if not verify(req, e)]
    best = oracle.best(req, cat.perf)
    assert ok and best.metrics["usd_total"] == min(e.metrics["usd_total"] for e in ok)
    req_t, _ = make_request(TOY_DENSE, num_gpus=2, budget_usd=1e9, **KW)
    fastest = oracle.best(req_t, cat.perf)
    assert fastest.metrics["days"] == min(e.metrics["days"] for e in ok)


def test_no_layout_meets_an_impossible_deadline():
    req, cat = make_request(TOY_DENSE, num_gpus=2, deadline_days=1e-6, **KW)
    assert oracle.best(req, cat.perf) is None
