"""inference-planner: plan LLM inference deployments at the lowest cost per token.

Public API (see README "Python API"): `load_model`, `load_catalog`, `estimate`, `plan`, `frontier`, `fleet`,
`export`, `train`.

Each request is read and validated once at the edge into frozen dataclasses, then trusted inside: a plan
request (file, dict or keywords) becomes a `plan_request.PlanRequest` (`specs.Workload`, `specs.SLO`,
`plan_request.SearchLimits`, catalog choice, confirmation settings), a fleet request a
`fleet.request.FleetRequest`, a training request a `train.request.TrainRequest`, a simulation's options a
`sim.SimulationSettings`. The CLI (cli.py) turns flags into one call of api.py and formats what comes back;
layers import only those below them (README "Architecture").

Imports are lazy (lazy.py, issue #16): `import planner` loads the error types only; the API functions load api.py
(and catalog.py) on first use, and each command imports only what it needs — the fleet, export, simulation and
training code, networkx and OR-Tools (with pandas) only when used. tests/test_imports.py checks that `import
planner.cli` and a plan's validation load none of them.
"""
from typing import TYPE_CHECKING

from .errors import InfeasibleError, InputError, PlannerError
from .lazy import lazy_package

__version__ = "0.1.0"
__all__ = ["estimate", "plan", "frontier", "fleet", "export", "train", "load_catalog", "load_model", "InfeasibleError",
           "InputError", "PlannerError", "__version__"]

# planner.plan, .fleet, .export and .train stay these functions when their namesake submodules are imported.
lazy_package(__name__, {**{f: ".api" for f in ("estimate", "plan", "frontier", "fleet", "export", "train")},
                        "load_catalog": ".catalog", "load_model": ".catalog"})
if TYPE_CHECKING:
    from .api import estimate, export, fleet, frontier, plan, train
    from .catalog import load_catalog, load_model
