"""`syncd run`: syncs on a schedule (APScheduler 3), backs off, stops cleanly on signals.

One sync job (max_instances=1, coalesce=True, misfire_grace_time=None: runs never
overlap; missed fire times become one late run). After n failed runs in a row the
next waits period x 2^(n-1), capped by max_backoff. The config file is re-read
before every run; an invalid one keeps the last good config. SIGTERM/SIGINT: no
new runs, the run in progress stops after its in-flight write batch, exit 0; past
shutdown_grace, exit 0 anyway (writes converge on the next run). See docs/daemon.md.
"""

from __future__ import annotations

import ctypes
import itertools
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, JobEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from syncd import __version__, log
from syncd.app.health import HealthServer, HealthState, json_probe
from syncd.app.metrics import Metrics, run_completed
from syncd.config.model import ConfigError, ScheduleConfig, SyncdConfig, load_config
from syncd.run.kept_sources import KeptSources
from syncd.run.orchestrator import run_once
from syncd.run.state import StateDir
from syncd.run.status_record import record_next_run

SYNC_JOB = "sync"
HEARTBEAT_S = 5.0  # the scheduler runs a no-op job this often; /livez checks it happened
HEARTBEAT_TIMEOUT_S = 60.0
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def backoff_delay(failures: int, period: float, max_backoff: float) -> float:
    """Seconds from the end of a run to the next one after `failures` failed runs in a row.

    0 or 1 failure: the period. Then period x 2, x 4, ... up to max_backoff, and never
    less than the period (a small max_backoff does not make runs more frequent).
    """
    if failures <= 1:
        return period
    return max(period, min(period * 2.0 ** min(failures - 1, 60), max_backoff))


def _day(text: str) -> int:
    if text in _DAYS:
        return _DAYS.index(text)
    if not text.isdigit() or int(text) > 7:
        raise ValueError(f"day of week {text!r}: expected 0-7 or sun-sat")
    return int(text)


def crontab_day_of_week(field: str) -> str:
    """A crontab day-of-week field (0 and 7 = Sunday) as APScheduler 3 day names.

    APScheduler 3 numbers days from Monday = 0, so `1-5` would silently mean Tue-Sat.
    """
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in field.lower().split(","):
        base, slash, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() else 0 if slash else 1
        if step < 1:
            raise ValueError(f"day of week {part!r}: bad step")
        if base == "*":
            low, high = 0, 6
        elif "-" in base:
            first, last = base.split("-", 1)
            low, high = _day(first), _day(last)
        else:
            low = _day(base)
            high = 6 if slash else low
        if low > high:
            raise ValueError(f"day of week {part!r}: empty range")
        days.update(day % 7 for day in range(low, high + 1, step))
    return ",".join(_DAYS[day] for day in sorted(days))


@dataclass(frozen=True)
class Schedule:
    trigger: BaseTrigger
    period: float  # nominal seconds between runs: the base for backoff and staleness
    tz: ZoneInfo
    description: str


def build_schedule(config: ScheduleConfig) -> Schedule:
    """Trigger and period from the schedule section; ValueError names the bad key."""
    try:
        tz = ZoneInfo(config.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"schedule.timezone: unknown time zone {config.timezone!r}") from None
    if config.cron is None:
        return Schedule(IntervalTrigger(seconds=config.period, timezone=tz, jitter=config.jitter),
                        config.period, tz, f"every {config.period:g}s")
    minute, hour, day, month, dow = config.cron.split()
    try:
        fields = {"minute": minute, "hour": hour, "day": day, "month": month,
                  "day_of_week": crontab_day_of_week(dow), "timezone": tz}
        trigger = CronTrigger(**fields, jitter=config.jitter)
        plain = CronTrigger(**fields)
    except ValueError as exc:
        raise ValueError(f"schedule.cron {config.cron!r}: {exc}") from None
    # The longest gap between the next fire times (Fri -> Mon for a weekday cron).
    times = [plain.get_next_fire_time(None, datetime.now(tz))]
    for _ in range(15):
        times.append(plain.get_next_fire_time(None, times[-1] + timedelta(seconds=1)))
    period = max((b - a).total_seconds() for a, b in itertools.pairwise(times))
    return Schedule(trigger, period, tz, f"cron '{config.cron}' ({config.timezone})")


class Daemon:
    def __init__(self, config_path: Path, config: SyncdConfig, schedule: Schedule, *,
                 dry_run: bool = False, log_level: str | None = None) -> None:
        self.config_path, self.config, self.schedule = config_path, config, schedule
        # Observe-only: every run is a dry run (read, plan, log, metrics; no write).
        self.dry_run = dry_run
        self.log_level = log_level  # --log-level wins over the config, reloads included
        self.log = log.get_logger()
        self.metrics = Metrics(__version__)
        self.metrics.observe_config(config)
        self.health = HealthState(schedule.period, config.health.stale_after, HEARTBEAT_TIMEOUT_S)
        self.stop = threading.Event()  # polled by the engine between write batches
        self.idle = threading.Event()
        self.idle.set()
        self._gate = threading.Lock()  # orders "a run starts" against "stop is set"
        self.signals: list[int] = []  # appended by the handler: it must take no locks
        self.failures = 0
        # Sources that keep their session (Entra: credential, token, connection)
        # between runs, as long as their config is unchanged; closed on shutdown.
        self.sources = KeptSources()
        self.scheduler = BackgroundScheduler(
            timezone=schedule.tz,
            executors={"default": ThreadPoolExecutor(1), "heartbeat": ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None})

    # -- lifecycle -------------------------------------------------------------
    def serve(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        server, port = None, None
        health = self.config.health
        if health.enabled:
            server = HealthServer(health.host, health.port, {
                "/livez": json_probe(lambda: self.health.liveness(
                    self.scheduler.state == STATE_RUNNING)),
                "/readyz": json_probe(self.health.readiness),
                "/metrics": self._metrics_route,
            })
            try:
                port = server.start()
            except OSError as exc:
                self.log.error("daemon.health_failed", host=health.host, port=health.port,
                               error=exc.strerror or str(exc))
                return 2
        self.scheduler.add_listener(self._on_event, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_ERROR)
        now = datetime.now(self.schedule.tz)
        first = {"next_run_time": now} if self.config.schedule.run_at_start else {}
        job = self.scheduler.add_job(self._tick, self.schedule.trigger, id=SYNC_JOB,
                                     name="sync", **first)
        self.scheduler.add_job(self.health.beat, IntervalTrigger(seconds=HEARTBEAT_S),
                               id="heartbeat", executor="heartbeat", next_run_time=now)
        self.scheduler.start(paused=True)  # daemon.started comes before the first run's events
        sched = self.config.schedule
        self.log.info("daemon.started", version=__version__, pid=os.getpid(),
                      config=str(self.config_path), schedule=self.schedule.description,
                      interval_s=None if sched.cron else sched.period, cron=sched.cron,
                      jitter_s=sched.jitter, run_at_start=sched.run_at_start,
                      max_backoff_s=sched.max_backoff, health_host=health.host,
                      health_port=port, next_run=_iso(job.next_run_time),
                      dry_run=self.dry_run)
        self.scheduler.resume()
        while not self.signals:
            time.sleep(0.1)  # a timed sleep: signal handlers run promptly (PID 1 too)
        return self._shutdown(server)

    def _metrics_route(self) -> tuple[int, str, bytes]:
        body, content_type = self.metrics.render()
        return 200, content_type, body

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signals.append(signum)

    def _shutdown(self, server: HealthServer | None) -> int:
        grace = self.config.schedule.shutdown_grace
        self.log.info("daemon.stopping", signal=signal.Signals(self.signals[0]).name,
                      run_in_progress=not self.idle.is_set(), grace_s=grace)
        self.health.stopping()
        with self._gate:
            self.stop.set()
        self.scheduler.shutdown(wait=False)
        deadline = time.monotonic() + grace
        while not self.idle.wait(0.1):
            if time.monotonic() >= deadline or len(self.signals) > 1:
                break
        clean = self.idle.is_set()
        if not clean:
            self.log.warning("daemon.stop_timeout", grace_s=grace,
                             forced_by_second_signal=len(self.signals) > 1,
                             consequence="a run was still in progress; exiting without it. "
                             "A write in flight may or may not be applied; the next run "
                             "converges")
        if server is not None:
            server.stop()
        if clean:  # else a run may still be using them; the process exits anyway
            self.sources.close()
        self.log.info("daemon.stopped", clean=clean, exit_code=0)
        if not clean:  # the run's worker thread would keep the interpreter alive
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        return 0

    # -- one scheduled run -----------------------------------------------------
    def _tick(self) -> None:
        with self._gate:
            if self.stop.is_set():
                return
            self.idle.clear()
        self.metrics.set_running(True)
        try:
            self._run()
        finally:
            self.metrics.set_running(False)
            self.idle.set()

    def _run(self) -> None:
        config = self._reload()
        try:
            report = run_once(config, dry_run=self.dry_run, should_stop=self.stop.is_set,
                              build=self.sources.build)
        except Exception:
            self.log.exception("daemon.run_crashed")
            status = "internal_error"
            self.metrics.observe_crash()
        else:
            status = report.status
            self.metrics.observe(report)
        if run_completed(status):
            self.failures = 0
            self.health.succeeded()
        else:
            self.failures += 1
        self.metrics.set_consecutive_failures(self.failures)
        self.sources.retain(config.sources)
        if not self.stop.is_set():
            self._schedule_next()

    def _reload(self) -> SyncdConfig:
        """The config file as it is now, or the last good config if it became invalid."""
        try:
            new = load_config(self.config_path)
            schedule = (self.schedule if new.schedule == self.config.schedule
                        else build_schedule(new.schedule))
        except (ConfigError, ValueError) as exc:
            problems = exc.problems if isinstance(exc, ConfigError) else [str(exc)]
            self.log.error("config.reload_failed", config=str(self.config_path),
                           problems=problems, consequence="using the last good config")
            self.metrics.config_reloaded(False)
            return self.config
        self.metrics.config_reloaded(True)
        if new == self.config:
            return new  # its gauges are the ones observed for the config it equals
        self.metrics.observe_config(new)
        old = self.config
        changed = [k for k in SyncdConfig.model_fields if getattr(new, k) != getattr(old, k)]
        self.log.info("config.reloaded", config=str(self.config_path), changed=changed)
        if new.logging != self.config.logging:
            log.configure(new.logging.format, self.log_level or new.logging.level)
        if (new.health.host, new.health.port, new.health.enabled) != (
                self.config.health.host, self.config.health.port, self.config.health.enabled):
            self.log.warning("config.restart_required", keys=["health"],
                             consequence="health.host/port/enabled apply after a restart")
        if schedule is not self.schedule:
            self.scheduler.reschedule_job(SYNC_JOB, trigger=schedule.trigger)
            self.schedule = schedule
        self.health.configure(schedule.period, new.health.stale_after)
        self.config = new
        return new

    def _schedule_next(self) -> None:
        job = self.scheduler.get_job(SYNC_JOB)
        if job is None:
            return
        delay = backoff_delay(self.failures, self.schedule.period,
                              self.config.schedule.max_backoff)
        if delay > self.schedule.period:
            earliest = datetime.now(self.schedule.tz) + timedelta(seconds=delay)
            trigger = self.schedule.trigger
            nxt = (earliest if isinstance(trigger, IntervalTrigger)
                   else trigger.get_next_fire_time(None, earliest))
            job = self.scheduler.modify_job(SYNC_JOB, next_run_time=nxt)
            self.log.warning("daemon.backoff", consecutive_failures=self.failures,
                             delay_s=round(delay, 3), next_run=_iso(job.next_run_time))
        else:
            self.log.info("daemon.next_run", next_run=_iso(job.next_run_time),
                          consecutive_failures=self.failures)
        if job.next_run_time is not None:
            self.metrics.set_next_run(job.next_run_time.timestamp())
        if self.config.state_dir is not None and not self.dry_run:
            record_next_run(StateDir(self.config.state_dir), job.next_run_time,
                            self.schedule.description)

    def _on_event(self, event: JobEvent) -> None:
        if event.job_id != SYNC_JOB:
            return
        if event.code == EVENT_JOB_MAX_INSTANCES:
            self.log.warning("daemon.run_skipped", reason="the previous run is still going")
        else:
            self.log.error("daemon.job_error", error=repr(getattr(event, "exception", None)))


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas, before any thread starts.

    glibc gives each thread that allocates its own arena and keeps freed memory
    in it: the daemon allocates in its main, scheduler and heartbeat threads,
    and its RSS crept from 53 to 76 MiB over 200 runs before levelling off
    (bench/soak.py). With 2 arenas it stays flat. MALLOC_ARENA_MAX, when set,
    takes precedence. Returns whether the cap was applied.
    """
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False  # not glibc (musl has no arenas to cap)
    m_arena_max = -8  # from glibc's malloc.h
    return bool(libc.mallopt(m_arena_max, arenas))


def main(config_path: Path, config: SyncdConfig, *, dry_run: bool = False,
         log_level: str | None = None) -> int:
    """Run the daemon until SIGTERM/SIGINT. 0 after a stop; 2 for an unusable schedule/port."""
    limit_malloc_arenas()
    log.configure(config.logging.format, log_level or config.logging.level)
    # APScheduler's own warnings (a skipped or failed job) come back as our events.
    aps = logging.getLogger("apscheduler")
    aps.addHandler(logging.NullHandler())
    aps.propagate = False
    logger: Any = log.get_logger()
    try:
        schedule = build_schedule(config.schedule)
    except ValueError as exc:
        logger.error("config.invalid", config=str(config_path), error=str(exc))
        return 2
    return Daemon(config_path, config, schedule, dry_run=dry_run, log_level=log_level).serve()
