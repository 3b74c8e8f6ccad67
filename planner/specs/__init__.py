"""Frozen dataclasses built at the edge from files or flags: ModelSpec, Accelerator, Cluster, Workload, SLO,
ReplicaLayout."""
from .accelerator import Accelerator, Price
from .layout import ReplicaLayout
from .model import ModelSpec, model_from_config, model_from_path
from .workload import SLO, Workload

__all__ = ["Accelerator", "Price", "ModelSpec", "model_from_config", "model_from_path", "ReplicaLayout", "SLO", "Workload"]
