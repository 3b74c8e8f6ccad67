"""The package's import graph (read from the source, top-level and function-level imports alike) has no cycles:
each module imports only the layers below it. (`planner.explain` ↔ `planner.search.solve` was the last cycle:
explain borrowed solve's greedy placement, now in planner/search/placement.py.)

And the lazy design of start-up (issue #16, planner/lazy.py): in a fresh interpreter, `import planner.cli`, a plan
request that fails validation and a plan that needs no CP-SAT solve load none of the heavy libraries (OR-Tools,
pandas, networkx) nor the fleet, export, simulation and training packages; the API names stay the functions."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1] / "planner"
KNOWN: set[frozenset[str]] = set()


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> nx.DiGraph:
    mods = {_module(p): p for p in ROOT.rglob("*.py")}
    g = nx.DiGraph()
    g.add_nodes_from(mods)
    for m, p in mods.items():
        pkg = m if p.name == "__init__.py" else m.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = pkg
                for _ in range(node.level - 1):
                    base = base.rsplit(".", 1)[0]
                target = f"{base}.{node.module}" if node.module else base
                subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in mods]
                # `from . import x` of a submodule needs the submodule, not the package's own names
                for t in subs or [target]:
                    if t in mods and t != m:
                        g.add_edge(m, t)
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name in mods and a.name != m:
                        g.add_edge(m, a.name)
    return g


def test_no_import_cycles_but_the_known_one():
    cycles = {frozenset(c) for c in nx.simple_cycles(import_graph())}
    assert cycles <= KNOWN, sorted(sorted(c) for c in cycles - KNOWN)


def test_the_fleet_package_imports_only_downwards():
    g = import_graph().subgraph([m for m in import_graph() if m.startswith("planner.fleet")])
    assert nx.is_directed_acyclic_graph(g)
    order = ["request", "pools", "pool_space", "table", "model", "lp", "oracle", "search", "verify", "result"]
    for a, b in g.edges:
        if a != "planner.fleet" and b != "planner.fleet":
            assert order.index(b.split(".")[-1]) < order.index(a.split(".")[-1]), (a, b)


HEAVY = ("pandas", "ortools", "networkx", "planner.fleet", "planner.export", "planner.sim", "planner.train")


def _loaded_after(code: str) -> dict:
    """Run `code` in a fresh interpreter; the HEAVY modules it left loaded, and what it printed."""
    probe = (f"import sys, json\n{code}\n"
             f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)), file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT.parent, timeout=300)
    return {"heavy": json.loads(r.stderr.strip().splitlines()[-1]), "stdout": r.stdout, "stderr": r.stderr}


def _cli_after(args: list[str]) -> tuple[dict, int, dict | None]:
    """`planner ARGS` run through the CLI in a fresh interpreter (`_loaded_after`): what it loaded, its exit code
    and its JSON plan (None when it printed none)."""
    out = _loaded_after(f"from planner.cli import main\ntry:\n    main({args!r})\nexcept SystemExit as e:\n"
                        "    print('rc', e.code)")
    body, rc = out["stdout"].rsplit("rc ", 1)
    return out, int(rc), (json.loads(body) if body.strip() else None)


def test_importing_the_cli_loads_no_heavy_library():
    assert _loaded_after("import planner, planner.cli")["heavy"] == []


def test_a_request_that_fails_validation_loads_no_solver():
    out, rc, plan = _cli_after(['plan', '--model', 'gpt4-moe-rumored', '--isl', '8000', '--osl', '2000'])
    assert rc == 2 and plan is None and "exceeds gpt4-moe-rumored's context" in out["stderr"]
    assert out["heavy"] == []


def test_a_plan_without_a_cp_sat_solve_loads_no_or_tools():
    # one GPU type, dense: single-stage candidates are searched without CP-SAT; the disaggregated pools by
    # enumeration; the confirming simulation runs (planner.sim), the fleet's solvers do not. Nor networkx:
    # pipelined rows' stage links come from the two-GPU hop in closed form (specs/cluster.py).
    out, rc, plan = _cli_after(['plan', '--model', 'llama-3.1-8b', '--gpus', 'h100', '--isl', '1000', '--osl', '300',
                                '--json'])
    assert rc == 0 and plan["solver"]["status"] == "OPTIMAL"
    assert not {"pandas", "ortools", "networkx", "planner.export", "planner.train"} & set(out["heavy"]), out["heavy"]


def test_the_api_names_stay_the_functions_after_their_namesake_submodules_load():
    out = _loaded_after(
        "import planner, planner.api as api\n"
        "from planner.plan import Plan\n"
        "import planner.fleet.search, planner.fleet.result, planner.fleet.verify, planner.export.spec, planner.train.search\n"
        "fleet = sys.modules['planner.fleet']\n"
        "print(all(getattr(planner, f) is getattr(api, f) for f in ('plan', 'fleet', 'export', 'train', 'estimate')))\n"
        "print(fleet.search is sys.modules['planner.fleet.search'].search, fleet.result.__module__,\n"
        "      fleet.verify.__module__, planner.load_model is sys.modules['planner.catalog'].load_model)\n"
        "print(planner.search.__name__, fleet.pools.__name__)\n"
        "try:\n    planner.no_such_name\nexcept AttributeError as e:\n    print(e)")
    assert out["stdout"].splitlines() == ["True", "True planner.fleet.result planner.fleet.verify True",
                                          "planner.search planner.fleet.pools",
                                          "module 'planner' has no attribute 'no_such_name'"], out["stderr"]


def test_a_plan_with_a_cp_sat_solve_loads_no_pandas():
    # pinned to two stages, the layer placement is a CP-SAT model: OR-Tools loads, its cp_model without pandas
    # (cli._CpModelWithoutPandas); a later `import pandas` still gets the real pandas
    out, rc, plan = _cli_after(['plan', '--model', 'llama-3.1-8b', '--gpus', 'h100', '--pp', '2', '--isl', '1000',
                                '--osl', '300', '--json'])
    assert rc == 0 and plan["solver"]["status"] == "OPTIMAL" and plan["parallelism"]["pp"] == 2
    assert "ortools" in out["heavy"] and "pandas" not in out["heavy"], out["heavy"]


def test_cp_model_without_pandas_falls_back_to_the_real_pandas(tmp_path):
    # a module that needs more of pandas than the stand-in has (as a future cp_model might) runs again with the
    # real pandas; one that needs only Index and Series runs against the stand-in, which then leaves sys.modules
    (tmp_path / "needs_more.py").write_text("import pandas as pd\nFRAME = pd.DataFrame\n")
    (tmp_path / "needs_types.py").write_text("import pandas as pd\nfrom typing import Union\n"
                                             "T = Union[pd.Index, pd.Series]\nPD = pd\n")
    out = _loaded_after(
        "import importlib.util\n"
        "from planner.cli import _LoaderWithoutPandas\n"
        "def load(name):\n"
        f"    spec = importlib.util.spec_from_file_location(name, {str(tmp_path)!r} + '/' + name + '.py')\n"
        "    spec.loader = _LoaderWithoutPandas(spec.loader)\n"
        "    m = importlib.util.module_from_spec(spec)\n"
        "    spec.loader.exec_module(m)\n"
        "    return m\n"
        "t = load('needs_types')\n"
        "print(t.PD.__name__, hasattr(t.PD, 'DataFrame'), 'pandas' in sys.modules)\n"
        "try:\n    t.PD.Series([1])\nexcept RuntimeError as e:\n    print('refused')\n"
        "m = load('needs_more')\n"
        "import pandas\n"
        "print(m.FRAME is pandas.DataFrame)")
    assert out["stdout"].splitlines() == ["pandas False False", "refused", "True"], out["stderr"]
