"""Arrivals, token-length distributions and trace files (CSV and JSONL)."""
import json

import numpy as np
import pytest

from planner.errors import InputError
from planner.sim.requests import arrival_times_s, draw_lengths, load_trace, synthetic_requests


def test_poisson_and_gamma_arrivals_have_the_requested_rate():
    for burstiness in (1.0, 0.25, 4.0):
        t = arrival_times_s(np.random.default_rng(0), 10.0, count=20000, burstiness=burstiness)
        assert np.all(np.diff(t) >= 0)
        gaps = np.diff(t)
        assert gaps.mean() == pytest.approx(0.1, rel=0.05)
        # coefficient of variation of gamma(k) inter-arrivals is 1/sqrt(k): Poisson 1, burstier > 1
        assert gaps.std() / gaps.mean() == pytest.approx(1 / np.sqrt(burstiness), rel=0.08)


def test_duration_bounds_the_arrivals():
    t = arrival_times_s(np.random.default_rng(1), 50.0, duration_s=20.0)
    assert t.max() < 20.0 and t.size == pytest.approx(1000, rel=0.1)


def test_length_distributions_keep_the_mean():
    rng = np.random.default_rng(2)
    assert np.all(draw_lengths(rng, 300, 10, "fixed") == 300)
    for dist in ("uniform", "exponential"):
        x = draw_lengths(rng, 300, 50000, dist)
        assert x.min() >= 1 and x.mean() == pytest.approx(300, rel=0.03)
    with pytest.raises(InputError, match="--lengths"):
        draw_lengths(rng, 300, 10, "pareto")


def test_synthetic_requests_are_deterministic_for_a_seed():
    a = synthetic_requests(np.random.default_rng(7), rate_rps=3.0, isl=100, osl=50, count=100, lengths="uniform")
    b = synthetic_requests(np.random.default_rng(7), rate_rps=3.0, isl=100, osl=50, count=100, lengths="uniform")
    for f in ("arrival_s", "input_tokens", "output_tokens"):
        assert np.array_equal(getattr(a, f), getattr(b, f))


def test_csv_trace(tmp_path):
    p = tmp_path / "trace.csv"
    p.write_text("arrival_s,input_tokens,output_tokens\n0.5,100,20\n0.1,200,10\n1.25,50,1\n", encoding="utf-8")
    r = load_trace(p)
    assert r.arrival_s.tolist() == [0.1, 0.5, 1.25]  # sorted by arrival
    assert r.input_tokens.tolist() == [200, 100, 50]
    assert r.output_tokens.tolist() == [10, 20, 1]


def test_csv_trace_with_alias_columns(tmp_path):
    p = tmp_path / "trace.csv"
    p.write_text("timestamp, prompt_tokens, completion_tokens, user\n0,10,5,a\n2,20,6,b\n", encoding="utf-8")
    r = load_trace(p)
    assert r.input_tokens.tolist() == [10, 20] and r.output_tokens.tolist() == [5, 6]


def test_jsonl_trace(tmp_path):
    p = tmp_path / "trace.jsonl"
    rows = [{"arrival_s": 0.0, "input_tokens": 128, "output_tokens": 32},
            {"arrival_time": 0.3, "isl": 64, "osl": 8}]
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    r = load_trace(p)
    assert r.arrival_s.tolist() == [0.0, 0.3]
    assert r.input_tokens.tolist() == [128, 64] and r.output_tokens.tolist() == [32, 8]


@pytest.mark.parametrize("name,text,match", [
    ("t.csv", "arrival_s,input_tokens\n0,1\n", "no output_tokens column"),
    ("t.csv", "arrival_s,input_tokens,output_tokens\n0,abc,3\n", r"t.csv:2: input_tokens must be a number"),
    ("t.csv", "arrival_s,input_tokens,output_tokens\n0,1.5,3\n", "positive integer"),
    ("t.csv", "arrival_s,input_tokens,output_tokens\n-1,1,3\n", "must be >= 0"),
    ("t.csv", "arrival_s,input_tokens,output_tokens\n", "no requests"),
    ("t.jsonl", '{"arrival_s": 0, "input_tokens": 1, "output_tokens": 2}\n{oops\n', r"t.jsonl:2: invalid JSON"),
    ("t.jsonl", "[1, 2, 3]\n", "JSON object"),
])
def test_malformed_trace_is_one_input_error(tmp_path, name, text, match):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=match):
        load_trace(p)


def test_non_utf8_trace(tmp_path):
    p = tmp_path / "t.csv"
    p.write_bytes(b"arrival_s,input_tokens,output_tokens\n0,1,\xff\n")
    with pytest.raises(InputError, match="not UTF-8"):
        load_trace(p)
