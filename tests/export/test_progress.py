"""`planner frontier` prints progress on stderr only when stderr is a terminal."""
from __future__ import annotations

import io

from click.testing import CliRunner

from planner import cli
from planner.cli import main


def test_frontier_is_silent_when_not_a_tty():
    res = CliRunner().invoke(main, ["frontier", "--model", "llama-3.1-8b", "--gpus", "h100-sxm", "--isl", "500",
                                    "--osl", "100", "--speeds", "10,30", "--json"])
    assert res.exit_code == 0, res.output
    assert res.stderr == ""


def test_progress_printer_only_on_a_tty(monkeypatch):
    class FakeTTY(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(cli.sys, "stderr", io.StringIO())
    assert cli._progress_printer() is None
    tty = FakeTTY()
    monkeypatch.setattr(cli.sys, "stderr", tty)
    show = cli._progress_printer()
    assert show is not None
    monkeypatch.setattr(cli.click, "echo", lambda msg, err=False, nl=True: tty.write(msg + ("\n" if nl else "")))
    show(0, 2, "10 tok/s")
    show(1, 2, "30 tok/s")
    assert "[1/2] 10 tok/s" in tty.getvalue() and "[2/2] 30 tok/s" in tty.getvalue()
