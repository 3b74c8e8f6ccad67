"""`ReplicaLayout`: how one replica is laid out, the field list every layout record shares (the exporter's
`export.layout.Layout`, the fleet's `fleet.result.PoolPlan`)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReplicaLayout:
    """Parallel degrees, concurrency, precisions and pipeline placement of one model replica."""

    tp: int  # tensor-parallel GPUs per attention group
    pp: int  # pipeline stages
    ep: int  # expert-parallel ranks per stage
    batch: int  # sequences in flight per replica
    weights: str  # weight precision (units.WEIGHT_PRECISIONS)
    kv: str  # KV-cache precision (units.KV_PRECISIONS)
    layers_per_stage: tuple[int, ...]  # transformer layers on each pipeline stage
