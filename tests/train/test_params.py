"""planner/train/params.py: families and their FLOP efficiency (fitted, or borrowed from a fitted family), the
default family for unlisted parts, user overrides, and refused documents."""
from __future__ import annotations

import pytest

from planner.errors import InputError
from planner.train.params import params_from_doc, shipped_params

DOC = {
    "train": {"goodput": 0.9, "memory_reserve_fraction": 0.1, "default_family": "hop"},
    "family": [
        {"id": "amp", "accelerators": ["a100-80gb"], "flops_efficiency": 0.5, "fit": ["run-a"]},
        {"id": "hop", "accelerators": ["h100-sxm", "h200"], "flops_efficiency": 0.6},
        {"id": "bw", "accelerators": ["b200"], "assumed_from": "amp"},
    ],
}


def test_each_part_takes_its_family_efficiency_and_unlisted_parts_the_default():
    p = params_from_doc(DOC, "t.toml")
    assert p.flops_efficiency("a100-80gb") == 0.5 and p.family("a100-80gb").fit == ("run-a",)
    assert p.flops_efficiency("h200") == 0.6
    bw = p.family("b200")
    assert (bw.flops_efficiency, bw.assumed_from, bw.fit) == (0.5, "amp", ())  # borrowed, not fitted
    assert p.family("my-new-gpu").id == "hop" and p.flops_efficiency("my-new-gpu") == 0.6


def test_overrides_replace_goodput_and_every_efficiency():
    p = params_from_doc(DOC, "t.toml").with_overrides(goodput=0.8, flops_efficiency=0.42)
    assert p.goodput == 0.8 and {p.flops_efficiency(g) for g in ("a100-80gb", "h200", "b200")} == {0.42}
    assert params_from_doc(DOC, "t.toml").with_overrides().goodput == 0.9  # None keeps the file's values
    for bad in (0, 1.5, float("nan"), True):
        with pytest.raises(InputError, match="--goodput must be a number in \\(0, 1\\]"):
            params_from_doc(DOC, "t.toml").with_overrides(goodput=bad)


@pytest.mark.parametrize("doc, message", [
    ({**DOC, "train": {**DOC["train"], "goodput": 1.2}}, r"t\.toml: goodput must be a number in \(0, 1\]"),
    ({**DOC, "train": {**DOC["train"], "default_family": "bw"}}, r"default_family 'bw' is not a fitted family"),
    ({**DOC, "family": DOC["family"] + [{"id": "x", "accelerators": [], "assumed_from": "bw"}]},
     r"family 'x' has neither flops_efficiency nor a fitted assumed_from"),
    ({**DOC, "family": {"id": "amp"}}, r"expected a \[train\] table and \[\[family\]\] tables"),
])
def test_bad_documents_are_refused_naming_the_file(doc, message):
    with pytest.raises(InputError, match=message):
        params_from_doc(doc, "t.toml")


def test_the_shipped_catalog_fits_hopper_ampere_and_tpu_and_borrows_for_the_rest():
    p = shipped_params()
    fitted = {f.id for f in p.families if f.fit}
    assert fitted == {"nvidia-ampere", "nvidia-hopper", "google-tpu"}
    by_id = {f.id: f for f in p.families}
    for f in p.families:
        assert 0 < f.flops_efficiency <= 1
        if not f.fit:
            assert f.assumed_from in fitted and f.flops_efficiency == by_id[f.assumed_from].flops_efficiency
