"""planner/fleet/request.py: fleet request parsing (profiles, prices, availability, tiers) and its one-line errors."""
from __future__ import annotations

import pytest

from planner.errors import InputError
from planner.fleet import request_from_dict

from .conftest import CHAT, LONG, small_request

DAY = [1, 1, 1, 1, 1, 2, 3, 5, 8, 10, 10, 10, 10, 10, 10, 9, 8, 6, 5, 4, 3, 2, 1, 1]


# ---- parsing ------------------------------------------------------------------------------------------------------
def test_profiles_scalars_and_a_day_tiled_over_a_week():
    req, _ = request_from_dict(small_request([{**CHAT, "rate_rps": 2, "profile": DAY},
                                              {**LONG, "rate_rps": [0.5] * 168},
                                              {"name": "batch", "isl": 500, "osl": 1000, "offline": True,
                                               "output_tokens_per_s": 2000}]))
    assert req.hours == 168
    chat, long_, batch = req.classes
    assert chat.rate_rps[:24] == tuple(2.0 * x for x in DAY) and chat.rate_rps[24:48] == chat.rate_rps[:24]
    assert long_.rate_rps == (0.5,) * 168
    assert batch.rate_rps == (2.0,) * 168 and batch.slo.ttft_s is None and batch.slo.tpot_s is None
    assert chat.slo.ttft_s == 0.5 and chat.slo.tpot_s == pytest.approx(1 / 50)


def test_a_quantized_checkpoint_defaults_to_its_own_precision():
    doc = {k: v for k, v in small_request([{**CHAT, "rate_rps": 1}]).items() if k != "weights"}
    assert request_from_dict({**doc, "model": "gpt-oss-120b"})[0].weights == ("mxfp4",)
    assert request_from_dict(doc)[0].weights == ("bf16", "fp8", "int8")  # a 16-bit checkpoint: the usual set


def test_prices_availability_and_tiers(catalog):
    doc = small_request([{**CHAT, "rate_rps": 1}], gpus=None, available={"H100": 8, "a100-80gb": 16},
                        on_demand_tier="list", prices={"a100-80gb": {"reserved": 1.5, "on_demand": 2.5}})
    req, _ = request_from_dict(doc)
    offers = {o.gpu.id: o for o in req.offers}
    assert set(offers) == {"h100-sxm", "a100-80gb"}  # the types of [available] when gpus is absent
    h100 = catalog.gpu("h100-sxm")
    assert offers["h100-sxm"].on_demand_usd_per_hour == h100.prices["list"].usd_per_hour
    assert offers["h100-sxm"].reserved_usd_per_hour == h100.prices["reserved"].usd_per_hour
    assert offers["h100-sxm"].available == 8
    assert (offers["a100-80gb"].on_demand_usd_per_hour, offers["a100-80gb"].reserved_usd_per_hour) == (2.5, 1.5)
    assert offers["a100-80gb"].on_demand_tier == "request"
    req, _ = request_from_dict({**doc, "reserved_tier": "none", "prices": {}})
    assert all(o.reserved_usd_per_hour is None for o in req.offers)


@pytest.mark.parametrize("patch,message", [
    ({"class": []}, "at least one [[class]]"),
    ({"class": [{**CHAT}]}, "rate_rps or output_tokens_per_s"),
    ({"class": [{**CHAT, "rate_rps": [1, 2, 3]}]}, "24 (a day) or 168"),
    ({"class": [{**CHAT, "rate_rps": -1}]}, ">= 0"),
    ({"class": [{**CHAT, "rate_rps": 1, "colour": 1}]}, "unknown key"),
    ({"class": [{**CHAT, "rate_rps": 1, "offline": True}]}, "no latency SLOs"),
    ({"class": [{**CHAT, "rate_rps": 1}, {**CHAT, "rate_rps": 1}]}, "unique"),
    ({"available": {"h100-sxm": -1}}, "integer >= 0"),
    ({"available": {"l4": 3}}, "gpus leaves out"),
    ({"prices": {"h100-sxm": {"spot": 1}}}, "on_demand and reserved"),
    ({"prices": {"h100-sxm": {"reserved": 0}}}, "> 0"),
    ({"disaggregation": "maybe"}, "disaggregation"),
    ({"budget_usd_per_month": -5}, "> 0"),
    ({"gpus": ["h100-sxn"]}, "did you mean"),
    ({"on_demand_tier": "cheap"}, "on_demand_tier"),
    ({"speed": 1}, "unknown key"),
    ({"pool_space": "all"}, "pool_space must be one of grid, exact, got 'all'"),
])
def test_bad_requests_are_one_line_input_errors(patch, message):
    doc = {**small_request([{**CHAT, "rate_rps": 1}]), **patch}
    with pytest.raises(InputError, match=None) as e:
        request_from_dict(doc)
    assert message in str(e.value)
