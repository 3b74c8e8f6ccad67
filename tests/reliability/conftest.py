"""Shared fixtures for the reliability tests."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from planner.cli import main

from .cases import VALID_PLAN_ARGV


@pytest.fixture(scope="session")
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="session")
def valid_plan_json(runner) -> bytes:
    res = runner.invoke(main, VALID_PLAN_ARGV)
    assert res.exit_code == 0, res.stderr
    return res.stdout.encode("utf-8")
