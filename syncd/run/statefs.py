"""The state directory as a file system: who may write it, and reading and writing in
it without following a link someone else planted.

state_dir holds people's data (e-mails, departments) and the records `rollback`
and `approve` act on. If another local user can write to it, they can plant a
symlink that syncd would write through, or a run record that `rollback` would
apply. So: its permissions are checked (a warning on every run and in the commands
that list what is there, a refusal for approve and rollback), folders syncd creates
are private (0700), files are created by mkstemp (0600, O_EXCL), and nothing inside
is followed if it is a symbolic link. The state_dir path itself may be a link: that
is the admin's choice.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


class StateError(Exception):
    pass


def unsafe_reason(path: Path, info: os.stat_result, uid: int, gid: int) -> str | None:
    """Why another local user could change what is in `path`, or None.

    Trusted: owned by syncd's user (or root, e.g. a mount point), writable by no
    one else except syncd's own group (Kubernetes fsGroup makes volumes group-
    writable by the pod's group).
    """
    mode = stat.S_IMODE(info.st_mode)
    if mode & stat.S_IWOTH:
        return f"{path} is writable by every user (mode {mode:04o})"
    if mode & stat.S_IWGRP and info.st_gid != gid:
        return (f"{path} is writable by group {info.st_gid}, which syncd does not run as "
                f"(mode {mode:04o})")
    if info.st_uid not in (uid, 0):
        return f"{path} is owned by uid {info.st_uid}, not by the user syncd runs as (uid {uid})"
    return None


def unsafe_folders(root: Path, subfolders: tuple[str, ...]) -> list[str]:
    """Problems with root and those of its subfolders that exist (see unsafe_reason)."""
    problems = []
    uid, gid = os.geteuid(), os.getegid()
    for folder in (root, *(root / name for name in subfolders)):
        try:
            info = folder.stat()
        except FileNotFoundError:
            continue
        except OSError as exc:
            problems.append(f"{folder}: {exc.strerror}")
            continue
        if reason := unsafe_reason(folder, info, uid, gid):
            problems.append(reason)
    return problems


def _link_error(path: Path) -> StateError:
    return StateError(f"{path} is a symbolic link; syncd never follows links inside "
                      "state_dir: remove it")


def private_folder(path: Path, root: Path) -> None:
    """Make sure `path` (root itself, or a folder inside it) is a real directory,
    creating it 0700. A link inside root is refused; root itself may be one."""
    if path != root:
        private_folder(path.parent, root)
    try:
        info = path.lstat()
    except FileNotFoundError:
        with contextlib.suppress(FileExistsError):  # created meanwhile: checked below
            path.mkdir(mode=0o700)
        info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        if path == root:
            if path.is_dir():
                return
        else:
            raise _link_error(path)
    if not path.is_dir():
        raise StateError(f"{path} is not a directory; move it away (syncd keeps its state "
                         "there)")


def read_text(path: Path) -> str:
    """A state file's text, refusing a symbolic link or anything but a regular file.
    Raises FileNotFoundError, StateError, OSError, UnicodeDecodeError."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _link_error(path) from None
        raise
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise StateError(f"{path} is not a regular file; remove it")
        return handle.read().decode("utf-8")


def _joined(chunks: Iterator[str], size: int = 4096) -> Iterator[str]:
    """The encoder's pieces (a few characters each) joined `size` at a time: escaping
    per piece was a call and a regex search for every few characters, about half again
    the time of writing the file; per block it is a small part of it."""
    block: list[str] = []
    for chunk in chunks:
        block.append(chunk)
        if len(block) == size:
            yield "".join(block)
            block.clear()
    yield "".join(block)


def write_json_atomic(path: Path, doc: Any, *,
                      escape: Callable[[str], str] | None = None) -> None:
    """`doc` as JSON in `path`, all or nothing; `escape` rewrites each piece of JSON text."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            if escape is None:
                json.dump(doc, handle, indent=1, ensure_ascii=False)
            else:  # the same streaming as json.dump, escaped on its way out
                chunks = json.JSONEncoder(indent=1, ensure_ascii=False).iterencode(doc)
                handle.writelines(map(escape, _joined(chunks)))
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
