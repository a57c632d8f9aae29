"""The ``eolab`` command line.

Subcommands are registered by dotted path in ``COMMANDS`` and imported only when used, so
``eolab --help`` stays fast and one stage's heavy imports never slow another's.
"""

from __future__ import annotations

import importlib
import sys

import click

from eolab import __version__
from eolab.core.errors import EolabError

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


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="eolab")
def cli() -> None:
    """eolab: Earth-observation downloads to ML-ready data; which storage feeds training fastest."""


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI; an EolabError becomes one line on stderr and a non-zero exit."""
    try:
        cli.main(args=argv, prog_name="eolab", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("eolab: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except EolabError as exc:
        click.echo(f"eolab: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("eolab: interrupted", err=True)
        sys.exit(130)
