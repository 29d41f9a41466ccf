"""A quick soak: one daemon process, many runs, a roster changing under it.

The long variant (500 runs, figures printed) is bench/soak.py.
"""

from __future__ import annotations

from pathlib import Path

from bench.soak import soak


def test_daemon_does_not_leak_over_many_runs(tmp_path: Path) -> None:
    result = soak(120, tmp_path)
    assert result.runs == 120 and result.exit_code == 0
    assert set(result.statuses) <= {"ok", "guard_tripped"}, result.statuses
    assert not result.secret_leaked
    warmup = 30
    early, late = result.fd_windows(warmup)
    assert late <= early, result.fds
    _, _, rss_growth = result.growth(result.rss_kib, warmup)
    # Without the daemon's malloc arena cap this grew about 20% (bench/soak.py).
    assert rss_growth < 10, result.rss_kib
