"""Long reads say how far they are (issue 16): a `source.progress` event every ~10 s
of the read, nothing for a short read, and on a terminal a live line rewritten in
place, which log lines from another thread never break into."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from syncd.config.model import SyncdConfig, load_config
from syncd.pace import Every
from syncd.run.inputs import read_desired
from syncd.run.progress import SourceProgress
from syncd.sources.base import NO_PROGRESS, ReadProgress, SourceRead, SourceRecord
from syncd.sources.csv.config import CsvSourceConfig
from syncd.sources.csv.source import PROGRESS_ROWS, CsvSource
from syncd.terminal import LiveLine
from tests.conftest import config_text, person, write_csv


class _Clock:
    """Time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _PagedSource:
    """A directory that hands out `pages` pages of `size` people, `seconds` apart."""

    def __init__(self, clock: _Clock, pages: int, size: int = 1000, seconds: float = 4.0
                 ) -> None:
        self.clock, self.pages, self.size, self.seconds = clock, pages, size, seconds

    @property
    def name(self) -> str:
        return "hr"

    def read(self, progress: ReadProgress = NO_PROGRESS) -> SourceRead:
        records = []
        for page in range(self.pages):
            self.clock.now += self.seconds
            records += [SourceRecord(person(page * self.size + i), f"row {i}")
                        for i in range(self.size)]
            progress.page(self.size)
        return SourceRead(records)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _config(tmp_path: Path) -> SyncdConfig:
    cfg = tmp_path / "syncd.yaml"
    cfg.write_text(config_text("https://nebuly.example", write_csv(tmp_path / "r.csv", [])))
    return load_config(cfg)


def _progress(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.items() if k != "log_level"}
            for e in events if e["event"] == "source.progress"]


def test_a_long_read_logs_its_progress_every_interval(
        tmp_path: Path, _logs_without_secrets: list[dict[str, Any]]) -> None:
    import structlog

    clock = _Clock()
    read_desired(_config(tmp_path), [_PagedSource(clock, pages=10)],
                 structlog.get_logger("syncd"), clock)
    # A page every 4 s: 12 s, 24 s and 36 s are the first looks at least 10 s apart.
    assert _progress(_logs_without_secrets) == [
        {"event": "source.progress", "source": "hr", "records": records, "pages": pages,
         "rate": 250.0, "elapsed_s": elapsed}
        for records, pages, elapsed in ((3000, 3, 12.0), (6000, 6, 24.0), (9000, 9, 36.0))]
    read = [e for e in _logs_without_secrets if e["event"] == "source.read"]
    assert read[0]["records"] == 10_000


def test_the_interval_is_the_callers(tmp_path: Path,
                                     _logs_without_secrets: list[dict[str, Any]]) -> None:
    import structlog

    clock = _Clock()
    read_desired(_config(tmp_path), [_PagedSource(clock, pages=4)],
                 structlog.get_logger("syncd"), clock, progress_every=0)
    assert [e["pages"] for e in _progress(_logs_without_secrets)] == [1, 2, 3, 4]


def test_a_read_shorter_than_the_interval_says_nothing_of_progress(
        tmp_path: Path, _logs_without_secrets: list[dict[str, Any]]) -> None:
    import structlog

    clock = _Clock()
    read_desired(_config(tmp_path), [_PagedSource(clock, pages=2)],
                 structlog.get_logger("syncd"), clock)
    assert _progress(_logs_without_secrets) == []
    assert [e["event"] for e in _logs_without_secrets] == ["source.read"]


class _Recorder:
    def __init__(self) -> None:
        self.pages: list[int] = []

    def page(self, records: int) -> None:
        self.pages.append(records)


def test_the_csv_source_reports_every_chunk_of_rows_and_the_rest(tmp_path: Path) -> None:
    rows = 2 * PROGRESS_ROWS + 123
    path = write_csv(tmp_path / "big.csv", [person(i) for i in range(rows)])
    source = CsvSource(CsvSourceConfig.model_validate({
        "name": "hr", "type": "csv", "path": str(path), "end_user": "{email}"}))
    recorder = _Recorder()
    read = source.read(recorder)
    assert len(read.records) == rows
    assert recorder.pages == [PROGRESS_ROWS, PROGRESS_ROWS, 123]


def test_the_live_line_shows_the_count_and_rate_and_goes_at_the_end() -> None:
    clock = _Clock()
    screen = _Terminal()
    live = LiveLine(screen, every=5.0)
    progress = SourceProgress("corp-ldap", _NoLog(), clock, live=live)
    for _ in range(4):
        clock.now += 2.0
        progress.page(1000)  # shown at 6 s (the first look at least 5 s in)
    assert screen.getvalue() == "\r\x1b[Kreading corp-ldap: 3,000 records, 500/s"
    progress.done()
    assert screen.getvalue().endswith("\r\x1b[K")


class _NoLog:
    def info(self, event: str, **fields: Any) -> None:
        raise AssertionError(f"no log event expected, got {event}")


def test_a_log_line_is_written_above_the_live_line_never_into_it() -> None:
    screen = _Terminal()
    live = LiveLine(screen)
    live.show("reading hr: 1,000 records, 10/s")
    live.write("2026-12-01 nebuly.read ...\n")
    assert screen.getvalue() == ("\r\x1b[Kreading hr: 1,000 records, 10/s"
                                 "\r\x1b[K2026-12-01 nebuly.read ...\n"
                                 "reading hr: 1,000 records, 10/s")
    live.clear()
    live.write("after\n")  # no live line: written as it is
    assert screen.getvalue().endswith("\r\x1b[Kafter\n")


def test_the_live_line_escapes_controls_and_fits_the_terminal() -> None:
    screen = _Terminal()
    LiveLine(screen).show("reading \x1b[31mx" + "y" * 200)
    shown = screen.getvalue().removeprefix("\r\x1b[K")
    assert "\x1b" not in shown and shown.startswith("reading \\x1b[31mx")
    assert len(shown) == 79  # a StringIO has no size: 80 columns, less one


def test_a_pace_is_due_once_per_interval_from_its_start() -> None:
    clock = _Clock()
    pace = Every(10.0, clock)
    looks = []
    for _ in range(8):
        clock.now += 4.0
        looks.append(pace.due())
    assert looks == [False, False, True, False, False, True, False, False]


def test_log_lines_from_another_thread_stay_whole_around_the_live_line() -> None:
    import threading

    screen = _Terminal()
    live = LiveLine(screen, every=0.0)

    def updates() -> None:
        for i in range(2000):
            live.show(f"reading hr: {i:,} records, 10/s")

    def log_lines() -> None:
        for i in range(2000):
            live.write(f"nebuly.page n={i}\n")

    threads = [threading.Thread(target=updates), threading.Thread(target=log_lines)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    text = screen.getvalue()
    # Every log line starts a row of its own and is whole, never cut by the live line.
    rows = [row for chunk in text.split("\r\x1b[K") for row in chunk.split("\n")]
    logged = [row for row in rows if row.startswith("nebuly.page")]
    assert logged == [f"nebuly.page n={i}" for i in range(2000)]
    assert all(row.startswith(("nebuly.page", "reading hr: ")) for row in rows if row)
