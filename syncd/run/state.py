"""The state directory: run records (for rollback), pending plans (for approval),
and who has been missing since when (for the departure grace period).

Plain JSON files written atomically, so an admin can read them and a kill -9
never leaves half a file behind. Nothing inside is trusted blindly (statefs.py):
links are not followed, folders are private, and a record is checked for shape
before `rollback` or `approve` acts on it.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from syncd import log
from syncd.core.ids import id_key
from syncd.core.model import Action, NebulyUser
from syncd.core.plan import Missing
from syncd.core.text import escape_controls
from syncd.run.statefs import (
    StateError,
    private_folder,
    read_text,
    unsafe_folders,
    write_json_atomic,
)

__all__ = ["StateDir", "StateError", "StoredPlan", "user_from_json", "user_to_json",
           "write_json_atomic"]

_SUPERSEDED = "plans/superseded"
_ID = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}$")
_RUN_KINDS = ("sync", "approve", "rollback")


def user_to_json(user: NebulyUser | None) -> dict[str, Any] | None:
    return None if user is None else user.to_json()


def user_from_json(doc: dict[str, Any] | None) -> NebulyUser | None:
    """Raises ValueError, KeyError or TypeError for a document that is not a user."""
    if doc is None:
        return None
    if not isinstance(doc, dict):
        raise ValueError("a user record is not a JSON object")
    end_user = _text(doc, "end_user")
    # Any id Nebuly may hold is allowed (control characters, length): approve must be
    # able to deactivate it. It is escaped wherever it is printed.
    if not end_user.strip():
        raise ValueError("an 'end_user' is empty")
    tags = doc.get("tags") or {}
    if not isinstance(tags, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        raise ValueError(f"the tags of {end_user!r} are not a mapping of strings")
    return NebulyUser(end_user=end_user, tags=dict(tags),
                      active_from=_date(doc.get("active_from")),
                      active_to=_date(doc.get("active_to")))


def _text(doc: dict[str, Any], key: str) -> str:
    value = doc[key]
    if not isinstance(value, str):
        raise ValueError(f"{key!r} is not a string")
    return value


def _date(value: Any) -> date | None:
    if not value:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not an ISO date")
    return date.fromisoformat(value)


def _aware(value: Any) -> datetime:
    """An ISO date-time from a state file; one written without a zone is taken as UTC."""
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not an ISO date-time")
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _unreadable(path: Path, exc: BaseException) -> StateError:
    if isinstance(exc, KeyError):
        what = f"missing key {exc}"
    elif isinstance(exc, OSError):
        what = exc.strerror or str(exc)
    else:
        what = str(exc)
    return StateError(f"{path} is unreadable ({what[:200]}); fix or delete it")


# What a malformed state file raises while it is taken apart.
_SHAPE_ERRORS = (KeyError, TypeError, ValueError, AttributeError)


@dataclass(frozen=True, slots=True)
class StoredPlan:
    plan_id: str
    created_at: datetime
    expires_at: datetime
    reason: str
    # (action, before, after) for each blocked deactivation/delete.
    changes: tuple[tuple[str, NebulyUser, NebulyUser | None], ...]
    # Set once a newer blocked plan replaced this one: its id stays approvable.
    superseded_by: str | None = None

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at


class StateDir:
    def __init__(self, root: Path) -> None:
        self.root = root

    def check_writable(self) -> None:
        try:
            if not self.root.exists():
                self.root.mkdir(mode=0o700, parents=True)
            private_folder(self.root, self.root)
            # mkstemp: a fresh name, O_EXCL, so a planted file or link is never written.
            fd, probe = tempfile.mkstemp(dir=self.root, prefix=".write-test.")
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise StateError(f"state_dir {self.root} is not writable: {exc.strerror}") from None
        for kind in ("runs", "plans"):
            if (self.root / kind).is_symlink():
                private_folder(self.root / kind, self.root)  # raises: never followed

    def unsafe(self) -> list[str]:
        """Why another local user could plant files here (empty when none can)."""
        return unsafe_folders(self.root, ("runs", "plans"))

    def check_safety(self, *, refuse: bool, logger: Any) -> None:
        """A state_dir other users can write to: a loud warning (on every run), or a
        StateError when `refuse` (approve and rollback act on the files found there)."""
        for problem in self.unsafe():
            if refuse:
                raise StateError(
                    f"state_dir {problem}; refusing to act on files another user may have "
                    f"planted. Make it private (chmod 700 {self.root}, owned by the user "
                    "syncd runs as) and check its files")
            logger.warning("security.state_dir_unsafe", state_dir=str(self.root),
                           problem=problem, consequence="another local user could plant "
                           "files syncd reads; approve and rollback refuse to run")

    def _write(self, path: Path, doc: Any) -> None:
        private_folder(path.parent, self.root)
        write_json_atomic(path, doc)

    # -- runs: what each run changed ------------------------------------------

    def save_run(self, run_id: str, changes: tuple[tuple[str, NebulyUser | None,
                                                        NebulyUser | None], ...],
                 *, kind: str = "sync", of: str | None = None) -> Path:
        path = self.root / "runs" / f"{run_id}.json"
        self._write(path, {
            "run_id": run_id, "kind": kind, "rollback_of": of,
            "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "changes": _changes_to_json(changes),
        })
        return path

    def load_run(self, run_id: str) -> list[tuple[str, NebulyUser | None, NebulyUser | None]]:
        """Raises StateError naming the file when it is missing or malformed."""
        return self.load_run_with_meta(run_id)[1]

    def load_run_with_meta(self, run_id: str) -> tuple[
            dict[str, Any], list[tuple[str, NebulyUser | None, NebulyUser | None]]]:
        """The run's changes, and when it was recorded, its kind (sync, approve,
        rollback) and what it undid: one read of the file for both."""
        path, doc = self._load("runs", run_id)
        try:
            _check_header(doc, "run_id", run_id, "run")
            if doc.get("kind", "sync") not in _RUN_KINDS:
                raise ValueError(f"unknown kind {escape_controls(str(doc['kind'])[:40])!r}")
            changes: list[tuple[str, NebulyUser | None, NebulyUser | None]] = []
            for change in _changes(doc):
                before, after = user_from_json(change["before"]), user_from_json(change["after"])
                changes.append((_checked_action(_text(change, "action"), before, after),
                                before, after))
        except _SHAPE_ERRORS as exc:
            raise _unreadable(path, exc) from None
        return {k: doc.get(k) for k in ("recorded_at", "kind", "rollback_of")}, changes

    def list_runs(self) -> list[str]:
        """Recorded run ids, oldest first (the files are not read)."""
        return [p.stem for p in self._listing("runs")]

    # -- pending plans ----------------------------------------------------------

    def save_plan(self, plan: StoredPlan, folder: str = "plans") -> Path:
        path = self.root / folder / f"{plan.plan_id}.json"
        doc = {
            "plan_id": plan.plan_id, "reason": plan.reason,
            "created_at": plan.created_at.isoformat(timespec="seconds"),
            "expires_at": plan.expires_at.isoformat(timespec="seconds"),
            "changes": _changes_to_json(plan.changes),
        }
        if plan.superseded_by:
            doc["superseded_by"] = plan.superseded_by
        self._write(path, doc)
        return path

    def supersede(self, plan: StoredPlan, by: str) -> None:
        """Move a pending plan aside, noting its successor: an id an admin got from an
        alert must still mean what was reviewed (see Orchestrator._recorded)."""
        self.save_plan(replace(plan, superseded_by=by), _SUPERSEDED)
        (self.root / "plans" / f"{plan.plan_id}.json").unlink(missing_ok=True)

    def load_plan(self, plan_id: str) -> StoredPlan:
        """A pending plan, or one superseded by a newer plan (`superseded_by` set).
        Raises StateError naming the file when it is missing or malformed."""
        if _ID.match(plan_id) and not (self.root / "plans" / f"{plan_id}.json").exists() \
                and (self.root / _SUPERSEDED / f"{plan_id}.json").is_file():
            path, doc = self._load(_SUPERSEDED, plan_id)
        else:
            path, doc = self._load("plans", plan_id)
        try:
            _check_header(doc, "plan_id", plan_id, "plan")
            changes = []
            for change in _changes(doc):
                before, after = user_from_json(change["before"]), user_from_json(change["after"])
                action = _checked_action(_text(change, "action"), before, after)
                if action in (Action.INSERT, Action.OVERWRITE) or before is None:
                    raise ValueError(f"a plan holds only changes of existing users, not an "
                                     f"{action}")
                changes.append((action, before, after))
            return StoredPlan(_text(doc, "plan_id"), _aware(doc["created_at"]),
                              _aware(doc["expires_at"]), _text(doc, "reason"), tuple(changes),
                              doc.get("superseded_by"))
        except _SHAPE_ERRORS as exc:
            raise _unreadable(path, exc) from None

    def successor(self, plan: StoredPlan) -> str:
        """The id of the plan that replaced `plan` and is itself still pending (or the
        last one of the chain)."""
        seen = {plan.plan_id}
        while plan.superseded_by and plan.superseded_by not in seen:
            seen.add(plan.superseded_by)
            try:
                plan = self.load_plan(plan.superseded_by)
            except StateError:
                break
        return plan.superseded_by or plan.plan_id

    def list_plans(self, problems: list[str] | None = None) -> list[StoredPlan]:
        """Pending plans, oldest first.

        An unreadable plan file does not hide the others: it is skipped and
        reported, appended to `problems` when given, otherwise logged.
        """
        plans = []
        for path in self._listing("plans"):
            try:
                plans.append(self.load_plan(path.stem))
            except StateError as exc:
                if problems is None:
                    log.get_logger().warning("state.unreadable", problem=str(exc))
                else:
                    problems.append(str(exc))
        return plans

    def close_plan(self, plan_id: str, outcome: str) -> None:
        """Move a plan out of the pending set, keeping it for the record."""
        source = self.root / "plans" / f"{plan_id}.json"
        if not source.exists():
            source = self.root / _SUPERSEDED / f"{plan_id}.json"
        target = self.root / "plans" / outcome / f"{plan_id}.json"
        private_folder(target.parent, self.root)
        os.replace(source, target)

    # -- the grace period's memory ------------------------------------------------

    def load_missing(self) -> dict[str, Missing]:
        path = self.root / "missing.json"
        try:
            doc = json.loads(read_text(path))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise _unreadable(path, exc) from None
        try:
            return {key: Missing(date.fromisoformat(v["first_missed"]), int(v["runs"]))
                    for key, v in doc["missing"].items()}
        except _SHAPE_ERRORS as exc:
            raise _unreadable(path, exc) from None

    def save_missing(self, missing: dict[str, Missing]) -> None:
        self._write(self.root / "missing.json", {"missing": {
            key: {"first_missed": m.first_missed.isoformat(), "runs": m.runs}
            for key, m in sorted(missing.items())}})

    def _load(self, kind: str, item_id: str) -> tuple[Path, dict[str, Any]]:
        if not _ID.match(item_id):
            raise StateError(f"{item_id!r} is not a run or plan id (like 20261122T101500Z-3fa2c1)")
        self._check_dirs(kind)
        path = self.root / kind / f"{item_id}.json"
        try:
            doc = json.loads(read_text(path))
        except FileNotFoundError:
            listing = "`syncd plans`" if kind == "plans" else "`syncd runs`"
            raise StateError(f"no {kind[:-1]} {item_id} in {self.root} (see {listing})") from None
        except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSON errors are ValueErrors
            raise _unreadable(path, exc) from None
        if not isinstance(doc, dict):
            raise _unreadable(path, ValueError("not a JSON object"))
        return path, doc

    def _check_dirs(self, kind: str) -> None:
        """A regular file where a directory belongs is a config mistake: say so."""
        if self.root.exists() and not self.root.is_dir():
            raise StateError(f"state_dir {self.root} is not a directory; point state_dir at a "
                             "directory (syncd creates it if it is missing)")
        folder = self.root / kind
        if folder.is_symlink():
            private_folder(folder, self.root)  # raises: links inside are never followed
        if folder.exists() and not folder.is_dir():
            raise StateError(f"{folder} is not a directory; move it away (syncd keeps its "
                             f"{kind} there)")

    def _listing(self, kind: str) -> list[Path]:
        """The state files of one kind, oldest first (ids sort by time)."""
        self._check_dirs(kind)
        folder = self.root / kind
        try:
            names = sorted(os.listdir(folder))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StateError(f"cannot list {folder}: {exc.strerror}") from None
        return [folder / n for n in names
                if n.endswith(".json") and not n.startswith(".") and (folder / n).is_file()]


def _changes_to_json(changes: Iterable[tuple[str, NebulyUser | None, NebulyUser | None]]
                     ) -> list[dict[str, Any]]:
    return [{"action": a, "before": user_to_json(b), "after": user_to_json(c)}
            for a, b, c in changes]


def _check_header(doc: dict[str, Any], key: str, expected: str, what: str) -> None:
    """The id inside a file must be its name: a record copied or planted under another
    name is not what the admin asked for."""
    if key in doc and doc[key] != expected:
        raise ValueError(f"it names {what} {escape_controls(str(doc[key])[:40])}, "
                         f"not {expected}")


def _checked_action(action: str, before: NebulyUser | None, after: NebulyUser | None) -> Action:
    """The change's action, consistent with its before and after (one user, both present
    except for an insert's before and a delete's after)."""
    try:
        checked = Action(action)
    except ValueError:
        raise ValueError(f"unknown action {escape_controls(action[:40])!r}") from None
    if checked is Action.INSERT:
        if before is not None or after is None:
            raise ValueError("an insert needs 'after' and no 'before'")
    elif checked is Action.DELETE:
        if before is None or after is not None:
            raise ValueError("a delete needs 'before' and no 'after'")
    elif checked is Action.OVERWRITE:
        if after is None:
            raise ValueError("an overwrite needs 'after'")
    elif before is None or after is None:
        raise ValueError(f"an {checked} needs 'before' and 'after'" if checked is Action.UPDATE
                         else f"a {checked} needs 'before' and 'after'")
    if before is not None and after is not None and id_key(before.end_user) != id_key(
            after.end_user):
        raise ValueError("'before' and 'after' are different users")
    return checked


def _changes(doc: dict[str, Any]) -> list[dict[str, Any]]:
    changes = doc["changes"]
    if not isinstance(changes, list) or not all(isinstance(c, dict) for c in changes):
        raise ValueError("'changes' is not a list of JSON objects")
    return changes
