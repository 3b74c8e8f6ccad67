"""Discrete-event simulation of a plan under stochastic load: one replica or a fleet behind a load balancer,
continuous (or static) batching with a KV-cache admission limit, preemption, chunked prefill and speculative
decoding; step times come from the planner's perf model (tables.py).

- requests.py    arrivals (Poisson / gamma), token lengths, trace files (CSV / JSONL)
- tables.py      step-time tables from perf.estimate.step_terms; KV capacity from estimate()
- replica.py     one replica: continuous batching or static batching
- fleet.py       replicas behind a round-robin or least-loaded balancer
- metrics.py     percentiles, throughput, queue and KV series, SLO attainment
- plan_input.py  the plan / estimate JSON a simulation starts from
- simulate.py    `simulate_plan()`: all of the above
- report.py      the text summary `planner simulate` prints
"""
from .plan_input import PlanSpec, load_plan, plan_from_dict
from .simulate import SimulationSettings, simulate_plan

__all__ = ["PlanSpec", "SimulationSettings", "load_plan", "plan_from_dict", "simulate_plan"]
