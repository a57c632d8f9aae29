"""Progress bars: tqdm on a terminal, one whole line per 10 % in logs.

A tqdm bar redraws itself with carriage returns many times a second; written to a file (a
Snakemake job's log, a Slurm output file) that is one endless line. ``bar`` returns a normal tqdm
bar when its stream is a terminal and otherwise a bar that prints a full line when it starts,
every ``step_percent`` and when it ends (a bar without a total: when it starts and ends).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, TextIO

from tqdm import tqdm

LOG_STEP_PERCENT = 10
_LOG_FORMAT = (
    "{desc}: {percentage:3.0f}% {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"
)
_LOG_FORMAT_NO_TOTAL = "{desc}: {n_fmt} [{elapsed}, {rate_fmt}{postfix}]"


class _LineBar(tqdm):
    """A tqdm bar that writes whole lines (no carriage returns) at every step of its progress."""

    def __init__(self, *args: Any, step_percent: int = LOG_STEP_PERCENT, **kwargs: Any) -> None:
        self._step_percent = step_percent
        self._shown: int | None = None  # the last step written
        self._line_n: float | None = None  # the count the last line showed
        super().__init__(*args, **kwargs)

    def _step(self) -> int:
        if not self.total:
            return 0
        return int(100 * self.n / self.total) // self._step_percent

    def _write_line(self) -> None:
        self._line_n = self.n
        self.fp.write(self.__str__() + "\n")
        self.fp.flush()

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        if msg is not None:  # tqdm clearing the line: nothing to clear in a log
            return False
        step = self._step()
        if self._shown is None or step > self._shown:
            self._shown = step
            self._write_line()
        return True

    def clear(self, nolock: bool = False) -> None:
        """Nothing to clear: lines in a log stay (tqdm.write calls this before writing)."""

    def close(self) -> None:
        if not self.disable and self._line_n != self.n:
            self._write_line()  # the final count, unless the last line already showed it
        self.leave = False  # the last line is written: tqdm must not redraw or clear it
        super().close()


def write(message: str, file: TextIO | None = None) -> None:
    """Print a line without breaking the bars on a terminal (tqdm.write)."""
    tqdm.write(message, file=file)


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is an interactive terminal."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def bar(
    iterable: Iterable | None = None,
    *,
    desc: str | None = None,
    total: float | None = None,
    unit: str = "it",
    disable: bool | None = False,
    file: TextIO | None = None,
    **kwargs: Any,
) -> tqdm:
    """A progress bar over ``iterable`` (or updated by hand with ``total``), on stderr by default:
    tqdm on a terminal, else one line per 10 % (see the module's docstring). ``disable=True``
    shows nothing (None, tqdm's "only on a terminal", counts as False: logs get the lines);
    other keywords go to tqdm."""
    stream = file if file is not None else sys.stderr
    if disable or is_terminal(stream):
        return tqdm(iterable, desc=desc, total=total, unit=unit, disable=disable, file=stream,
                    **kwargs)  # fmt: skip
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)
    kwargs.setdefault("bar_format", _LOG_FORMAT if total else _LOG_FORMAT_NO_TOTAL)
    kwargs.update(mininterval=0, miniters=1)  # let display() see every step
    return _LineBar(iterable, desc=desc, total=total, unit=unit, file=stream, **kwargs)
