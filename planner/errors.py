"""Errors the planner raises at its edges. The CLI turns each into one line on stderr and an exit code."""
from __future__ import annotations

import difflib
from typing import Iterable


class PlannerError(Exception):
    """Base class. `exit_code` is what the CLI exits with."""

    exit_code = 2


class InputError(PlannerError):
    """Bad user input: a malformed file, an unknown name, a negative size. Exit code 2."""

    exit_code = 2


class InfeasibleError(PlannerError):
    """The request is well formed but no plan meets it. `reasons` holds one line per blocking constraint."""

    exit_code = 1

    def __init__(self, reasons: list[str]):
        self.reasons = list(reasons)
        super().__init__("; ".join(self.reasons))


class SolverLimitError(PlannerError):
    """The solver's time limit ran out before it found any plan, and none was proven impossible. Exit code 1 (no
    plan), with a message that says to raise --time-limit-s rather than a list of blocking constraints."""

    exit_code = 1


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """A ' (did you mean X?)' suffix for an unknown name, or '' when nothing is close."""
    close = difflib.get_close_matches(name.lower(), list(choices), n=3, cutoff=0.5)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"
