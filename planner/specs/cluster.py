"""`Cluster`: the network a replica's GPUs sit on, as a networkx graph.

GPUs hang off their scale-up domain's switch (NVSwitch / ICI / Infinity Fabric) and off the scale-out fabric
(InfiniBand/RoCE/DCN). A replica fills domains in order (stage s takes GPUs [s·tp, (s+1)·tp)); the bandwidth
between two GPUs is the narrowest link on the widest path between them."""
from __future__ import annotations

import heapq
from functools import lru_cache

from .accelerator import Accelerator


class Cluster:
    def __init__(self, scale_up_domain: int, scale_up_bytes_per_s: float, scale_out_bytes_per_s: float,
                 num_gpus: int, only: "set[int] | None" = None):
        """`only`: add just these of the `num_gpus` GPUs (with their domains), for queries about a few of them."""
        import networkx as nx  # here, not at import: ~0.1 s of start-up that most commands never need (#16)

        self.domain = scale_up_domain
        self.graph = nx.Graph()
        self.graph.add_node("fabric", kind="scale_out")
        for g in (range(num_gpus) if only is None else sorted(only)):
            d = g // scale_up_domain
            self.graph.add_node(("gpu", g), kind="gpu", domain=d)
            self.graph.add_node(("domain", d), kind="scale_up")
            self.graph.add_edge(("gpu", g), ("domain", d), bytes_per_s=scale_up_bytes_per_s, link="scale_up")
            self.graph.add_edge(("gpu", g), "fabric", bytes_per_s=scale_out_bytes_per_s, link="scale_out")

    def p2p_bytes_per_s(self, a: int, b: int) -> float:
        """Widest-path (max-bottleneck) bandwidth between GPU a and GPU b: a Dijkstra that maximizes the narrowest
        edge instead of minimizing the sum."""
        src, dst = ("gpu", a), ("gpu", b)
        if src == dst:
            return float("inf")
        width = {src: float("inf")}
        heap = [(-width[src], 0, src)]
        done = set()
        tie = 1
        while heap:
            w, _, u = heapq.heappop(heap)
            if u in done:
                continue
            if u == dst:
                return -w
            done.add(u)
            for v, attrs in self.graph[u].items():
                cand = min(-w, attrs["bytes_per_s"])
                if v not in done and cand > width.get(v, 0.0):
                    width[v] = cand
                    heapq.heappush(heap, (-cand, tie, v))
                    tie += 1
        return 0.0

    def same_domain(self, a: int, b: int) -> bool:
        return self.graph.nodes[("gpu", a)]["domain"] == self.graph.nodes[("gpu", b)]["domain"]


@lru_cache(maxsize=4096)
def _stage_link(domain: int, up: float, out: float, tp: int, pp: int) -> float:
    if pp <= 1:
        return float("inf")
    # Stage s sends from GPU s·tp to GPU (s+1)·tp. Hops within one domain are all alike and so are hops across
    # domains (whatever TP and PP: the widest path between two GPUs runs through their own links only)
    return min(_hop_bytes_per_s(domain, up, out, (s * tp) // domain == ((s + 1) * tp) // domain)
               for s in range(pp - 1))


def _hop_bytes_per_s(domain: int, up: float, out: float, same_domain: bool) -> float:
    """Widest-path bandwidth between two GPUs in one scale-up domain or in two: what `Cluster.p2p_bytes_per_s`
    finds on the graph of just those two, in closed form. Their paths are GPU–domain switch–GPU (scale-up, only
    when they share the domain) and GPU–fabric–GPU (scale-out), so the widest is max(up, out) within a domain and
    out across two. Computed without building the graph: a plan needs nothing else from networkx, whose import
    is ~0.08 s of every `planner plan` (issue #16); tests/specs/test_cluster.py checks it against the graph. A
    domain of one GPU holds no two GPUs: across two, whatever `same_domain` says. (Not cached: `_stage_link` is.)"""
    return max(up, out) if same_domain and domain > 1 else out


def pipeline_link_bytes_per_s(gpu: Accelerator, tp: int, pp: int) -> float:
    """Bandwidth of the slowest stage-to-stage hop of a replica with `tp`×`pp` GPUs of type `gpu`."""
    return _stage_link(gpu.scale_up_domain, gpu.scale_up_bytes_per_s, gpu.scale_out_bytes_per_s, tp, pp)
