"""The test kit's CliRunner: a command's captured stdout holds what the command wrote, not
what another thread printed meanwhile (the in-process function's EMF metrics)."""

from __future__ import annotations

import threading

import click
import pytest
from click import testing

from tooling.testkit.cli_runner import CliRunner

METRICS = '{"_aws": {"CloudWatchMetrics": []}, "PagesFetched": 1}'


@click.command()
def command() -> None:
    """Prints a line, while another thread prints one of its own, then another line."""
    click.echo('{"state": "running"}')
    elsewhere = threading.Thread(target=print, args=(METRICS,))
    elsewhere.start()
    elsewhere.join()
    click.echo("done", err=True)
    print('{"state": "published"}')


def test_click_s_runner_takes_every_thread_s_print_as_the_command_s() -> None:
    # Why the test kit has a runner of its own: this is the "Extra data" of a JSON output.
    result = testing.CliRunner().invoke(command)
    assert METRICS in result.stdout


def test_the_captured_stdout_holds_the_command_s_writes_only(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = CliRunner().invoke(command)
    assert result.exit_code == 0, result.output
    assert result.stdout == '{"state": "running"}\n{"state": "published"}\n'
    assert result.stderr == "done\n"
    assert result.output == '{"state": "running"}\ndone\n{"state": "published"}\n'
    assert capsys.readouterr().out == METRICS + "\n"  # where it would have gone
