"""Collective and point-to-point communication times (seconds)."""
from __future__ import annotations

import numpy as np


def ring_allreduce_time_s(group, message_bytes, link_bytes_per_s, link_efficiency, latency_s):
    """Ring all-reduce of `message_bytes` over `group` GPUs: each GPU sends and receives 2(n−1)/n of the
    message over its per-direction link, plus a fixed per-collective latency:

        t = α + 2(n−1)/n · M / (BW · η)           (0 when n = 1)"""
    n = np.asarray(group, dtype=float)
    bw = np.asarray(link_bytes_per_s, dtype=float) * link_efficiency
    t = latency_s + 2.0 * (n - 1.0) / n * np.asarray(message_bytes, dtype=float) / bw
    return np.where(n > 1, t, 0.0)


def alltoall_time_s(group, bytes_per_gpu, link_bytes_per_s, link_efficiency, latency_s):
    """All-to-all where each GPU holds `bytes_per_gpu` to scatter: (n−1)/n of it leaves the GPU.

        t = α + (n−1)/n · M / (BW · η)            (0 when n = 1)"""
    n = np.asarray(group, dtype=float)
    bw = np.asarray(link_bytes_per_s, dtype=float) * link_efficiency
    t = latency_s + (n - 1.0) / n * np.asarray(bytes_per_gpu, dtype=float) / bw
    return np.where(n > 1, t, 0.0)


def p2p_time_s(message_bytes, link_bytes_per_s, link_efficiency, latency_s):
    """One send/recv of `message_bytes` between pipeline stages: t = α + M / (BW · η)."""
    return latency_s + np.asarray(message_bytes, dtype=float) / (np.asarray(link_bytes_per_s, dtype=float) * link_efficiency)
