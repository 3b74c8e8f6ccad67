"""inference-planner: plan LLM inference deployments at the lowest cost per token.

Public API (see README "Python API"): `load_model`, `load_catalog`, `estimate`, `plan`, `frontier`, `export`.
`planner.export(plan, engine)` is callable and is also the `planner.export` package (planner/export/).
"""
# The submodules planner/plan.py (the Plan class) and planner/export/ share their names with the API functions
# `plan` and `export`. Importing the submodules first, then binding the functions, keeps `planner.plan` and
# `planner.export` the functions for good: a later `from planner.plan import Plan` finds the module in
# sys.modules and does not rebind the package attribute.
from . import export as _export_package  # noqa: F401  (likewise: planner.export is the function)
from . import plan as _plan_module  # noqa: F401  (must precede the api import below)
from .api import estimate, export, frontier, plan
from .catalog import load_catalog, load_model
from .errors import InfeasibleError, InputError, PlannerError

__version__ = "0.1.0"
__all__ = ["estimate", "plan", "frontier", "export", "load_catalog", "load_model", "InfeasibleError", "InputError",
           "PlannerError", "__version__"]
