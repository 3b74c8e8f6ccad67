"""planner/units.py: bytes per stored element of each precision (with the block scales the formats carry), and
the unit constants, against hand computations."""
from __future__ import annotations

import pytest

from planner.units import (BYTES_PER_ELEMENT, COMPUTE_DTYPE, GB, HOURS_PER_MONTH, KV_PRECISIONS, SECONDS_PER_HOUR,
                           WEIGHT_PRECISIONS, Gbit, GiB, MiB)


def test_block_scaled_formats_pay_for_their_scales():
    assert BYTES_PER_ELEMENT["int4"] == 0.515625  # 4 bits + one 2-byte bf16 scale per group of 128
    assert BYTES_PER_ELEMENT["fp4"] == 0.5625  # NVFP4: 4 bits + one 1-byte fp8 scale per 16 values
    assert BYTES_PER_ELEMENT["mxfp4"] == 0.53125  # MXFP4: 4 bits + one 1-byte E8M0 scale per 32 values
    assert [BYTES_PER_ELEMENT[p] for p in ("fp32", "bf16", "fp16", "fp8", "int8")] == [4, 2, 2, 1, 1]


def test_every_precision_a_user_may_name_has_a_size_and_a_compute_dtype():
    for p in WEIGHT_PRECISIONS:
        assert p in BYTES_PER_ELEMENT and COMPUTE_DTYPE[p] in BYTES_PER_ELEMENT
    assert set(KV_PRECISIONS) <= set(BYTES_PER_ELEMENT)
    # weight-only formats compute in bf16 (W4A16); fp4 runs W4A4 on Blackwell
    assert (COMPUTE_DTYPE["int4"], COMPUTE_DTYPE["mxfp4"], COMPUTE_DTYPE["fp4"]) == ("bf16", "bf16", "fp4")


def test_unit_constants():
    assert HOURS_PER_MONTH * 12 == 8760  # a 365-day year
    assert SECONDS_PER_HOUR == 60 * 60
    assert Gbit == pytest.approx(125e6)  # a 400 Gbit/s NIC moves 50 GB/s
    assert 400 * Gbit == 50 * GB
    assert GiB == 1024 * MiB == 1_073_741_824
