"""The ``eolab`` command line.

Subcommands are registered by dotted path in ``COMMANDS`` and imported only when used, so
``eolab --help`` stays fast and one stage's heavy imports never slow another's.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sqlite3
import sys
import threading
import traceback

import click

from eolab import __version__
from eolab.core.errors import EolabError, from_os_error, from_sqlite_error
from eolab.core.redact import redact_logs, redact_text

DEBUG_ENV = "EOLAB_DEBUG"

# name -> "module:attribute" of a click command or group. One line per stage.
COMMANDS: dict[str, str] = {
    "fixtures": "eolab.cli.fixtures:fixtures",
    "bench": "eolab.cli.bench:bench",
    "intake": "eolab.cli.intake:intake",
    "chips": "eolab.cli.chips:chips",
    "stage": "eolab.cli.stage:stage",
    "download": "eolab.cli.download:download",
    "transfer": "eolab.cli.transfer:transfer",
    "sentinel2": "eolab.cli.sentinel2:sentinel2",
    "zarr": "eolab.cli.zarr:zarr_group",
    "benv2": "eolab.cli.benv2:benv2",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def __init__(self, *args, lazy: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = lazy or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            module_name, attr = self.lazy[name].split(":")
            return getattr(importlib.import_module(module_name), attr)
        return super().get_command(ctx, name)


def _set_debug(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        os.environ[DEBUG_ENV] = "1"  # scripts and subprocesses started from here debug too


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="eolab")
@click.option(
    "--debug",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_set_debug,
    help=f"Print the traceback of an error (also: {DEBUG_ENV}=1).",
)
def cli() -> None:
    """eolab: Earth-observation downloads to ML-ready data; which storage feeds training fastest."""


def debugging() -> bool:
    """Whether errors print their traceback (``--debug`` or ``EOLAB_DEBUG=1``)."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def as_eolab_error(exc: BaseException) -> EolabError | None:
    """The user-facing error for an ordinary fault (a full disk, a read-only folder, …)."""
    if isinstance(exc, EolabError):
        return exc
    if isinstance(exc, OSError) and exc.errno is not None:
        return from_os_error(exc)
    if isinstance(exc, sqlite3.Error):
        return from_sqlite_error(exc)
    return None


def error_line(exc: BaseException) -> str:
    """``eolab: error: <message>``; an unexpected exception gets its type and a hint."""
    known = as_eolab_error(exc)
    if known is not None:
        message = str(known)
    else:
        text = " ".join(str(exc).split()) or "(no message)"
        message = f"{type(exc).__name__}: {text} (unexpected; rerun with --debug for the traceback)"
    return redact_text(f"eolab: error: {message}")


class Terminated(BaseException):
    """SIGTERM (Slurm's scancel, snakemake stopping its jobs, ``kill``) unwinds the stack, so that
    scratch copies are removed and local servers (moto) stopped instead of orphaned. Not an
    Exception (no ``except Exception`` swallows it), not a KeyboardInterrupt (click would make
    it an Abort)."""


def _on_sigterm_in(main_pid: int):
    def handler(signum: int, frame: object) -> None:
        if os.getpid() != main_pid:  # a forked worker: die as it would have without eolab
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        raise Terminated

    return handler


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI; any error becomes one line on stderr and a non-zero exit (the
    traceback too under ``--debug`` / ``EOLAB_DEBUG=1``)."""
    redact_logs()
    previous = None
    if threading.current_thread() is threading.main_thread():  # (tests call main too)
        previous = signal.signal(signal.SIGTERM, _on_sigterm_in(os.getpid()))
    try:
        _run(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(argv: list[str] | None) -> None:
    try:
        cli.main(args=argv, prog_name="eolab", standalone_mode=False)
    except Terminated:
        click.echo("eolab: terminated (SIGTERM); rerun to resume", err=True)
        sys.exit(128 + signal.SIGTERM)
    except click.exceptions.Abort:
        click.echo("eolab: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("eolab: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # the last resort: one line, never a bare traceback
        if debugging():
            traceback.print_exc()
        else:
            # tasks still pending in an event loop (zarr's writes) fail from the same cause and
            # asyncio would log each with its traceback at exit: the line below says it all
            logging.getLogger("asyncio").disabled = True
        click.echo(error_line(exc), err=True)
        known = as_eolab_error(exc)
        sys.exit(known.exit_code if known is not None else 1)
