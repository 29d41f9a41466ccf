"""Model-based test of whole runs, after pimutils/vdirsyncer's sync state machine.

Hypothesis drives random directory edits (add, remove, change the case of an id,
change tags, disable by excluding the id, re-enable), injects faults (Nebuly's, on
the GET and on either write; a GET that leaves out users Nebuly holds, as an
eventually consistent list does; inserts applied and then answered with an error;
a missing, empty or unreadable CSV), runs syncd in-process against the stand-in,
moves to the next day or not, and rolls the last run back. Half the machines set
an owner tag and start with foreign users (not syncd's) under directory people's
ids; most start with owned users carrying a tag syncd does not map.

After every run the guards must hold, foreign users must be byte-identical,
unmapped tags must survive, and the run's record must say exactly what changed
(an insert only for someone who was not there before); after every clean run
Nebuly must equal the directory, and a second run must write nothing. A rollback
of the last run, when nobody changed since, must restore what it changed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    rule,
    run_state_machine_as_test,
)

from standins.nebuly.server import Fault, NebulyStandIn
from syncd.config.model import load_config
from syncd.core.model import id_key
from syncd.nebuly.client import make_http_client
from syncd.run.orchestrator import ExitCode, RunReport, rollback, run_once
from syncd.run.state import StateDir, user_from_json
from tests.conftest import CANARY_API_KEY, write_csv

POOL = 10
CAP = 2  # policy.max_deactivations
DEPARTMENTS = ["Sales", "Ops", "R&D", "Zürich"]
REGIONS = ["FR", "DE", "US"]
CASES = ["lower", "upper", "title"]
OWNER_KEY, OWNER_VALUE = "managed_by", "syncd"
EXTRA = "cost_center"  # a tag syncd does not map, seeded on some owned users
SEEDED_FROM = "2025-06-01"
DOCUMENTED = {int(code) for code in ExitCode}
OUTCOMES: Counter[tuple[str, int]] = Counter()  # (clean|faulty, exit code) of every run


def spelled(i: int, case: str) -> str:
    base = f"person{i}@corp.example"
    return {"lower": base, "upper": base.upper(), "title": base.title()}[case]


@dataclass
class Person:
    case: str
    department: str
    region: str
    enabled: bool = True


# Nebuly faults (timeouts and slow answers need real waiting: see test_fault_matrix).
NEBULY_FAULTS: dict[str, dict[str, Any]] = {
    "429-retry-after": {"status": 429, "retry_after": "3"},
    "429": {"status": 429},
    "500": {"status": 500},
    "502": {"status": 502},
    "503": {"status": 503, "retry_after": "1"},
    "reset-mid-response": {"reset_mid_body": True},
    "dropped-connection": {"drop": True},
    "413": {"status": 413},
    "invalid-json": {"body": b'{"users": [{"end_user": '},
    "unexpected-shape": {"body": b'{"users": {"end_user": "x"}}'},
    "applied-then-502": {"apply_then_fail": 502},
    "partial-success": {"partial": 1},
}
READ_ONLY_FAULTS = {"413", "invalid-json", "unexpected-shape", "429-retry-after", "429", "500",
                    "502", "503", "reset-mid-response", "dropped-connection"}
CSV_FAULTS = ["missing", "zero-bytes", "header-only", "not-utf-8"]


Users = dict[str, dict[str, Any]]  # Nebuly's roster by id_key, as the stand-in holds it


def snapshot(standin: NebulyStandIn) -> dict[str, dict[str, Any]]:
    users = standin.users()
    keys = [id_key(u["end_user"]) for u in users]
    assert len(keys) == len(set(keys)), f"duplicate ids in Nebuly: {sorted(keys)}"
    return {id_key(u["end_user"]): u for u in users}


def is_active(user: dict[str, Any], today: date) -> bool:
    return user.get("active_to") is None or date.fromisoformat(user["active_to"]) > today


class SyncMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="syncd-model-"))
        self.standin = NebulyStandIn(api_key=CANARY_API_KEY)
        self.standin.start()
        self.people: dict[int, Person] = {}
        self.id_case = "lower"
        self.nebuly_faults: list[str] = []
        self.broken_csv: str | None = None
        self.day = date(2026, 1, 5)
        self.active_from: dict[str, str] = {}  # first active_from seen per id
        self.owner = False
        self.foreign: Users = {}  # users syncd does not own, as seeded: never to change
        self.extra: dict[str, str] = {}  # owned users seeded with an unmapped tag: its value
        self.queued: list[Fault] = []  # Nebuly faults for the next run, in order
        self.omitted: set[str] = set()  # ids the run's GET leaves out
        self.lied = False  # a run since the last clean one had a list that left users out
        # The last run that changed something: (run_id, roster before, roster after).
        self.last: tuple[str, Users, Users] | None = None
        # One client for every run: a new one per run costs more than the run itself.
        self.http = make_http_client(self.standin.url, CANARY_API_KEY, 10)

    def teardown(self) -> None:
        self.http.close()
        self.standin.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- the directory ---------------------------------------------------------------

    @initialize(id_case=st.sampled_from(["lower", "preserve"]),
                start=st.sets(st.integers(0, POOL - 1), min_size=3, max_size=POOL),
                owner=st.booleans(),
                foreign=st.sets(st.integers(0, POOL - 1), max_size=3),
                extra=st.sets(st.integers(0, POOL - 1), max_size=4))
    def begin(self, id_case: str, start: set[int], owner: bool, foreign: set[int],
              extra: set[int]) -> None:
        self.id_case = id_case
        for i in start:
            self.people[i] = Person("lower", DEPARTMENTS[i % 4], REGIONS[i % 3])
        self.owner = owner
        seeded = []
        for i in sorted(foreign) if owner else []:
            # Someone else's user under a directory person's id (ended or not).
            seeded.append({"end_user": spelled(i, "lower"),
                           "tags": {"department": "Foreign", "team": f"t{i}"},
                           "active_from": SEEDED_FROM,
                           "active_to": "2025-12-31" if i % 2 else None})
            self.foreign[id_key(spelled(i, "lower"))] = seeded[-1]
        for i in sorted(extra - set(self.foreign_ids())):
            tags = {"department": DEPARTMENTS[(i + 1) % 4], "region": REGIONS[i % 3],
                    EXTRA: f"cc-{i}"}
            if owner:
                tags[OWNER_KEY] = OWNER_VALUE
            seeded.append({"end_user": spelled(i, "lower"), "tags": tags,
                           "active_from": SEEDED_FROM, "active_to": None})
            self.extra[id_key(spelled(i, "lower"))] = f"cc-{i}"
        self.standin.seed(seeded)

    def foreign_ids(self) -> list[int]:
        return [i for i in range(POOL) if id_key(spelled(i, "lower")) in self.foreign]

    @rule(i=st.integers(0, POOL - 1), case=st.sampled_from(CASES),
          department=st.sampled_from(DEPARTMENTS), region=st.sampled_from(REGIONS))
    def add(self, i: int, case: str, department: str, region: str) -> None:
        if i not in self.people:
            self.people[i] = Person(case, department, region)

    @rule(i=st.integers(0, POOL - 1))
    def remove(self, i: int) -> None:
        self.people.pop(i, None)

    @rule(ids=st.sets(st.integers(0, POOL - 1), min_size=3, max_size=6), disable=st.booleans())
    def remove_many(self, ids: set[int], disable: bool) -> None:
        """Several departures at once: enough to trip the cap."""
        for i in ids:
            if disable and i in self.people:
                self.people[i].enabled = False
            else:
                self.people.pop(i, None)

    @rule(i=st.integers(0, POOL - 1), case=st.sampled_from(CASES))
    def rename_case(self, i: int, case: str) -> None:
        if i in self.people:
            self.people[i].case = case

    @rule(i=st.integers(0, POOL - 1), department=st.sampled_from(DEPARTMENTS),
          region=st.sampled_from(REGIONS))
    def change_tags(self, i: int, department: str, region: str) -> None:
        if i in self.people:
            self.people[i].department, self.people[i].region = department, region

    @rule(i=st.integers(0, POOL - 1))
    def disable(self, i: int) -> None:
        """The row stays in the CSV; its id is listed in the source's exclude_ids."""
        if i in self.people:
            self.people[i].enabled = False

    @rule(i=st.integers(0, POOL - 1))
    def enable(self, i: int) -> None:
        if i in self.people:
            self.people[i].enabled = True

    # -- faults ----------------------------------------------------------------------

    @rule(kind=st.sampled_from(sorted(NEBULY_FAULTS)),
          method=st.sampled_from(["GET", "PUT", "POST"]), persistent=st.booleans())
    def nebuly_fault(self, kind: str, method: str, persistent: bool) -> None:
        """A Nebuly fault for the next run (several may stack)."""
        if method == "GET" and kind not in READ_ONLY_FAULTS:
            return
        self.queued.append(Fault(method=method, times=-1 if persistent else 1,
                                 **NEBULY_FAULTS[kind]))
        self.nebuly_faults.append(f"{method}-{kind}")

    @rule(kind=st.sampled_from(CSV_FAULTS))
    def csv_fault(self, kind: str) -> None:
        self.broken_csv = kind

    @rule(picks=st.sets(st.integers(0, POOL - 1), min_size=1, max_size=4),
          persistent=st.booleans())
    def list_omits(self, picks: set[int], persistent: bool) -> None:
        """Nebuly's GET leaves out users it holds: added a moment ago, or a lagging replica."""
        if any(f.startswith("GET-") for f in self.nebuly_faults):
            return  # the first GET fault queued is the one the run's GET meets
        # Whom it hides is settled when the run starts (see hide).
        self.queued.append(Fault(method="GET", omit=tuple(f"#{i}" for i in sorted(picks)),
                                 times=-1 if persistent else 1))
        self.nebuly_faults.append("GET-omit")

    def hide(self, fault: Fault) -> Fault:
        """The users an omit fault's picks name in Nebuly now."""
        if not fault.omit:
            return fault
        held, hidden = snapshot(self.standin), []
        for i in (int(pick[1:]) for pick in fault.omit):
            key = id_key(spelled(i, "lower"))
            if key not in held:
                continue
            spelling = held[key]["end_user"]
            if key in self.desired() and spelling != spelled(i, self.people[i].case) and (
                    self.id_case == "preserve"):
                # The insert would carry another spelling, and the stand-in (like
                # Nebuly, for all anyone knows) keys ids case-sensitively: a second
                # entry, which no reader of a list that hides the first could avoid.
                continue
            hidden.append(spelling)
            self.omitted.add(key)
        return replace(fault, omit=tuple(hidden) or ("nobody",))

    @rule(picks=st.sets(st.integers(0, POOL - 1), min_size=1, max_size=4),
          persistent=st.booleans())
    def run_with_list_omitting(self, picks: set[int], persistent: bool) -> None:
        self.list_omits(picks, persistent)
        self.sync(force=False)

    @rule(status=st.sampled_from([500, 502, 503]), persistent=st.booleans(),
          i=st.integers(0, POOL - 1), case=st.sampled_from(CASES))
    def run_with_insert_applied_then_failed(self, status: int, persistent: bool, i: int,
                                            case: str) -> None:
        """Inserts that Nebuly applies and then answers with an error (a lost answer)."""
        self.add(i, case, DEPARTMENTS[i % 4], REGIONS[(i + 1) % 3])
        self.queued.append(Fault(method="PUT", apply_then_fail=status,
                                 times=-1 if persistent else 1))
        self.nebuly_faults.append(f"PUT-applied-then-{status}")
        self.sync(force=False)

    @rule()
    def next_day(self) -> None:
        self.day += timedelta(days=1)

    # -- runs ------------------------------------------------------------------------

    def desired(self) -> dict[str, Person]:
        return {id_key(spelled(i, p.case)): p for i, p in self.people.items() if p.enabled}

    def write_inputs(self) -> Path:
        csv_path = self.tmp / "roster.csv"
        rows = [{"email": spelled(i, p.case), "department": p.department, "country": p.region,
                 "title": "Analyst"} for i, p in sorted(self.people.items())]
        write_csv(csv_path, rows)
        if self.broken_csv == "missing":
            csv_path.unlink()
        elif self.broken_csv == "zero-bytes":
            csv_path.write_bytes(b"")
        elif self.broken_csv == "header-only":
            write_csv(csv_path, [])
        elif self.broken_csv == "not-utf-8":
            csv_path.write_bytes("email,department\nzoé@corp.example,Zürich\n".encode("latin-1"))
        excluded = [f"(?i)^{re.escape(spelled(i, 'lower'))}$"
                    for i, p in sorted(self.people.items()) if not p.enabled]
        cfg = self.tmp / "syncd.yaml"
        owner = (f"  owner_tag: {{key: {OWNER_KEY}, value: {OWNER_VALUE}}}\n" if self.owner
                 else "")
        cfg.write_text(f"""
nebuly:
  base_url: {self.standin.url}
  api_key: {CANARY_API_KEY}
  batch_size: 3
  max_retries: 2
  max_retry_wait: 10s
sources:
  - name: hr
    type: csv
    path: {csv_path}
    end_user: "{{email}}"
    tags: {{department: "{{department}}", region: "{{country}}"}}
    exclude_ids: {json.dumps(excluded)}
policy:
  max_deactivations: {CAP}
  id_case: {self.id_case}
{owner}state_dir: {self.tmp / "state"}
""", encoding="utf-8")
        return cfg

    @rule(force=st.sampled_from([False, False, False, True]))
    def run(self, force: bool) -> None:
        self.sync(force)

    @rule(kind=st.sampled_from(sorted(NEBULY_FAULTS)),
          method=st.sampled_from(["GET", "PUT", "POST"]), persistent=st.booleans())
    def run_with_nebuly_fault(self, kind: str, method: str, persistent: bool) -> None:
        self.nebuly_fault(kind, method, persistent)
        self.sync(force=False)

    def sync(self, force: bool) -> None:
        cfg = self.write_inputs()
        before = snapshot(self.standin)
        self.standin.inject(*(self.hide(fault) for fault in self.queued))
        self.standin.reset_calls()
        report = run_once(load_config(cfg), http=self.http, today=self.day, force=force,
                          sleep=lambda _: None)
        self.standin.clear_faults()
        after = snapshot(self.standin)
        clean = not self.nebuly_faults and self.broken_csv is None
        OUTCOMES[("clean" if clean else "faulty", int(report.exit_code))] += 1
        if self.omitted:
            OUTCOMES["list omitted", int(report.exit_code)] += 1
            self.lied = True
        self.check_guards(before, after, report, force)
        self.check_ownership(after)
        unambiguous = self.check_record(report.run_id, before, after)
        if clean:
            if self.lied:
                OUTCOMES["clean after a lying list", int(report.exit_code)] += 1
                self.lied = False
            self.check_clean_run(before, after, report, force)
            if report.exit_code == ExitCode.OK:
                self.standin.reset_calls()
                again = run_once(load_config(cfg), http=self.http, today=self.day,
                                 sleep=lambda _: None)
                assert again.exit_code == ExitCode.OK
                assert self.standin.write_calls() == 0, "a converged roster was written again"
                assert snapshot(self.standin) == after
        if after != before:
            self.last = (report.run_id, before, after) if unambiguous else None
        self.nebuly_faults, self.queued = [], []
        self.broken_csv = None
        self.omitted = set()

    @rule()
    def rollback_last(self) -> None:
        """Roll the last run that changed something back, if nobody changed anything since."""
        if self.last is None or snapshot(self.standin) != self.last[2]:
            return
        run_id, before, after = self.last
        # Against a Nebuly that answers truthfully: faults queued for the next run go.
        self.nebuly_faults, self.queued = [], []
        result = rollback(load_config(self.write_inputs()), run_id, http=self.http)
        now = snapshot(self.standin)
        assert result.exit_code == ExitCode.OK, result.message
        assert result.skipped == (), result.skipped
        changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
        for key in before.keys() | after.keys():
            expected = before if key in changed else after
            assert now.get(key) == expected.get(key), (key, before.get(key), now.get(key))
        OUTCOMES["rolled back", len(changed) > 0] += 1
        self.check_ownership(now)
        for key in after.keys() - now.keys():
            self.active_from.pop(key, None)  # deleted: a new insert starts afresh
        # A rollback is a run of its own: it can be rolled back in turn.
        self.last = (result.run_id, after, now) if now != after else None
        assert (self.tmp / "state" / "runs" / f"{result.run_id}.json").exists() == bool(changed)

    def check_ownership(self, after: Users) -> None:
        """Foreign users are byte-identical; owned users keep the tags syncd does not map."""
        for key, user in self.foreign.items():
            assert after.get(key) == user, f"a foreign user was touched: {after.get(key)}"
        for key, value in self.extra.items():
            assert after[key]["tags"].get(EXTRA) == value, after[key]

    def check_record(self, run_id: str, before: Users, after: Users) -> bool:
        """The run's record (what rollback restores) says exactly what the run changed:
        an insert for each user who was not there before, the earlier values of others.
        False when it is (rightly) ambiguous, see below."""
        changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
        path = self.tmp / "state" / "runs" / f"{run_id}.json"
        recorded = StateDir(self.tmp / "state").load_run(run_id) if path.exists() else []
        seen, ambiguous = set(), False
        write_faults = any(not f.startswith("GET-") for f in self.nebuly_faults)
        for action, old, new in recorded:
            assert new is not None, "a sync deleted someone"
            key = id_key(new.end_user)
            assert key not in seen, f"{key} recorded twice"
            seen.add(key)
            assert action != "overwrite", f"{key} recorded as an overwrite"
            if action == "insert" and key in before:
                # The list hid him, the insert met him after an attempt answered with an
                # error (which may have inserted him), and he holds exactly what was
                # sent: syncd cannot tell him from its own insert, and says insert.
                assert key in self.omitted and write_faults, (key, before[key])
                assert before[key] == after[key], (key, before[key], after[key])
                ambiguous = True
                continue
            assert (action == "insert") == (key not in before), (action, key, before.get(key))
            if action == "insert" and any(f.startswith("PUT-applied") for f in self.nebuly_faults):
                OUTCOMES["insert applied then failed, recorded", 0] += 1
            assert old == user_from_json(before.get(key)), (key, old, before.get(key))
            assert new == user_from_json(after.get(key)), (key, new, after.get(key))
        assert seen - changed == {k for k in seen if k in before and before[k] == after[k]}
        assert changed <= seen, f"changed but not recorded: {changed - seen}"
        return not ambiguous

    def check_guards(self, before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]],
                     report: RunReport, force: bool) -> None:
        today, desired = self.day, self.desired()
        assert int(report.exit_code) in DOCUMENTED
        if self.broken_csv is not None:
            assert report.exit_code == ExitCode.SOURCE_FAILED, (self.broken_csv, report.summary())
        assert set(before) <= set(after), "a user vanished from Nebuly"
        for key in self.omitted - set(desired):
            # Unseen, so not departed: a user the list left out is left as he was.
            assert after[key] == before[key], f"{key}, left out of the list, was changed"
        if report.exit_code == ExitCode.SOURCE_FAILED or (
                report.exit_code == ExitCode.NEBULY_FAILED and report.plan is None):
            assert self.standin.write_calls() == 0, "a failed read was followed by writes"
            assert after == before
        pending = {k for k, u in before.items()
                   if k not in desired and k not in self.foreign and is_active(u, today)}
        if len(pending) > CAP and not force:
            OUTCOMES["over cap", 0] += 1
        newly_gone = {k for k, u in after.items()
                      if k in before and is_active(before[k], today) and not is_active(u, today)}
        assert not newly_gone & set(desired), f"people still in the directory lost access: " \
                                             f"{newly_gone & set(desired)}"
        assert force or len(newly_gone) <= CAP, f"{len(newly_gone)} deactivations, cap {CAP}"
        for key in newly_gone:
            assert after[key]["active_to"] == today.isoformat()
        back = {k for k, u in after.items()
                if k in before and not is_active(before[k], today) and is_active(u, today)}
        assert back <= set(desired), f"reactivated but not in the directory: {back}"
        for key, user in after.items():
            if key in before and not is_active(before[key], today) and not is_active(user, today):
                # A departure date, once set, stays while the person stays away.
                assert user["active_to"] == before[key]["active_to"]
            # active_from is set at insert and never moves.
            assert self.active_from.setdefault(key, user["active_from"]) == user["active_from"]

    def check_clean_run(self, before: dict[str, dict[str, Any]],
                        after: dict[str, dict[str, Any]], report: RunReport,
                        force: bool) -> None:
        today, desired = self.day, self.desired()
        pending = {k for k, u in before.items()
                   if k not in desired and k not in self.foreign and is_active(u, today)}
        if not desired:
            assert report.exit_code == ExitCode.SOURCE_FAILED, report.summary()
            return
        if len(pending) > CAP and not force:
            assert report.exit_code == ExitCode.GUARD_TRIPPED, report.summary()
            blocked = pending
        else:
            assert report.exit_code == ExitCode.OK, report.summary()
            blocked = set()
        active = {k for k, u in after.items() if k not in self.foreign and is_active(u, today)}
        assert active == (set(desired) - set(self.foreign)) | blocked
        for key, person in desired.items():
            if key in self.foreign:
                continue
            tags = {"department": person.department, "region": person.region}
            if self.owner:
                tags[OWNER_KEY] = OWNER_VALUE
            if key in self.extra:
                tags[EXTRA] = self.extra[key]
            assert after[key]["tags"] == tags
            if self.id_case == "lower" and key not in before:
                assert after[key]["end_user"] == key
        for key, user in after.items():
            if key not in active and key not in self.foreign:
                assert user["active_to"] is not None and user["active_to"] <= today.isoformat()


def test_model_based_sync() -> None:
    OUTCOMES.clear()
    # SYNCD_MODEL_EXAMPLES=400 explores further (about two minutes).
    examples = int(os.environ.get("SYNCD_MODEL_EXAMPLES", "50"))
    run_state_machine_as_test(SyncMachine, settings=settings(
        max_examples=examples, stateful_step_count=30, deadline=None,
        # A fixed exploration (the same every run), so the coverage check below
        # cannot fail by chance; SYNCD_MODEL_RANDOM=1 explores afresh.
        derandomize=not os.environ.get("SYNCD_MODEL_RANDOM"), database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
    # The model reached the states it is about: converged runs, guard trips, failed reads
    # and failed writes.
    assert OUTCOMES["clean", ExitCode.OK] and OUTCOMES["faulty", ExitCode.NEBULY_FAILED]
    assert OUTCOMES["faulty", ExitCode.SOURCE_FAILED] and OUTCOMES["over cap", 0]
    # ... lists that left users out, and rollbacks that restored someone.
    assert OUTCOMES["list omitted", ExitCode.OK] and OUTCOMES["rolled back", True]
    assert OUTCOMES["clean after a lying list", ExitCode.OK]
    assert OUTCOMES["insert applied then failed, recorded", 0]
