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


def two_level_alltoall_time_s(ranks, ranks_per_domain, bytes_per_gpu, up_bytes_per_s, up_efficiency, up_latency_s,
                              out_bytes_per_s, out_efficiency, out_latency_s, out_share=None):
    """All-to-all over `ranks` ranks of which `ranks_per_domain` share a scale-up domain (or a PCIe host); each
    GPU holds `bytes_per_gpu` spread evenly over the ranks. Inside one domain it is alltoall_time_s on the
    scale-up link. Across domains the share (n − d)/n of the bytes leaves over the GPU's scale-out NIC while the
    share (d − 1)/n goes over the scale-up link at the same time:

        n ≤ d:  t = α_up + (n − 1)/n · M / (BW_up · η_up)
        n > d:  t = max(α_up + (d − 1)/n · M / (BW_up · η_up),  α_out + (n − d)/n · M / (BW_out · η_out))

    (0 when n = 1). `out_share` replaces (n − d)/n as the share of M leaving over the NIC (a dispatch that sends
    each token once per remote domain and forwards it inside: moe.remote_domain_share); None keeps (n − d)/n."""
    n = np.asarray(ranks, dtype=float)
    d = np.minimum(np.asarray(ranks_per_domain, dtype=float), n)
    m = np.asarray(bytes_per_gpu, dtype=float)
    up = np.asarray(up_bytes_per_s, dtype=float) * up_efficiency
    out = np.asarray(out_bytes_per_s, dtype=float) * out_efficiency
    inside = up_latency_s + (n - 1.0) / n * m / up
    with np.errstate(divide="ignore", invalid="ignore"):
        share = (n - d) / n if out_share is None else np.asarray(out_share, dtype=float)
        across = np.maximum(up_latency_s + (d - 1.0) / n * m / up, out_latency_s + share * m / out)
    t = np.where(n > d, across, inside)
    return np.where(n > 1, t, 0.0)
