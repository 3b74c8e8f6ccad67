"""Roofline time of a kernel group."""
from __future__ import annotations

import numpy as np


def roofline_time_s(flops, bytes_moved, peak_flops_per_s, hbm_bytes_per_s, flops_efficiency, hbm_efficiency):
    """t = max(F / (peak · η_F), B / (BW · η_BW)): the kernel is limited by whichever resource it saturates.

    Units: FLOP, bytes, FLOP/s, bytes/s -> seconds. Broadcasts over numpy arrays."""
    compute = np.asarray(flops, dtype=float) / (np.asarray(peak_flops_per_s, dtype=float) * flops_efficiency)
    memory = np.asarray(bytes_moved, dtype=float) / (np.asarray(hbm_bytes_per_s, dtype=float) * hbm_efficiency)
    return np.maximum(compute, memory)


def compute_time_s(flops, peak_flops_per_s, flops_efficiency):
    return np.asarray(flops, dtype=float) / (np.asarray(peak_flops_per_s, dtype=float) * flops_efficiency)


def memory_time_s(bytes_moved, hbm_bytes_per_s, hbm_efficiency):
    return np.asarray(bytes_moved, dtype=float) / (np.asarray(hbm_bytes_per_s, dtype=float) * hbm_efficiency)
