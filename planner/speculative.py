"""Speculative decoding as a plan decision (`plan`/`frontier` --spec-draft MODEL[,MODEL…] --spec-alpha A).

No draft is always a candidate; each draft is tried with every γ in GAMMAS. A candidate is the whole search
(search.solve.search) with `Request.spec` set, so every row's terms are the spec-adjusted ones perf.estimate
computes (search/table.py: the target verifies γ+1 tokens per sequence per step, MoE experts touched over those
tokens included; γ draft passes on the first stage; E = (1 − α^(γ+1))/(1 − α) tokens per step; the draft's
weights and KV on the first stage's GPUs; its prefill in TTFT). The cheapest feasible candidate by the solver's
own objective wins ($/M output tokens at capacity without a demand, $/h of the fleet with one); a tie keeps the
simpler plan (no draft, then the smaller γ, then the draft listed first).

The draft and the target must share a tokenizer; the planner checks the vocabulary size, which is what it can
see."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

from .errors import InfeasibleError, InputError
from .numbers import is_real, round6
from .perf.estimate import SpecDecode
from .perf.specdec import expected_tokens_per_step
from .specs.model import ModelSpec

GAMMAS = tuple(range(1, 9))  # draft tokens per verification step the plan chooses from
DEFAULT_ALPHA = 0.7  # acceptance rate when --spec-alpha is not given (as `planner estimate`'s default)


@dataclass(frozen=True)
class SpecOptions:
    drafts: tuple[ModelSpec, ...]
    alpha: float
    gammas: tuple[int, ...] = GAMMAS

    def candidates(self) -> list[SpecDecode | None]:
        return [None] + [SpecDecode(d, g, self.alpha) for d in self.drafts for g in self.gammas]


def spec_options(target: ModelSpec, drafts: Sequence[ModelSpec | str] | str | None, alpha: float | None,
                 load: Callable[[Any], ModelSpec]) -> SpecOptions | None:
    """Validated draft models and acceptance rate; None when no draft is given."""
    if drafts is None or drafts == ():
        if alpha is not None:
            raise InputError("--spec-alpha needs --spec-draft (the draft model(s) to consider)")
        return None
    names = [x.strip() for x in drafts.split(",")] if isinstance(drafts, str) else list(drafts)
    names = [n for n in names if not isinstance(n, str) or n]
    if not names:
        raise InputError("--spec-draft is empty")
    a = DEFAULT_ALPHA if alpha is None else alpha
    if isinstance(a, bool) or not is_real(a) or not 0 <= a < 1:
        raise InputError(f"--spec-alpha must be a number in [0, 1), got {alpha!r}")
    models: list[ModelSpec] = []
    for n in names:
        d = n if isinstance(n, ModelSpec) else load(n)
        if d.vocab_size != target.vocab_size:
            raise InputError(f"--spec-draft {d.name}: its vocabulary ({d.vocab_size} tokens) differs from "
                             f"{target.name}'s ({target.vocab_size}); a draft must share the target's tokenizer")
        if all(m.name != d.name for m in models):
            models.append(d)
    return SpecOptions(tuple(models), float(a))


@dataclass(frozen=True)
class Candidate:
    spec: SpecDecode | None
    objective: int | None  # the solver's objective (None: no feasible plan)
    usd_per_million_output_tokens: float | None
    tokens_per_s_per_user: float | None
    why_not: str = ""  # the first blocking constraint when infeasible

    def label(self) -> str:
        return "no draft" if self.spec is None else f"{self.spec.draft.name} gamma={self.spec.draft_length}"

    def to_dict(self) -> dict[str, Any]:
        s = self.spec
        return {"draft": None if s is None else s.draft.name, "gamma": None if s is None else s.draft_length,
                "feasible": self.objective is not None,
                "usd_per_million_output_tokens": None if self.usd_per_million_output_tokens is None
                else round6(self.usd_per_million_output_tokens),
                "tokens_per_s_per_user": None if self.tokens_per_s_per_user is None
                else round6(self.tokens_per_s_per_user),
                **({"infeasible": self.why_not} if self.objective is None else {})}


@dataclass(frozen=True)
class SpecDecision:
    options: SpecOptions
    chosen: SpecDecode | None
    candidates: tuple[Candidate, ...]
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"drafts": [d.name for d in self.options.drafts], "alpha": self.options.alpha,
                "gammas": list(self.options.gammas),
                "chosen": None if self.chosen is None else {"draft": self.chosen.draft.name,
                                                            "gamma": self.chosen.draft_length},
                "reason": self.reason, "candidates": [c.to_dict() for c in self.candidates]}


def speculative_block(spec: SpecDecode | None) -> dict[str, Any] | None:
    """The plan's `speculative` block: what `planner simulate` and `planner export` run ({draft, gamma, alpha})
    and the expected tokens per verification step."""
    if spec is None:
        return None
    return {"draft": spec.draft.name, "gamma": spec.draft_length, "alpha": spec.acceptance,
            "expected_tokens_per_step": round6(float(expected_tokens_per_step(spec.acceptance, spec.draft_length)))}


def choose(req: Any, opts: SpecOptions, run: Callable[[Any], Any], demand: float | None) -> SpecDecision:
    """Search `req` once per candidate (`run(request)` returns a search.solve.SearchResult or raises
    InfeasibleError) and keep the cheapest. Raises the no-draft InfeasibleError (plus a line saying the drafts do
    not help) when no candidate is feasible."""
    cands: list[Candidate] = []
    first_error: InfeasibleError | None = None
    for spec in opts.candidates():
        try:
            best = run(replace(req, spec=spec)).best
        except InfeasibleError as e:
            first_error = first_error or e
            cands.append(Candidate(spec, None, None, None, e.reasons[0] if e.reasons else "infeasible"))
            continue
        cands.append(Candidate(spec, best.objective, best.usd_per_million_output_tokens(demand),
                               best.estimate.tokens_per_s_per_user))
    feasible = [c for c in cands if c.objective is not None]
    if not feasible:
        drafts = ", ".join(d.name for d in opts.drafts)
        raise InfeasibleError(list(first_error.reasons) + [
            f"speculative decoding with {drafts} (alpha {opts.alpha:g}, gamma {GAMMAS[0]}..{GAMMAS[-1]}) does not "
            "make any plan feasible either"])
    best = min(feasible, key=lambda c: c.objective)  # min keeps the first of equals: the candidates' order
    return SpecDecision(opts, best.spec, tuple(cands), _reason(cands, best, demand))


def refused(opts: SpecOptions, reason: str) -> SpecDecision:
    """The decision when no draft can run at all (e.g. --engine runs none): no draft, no candidate searched."""
    return SpecDecision(opts, None, (), reason)


def _reason(cands: list[Candidate], best: Candidate, demand: float | None) -> str:
    basis = "at the planned demand" if demand else "at full capacity"
    plain = cands[0]
    drafted = [c for c in cands[1:] if c.objective is not None]
    if best.spec is not None:
        if plain.objective is None:
            return (f"{best.label()} ({_tokens(best.spec)} tokens per step): ${best.usd_per_million_output_tokens:.3f}"
                    f"/M output tokens {basis}; without a draft no plan is feasible ({plain.why_not})")
        saving = 1.0 - best.usd_per_million_output_tokens / plain.usd_per_million_output_tokens
        return (f"{best.label()} ({_tokens(best.spec)} tokens per step) costs ${best.usd_per_million_output_tokens:.3f}"
                f"/M output tokens {basis}, {saving:.1%} less than ${plain.usd_per_million_output_tokens:.3f} "
                f"without a draft")
    if not drafted:
        return f"no draft: no draft candidate is feasible ({cands[1].why_not})"
    top = min(drafted, key=lambda c: c.objective)
    if top.objective == plain.objective:
        return (f"no draft: the best draft candidate, {top.label()}, costs the same "
                f"(${top.usd_per_million_output_tokens:.3f}/M output tokens {basis}), so the simpler plan is kept")
    return (f"no draft: the best draft candidate, {top.label()}, costs ${top.usd_per_million_output_tokens:.3f}/M "
            f"output tokens {basis} vs ${plain.usd_per_million_output_tokens:.3f} without")


def _tokens(spec: SpecDecode) -> str:
    return f"{float(expected_tokens_per_step(spec.acceptance, spec.draft_length)):.2f}"
