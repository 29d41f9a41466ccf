"""The lock files in requirements/ satisfy pyproject.toml, so the image and `make test`
install what the project declares (a dependency added without `scripts/lock.sh` fails here)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
EXTRAS: dict[str, list[str]] = PROJECT["optional-dependencies"]
_PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^ ;\\]+)")


def _pins(lock: str) -> dict[str, str]:
    text = (ROOT / "requirements" / lock).read_text(encoding="utf-8")
    pins = {canonicalize_name(m.group(1)): m.group(2)
            for m in map(_PIN.match, text.splitlines()) if m}
    # Every pin carries hashes: pip's --require-hashes refuses the file otherwise.
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 1)[1])
    assert all("--hash=sha256:" in b for b in blocks if _PIN.match(b)), lock
    return pins


def _requirements(extras: list[str]) -> list[Requirement]:
    """The project's requirements with these extras; `syncd[...]` self-references expanded."""
    found = [Requirement(r) for r in PROJECT["dependencies"]]
    todo = list(extras)
    while todo:
        for text in EXTRAS[todo.pop()]:
            req = Requirement(text)
            if canonicalize_name(req.name) == "syncd":
                todo += sorted(req.extras)
            else:
                found.append(req)
    return found


def _image_extras() -> list[str]:
    return [name for name in EXTRAS if name not in ("dev", "all")]


@pytest.mark.parametrize(("lock", "extras"), [
    ("core.txt", []),
    ("slim.txt", ["ldap-fast"]),
    ("full.txt", _image_extras()),
    ("dev.txt", ["all", "dev"]),
])
def test_lock_file_satisfies_pyproject(lock: str, extras: list[str]) -> None:
    pins = _pins(lock)
    env = {"python_version": "3.11", "sys_platform": "linux",
           "platform_python_implementation": "CPython", "extra": ""}
    for req in _requirements(extras):
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        name = canonicalize_name(req.name)
        assert name in pins, f"{req} is not in requirements/{lock}: run scripts/lock.sh"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"requirements/{lock} pins {name}=={pins[name]}, outside {req}: run scripts/lock.sh")


def test_images_share_the_tested_versions() -> None:
    """slim/full/core are compiled against dev.txt: the image runs what the tests ran."""
    dev = _pins("dev.txt")
    for lock in ("core.txt", "slim.txt", "full.txt"):
        for name, version in _pins(lock).items():
            assert dev.get(name) == version, f"{lock}: {name}=={version}, dev.txt: {dev.get(name)}"


def test_slim_image_has_no_entra_sdk() -> None:
    assert "msgraph-sdk" not in _pins("slim.txt")
    assert "msgraph-sdk" in _pins("full.txt")
