"""One write per log event: a container runtime records each write(2) as a line or a
partial line, so an event written as text then newline shows up as a fragment."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

from standins.nebuly.server import NebulyStandIn
from syncd import log
from tests.conftest import config_text, person, write_csv


class _WriteRecorder(io.StringIO):
    """A text stream that keeps every write() call apart."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def write(self, text: str) -> int:
        self.calls.append(text)
        return super().write(text)


def test_each_event_is_one_write_of_one_whole_line() -> None:
    stream = _WriteRecorder()
    log.configure("json", "info", stream=stream)
    logger = log.get_logger()
    logger.info("first.event", detail="a value\nwith a newline inside")
    logger.warning("second.event", count=3)
    # A library logging through the stdlib goes through the other handler.
    logging.getLogger("some.library").warning("library says %s", "hello")
    assert len(stream.calls) == 3
    for call in stream.calls:
        assert call.endswith("\n") and call.count("\n") == 1, call
        json.loads(call)
    assert [json.loads(c)["event"] for c in stream.calls] == [
        "first.event", "second.event", "library says hello"]


def test_a_real_run_writes_each_event_with_one_system_call(
        tmp_path: Path, standin: NebulyStandIn) -> None:
    """`syncd once` under strace, unbuffered as in the image: every write(2) to stderr
    is one complete line."""
    csv_path = write_csv(tmp_path / "roster.csv", [person(i) for i in range(5)])
    cfg = tmp_path / "syncd.yaml"
    cfg.write_text(config_text(standin.url, csv_path), encoding="utf-8")
    trace = tmp_path / "strace.txt"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        ["strace", "-f", "-qq", "-e", "trace=write", "-e", "signal=none", "-s", "100000",
         "-o", str(trace), sys.executable, "-m", "syncd.app.cli", "once", "--config", str(cfg)],
        capture_output=True, text=True, timeout=120, check=False, env=env)
    assert done.returncode == 0, done.stderr
    writes = [m.group(1) for m in re.finditer(r'write\(2, "(.*)", \d+\) = \d+$',
                                             trace.read_text(), re.MULTILINE)]
    events = [json.loads(line)["event"] for line in done.stderr.splitlines()]
    assert "sync.finished" in events
    # strace shows the bytes escaped: a complete line ends in a literal backslash-n.
    assert len(writes) == len(events)
    for written in writes:
        assert written.endswith("\\n") and "\\n" not in written[:-2], written
