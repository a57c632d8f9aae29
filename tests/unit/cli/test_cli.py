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


def test_background_tasks_failing_from_the_same_error_stay_quiet(tmp_path):
    """A write task still pending in an event loop (zarr's) fails too; asyncio would log it with
    a traceback at exit ("Future exception was never retrieved")."""
    code = (
        "import asyncio, errno\n"
        "from eolab.cli import main, cli\n"
        "@cli.command('boom')\n"
        "def boom():\n"
        "    loop = asyncio.new_event_loop()\n"
        "    fut = loop.create_future()\n"
        "    fut.set_exception(FileExistsError(17, 'File exists'))\n"
        f"    raise OSError(errno.ENOSPC, 'No space left on device', '{tmp_path}/s.zarr')\n"
        "main(['boom'])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0
    assert proc.stderr.count("eolab: error: ") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.mark.parametrize(
    ("sides", "message"),
    [
        (["--x1", "5", "--x2", "1"], "x1=5.0 must be less than x2=1.0"),
        (["--y1", "1", "--y2", "5"], "y2=5.0 must be less than y1=1.0"),
    ],
)
def test_patch_load_region_in_the_wrong_order_is_a_bad_parameter(tmp_path, sides, message):
    # refused before any staging: no input is opened, no server started
    cog = tmp_path / "cog.json"
    cog.write_text("{}")
    args = ["bench", "patch-load", "--cog", str(cog), "--tile", "35VLH", "--year", "2024"]
    result = CliRunner().invoke(cli, [*args, *sides, "--out", str(tmp_path / "o.json")])
    assert result.exit_code == 2
    assert "Invalid value for --x1/--y1/--x2/--y2" in result.output
    assert message in result.output
    assert not (tmp_path / "o.json").exists()
