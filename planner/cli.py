"""`planner` command line: parse flags, call the public API, format. No logic lives only here."""
from __future__ import annotations

import contextlib
import json
import sys
import traceback
from typing import Any, Callable

import click

from .errors import InfeasibleError, InputError, PlannerError, did_you_mean  # noqa: F401
from .plan_request import MAX_DEGREE, MAX_GPUS
from .files import check_output_path
from .text import one_line

DEBUG = {"on": False}
# Bounds on counts typed as flags: far beyond any real deployment, well inside the integer ranges the search uses.
MAX_BATCH = 10_000_000  # --batch
MAX_USD_PER_GPU_HOUR = 100_000.0  # --price


class _IntRange(click.IntRange):
    name = "integer"  # "'x' is not a valid integer", not "... integer range"


class _FloatRange(click.FloatRange):
    name = "float"


class _IntList(click.ParamType):
    """A comma-separated list of positive integers (--tp 2,4), as a tuple."""

    name = "integer list"

    def convert(self, value: Any, param: Any, ctx: Any) -> tuple[int, ...]:
        if isinstance(value, tuple):
            return value
        try:
            out = tuple(int(x) for x in str(value).split(",") if x.strip())
        except ValueError:
            self.fail(f"expects comma-separated integers, got {value!r}", param, ctx)
        if not out or any(not 1 <= x <= MAX_DEGREE for x in out):
            self.fail(f"expects comma-separated integers from 1 to {MAX_DEGREE}, got {value!r}", param, ctx)
        return out


def _usage_line(e: click.ClickException) -> str:
    """A click usage error (bad flag value, missing option, unknown command) as one line."""
    msg = one_line(" ".join(line.strip() for line in e.format_message().splitlines() if line.strip()))
    ctx = getattr(e, "ctx", None)
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    return f"error: {msg}{hint}"


class _Group(click.Group):
    """Turns every error into one line on stderr and an exit code (2 input, 1 infeasible); --debug re-raises."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        # top-level flags (`planner --bogus`) are parsed here, outside invoke()
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as e:
            click.echo(_usage_line(e), err=True)
            raise click.exceptions.Exit(e.exit_code) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except InfeasibleError as e:
            if DEBUG["on"]:
                traceback.print_exc()
            for reason in e.reasons:
                click.echo(f"infeasible: {one_line(reason)}", err=True)
            ctx.exit(e.exit_code)
        except PlannerError as e:
            if DEBUG["on"]:
                traceback.print_exc()
            click.echo(f"error: {one_line(str(e))}", err=True)
            ctx.exit(e.exit_code)
        except (click.exceptions.Exit, click.exceptions.Abort, click.exceptions.NoArgsIsHelpError):
            raise
        except click.ClickException as e:  # a subcommand's bad flag: one line, like every other input error
            click.echo(_usage_line(e), err=True)
            ctx.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except Exception as e:  # a bug: still one line unless --debug
            if DEBUG["on"]:
                traceback.print_exc()
            click.echo(f"internal error: {type(e).__name__}: {one_line(str(e))} (rerun with --debug for the traceback)", err=True)
            ctx.exit(3)


class _CpModelWithoutPandas:
    """Imports OR-Tools' cp_model without pandas (issue #16: pandas is ~0.15 s of a plan that builds a CP-SAT model,
    about as long as the import of cp_model itself and often longer than the solve).

    cp_model imports pandas only for its `*_series` helpers and their type annotations (`pd.Index`, `pd.Series`,
    evaluated when the module runs); the planner builds and reads models variable by variable and never calls
    those. Installed on `sys.meta_path` by the `planner` command only (a library user's process may use pandas with
    cp_model), this finder wraps cp_model's own loader, once: the module runs against a stand-in `pandas` holding
    just those two names, removed from `sys.modules` right after (a later `import pandas` gets the real one).
    Guarded against OR-Tools changing: if running the module needs anything else from pandas, it runs again with
    the real pandas; if pandas is already loaded, nothing changes; a `*_series` call fails loudly (the stand-in
    classes cannot be instantiated). Nothing is imported before something imports cp_model, so a command that never
    solves still loads no OR-Tools (tests/test_imports.py)."""

    NAME = "ortools.sat.python.cp_model"

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != self.NAME:
            return None
        import importlib.util

        sys.meta_path.remove(self)  # once: the real spec comes from the finders after this one
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or "pandas" in sys.modules:
            return spec
        spec.loader = _LoaderWithoutPandas(spec.loader)
        return spec

    @classmethod
    def install(cls) -> None:
        if cls.NAME not in sys.modules and not any(isinstance(f, cls) for f in sys.meta_path):
            sys.meta_path.insert(0, cls())


class _NotPandas:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the planner command imported OR-Tools' cp_model without pandas: its pandas helpers are "
                           "unavailable")


class _LoaderWithoutPandas:
    """cp_model's loader, running the module against a stand-in pandas (`_CpModelWithoutPandas`)."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename, ...: the real loader's
        return getattr(self.loader, name)

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        import types

        stand_in = types.ModuleType("pandas")
        stand_in.Index = type("Index", (_NotPandas,), {})  # type: ignore[attr-defined]
        stand_in.Series = type("Series", (_NotPandas,), {})  # type: ignore[attr-defined]
        sys.modules["pandas"] = stand_in
        try:
            self.loader.exec_module(module)
        except Exception:  # this OR-Tools needs more of pandas when its module runs: run it with the real one
            if sys.modules.get("pandas") is stand_in:
                del sys.modules["pandas"]
            self.loader.exec_module(module)
        finally:
            if sys.modules.get("pandas") is stand_in:
                del sys.modules["pandas"]


def _set_debug(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    DEBUG["on"] = bool(value)
    return value


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, expose_value=False, is_eager=True, callback=_set_debug,
              help="Show tracebacks instead of one-line errors.")
@click.version_option(package_name="inference-planner")
def main() -> None:
    """Plan LLM inference deployments at the lowest cost per token."""
    _CpModelWithoutPandas.install()


@contextlib.contextmanager
def _naming(path: str):
    """Input errors found past parsing (an unknown GPU in a plan or fleet file, a bad TP) name the file too."""
    try:
        yield
    except InputError as e:
        if str(path) in str(e):
            raise
        raise InputError(f"{path}: {e}") from None


def emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=False))


def common_model_options(f: Callable) -> Callable:
    f = click.option("--catalog", "catalog_file", type=click.Path(dir_okay=False), default=None,
                     help="A catalog TOML that adds GPUs or overrides prices / perf parameters.")(f)
    f = click.option("--price-tier", type=click.Choice(["market", "list", "reserved", "spot"]), default=None,
                     help="Which price tier of the catalog to use (default: the catalog's, 'market').")(f)
    return f


def engine_option(f: Callable) -> Callable:
    return click.option("--engine", default=None,
                        help="Serving engine whose perf profile to use: vllm (default), sglang or trtllm.")(f)


@main.command()
@click.option("--model", required=True, help="Preset id (e.g. llama-3.1-70b), a config.json, or a model folder.")
@click.option("--gpu", required=True, help="Accelerator id or common spelling (h100, H100-SXM-80GB, ...).")
@click.option("--tp", type=_IntRange(1, MAX_DEGREE), default=1, show_default=True)
@click.option("--pp", type=_IntRange(1, MAX_DEGREE), default=1, show_default=True)
@click.option("--ep", type=_IntRange(1, MAX_DEGREE), default=1, show_default=True,
              help="Expert-parallel ranks per stage (divides TP x DP).")
@click.option("--dp", type=_IntRange(1, MAX_DEGREE), default=1, show_default=True,
              help="Attention data-parallel groups per stage, each TP-way with its own sequences and KV.")
@click.option("--redundant-experts", type=_IntRange(0, MAX_DEGREE), default=0, show_default=True,
              help="Extra expert copies spread over the EP ranks (EPLB) to even out their load.")
@click.option("--batch", type=_IntRange(1, MAX_BATCH), required=True, help="Concurrent sequences per replica.")
@click.option("--isl", type=int, required=True, help="Mean input (prompt) tokens.")
@click.option("--osl", type=int, required=True, help="Mean output tokens.")
@click.option("--weights", default=None,
              help="bf16|fp16|fp8|int8|int4|fp4|mxfp4 (default: the checkpoint's own quantization, else bf16)")
@click.option("--kv", default="bf16", show_default=True, help="bf16|fp16|fp8|int8")
@click.option("--layers-per-stage", default=None, help="Comma-separated layers per pipeline stage (default: balanced).")
@click.option("--price", "price", type=_FloatRange(0, MAX_USD_PER_GPU_HOUR, min_open=True), default=None,
              help="Override $/GPU-hour.")
@click.option("--spec-draft", default=None, help="Draft model for speculative decoding (preset or config.json).")
@click.option("--spec-gamma", type=int, default=4, show_default=True, help="Draft tokens per step.")
@click.option("--spec-alpha", type=float, default=0.7, show_default=True, help="Per-token acceptance rate.")
@click.option("--two-batch-overlap", type=click.Choice(["on", "off"]), default=None,
              help="Time MoE layers with EP > 1 as two overlapped micro-batches (default: off, or the catalog's).")
@click.option("--role", type=click.Choice(["prefill", "decode"]), default=None,
              help="Also evaluate the configuration as one replica of a disaggregated plan's prefill pool (--batch = "
                   "pp x dp prompts in flight) or decode pool: prompts/s or requests/s, latency, $/M tokens, KV "
                   "transfer. Estimate each pool to evaluate a pair.")
@common_model_options
@engine_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def estimate(model: str, gpu: str, tp: int, pp: int, ep: int, dp: int, redundant_experts: int, batch: int, isl: int,
             osl: int, weights: str | None, kv: str, layers_per_stage: str | None, price: float | None,
             spec_draft: str | None, spec_gamma: int, spec_alpha: float, two_batch_overlap: str | None,
             role: str | None, catalog_file: str | None, price_tier: str | None, engine: str | None,
             as_json: bool) -> None:
    """Metrics of one fixed configuration."""
    from . import api

    layers = None
    if layers_per_stage:
        try:
            layers = tuple(int(x) for x in layers_per_stage.split(","))
        except ValueError:
            raise InputError(f"--layers-per-stage must be comma-separated integers, got {layers_per_stage!r}") from None
    from .perf.estimate import SpecDecode
    from .specs.layout import ReplicaLayout
    from .specs.workload import Workload

    layout = ReplicaLayout(tp=tp, pp=pp, ep=ep, dp=dp, batch=batch, weights=weights, kv=kv,
                           layers_per_stage=layers or ())
    result = api.estimate(model, gpu, layout, Workload(isl=isl, osl=osl),
                          spec=None if spec_draft is None else SpecDecode(spec_draft, spec_gamma, spec_alpha),
                          price=price, redundant_experts=redundant_experts, catalog=catalog_file,
                          price_tier=price_tier, engine=engine, two_batch_overlap=two_batch_overlap)
    d = result.to_dict()
    if role is not None:  # one replica of a disaggregated pool (planner/disagg.py pool_metrics)
        d["pool"] = api.pool_estimate(result, role, model=model, catalog=catalog_file, engine=engine)
    if as_json:
        emit_json(d)
    else:
        from .report import estimate_text
        click.echo(estimate_text(d))
        if role is not None:
            p = d["pool"]
            click.echo(f"  as a {role} replica " + (
                f"{p['requests_per_s']:.3g} prompts/s, prefill {p['latency_s'] * 1000:.0f} ms, "
                f"${p['usd_per_million_input_tokens']:.3f}/M input tokens" if role == "prefill" else
                f"{p['requests_per_s']:.3g} requests/s, decode cycle {p['tpot_s'] * 1000:.1f} ms, "
                f"${p['usd_per_million_output_tokens']:.3f}/M output tokens")
                + f"; KV transfer {p['kv_transfer_s'] * 1000:.1f} ms per prompt")
    if not result.fits:
        for m in result.messages:
            click.echo(m, err=True)
    from .export.support import ENGINES_SERVING, check as support_check

    if engine in ENGINES_SERVING:  # the named engine cannot run it (catalog/engines/support.toml): warn, not fail
        for why in support_check(d, engine):
            click.echo(f"warning: {why}", err=True)


def plan_options(f: Callable) -> Callable:
    opts = [
        click.option("--model", default=None, help="Preset id, config.json, or model folder."),
        click.option("--gpus", default=None, help="Comma-separated GPU ids to consider (default: whole catalog)."),
        click.option("--isl", type=int, default=None, help="Mean input tokens."),
        click.option("--osl", type=int, default=None, help="Mean output tokens."),
        click.option("--ttft-ms", type=float, default=None, help="Time-to-first-token limit."),
        click.option("--tpot-ms", type=float, default=None, help="Time-per-output-token limit."),
        click.option("--min-tokens-per-s-user", type=float, default=None,
                     help="Per-user decode speed (default 33.33 = a fast reader)."),
        click.option("--rate-rps", type=float, default=None, help="Demand in requests/s."),
        click.option("--output-tokens-per-s", type=float, default=None, help="Demand in output tokens/s."),
        click.option("--weights", default=None, help="Weight precisions to consider (default: the checkpoint's own "
                     "quantization if its config.json has one, else bf16,fp8,int8)."),
        click.option("--kv", default=None, help="KV-cache precisions to consider (default bf16,fp8)."),
        click.option("--max-gpus", type=_IntRange(1, MAX_GPUS), default=None, help="Most GPUs in total."),
        click.option("--max-gpus-per-type", multiple=True, help="TYPE=N, repeatable."),
        click.option("--time-limit-s", type=_FloatRange(0, min_open=True), default=None,
                     help="Solver time limit (default 30)."),
        click.option("--max-model-len", type=int, default=None,
                     help="Longest prompt + output the engine must accept (default: the model's context); one "
                          "sequence of it must fit in memory."),
        click.option("--spec-draft", default=None,
                     help="Draft model(s) for speculative decoding, comma-separated (presets or config.json): the "
                          "plan chooses whether to use one and its draft length (1-8)."),
        click.option("--spec-alpha", type=float, default=None,
                     help="Per-token acceptance rate of the draft(s), in [0, 1) (default 0.7)."),
        click.option("--disagg", type=click.Choice(["auto", "on", "off"]), default=None,
                     help="Prefill/decode disaggregation: auto (default) chooses separate prefill and decode pools "
                          "when cheaper than colocated replicas; on always, off never."),
        click.option("--pool-space", type=click.Choice(["grid", "exact"]), default=None,
                     help="The disaggregated plan's prefill/decode pools: exact (default; every PP and TP the pins "
                          "leave open, proven optimal over them) or grid (the PP list of planner/search/space.py, TP "
                          "powers of two)."),
        click.option("--two-batch-overlap", type=click.Choice(["auto", "on", "off"]), default=None,
                     help="Two-batch overlap of MoE layers with expert parallelism (each step as two micro-batches, "
                          "one's all-to-all hidden behind the other's compute): auto (default) plans SGLang MoE "
                          "requests with and without it and keeps the cheaper (SGLang's export turns it on); on "
                          "always, off never."),
        click.option("--tp", type=_IntList(), default=None, help="Pin TP to these degrees (comma list; default: "
                     "every divisor of the heads within the scale-up domain)."),
        click.option("--pp", type=_IntList(), default=None, help="Pin PP (comma list; default: 1 to the layers)."),
        click.option("--ep", type=_IntList(), default=None, help="Pin EP (comma list; MoE models)."),
        click.option("--batch", type=_IntList(), default=None, help="Pin the replica batch (comma list; default: "
                     "any batch memory allows)."),
    ]
    for o in reversed(opts):
        f = o(f)
    return engine_option(common_model_options(f))


def _options(flags: dict[str, Any]) -> dict[str, Any]:
    """The plan flags as the API's request options (the catalog flag is the request key `catalog`)."""
    out = dict(flags)
    out["catalog"] = out.pop("catalog_file", None)
    return out


@main.command()
@click.argument("request_file", required=False, type=click.Path(dir_okay=False))
@plan_options
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option("--timings", is_flag=True, help="Include solver wall times in the JSON (makes output non-repeatable).")
@click.option("--report", "report_path", default=None, type=click.Path(dir_okay=False),
              help="Also write a self-contained HTML report (plan, memory/latency breakdown, frontier plot).")
@click.option("--ttft-p99-ms", type=_FloatRange(0, min_open=True), default=None,
              help="p99 TTFT target: the plan is simulated at the demand and given replicas until it holds.")
@click.option("--tpot-p99-ms", type=_FloatRange(0, min_open=True), default=None,
              help="p99 TPOT target, confirmed by simulation like --ttft-p99-ms.")
@click.option("--slo-percentile", type=float, default=None,
              help="Percentile the --ttft-ms/--tpot-ms targets hold at (default 99; 50 = medians). With a demand the "
                   "plan is confirmed by simulating it at the demand.")
@click.option("--seed", type=int, default=None, help="Seed of the confirming simulation (default 0, as simulate's).")
@click.option("--chat", is_flag=True, default=None,
              help="Chat requests: the plan says so and `planner export` serves the instruct/chat checkpoint.")
def plan(request_file: str | None, as_json: bool, timings: bool, report_path: str | None, **flags: Any) -> None:
    """Cheapest deployment meeting the SLOs (flags, or a TOML REQUEST_FILE whose keys are flag names)."""
    from . import api

    options = _options(flags)
    if report_path is not None:
        check_output_path(report_path, "--report")
    result = api.plan(request_file, timings=timings or not as_json, **options)
    d = result.to_dict()
    if as_json:  # printed before the report is written: a report that cannot be written loses nothing
        emit_json(d)
    else:
        from .report import plan_text
        click.echo(plan_text(d))
    if report_path is not None:
        api.report(d, report_path, progress=_progress_printer(), request=request_file, **options)


def _progress_printer():
    """A progress line on stderr when attached to a terminal; silent otherwise."""
    if not sys.stderr.isatty():
        return None

    def show(k: int, n: int, what: Any) -> None:
        click.echo(f"\r  [{k + 1}/{n}] {what}        ", err=True, nl=(k + 1 == n))

    return show


@main.command()
@click.argument("request_file", required=False, type=click.Path(dir_okay=False))
@plan_options
@click.option("--speeds", default=None, help="Comma-separated tok/s/user targets to sweep.")
@click.option("--plot", "plot_path", default=None, type=click.Path(dir_okay=False),
              help="Write a plot (.png or .svg; needs matplotlib: pip install 'inference-planner[plot]').")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def frontier(request_file: str | None, speeds: str | None, plot_path: str | None, as_json: bool,
             **flags: Any) -> None:
    """Pareto frontier of $ per million tokens against per-user tokens/s."""
    from . import api

    args = _options(flags)
    from .plan_request import FRONTIER_IGNORES
    ignored = [f"--{k.replace('_', '-')}" for k in FRONTIER_IGNORES if args.get(k) is not None]
    if ignored:  # shared plan flags a frontier has no use for: say so rather than drop them silently
        click.echo(f"note: frontier ignores {', '.join(ignored)} (it sweeps the per-user speed itself; its "
                   "points are colocated plans)", err=True)
    if speeds:
        try:
            args["speeds"] = tuple(float(s) for s in speeds.split(","))
        except ValueError:
            raise InputError(f"--speeds must be comma-separated numbers, got {speeds!r}") from None
    d = api.frontier(request_file, progress=_progress_printer(), **args)
    if plot_path is not None:
        check_output_path(plot_path, "--plot")
        from .report import plot_frontier
        plot_frontier(d, plot_path)
    if as_json:
        emit_json(d)
    else:
        click.echo(f"frontier  {d['model']}  ISL {d['workload']['isl']} OSL {d['workload']['osl']}")
        for p in d["points"]:
            click.echo(f"  {p['tokens_per_s_per_user']:7.1f} tok/s/user  ${p['usd_per_million_output_tokens']:9.3f}/M out"
                       f"  TTFT {p['ttft_s'] * 1000:6.0f} ms  {p['gpu']} TP{p['tp']} PP{p['pp']} EP{p['ep']} "
                       f"batch {p['batch']} {p['weights']}/{p['kv']}  {p['engine']}"
                       + (f"  draft {p['speculative']['draft']} gamma {p['speculative']['gamma']}"
                          if p.get("speculative") else ""))
        if not d["points"]:
            raise InfeasibleError(["no speed target in the sweep is reachable; see `planner plan` for the reason"])


@main.command()
@click.argument("plan_file", metavar="PLAN.json", type=click.Path(dir_okay=False))
@click.option("--rate-rps", type=float, default=None,
              help="Mean arrival rate over the fleet (default: the plan's workload.rate_rps).")
@click.option("--duration-s", type=float, default=None, help="Simulate the arrivals of this many seconds ...")
@click.option("--requests", "num_requests", type=int, default=None, help="... or this many requests (default 2000).")
@click.option("--trace", type=click.Path(dir_okay=False), default=None,
              help="Replay a CSV/JSONL trace of arrival_s, input_tokens, output_tokens instead of drawing arrivals.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (results are deterministic).")
@click.option("--lengths", type=click.Choice(["fixed", "uniform", "exponential"]), default="fixed",
              show_default=True, help="Distribution of input/output tokens around the plan's isl/osl.")
@click.option("--burstiness", type=float, default=1.0, show_default=True,
              help="Gamma shape of inter-arrival times: 1 is Poisson, < 1 burstier.")
@click.option("--batching", type=click.Choice(["continuous", "static"]), default="continuous", show_default=True)
@click.option("--balancer", type=click.Choice(["least-loaded", "round-robin"]), default="least-loaded",
              show_default=True)
@click.option("--replicas", type=int, default=None, help="Override the plan's replica count.")
@click.option("--warmup-requests", type=int, default=0, show_default=True,
              help="Leave the first N arrivals out of the latency percentiles and SLO attainment (steady state).")
@click.option("--ttft-ms", type=float, default=None, help="TTFT target (default: the plan's slo.ttft_s).")
@click.option("--tpot-ms", type=float, default=None, help="TPOT target (default: the plan's slo.tpot_s).")
@click.option("--catalog", "catalog_file", type=click.Path(dir_okay=False), default=None,
              help="A catalog TOML that adds GPUs or overrides perf parameters.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def simulate(plan_file: str, rate_rps: float | None, duration_s: float | None, num_requests: int | None,
             trace: str | None, seed: int, lengths: str, burstiness: float, batching: str, balancer: str,
             replicas: int | None, warmup_requests: int, ttft_ms: float | None, tpot_ms: float | None,
             catalog_file: str | None, as_json: bool) -> None:
    """Simulate PLAN.json (from `planner plan --json` or `planner estimate --json`) under stochastic load."""
    from . import api

    from .sim import SimulationSettings

    settings = SimulationSettings(rate_rps=rate_rps, duration_s=duration_s, requests=num_requests, trace=trace,
                                  seed=seed, lengths=lengths, burstiness=burstiness, batching=batching,
                                  balancer=balancer, replicas=replicas, warmup_requests=warmup_requests,
                                  ttft_slo_s=None if ttft_ms is None else ttft_ms / 1000.0,
                                  tpot_slo_s=None if tpot_ms is None else tpot_ms / 1000.0)
    result = api.simulate(plan_file, settings, catalog=catalog_file)
    if as_json:
        emit_json(result)
    else:
        from .sim.report import simulation_text
        if result.get("mode") == "disaggregated":
            from .sim.disagg import simulation_text
        click.echo(simulation_text(result))


@main.command()
@click.argument("plan_file", type=click.Path(dir_okay=False))
@click.option("--engine", default=None, type=click.Choice(["vllm", "sglang", "trtllm", "k8s"]),
              help="Serving engine (or k8s: a Kubernetes manifest, one pod group per replica); default: the engine "
                   "the plan names (serving_engine), else its perf_profile's, else vllm.")
@click.option("--k8s-engine", type=click.Choice(["vllm", "sglang"]), default="vllm", show_default=True,
              help="With --engine k8s: the engine the pods run.")
@click.option("--model", default=None,
              help="The plan's model (preset, config.json or folder) if it is not a preset; used to re-estimate a "
                   "layout the engine changes.")
@click.option("--model-path", default=None, help="Weights to serve (default: the preset's Hugging Face repo).")
@click.option("--chat", is_flag=True, default=None,
              help="Serve the preset's instruct/chat checkpoint (default: when the plan says chat).")
@click.option("--gpu-product", default=None,
              help="With --engine k8s: the node label value that pins pods to the GPU (default: the catalog's, e.g. "
                   "nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3).")
@click.option("--hf-token-secret", default=None,
              help="With --engine k8s: the Secret whose key 'token' becomes HF_TOKEN (default hf-token; optional).")
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
              help="Write the launch script (or manifest) and config files into this folder.")
@common_model_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON (argv, env, files, notes, layout, re-estimate).")
def export(plan_file: str, engine: str, k8s_engine: str, model: str | None, model_path: str | None,
           chat: bool | None, gpu_product: str | None, hf_token_secret: str | None, out_dir: str | None, catalog_file: str | None, price_tier: str | None, as_json: bool) -> None:
    """Launch command or config for the plan in PLAN_FILE (`planner plan --json` output)."""
    from pathlib import Path

    from . import api
    from .export import load_plan

    with _naming(plan_file):
        plan = load_plan(plan_file)
        ex = api.export(plan, engine, model=model, model_path=model_path, catalog=catalog_file,
                        price_tier=price_tier, k8s_engine=k8s_engine, gpu_product=gpu_product,
                        hf_token_secret=hf_token_secret, chat=chat)
    if out_dir is not None:
        from .files import write_text

        if not out_dir.strip():
            raise InputError("--out: the path is empty")
        out = Path(out_dir)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(f"--out {out_dir}: cannot create the folder ({e.strerror or e})") from None
        write_text(out / ("manifest.yaml" if engine == "k8s" else "launch.sh"), ex.script(), "--out")
        for name, text in ex.files.items():
            if engine != "k8s":
                write_text(out / name, text, "--out")
    if as_json:
        emit_json(ex.to_dict())
    else:
        click.echo(ex.script(), nl=False)


@main.command()
@click.argument("request_file", type=click.Path(dir_okay=False))
@click.option("--catalog", "catalog_file", type=click.Path(dir_okay=False), default=None,
              help="A catalog TOML that adds GPUs or overrides prices / perf parameters.")
@click.option("--time-limit-s", type=float, default=None,
              help="Solver budget per fleet, in CP-SAT deterministic seconds (default 5).")
@click.option("--no-compare", is_flag=True, help="Skip the single-type and aggregated-only comparison fleets.")
@click.option("--json", "as_json", is_flag=True, help="Print the fleet as JSON.")
@click.option("--timings", is_flag=True, help="Include solver wall times in the JSON (makes output non-repeatable).")
@click.option("--engine", default=None,
              help="Only pools this serving engine runs (vllm, sglang or trtllm), under its perf profile "
                   "(default: the request's engine key, else any engine and vLLM's profile).")
@click.option("--pool-space", type=click.Choice(["grid", "exact"]), default=None,
              help="The pools' PP and TP: grid (default: the request's lists, else the PP grid and TP powers of "
                   "two) or exact (the request's lists, else every depth and degree; slower).")
def fleet(request_file: str, catalog_file: str | None, time_limit_s: float | None, no_compare: bool, as_json: bool,
          timings: bool, engine: str | None, pool_space: str | None) -> None:
    """Cheapest fleet for request classes over an hourly demand profile (TOML REQUEST_FILE: [[class]] tables,
    [available], [prices.TYPE], budget): pools per GPU type, reserved and on-demand replicas per hour."""
    from . import api

    with _naming(request_file):
        result = api.fleet(request_file, catalog=catalog_file, time_limit_s=time_limit_s,
                           compare=False if no_compare else None, timings=timings or not as_json, engine=engine,
                           pool_space=pool_space)
    d = result.to_dict()
    if as_json:
        emit_json(d)
    else:
        from .fleet import fleet_text
        click.echo(fleet_text(d))


@main.command()
@click.option("--measure", is_flag=True, help="Measure this machine's GPU with PyTorch (extra [measure]), then fit.")
@click.option("--record", "record_file", default=None, type=click.Path(dir_okay=False),
              help="Fit a recorded run instead of measuring (JSON in the format --measure writes).")
@click.option("--gpu", required=True, help="Catalog id of the GPU measured (its profile is what gets written).")
@click.option("--model", default="llama-3.1-8b", show_default=True,
              help="Model whose layer dimensions the synthetic layer stack uses.")
@click.option("--out", "out_file", default="measured-catalog.toml", show_default=True,
              type=click.Path(dir_okay=False), help="The catalog TOML to write (pass it back with --catalog).")
@click.option("--catalog", "catalog_file", type=click.Path(dir_okay=False), default=None,
              help="A catalog TOML that adds GPUs or overrides perf parameters.")
def calibrate(measure: bool, record_file: str | None, gpu: str, model: str, out_file: str,
              catalog_file: str | None) -> None:
    """Fit the perf model's kernel terms to your own GPU: --measure times HBM bandwidth, GEMMs, decode attention
    and a synthetic layer stack (decode and prefill, CUDA graphs) in about two minutes; --record fits a saved run.
    Writes a catalog with a [profile."<gpu>"] table and prints the fit error."""
    from pathlib import Path

    from .catalog import load_catalog
    from .perf.measure import run

    if measure == (record_file is not None):
        raise InputError("give exactly one of --measure or --record FILE")
    run(gpu, Path(out_file), load_catalog(catalog_file), model_name=model,
        record_path=None if measure else Path(record_file), echo=click.echo)


@main.command()
@click.argument("request_file", required=False, type=click.Path(dir_okay=False))
@click.option("--model", default=None, help="Preset id, config.json, or model folder.")
@click.option("--tokens", default=None, help="Training tokens, e.g. 13e12 or 13T.")
@click.option("--seq-len", default=None, help="Sequence length in tokens (default: the model's context, at most 8192).")
@click.option("--global-batch-tokens", default=None, help="Tokens per optimizer step (default ~4M, whole sequences).")
@click.option("--gpus", default=None, help="Comma-separated GPU types to consider (default: whole catalog).")
@click.option("--num-gpus", default=None, help="Use exactly this many GPUs.")
@click.option("--max-gpus", default=None, help="Use at most this many GPUs.")
@click.option("--deadline-days", type=float, default=None, help="Finish within this many days (cheapest layout).")
@click.option("--budget-usd", type=float, default=None,
              help="Spend at most this much (fastest layout, unless a deadline is also given).")
@click.option("--price", type=float, default=None, help="Override $/GPU-hour.")
@click.option("--goodput", type=float, default=None,
              help="Share of wall-clock time that trains (default 0.90, Llama 3 paper).")
@click.option("--flops-efficiency", type=float, default=None,
              help="Fraction of bf16 peak the kernels reach (default: fitted per accelerator family).")
@click.option("--time-limit-s", type=float, default=None, help="Solver time limit (default 30).")
@common_model_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--timings", is_flag=True, help="Include solver wall time in the JSON (makes output non-repeatable).")
def train(request_file: str | None, as_json: bool, timings: bool, catalog_file: str | None,
          **flags: Any) -> None:
    """Cheapest training layout meeting a deadline (or at a GPU count), or fastest within a budget: GPU type and
    count, TP/PP/DP/EP/CP, ZeRO stage, recomputation, micro-batch (flags, or a TOML REQUEST_FILE of flag names)."""
    from . import api
    from .train.result import train_text

    result = api.train(request=request_file, timings=timings or not as_json, catalog=catalog_file, **flags)
    d = result.to_dict()
    if as_json:
        emit_json(d)
    else:
        click.echo(train_text(d))
