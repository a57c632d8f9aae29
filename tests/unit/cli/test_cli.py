"""The command line: every registered command imports and documents itself."""

import subprocess
import sys

import pytest
from click.testing import CliRunner

from eolab.cli import COMMANDS, cli
from eolab.cli.bench import BENCHMARKS


def test_help_lists_every_registered_group():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_group_has_help(name):
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_each_benchmark_has_help(name):
    result = CliRunner().invoke(cli, ["bench", name, "--help"])
    assert result.exit_code == 0, result.output


def test_eolab_error_is_one_clear_line(tmp_path):
    missing = tmp_path / "nope.json"
    code = (
        "from eolab.cli import main, cli\n"
        "from eolab.core.errors import InputError\n"
        "import click\n"
        "@cli.command('boom')\n"
        "def boom():\n"
        f"    raise InputError('{missing}: products manifest not found')\n"
        "main(['boom'])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"eolab: error: {missing}: products manifest not found"
    assert "Traceback" not in proc.stderr
