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
