"""planner/errors.py: exit codes per error kind, one reason per blocking constraint, and the did-you-mean hint."""
from __future__ import annotations

from planner.errors import InfeasibleError, InputError, PlannerError, SolverLimitError, did_you_mean


def test_exit_codes_bad_input_2_no_plan_1():
    assert (PlannerError.exit_code, InputError.exit_code) == (2, 2)
    assert (InfeasibleError.exit_code, SolverLimitError.exit_code) == (1, 1)
    assert all(issubclass(e, PlannerError) for e in (InputError, InfeasibleError, SolverLimitError))


def test_infeasible_keeps_each_reason_and_joins_them_for_str():
    reasons = ["TPOT: best 41 ms > 30 ms", "memory: needs 2 GPUs"]
    e = InfeasibleError(iter(reasons))  # any iterable, kept as a list
    assert e.reasons == reasons and str(e) == "TPOT: best 41 ms > 30 ms; memory: needs 2 GPUs"


def test_did_you_mean_names_close_choices_in_order_of_closeness():
    choices = ["h100-sxm", "h100-pcie", "h200", "a100-80gb"]
    # up to three names within difflib's 0.5 similarity ratio, closest first ('h200' shares 'h', '0', '0' of 12)
    assert did_you_mean("h100-sxn", choices) == " (did you mean 'h100-sxm' or 'h100-pcie' or 'h200'?)"
    assert did_you_mean("a100-80", choices).startswith(" (did you mean 'a100-80gb' or")
    assert did_you_mean("H200", choices).startswith(" (did you mean 'h200'")  # compared lower-cased
    assert did_you_mean("tpu-v5e", choices) == ""  # nothing within the 0.5 similarity cutoff
