"""inference-planner: plan LLM inference deployments at the lowest cost per token.

Public API (see README "Python API"): `load_model`, `load_catalog`, `estimate`, `plan`, `frontier`, `fleet`,
`export`, `train`.

Each request is read and validated once at the edge into frozen dataclasses, then trusted inside: a plan
request (file, dict or keywords) becomes a `plan_request.PlanRequest` (`specs.Workload`, `specs.SLO`,
`plan_request.SearchLimits`, catalog choice, confirmation settings), a fleet request a
`fleet.request.FleetRequest`, a training request a `train.request.TrainRequest`, a simulation's options a
`sim.SimulationSettings`. The CLI (cli.py) turns flags into one call of api.py and formats what comes back;
layers import only those below them (README "Architecture").
"""
# The submodules planner/plan.py, planner/fleet/, planner/export/ and planner/train/ share their names with the API
# functions `plan`, `fleet`, `export` and `train`. Importing the submodules first, then binding the functions, keeps
# those package attributes the functions for good: a later `from planner.plan import Plan` finds the module in
# sys.modules and does not rebind the package attribute.
from . import export as _export_package  # noqa: F401  (these four must precede the api import below)
from . import fleet as _fleet_package  # noqa: F401
from . import plan as _plan_module  # noqa: F401
from . import train as _train_package  # noqa: F401
from .api import estimate, export, fleet, frontier, plan, train
from .catalog import load_catalog, load_model
from .errors import InfeasibleError, InputError, PlannerError

__version__ = "0.1.0"
__all__ = ["estimate", "plan", "frontier", "fleet", "export", "train", "load_catalog", "load_model", "InfeasibleError",
           "InputError", "PlannerError", "__version__"]
