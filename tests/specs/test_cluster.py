"""planner/specs/cluster.py: widest-path bandwidth between GPUs and the slowest pipeline hop."""
from __future__ import annotations

import math

from planner.specs.cluster import Cluster, pipeline_link_bytes_per_s


def test_p2p_bandwidth_inside_and_across_domains():
    c = Cluster(scale_up_domain=8, scale_up_bytes_per_s=450e9, scale_out_bytes_per_s=50e9, num_gpus=16)
    assert c.p2p_bytes_per_s(0, 7) == 450e9  # NVLink through the domain switch
    assert c.p2p_bytes_per_s(7, 8) == 50e9  # different domains: only the scale-out fabric
    assert c.p2p_bytes_per_s(3, 3) == math.inf
    assert c.same_domain(0, 7) and not c.same_domain(7, 8)


def test_pipeline_link_on_h100(h100):
    # 400 Gbit/s per GPU = 50e9 B/s; NVLink 450 GB/s per direction
    assert h100.scale_out_bytes_per_s == 50e9 and h100.scale_up_bytes_per_s == 450e9
    assert pipeline_link_bytes_per_s(h100, 8, 1) == math.inf  # no hop
    assert pipeline_link_bytes_per_s(h100, 4, 2) == 450e9  # both stages in one 8-GPU domain
    assert pipeline_link_bytes_per_s(h100, 8, 2) == 50e9  # stage 1 starts a new node
    assert pipeline_link_bytes_per_s(h100, 2, 8) == 50e9  # stages 3 -> 4 cross nodes


def test_pipeline_link_is_the_slowest_hop_of_the_whole_replica_graph():
    # the link comes from one two-GPU graph per kind of hop (inside a domain, across two): the same as the slowest
    # hop on the graph of every GPU of the replica, whatever the domain size, TP, PP and which link is wider
    from planner.specs.cluster import _stage_link

    for domain in (1, 2, 4, 8, 72):
        for up, out in ((450e9, 50e9), (10e9, 50e9), (50e9, 50e9)):
            for tp in (1, 2, 3, 8):
                for pp in (2, 3, 5, 9):
                    full = Cluster(domain, up, out, tp * pp)
                    slowest = min(full.p2p_bytes_per_s(s * tp, (s + 1) * tp) for s in range(pp - 1))
                    assert _stage_link(domain, up, out, tp, pp) == slowest, (domain, up, out, tp, pp)


def test_hop_bandwidth_closed_form_is_the_two_gpu_graph_query():
    # _hop_bytes_per_s answers without building the graph (no networkx at plan time): the same float as the
    # widest-path query on the graph of the two GPUs, whichever link is wider or missing
    from planner.specs.cluster import _hop_bytes_per_s

    for domain in (1, 2, 8, 72):
        for up, out in ((450e9, 50e9), (10e9, 50e9), (50e9, 50e9), (0.0, 50e9), (450e9, 0.0)):
            for same in (True, False):
                a, b = (0, 1) if same else (0, domain)
                graph = Cluster(domain, up, out, b + 1, only={a, b}).p2p_bytes_per_s(a, b)
                assert _hop_bytes_per_s(domain, up, out, same) == graph, (domain, up, out, same)
