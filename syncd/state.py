"""The state directory: run records (for rollback), pending plans (for approval),
and who has been missing since when (for the departure grace period).

Plain JSON files written atomically, so an admin can read them and a kill -9
never leaves half a file behind.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from syncd.model import NebulyUser
from syncd.plan import Missing

_ID = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}$")


class StateError(Exception):
    pass


def write_json_atomic(path: Path, doc: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(doc, handle, indent=1, ensure_ascii=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def user_to_json(user: NebulyUser | None) -> dict[str, Any] | None:
    return None if user is None else user.to_json()


def user_from_json(doc: dict[str, Any] | None) -> NebulyUser | None:
    if doc is None:
        return None
    return NebulyUser(
        end_user=doc["end_user"],
        tags=dict(doc.get("tags") or {}),
        active_from=date.fromisoformat(doc["active_from"]) if doc.get("active_from") else None,
        active_to=date.fromisoformat(doc["active_to"]) if doc.get("active_to") else None,
    )


@dataclass(frozen=True, slots=True)
class StoredPlan:
    plan_id: str
    created_at: datetime
    expires_at: datetime
    reason: str
    # (action, before, after) for each blocked deactivation/delete.
    changes: tuple[tuple[str, NebulyUser, NebulyUser | None], ...]

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at


class StateDir:
    def __init__(self, root: Path) -> None:
        self.root = root

    def check_writable(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise StateError(f"state_dir {self.root} is not writable: {exc.strerror}") from None

    # -- runs: what each run changed ------------------------------------------

    def save_run(self, run_id: str, changes: tuple[tuple[str, NebulyUser | None,
                                                        NebulyUser | None], ...],
                 *, kind: str = "sync", of: str | None = None) -> Path:
        path = self.root / "runs" / f"{run_id}.json"
        write_json_atomic(path, {
            "run_id": run_id, "kind": kind, "rollback_of": of,
            "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "changes": [{"action": a, "before": user_to_json(b), "after": user_to_json(c)}
                        for a, b, c in changes],
        })
        return path

    def load_run(self, run_id: str) -> list[tuple[str, NebulyUser | None, NebulyUser | None]]:
        doc = self._load("runs", run_id)
        return [(c["action"], user_from_json(c["before"]), user_from_json(c["after"]))
                for c in doc["changes"]]

    def list_runs(self) -> list[str]:
        return sorted(p.stem for p in (self.root / "runs").glob("*.json"))

    # -- pending plans ----------------------------------------------------------

    def save_plan(self, plan: StoredPlan) -> Path:
        path = self.root / "plans" / f"{plan.plan_id}.json"
        write_json_atomic(path, {
            "plan_id": plan.plan_id, "reason": plan.reason,
            "created_at": plan.created_at.isoformat(timespec="seconds"),
            "expires_at": plan.expires_at.isoformat(timespec="seconds"),
            "changes": [{"action": a, "before": user_to_json(b), "after": user_to_json(c)}
                        for a, b, c in plan.changes],
        })
        return path

    def load_plan(self, plan_id: str) -> StoredPlan:
        doc = self._load("plans", plan_id)
        changes = []
        for change in doc["changes"]:
            before = user_from_json(change["before"])
            assert before is not None
            changes.append((change["action"], before, user_from_json(change["after"])))
        return StoredPlan(doc["plan_id"], datetime.fromisoformat(doc["created_at"]),
                          datetime.fromisoformat(doc["expires_at"]), doc["reason"],
                          tuple(changes))

    def list_plans(self) -> list[StoredPlan]:
        return [self.load_plan(p.stem) for p in sorted((self.root / "plans").glob("*.json"))]

    def close_plan(self, plan_id: str, outcome: str) -> None:
        """Move a plan out of the pending set, keeping it for the record."""
        source = self.root / "plans" / f"{plan_id}.json"
        target = self.root / "plans" / outcome / f"{plan_id}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)

    # -- the grace period's memory ------------------------------------------------

    def load_missing(self) -> dict[str, Missing]:
        path = self.root / "missing.json"
        if not path.exists():
            return {}
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            return {key: Missing(date.fromisoformat(v["first_missed"]), int(v["runs"]))
                    for key, v in doc["missing"].items()}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StateError(f"{path} is unreadable ({exc}); fix or delete it") from None

    def save_missing(self, missing: dict[str, Missing]) -> None:
        write_json_atomic(self.root / "missing.json", {"missing": {
            key: {"first_missed": m.first_missed.isoformat(), "runs": m.runs}
            for key, m in sorted(missing.items())}})

    def _load(self, kind: str, item_id: str) -> dict[str, Any]:
        if not _ID.match(item_id):
            raise StateError(f"{item_id!r} is not a run or plan id (like 20261122T101500Z-3fa2c1)")
        path = self.root / kind / f"{item_id}.json"
        try:
            doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            listing = "`syncd plans`" if kind == "plans" else f"the files in {path.parent}"
            raise StateError(f"no {kind[:-1]} {item_id} in {self.root} (see {listing})") from None
        except (OSError, ValueError) as exc:
            raise StateError(f"{path} is unreadable: {exc}") from None
        return doc
