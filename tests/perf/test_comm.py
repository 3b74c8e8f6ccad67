"""planner/perf/comm.py: ring all-reduce, all-to-all and point-to-point times by hand."""
from __future__ import annotations

import numpy as np
import pytest

from planner.perf.comm import alltoall_time_s, p2p_time_s, ring_allreduce_time_s, two_level_alltoall_time_s

MiB = 2 ** 20


def test_ring_allreduce_tp8_1mib_on_nvlink():
    # t = α + 2(n−1)/n · M / (BW·η) = 8 µs + 2·7/8 · 1,048,576 B / (450e9 B/s × 0.8) = 8 µs + 5.0972 µs
    t = ring_allreduce_time_s(8, MiB, 450e9, 0.8, 8e-6)
    assert t == pytest.approx(8e-6 + 1.75 * 1_048_576 / 360e9, rel=1e-12)
    assert t == pytest.approx(13.0972e-6, rel=1e-5)


def test_ring_allreduce_group_of_one_is_free():
    assert ring_allreduce_time_s(1, MiB, 450e9, 0.8, 8e-6) == 0.0  # no latency either


def test_ring_allreduce_vectorized_over_group():
    t = ring_allreduce_time_s(np.array([1, 2, 4, 8]), 1e6, 1e11, 1.0, 0.0)
    # 2(n−1)/n · 10 µs
    np.testing.assert_allclose(t, [0.0, 10e-6, 15e-6, 17.5e-6])


def test_alltoall_by_hand():
    # each GPU sends (n−1)/n of its 2 MiB: 8 µs + 7/8 · 2,097,152 / (450e9 · 0.8)
    t = alltoall_time_s(8, 2 * MiB, 450e9, 0.8, 8e-6)
    assert t == pytest.approx(8e-6 + 0.875 * 2_097_152 / 360e9, rel=1e-12)
    assert alltoall_time_s(1, 2 * MiB, 450e9, 0.8, 8e-6) == 0.0


def test_p2p_by_hand():
    # 8192 hidden × 2 B × 64 tokens = 1 MiB over 400 Gbit/s InfiniBand (50e9 B/s) at 80 %, 15 µs latency
    t = p2p_time_s(8192 * 2 * 64, 50e9, 0.8, 15e-6)
    assert t == pytest.approx(15e-6 + 1_048_576 / 40e9, rel=1e-12)
    assert p2p_time_s(0, 50e9, 0.8, 15e-6) == pytest.approx(15e-6)


def test_two_level_alltoall_inside_one_domain_is_the_plain_alltoall():
    # 8 ranks, 8 per domain: 8 µs + 7/8 · 2 MiB / (450e9 · 0.8), nothing over the NIC
    t = two_level_alltoall_time_s(8, 8, 2 * MiB, 450e9, 0.8, 8e-6, 50e9, 0.8, 15e-6)
    assert t == pytest.approx(8e-6 + 7 / 8 * 2 * MiB / 360e9, rel=1e-12)
    assert t == pytest.approx(alltoall_time_s(8, 2 * MiB, 450e9, 0.8, 8e-6), rel=1e-12)


def test_two_level_alltoall_across_four_nodes_by_hand():
    # 32 ranks, 8 per node: 7/32 of 1 MiB over NVLink (8 µs + 7/32 · 1,048,576 / 360e9 = 8.637 µs) while 24/32
    # leaves over a 400 Gbit/s NIC (15 µs + 24/32 · 1,048,576 / (50e9 · 0.8) = 34.66 µs): the NIC sets it
    t = two_level_alltoall_time_s(32, 8, MiB, 450e9, 0.8, 8e-6, 50e9, 0.8, 15e-6)
    assert t == pytest.approx(15e-6 + 0.75 * 1_048_576 / 40e9, rel=1e-12)
    assert t == pytest.approx(34.66e-6, rel=1e-4)


def test_two_level_alltoall_single_rank_is_free():
    assert two_level_alltoall_time_s(1, 8, MiB, 450e9, 0.8, 8e-6, 50e9, 0.8, 15e-6) == 0.0
