"""Training-run planning (`planner train`): compute, memory, step time, cost and the cheapest cluster layout.

One module per concern, each formula in one function whose docstring gives it with its source:

- request.py   `TrainRequest`: the question (model, tokens, sequence, batch, GPUs, count / deadline / budget),
               parsed from flags, a TOML request file or keyword arguments, validated at the edge
- params.py    `TrainParams`: goodput and the FLOP efficiency per accelerator family (catalog/train.toml)
- flops.py     FLOPs per token (model and hardware, with recomputation) and for the whole run
- memory.py    bytes per GPU: model states under ZeRO 0-3, activations under none/selective/full recomputation
- step.py      `Layout` and the step time: compute, TP/EP/CP collectives, 1F1B bubble, exposed DP sync; MFU,
               tokens/s, days, GPU-hours and cost (`run_metrics`)
- search.py    the layout table (numpy) and the CP-SAT choice of one row: cheapest under a deadline, fastest
               under a budget, or cheapest at a fixed GPU count; binding constraints and infeasibility reasons
- oracle.py    an exhaustive search over the same space, in plain Python, for tests
- result.py    `TrainPlan`: JSON (planner/schema/train.schema.json) and text
- calibrate.py published training runs (catalog/train_runs.toml), the efficiency fit and the check table

Symbols (as in the docstrings): N active parameters that multiply activations, L layers, h hidden size,
a attention heads, s sequence length (tokens), b micro-batch (sequences), t TP, p PP, d DP, e EP, c CP,
m micro-batches per step per pipeline, G global batch (tokens), D training tokens, Ψ parameters held by a GPU.
"""
from __future__ import annotations

__all__ = ["train"]


def train(*args, **kwargs):
    """See `planner.api.train`."""
    from ..api import train as _train

    return _train(*args, **kwargs)
