"""Prometheus metrics for the daemon, in a registry of their own (not the global one).

`Metrics.observe(report)` turns one run's RunReport into gauges and counters;
`render()` gives the text exposition for /metrics. Nothing here reads a secret:
label values are statuses, actions, guard names, source names and the version.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)

from syncd.config.security import SETTINGS as INSECURE_SETTINGS
from syncd.config.security import insecure_transports

if TYPE_CHECKING:
    from syncd.config.model import SyncdConfig
    from syncd.run.orchestrator import RunReport

# Statuses of a run (engine's RunReport.status, plus the daemon's internal_error).
# "Completed" runs reached the end of apply: they count as a success for readiness
# and reset the failure streak, even when a guard blocked deactivations or Nebuly
# rejected some users; those problems show in their own metrics and log events.
COMPLETED = ("ok", "dry_run", "guard_tripped", "partial_failure")
FAILED = ("source_failed", "nebuly_failed", "config_error", "internal_error")
ACTIONS = ("inserted", "updated", "deactivated", "reactivated", "deleted", "unchanged")
PHASES = ("read", "get", "plan", "apply", "total")
# The kind of error per failed status; user_rejected and config_reload are counted apart.
_ERROR_KIND = {"source_failed": "source", "nebuly_failed": "nebuly", "config_error": "config",
               "internal_error": "internal"}
ERROR_KINDS = (*_ERROR_KIND.values(), "user_rejected", "config_reload")
_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600)


def run_completed(status: str) -> bool:
    """True when a run with this status counts as a success (see COMPLETED)."""
    return status in COMPLETED


class Metrics:
    """The daemon's metrics. Thread-safe (prometheus_client is)."""

    def __init__(self, version: str, clock: Callable[[], float] = time.time) -> None:
        self.registry = CollectorRegistry()
        self._clock = clock
        r = self.registry
        Info("syncd_build", "syncd version", registry=r).info(
            {"version": version, "python": platform.python_version()})
        self.last_success = Gauge(
            "syncd_last_success_timestamp_seconds",
            "Unix time the last completed run (ok, guard_tripped, partial_failure) ended",
            registry=r)
        self.last_run = Gauge("syncd_last_run_timestamp_seconds",
                              "Unix time the last run ended, whatever its outcome", registry=r)
        self.last_exit_code = Gauge("syncd_last_run_exit_code",
                                    "exit code `syncd once` would have given the last run",
                                    registry=r)
        self.duration = Histogram("syncd_run_duration_seconds", "Wall time of whole runs",
                                  buckets=_BUCKETS, registry=r)
        self.phase = Gauge("syncd_last_run_phase_duration_seconds",
                           "Wall time of each phase of the last run", ["phase"], registry=r)
        self.users = Gauge("syncd_run_users",
                           "Users per action in the last run that reached the plan step",
                           ["action"], registry=r)
        self.blocked = Gauge("syncd_run_blocked_users",
                             "Deactivations/deletes a guard blocked in the last planned run",
                             registry=r)
        self.desired = Gauge("syncd_desired_users",
                             "Users the sources yielded in the last run that read them", registry=r)
        self.nebuly = Gauge("syncd_nebuly_users", "Users Nebuly held when last read", registry=r)
        self.runs = Counter("syncd_runs", "Runs by final status", ["status"], registry=r)
        self.source_records = Gauge("syncd_source_records",
                                    "Records read from each source in the last complete read",
                                    ["source"], registry=r)
        self.source_seconds = Gauge("syncd_source_read_duration_seconds",
                                    "Seconds each source took to read and map, last complete read",
                                    ["source"], registry=r)
        self.errors = Counter("syncd_errors", "Errors by kind", ["kind"], registry=r)
        self.failures = Gauge("syncd_consecutive_failures",
                              "Failed runs in a row (0 after a completed run)", registry=r)
        self.trips = Counter("syncd_guard_trips", "Runs in which a guard blocked changes",
                             ["guard"], registry=r)
        self.running = Gauge("syncd_run_in_progress", "1 while a run is going", registry=r)
        self.next_run = Gauge("syncd_next_run_timestamp_seconds",
                              "Unix time of the next scheduled run (backoff included)",
                              registry=r)
        self.reload_ok = Gauge("syncd_config_last_reload_successful",
                               "1 if the last read of the config file was valid, else 0",
                               registry=r)
        self.reload_ok.set(1)
        self.insecure = Gauge(
            "syncd_insecure_transports",
            "Insecure transport settings in use (security.insecure_transport), by setting",
            ["setting"], registry=r)
        for setting in INSECURE_SETTINGS:
            self.insecure.labels(setting=setting)
        for status in (*COMPLETED, *FAILED):
            self.runs.labels(status=status)
        for kind in ERROR_KINDS:
            self.errors.labels(kind=kind)
        self.trips.labels(guard="max_deactivations")

    def observe(self, report: RunReport) -> None:
        """Record one finished run."""
        now = self._clock()
        self._ended(report.status, int(report.exit_code), now)
        for phase in PHASES:
            if phase in report.durations:
                self.phase.labels(phase=phase).set(report.durations[phase])
        if "total" in report.durations:
            self.duration.observe(report.durations["total"])
        if run_completed(report.status):
            self.last_success.set(now)
        if report.sources:
            self.source_records.clear()
            self.source_seconds.clear()
            for source in report.sources:
                self.source_records.labels(source=source.name).set(source.records)
                self.source_seconds.labels(source=source.name).set(source.seconds)
        if report.plan is not None:
            self.desired.set(report.desired_users)
            summary = report.summary()
            for action in ACTIONS:
                self.users.labels(action=action).set(summary.get(action, 0))
            self.blocked.set(summary.get("blocked", 0))
            self.nebuly.set(report.nebuly_users)
        if report.result is not None and report.result.failures:
            self.errors.labels(kind="user_rejected").inc(len(report.result.failures))
        if report.guarded is not None:
            for trip in report.guarded.trips:
                self.trips.labels(guard=trip.guard).inc()

    def observe_crash(self) -> None:
        """A run that raised instead of returning a report (a bug)."""
        self._ended("internal_error", 1, self._clock())

    def _ended(self, status: str, exit_code: int, now: float) -> None:
        self.last_run.set(now)
        self.last_exit_code.set(exit_code)
        self.runs.labels(status=status).inc()
        if status in _ERROR_KIND:
            self.errors.labels(kind=_ERROR_KIND[status]).inc()

    def observe_config(self, config: SyncdConfig) -> None:
        """The config in use: how many of each insecure transport setting it allows."""
        found = [item.setting for item in insecure_transports(config)]
        for setting in INSECURE_SETTINGS:
            self.insecure.labels(setting=setting).set(found.count(setting))

    def config_reloaded(self, ok: bool) -> None:
        self.reload_ok.set(1 if ok else 0)
        if not ok:
            self.errors.labels(kind="config_reload").inc()

    def set_consecutive_failures(self, count: int) -> None:
        self.failures.set(count)

    def set_running(self, running: bool) -> None:
        self.running.set(1 if running else 0)

    def set_next_run(self, timestamp: float) -> None:
        self.next_run.set(timestamp)

    def render(self) -> tuple[bytes, str]:
        """(body, content type) for /metrics."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
