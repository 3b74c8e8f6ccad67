"""inference-planner: plan LLM inference deployments at the lowest cost per token.

Public API (see README "Python API"): `load_model`, `load_catalog`, `estimate`, `plan`, `frontier`, `export`.
`planner.export(plan, engine)` is callable and is also the `planner.export` package (planner/export/).
"""
# The submodule planner/plan.py (the Plan class) shares its name with the API function `plan`. Importing the
# submodule first, then binding the function, keeps `planner.plan` the function for good: a later
# `from planner.plan import Plan` finds the module in sys.modules and does not rebind the package attribute.
from . import plan as _plan_module  # noqa: F401  (must precede the api import below)
from . import export
from .api import estimate, frontier, plan
from .catalog import load_catalog, load_model
from .errors import InfeasibleError, InputError, PlannerError

__version__ = "0.1.0"
__all__ = ["estimate", "plan", "frontier", "export", "load_catalog", "load_model", "InfeasibleError", "InputError",
           "PlannerError", "__version__"]
