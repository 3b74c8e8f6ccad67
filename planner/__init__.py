"""inference-planner: plan LLM inference deployments at the lowest cost per token.

Public API (see README "Python API"): `load_model`, `load_catalog`, `estimate`, `plan`, `frontier`, `export`.
`planner.export(plan, engine)` is callable and is also the `planner.export` package (planner/export/).
"""
import sys as _sys
import types as _types

from . import export
from .api import estimate, frontier, plan
from .catalog import load_catalog, load_model
from .errors import InfeasibleError, InputError, PlannerError


class _Package(_types.ModuleType):
    """Keeps `planner.plan` the function: importing the submodule planner/plan.py (which `plan()` itself does on
    its first call) would otherwise rebind the package attribute to the module and break the next call.
    `from planner.plan import Plan` is unaffected."""

    def __setattr__(self, name: str, value: object) -> None:
        if name == "plan" and isinstance(value, _types.ModuleType):
            return
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package

__version__ = "0.1.0"
__all__ = ["estimate", "plan", "frontier", "export", "load_catalog", "load_model", "InfeasibleError", "InputError",
           "PlannerError", "__version__"]
