"""`Cluster`: the network a replica's GPUs sit on, as a networkx graph.

GPUs hang off their scale-up domain's switch (NVSwitch / ICI / Infinity Fabric) and off the scale-out fabric
(InfiniBand/RoCE/DCN). A replica fills domains in order (stage s takes GPUs [s·tp, (s+1)·tp)); the bandwidth
between two GPUs is the narrowest link on the widest path between them."""
from __future__ import annotations

from functools import lru_cache

import networkx as nx

from .accelerator import Accelerator


class Cluster:
    def __init__(self, scale_up_domain: int, scale_up_bytes_per_s: float, scale_out_bytes_per_s: float,
                 num_gpus: int):
        self.domain = scale_up_domain
        self.graph = nx.Graph()
        self.graph.add_node("fabric", kind="scale_out")
        for g in range(num_gpus):
            d = g // scale_up_domain
            self.graph.add_node(("gpu", g), kind="gpu", domain=d)
            self.graph.add_node(("domain", d), kind="scale_up")
            self.graph.add_edge(("gpu", g), ("domain", d), bytes_per_s=scale_up_bytes_per_s, link="scale_up")
            self.graph.add_edge(("gpu", g), "fabric", bytes_per_s=scale_out_bytes_per_s, link="scale_out")

    def p2p_bytes_per_s(self, a: int, b: int) -> float:
        """Widest-path (max-bottleneck) bandwidth between GPU a and GPU b."""
        if a == b:
            return float("inf")
        best = 0.0
        for path in nx.all_simple_paths(self.graph, ("gpu", a), ("gpu", b), cutoff=3):
            width = min(self.graph.edges[u, v]["bytes_per_s"] for u, v in zip(path, path[1:]))
            best = max(best, width)
        return best

    def same_domain(self, a: int, b: int) -> bool:
        return self.graph.nodes[("gpu", a)]["domain"] == self.graph.nodes[("gpu", b)]["domain"]


@lru_cache(maxsize=4096)
def _stage_link(domain: int, up: float, out: float, tp: int, pp: int) -> float:
    if pp <= 1:
        return float("inf")
    c = Cluster(domain, up, out, tp * pp)
    return min(c.p2p_bytes_per_s(s * tp, (s + 1) * tp) for s in range(pp - 1))


def pipeline_link_bytes_per_s(gpu: Accelerator, tp: int, pp: int) -> float:
    """Bandwidth of the slowest stage-to-stage hop of a replica with `tp`×`pp` GPUs of type `gpu`."""
    return _stage_link(gpu.scale_up_domain, gpu.scale_up_bytes_per_s, gpu.scale_out_bytes_per_s, tp, pp)
