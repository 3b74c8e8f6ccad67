"""planner/specs/accelerator.py: one catalog entry read into SI units, user overrides on top of a base part,
price tiers, the links collectives use, and refused fields (one line naming the part and the field)."""
from __future__ import annotations

import pytest

from planner.errors import InputError
from planner.specs.accelerator import accelerator_from_entry

ENTRY = {
    "id": "My-GPU", "name": "My GPU 96GB", "memory_gib": 96, "hbm_tb_s": 4.0, "tflops": {"bf16": 900, "fp8": 1800},
    "scale_up": {"domain_size": 4, "gb_s": 450}, "scale_out": {"gbit_s": 400},
    "pcie": {"gpus_per_node": 8, "allreduce_gb_s": 20, "latency_us": 30},
    "prices": {"market": {"usd_per_hour": 2.5, "source": "quote", "date": "2026-11-01"},
               "list": {"usd_per_hour": 4.0, "source": "vendor page", "date": "2026-10-01"}},
    "aliases": ["MYGPU"], "family": "hopper", "sm_count": 132,
}


def test_an_entry_is_read_into_si_units():
    g = accelerator_from_entry(ENTRY, "cat.toml", "market")
    assert g.id == "my-gpu" and g.aliases == ("mygpu",)  # ids and aliases are lower-cased
    assert g.memory_bytes == 96 * 2**30  # GiB
    assert g.hbm_bytes_per_s == 4.0e12  # TB/s
    assert g.flops_per_s == {"bf16": 900e12, "fp8": 1800e12}
    assert g.scale_up_bytes_per_s == 450e9 and g.scale_out_bytes_per_s == 50e9  # 400 Gbit/s = 50 GB/s
    assert (g.pcie.gpus_per_node, g.pcie.allreduce_bytes_per_s, g.pcie.latency_s) == (8, 20e9, pytest.approx(30e-6))
    assert (g.usd_per_hour, g.price.tier, g.price.date) == (2.5, "market", "2026-11-01")
    assert accelerator_from_entry(ENTRY, "cat.toml", "list").usd_per_hour == 4.0
    # a tier the part lacks: its first tier in PRICE_TIERS order
    assert accelerator_from_entry(ENTRY, "cat.toml", "reserved").price.tier in ("market", "list")


def test_collective_links_by_group_size():
    g = accelerator_from_entry(ENTRY, "cat.toml", "market")
    assert g.node_gpus == 8  # the PCIe host is larger than the 4-GPU scale-up domain
    assert g.intra_node_link(1).kind == "single"
    link = g.intra_node_link(4)
    assert (link.kind, link.bytes_per_s, link.efficiency) == ("scale_up", 450e9, None)  # peak: efficiency applies
    link = g.intra_node_link(8)
    assert (link.kind, link.bytes_per_s, link.efficiency) == ("pcie", 20e9, 1.0)  # measured bus bandwidth
    assert g.intra_node_link(16) is None  # would need the NIC


def test_weight_precisions_need_their_compute_dtype():
    g = accelerator_from_entry(ENTRY, "cat.toml", "market")
    assert g.supports_weights("fp8") and g.supports_weights("int4")  # int4 is weight-only: computes in bf16
    assert not g.supports_weights("fp4") and not g.supports_weights("int8")
    assert g.peak_flops("int4") == 900e12 and g.peak_flops("fp8") == 1800e12


def test_an_override_keeps_the_base_fields_it_does_not_give():
    base = accelerator_from_entry(ENTRY, "cat.toml", "market")
    g = accelerator_from_entry({"id": "my-gpu", "usd_per_hour": 1.75, "hbm_tb_s": 4.8}, "user.toml", "market",
                               base=base)
    assert (g.usd_per_hour, g.price.source) == (1.75, "user catalog")
    assert g.hbm_bytes_per_s == 4.8e12 and g.memory_bytes == base.memory_bytes and g.pcie == base.pcie
    assert g.prices["list"] == base.prices["list"]


@pytest.mark.parametrize("change, message", [
    ({"memory_gib": -1}, r"cat\.toml \[My-GPU\]: field 'memory_gib' must be a finite number > 0"),
    ({"hbm_tb_s": 4000}, r"'hbm_tb_s' = 4000 is outside the plausible range 0\.01 to 1000"),
    ({"tflops": {"bf17": 1}}, r"tflops: unknown dtype 'bf17' \(did you mean 'bf16'"),
    ({"scale_up": {"domain_size": 4.5, "gb_s": 450}}, r"'domain_size' must be an integer"),
    ({"family": "hoper"}, r"'family' must be one of .* \(did you mean 'hopper'"),
    ({"prices": {"cheap": {"usd_per_hour": 1}}}, r"unknown price tier 'cheap'"),
    ({"prices": {}}, r"no price"),
    ({"id": "My GPU"}, r"id 'My GPU' must be lowercase letters, digits"),
    ({"name": "evil\nname"}, r"control character \(U\+000A\)"),
])
def test_bad_fields_are_one_line_naming_the_part_and_field(change, message):
    with pytest.raises(InputError, match=message):
        accelerator_from_entry({**ENTRY, **change}, "cat.toml", "market")
