"""Package attributes loaded on first use (issue #16: start-up time).

`import planner` and `import planner.fleet` used to import everything their packages export, and with it OR-Tools
(and pandas, which OR-Tools' cp_model imports), networkx and the fleet, export and training code: ~0.5 s before any
command ran. `lazy_package` makes a package's exported names (attribute -> the submodule defining it) load on first
access (PEP 562 module `__getattr__`), and any other submodule load when first named as an attribute.

Several exported functions share their names with submodules (`planner.plan` the function and planner/plan.py,
`planner.fleet.search` and planner/fleet/search.py, ...). Importing such a submodule binds it on the package; the
package drops that binding so the attribute stays the exported function, as it was when the package imported the
submodules first and bound the functions after (the submodule is still in `sys.modules`, where `from planner.plan
import Plan` finds it)."""
from __future__ import annotations

import sys
from importlib import import_module
from types import ModuleType
from typing import Any, Mapping


class _LazyPackage(ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, ModuleType) and name in self.__dict__.get("_lazy_exports", ()):
            return  # a submodule named like an exported function: keep the function
        super().__setattr__(name, value)


def lazy_package(package: str, exports: Mapping[str, str]) -> None:
    """Make the already-executing package `package` load each name of `exports` from its (relative) submodule on
    first access."""
    module = sys.modules[package]

    def __getattr__(name: str) -> Any:
        if name in exports:
            value = getattr(import_module(exports[name], package), name)
            module.__dict__[name] = value
            return value
        if not name.startswith("_"):
            try:
                return import_module(f"{package}.{name}")  # binds itself on the package
            except ModuleNotFoundError as e:
                if e.name != f"{package}.{name}":
                    raise
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(module.__dict__) | set(exports))

    module.__dict__.update(__getattr__=__getattr__, __dir__=__dir__, _lazy_exports=dict(exports))
    module.__class__ = _LazyPackage
