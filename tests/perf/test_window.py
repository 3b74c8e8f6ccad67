"""planner/perf/window.py: keys attended and tokens held by full, sliding-window and chunked layers, by hand."""
from __future__ import annotations

from pathlib import Path

import pytest

from planner.perf import window
from planner.specs.model import LayerKind, model_from_path

CONFIGS = Path(__file__).resolve().parent.parent / "data" / "configs"
FULL, SLIDE, CHUNK = LayerKind("dense"), LayerKind("dense", "sliding", 128), LayerKind("dense", "chunked", 8192)


def test_full_attention_keeps_the_earlier_means():
    assert window.mean_span(FULL, 0, 4096) == pytest.approx(2048)  # causal prefill: n/2 keys per query
    assert window.mean_span(FULL, 4000, 5000) == pytest.approx(4500)  # decode isl..isl+osl: isl + osl/2
    assert window.mean_span(FULL, 1100, 1100) == 1100


def test_sliding_window_spans_by_hand():
    # decode well past the window: every query sees exactly W keys
    assert window.mean_span(SLIDE, 4000, 4500) == pytest.approx(128)
    # a 4096-token prefill: queries 0..128 see their own prefix, the rest 128 keys:
    # (128²/2 + 128·(4096 − 128)) / 4096 = (8,192 + 507,904) / 4096 = 126.0
    assert window.mean_span(SLIDE, 0, 4096) == pytest.approx(126.0)
    # contexts 100..200 straddle the window: (∫100..128 c dc + 72·128) / 100 = (3,192 + 9,216) / 100
    assert window.mean_span(SLIDE, 100, 200) == pytest.approx(124.08)
    assert window.mean_span(SLIDE, 50, 50) == 50 and window.mean_span(SLIDE, 500, 500) == 128


def test_chunked_attention_spans_by_hand():
    # contexts 10,000..12,000 sit in the second 8192-token chunk: mean of (c − 8192) = (1,808 + 3,808) / 2
    assert window.mean_span(CHUNK, 10_000, 12_000) == pytest.approx(2808)
    # a whole number of chunks: C/2 on average
    assert window.mean_span(CHUNK, 0, 3 * 8192) == pytest.approx(4096)
    # one query: the tokens of its own chunk, itself included
    assert window.span_at(CHUNK, 8192) == 8192 and window.span_at(CHUNK, 8193) == 1
    assert window.span_at(CHUNK, 100) == 100


def test_held_tokens_are_capped_at_the_window():
    assert window.held_tokens(FULL, 10_000) == 10_000
    assert window.held_tokens(SLIDE, 10_000) == 128 and window.held_tokens(SLIDE, 100) == 100
    assert window.held_tokens(CHUNK, 10_000) == 8192  # an engine keeps up to one whole chunk


def test_gpt_oss_sums_over_its_alternating_layers():
    m = model_from_path(CONFIGS / "gpt-oss-120b.json")  # 18 sliding (128) + 18 full layers
    assert window.mean_held_tokens_per_layer(m, 10_000) == pytest.approx((18 * 128 + 18 * 10_000) / 36)
    assert window.attended_tokens_over_layers(m, 0, 4096) == pytest.approx(18 * 126.0 + 18 * 2048)


def test_attention_spans_by_layer_kind_in_first_appearance_order_and_a_fresh_dict_each_call():
    m = model_from_path(CONFIGS / "gpt-oss-120b.json")  # alternating sliding (128) / full, sliding first
    spans = window.attention_spans(m)
    assert list(spans.items()) == [(SLIDE, 18), (FULL, 18)]
    spans[FULL] = 0  # the caller's copy: the memo behind it (once per model, #16) is not changed
    assert window.attention_spans(m) == {SLIDE: 18, FULL: 18}
