"""Command summaries in `eolab --help` and every group's help are whole, not cut mid-sentence."""

import re

import click
import pytest
from click.testing import CliRunner

from eolab.cli import COMMANDS, cli


def command_lists() -> list[list[str]]:
    """The help of `eolab` and of every group: the argument lists that print a Commands list."""
    ctx = click.Context(cli)
    groups = [[]] + [
        [name] for name in COMMANDS if isinstance(cli.get_command(ctx, name), click.Group)
    ]
    return groups


@pytest.mark.parametrize("args", command_lists(), ids=lambda a: " ".join(["eolab", *a]))
def test_every_summary_in_a_commands_list_is_whole(args):
    result = CliRunner().invoke(cli, [*args, "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    listing = result.output.split("Commands:\n")[1]
    rows = re.findall(r"^  (\S+)\s+(.*)$", listing, re.M)
    assert rows
    for name, summary in rows:
        assert not summary.endswith("..."), f"eolab {' '.join(args)} {name}: {summary!r}"
        assert summary.endswith("."), f"eolab {' '.join(args)} {name}: {summary!r}"
