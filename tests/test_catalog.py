"""planner/catalog.py and catalog/*.toml: every accelerator is priced with a source and date, names resolve, user
catalog files extend and override the shipped one, and broken files are reported with their name."""
from __future__ import annotations

import re

import pytest

from planner import api
from planner.catalog import load_catalog, normalize_name
from planner.errors import InputError

SHIPPED = {"a100-40gb", "a100-80gb", "h100-sxm", "h100-pcie", "h200", "b200", "gb200", "l40s", "l4", "mi300x",
           "mi325x", "tpu-v4"}


def test_design_ids_are_all_shipped(catalog):
    assert SHIPPED <= set(catalog.accelerators)


def test_every_accelerator_has_a_sourced_dated_price(catalog):
    assert len(catalog.accelerators) >= len(SHIPPED)
    for acc in catalog.accelerators.values():
        assert acc.prices, acc.id
        assert acc.price.usd_per_hour > 0 and acc.price in acc.prices.values()
        for tier, price in acc.prices.items():
            assert price.tier == tier
            assert price.usd_per_hour > 0, (acc.id, tier)
            assert price.source.strip(), (acc.id, tier)
            assert re.fullmatch(r"\d{4}-\d{2}(-\d{2})?", price.date), (acc.id, tier, price.date)


def test_every_accelerator_has_positive_specs(catalog):
    for acc in catalog.accelerators.values():
        assert acc.flops_per_s, acc.id
        assert all(v > 0 for v in acc.flops_per_s.values()), acc.id
        assert "bf16" in acc.flops_per_s, acc.id  # attention runs in 16-bit
        assert acc.memory_bytes > 0 and acc.hbm_bytes_per_s > 0, acc.id
        assert acc.scale_up_domain >= 1 and acc.scale_up_bytes_per_s > 0 and acc.scale_out_bytes_per_s > 0, acc.id


def test_h100_sxm_published_figures(catalog):
    h = catalog.gpu("h100-sxm")
    # NVIDIA H100 SXM: 80 GB HBM3 at 3.35 TB/s, 989.4 dense BF16 TFLOPS, 1978.9 FP8; NVLink 4 450 GB/s per direction
    assert h.memory_bytes == 80 * 2 ** 30 and h.hbm_bytes_per_s == 3.35e12
    assert h.flops_per_s["bf16"] == pytest.approx(989.4e12) and h.flops_per_s["fp8"] == pytest.approx(1978.9e12)
    assert h.scale_up_domain == 8 and h.scale_up_bytes_per_s == 450e9


@pytest.mark.parametrize("name", ["h100-sxm", "H100", "h100_sxm", "H100-SXM-80GB", " h100 sxm ", "H100_SXM5"])
def test_h100_aliases(catalog, name):
    assert catalog.gpu(name).id == "h100-sxm"


@pytest.mark.parametrize("name, gpu_id", [("A100", "a100-80gb"), ("MI300X", "mi300x"), ("TPU_v4", "tpu-v4"),
                                          ("h200-sxm", "h200"), ("NVL72", "gb200"), ("H100 PCIe", "h100-pcie")])
def test_other_aliases(catalog, name, gpu_id):
    assert catalog.gpu(name).id == gpu_id


def test_normalize_name():
    assert normalize_name("H100_SXM 80GB") == "h100-sxm-80gb"
    assert normalize_name("  Llama-3.1-70B ") == "llama-3.1-70b"


def test_unknown_gpu_did_you_mean(catalog):
    with pytest.raises(InputError) as e:
        catalog.gpu("h100-sxn")
    msg = str(e.value)
    assert "unknown GPU 'h100-sxn'" in msg and "did you mean" in msg and "'h100-sxm'" in msg
    assert "\n" not in msg


def test_unknown_model_did_you_mean():
    from planner.catalog import load_model
    with pytest.raises(InputError, match="did you mean 'llama-3.1-70b'"):
        load_model("llama-3.1-70")


def test_gpus_list(catalog):
    assert [a.id for a in catalog.gpus("H100, h100-sxm,h200")] == ["h100-sxm", "h200"]
    with pytest.raises(InputError, match="empty"):
        catalog.gpus(" , ")


def test_price_tiers(catalog):
    assert catalog.price_tier == "market"
    assert catalog.gpu("h100").price.tier == "market"
    listed = load_catalog(price_tier="list")
    assert listed.gpu("h100").usd_per_hour == pytest.approx(6.155)  # CoreWeave HGX H100 $49.24 / 8
    assert listed.gpu("h100").usd_per_hour != catalog.gpu("h100").usd_per_hour
    # a part without the requested tier falls back to the first tier it has
    assert load_catalog(price_tier="spot").gpu("gb200").price.tier == "list"
    with pytest.raises(InputError, match="unknown price tier"):
        load_catalog(price_tier="cheap")


USER_CATALOG = """
schema_version = 1

[[accelerator]]
id = "H100"            # an alias of a shipped part: override its price only
usd_per_hour = 1.50

[[accelerator]]
id = "acme-x1"
name = "ACME X1"
aliases = ["x1"]
memory_gib = 96
hbm_tb_s = 4.0
[accelerator.tflops]
bf16 = 1000
fp8 = 2000
[accelerator.scale_up]
domain_size = 8
gb_s = 400
[accelerator.scale_out]
gbit_s = 400
[accelerator.prices.market]
usd_per_hour = 2.25
source = "our negotiated contract"
date = "2026-01-15"

[perf]
memory_reserve_fraction = 0.05
"""


def test_user_catalog_overrides_a_price_and_adds_a_gpu(tmp_path, catalog):
    path = tmp_path / "ours.toml"
    path.write_text(USER_CATALOG, encoding="utf-8")
    cat = load_catalog(path)
    h = cat.gpu("h100-sxm")
    shipped = catalog.gpu("h100-sxm")
    assert h.usd_per_hour == 1.50 and h.price.tier == "market" and h.price.source == "user catalog"
    # everything else about the part is unchanged, and so are the other parts
    assert (h.memory_bytes, h.hbm_bytes_per_s, dict(h.flops_per_s), h.aliases) == \
        (shipped.memory_bytes, shipped.hbm_bytes_per_s, dict(shipped.flops_per_s), shipped.aliases)
    assert h.prices["list"] == shipped.prices["list"]
    assert cat.gpu("h200").usd_per_hour == catalog.gpu("h200").usd_per_hour
    assert "h100" not in cat.accelerators  # the override did not create a second part under the alias
    x = cat.gpu("X1")
    assert x.id == "acme-x1" and x.memory_bytes == 96 * 2 ** 30 and x.hbm_bytes_per_s == 4.0e12
    assert x.flops_per_s == {"bf16": 1000e12, "fp8": 2000e12} and x.scale_out_bytes_per_s == 50e9
    assert x.price.usd_per_hour == 2.25 and x.price.date == "2026-01-15"
    assert cat.perf.memory_reserve_fraction == 0.05
    assert str(path) in cat.sources
    # and the estimate uses them
    e = api.estimate("llama-3.1-8b", "x1", tp=2, batch=4, isl=512, osl=128, catalog=path)
    assert e.usd_per_hour == pytest.approx(4.50) and e.memory["reserve"] == pytest.approx(0.05 * 96 * 2 ** 30)
    e = api.estimate("llama-3.1-8b", "h100", tp=8, batch=4, isl=512, osl=128, catalog=cat)
    assert e.usd_per_hour == pytest.approx(12.0)


def test_malformed_toml_names_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[[accelerator]\nid = \"x\"\n", encoding="utf-8")
    with pytest.raises(InputError) as e:
        load_catalog(path)
    assert str(path) in str(e.value) and "invalid TOML" in str(e.value)


@pytest.mark.parametrize("text, match", [
    ('[[accelerator]]\nid = "new-gpu"\nusd_per_hour = 1.0\n', "missing field 'memory_gib'"),
    ('[[accelerator]]\nid = "h100"\nusd_per_hour = -1.0\n', "usd_per_hour"),
    ('[[accelerator]]\nid = "h100"\n[accelerator.prices.cheap]\nusd_per_hour = 1.0\n', "unknown price tier"),
    ('[perf]\nhbm_efficency = 0.7\n', "unknown perf parameter"),
    ('gpus = 3\n', "unknown top-level key"),
])
def test_bad_user_catalog_entries_name_the_file(tmp_path, text, match):
    path = tmp_path / "user.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=match) as e:
        load_catalog(path)
    assert str(path) in str(e.value)


def test_missing_catalog_file(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        load_catalog(tmp_path / "nope.toml")
