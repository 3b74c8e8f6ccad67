"""`ReplicaLayout`: how one replica is laid out, the field list every layout record shares (the exporter's
`export.layout.Layout`, the fleet's `fleet.result.PoolPlan`)."""
from __future__ import annotations

from dataclasses import dataclass, field


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
    # attention data-parallel groups per stage, each TP-way with its own sequences and KV (keyword-only, so the
    # records that extend this one keep their positional fields)
    dp: int = field(default=1, kw_only=True)
