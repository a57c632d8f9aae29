"""Exceptions the command line turns into one clear line and a non-zero exit."""

from __future__ import annotations


class EolabError(Exception):
    """Base class: a user-facing error whose message names the file or key and the reason."""

    exit_code = 1


class ConfigError(EolabError):
    """A configuration value is missing or wrong."""


class InputError(EolabError):
    """An input file is missing, truncated, corrupt or not what was expected."""


class DiskSpaceError(EolabError):
    """Not enough free disk space to continue safely."""


class RemoteError(EolabError):
    """A remote service (HTTP, S3, STAC) refused or failed a request."""


class LockedError(EolabError):
    """Another live process is writing the same output."""
