"""Progress bars: whole lines in logs (no carriage returns), tqdm on a terminal."""

import io

from tqdm import tqdm

from eolab.core.progress import bar


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_log_gets_one_line_per_ten_percent_and_no_carriage_returns():
    log = io.StringIO()
    with bar(range(200), desc="cog", unit="product", file=log) as items:
        for _ in items:
            pass
    text = log.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) == 11  # 0 %, 10 %, ..., 100 %
    assert lines[0].startswith("cog:   0% 0/200") and lines[-1].startswith("cog: 100% 200/200")


def test_updates_by_hand_and_a_bar_without_total_print_start_and_end():
    log = io.StringIO()
    progress = bar(total=1000, desc="bytes", file=log)
    for _ in range(1000):
        progress.update(1)
    progress.close()
    assert len(log.getvalue().splitlines()) == 11
    log = io.StringIO()
    progress = bar(desc="indexing", unit="item", file=log)
    progress.update(5)
    progress.update(7)
    progress.close()
    lines = log.getvalue().splitlines()
    assert len(lines) == 2 and lines[-1].startswith("indexing: 12")


def test_write_between_updates_leaves_the_log_lines_whole():
    log = io.StringIO()
    progress = bar(total=4, desc="x", file=log)
    progress.update(2)
    tqdm.write("a message", file=log)
    progress.update(2)
    progress.close()
    assert "\r" not in log.getvalue()
    assert "a message" in log.getvalue().splitlines()


def test_disabled_bars_print_nothing():
    log = io.StringIO()
    for _ in bar(range(10), file=log, disable=True):
        pass
    assert log.getvalue() == ""


def test_a_terminal_gets_tqdm_redrawing_in_place():
    term = _Terminal()
    for _ in bar(range(3), desc="t", file=term, mininterval=0):
        pass
    assert "\r" in term.getvalue()
