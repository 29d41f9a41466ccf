"""Client-side group scope (`group_lookup: member`), with AD range retrieval.

AD hands out a multi-valued attribute larger than its MaxValRange (1500 by
default) in ranges: the entry carries `member;range=0-1499` and no `member`,
and the client asks again for `member;range=1500-*` until a range ends in
`*`. Reading only the first range would silently drop members, so every
range is read, and a range that does not start where the last one ended fails
the read.

With the AD preset the member attribute is asked for in windows of
RANGE_WINDOW from the start: a DC that serves more per range still answers
within the window, one that serves fewer says where its range ended, and the
loop goes on from there either way. (Samba ignores MaxValRange and cuts only
where a client asks it to, so asking in windows is also what makes the ranged
path run against Samba.) Other presets ask for the plain attribute and follow
ranges only if the server answers with them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from syncd import log
from syncd.sources.base import SourceError
from syncd.sources.ldap.backends import Connection
from syncd.sources.ldap.values import normalise_dn

RANGE_WINDOW = 1500  # AD's default MaxValRange

logger = log.get_logger()


@dataclass(frozen=True, slots=True)
class GroupReader:
    source: str
    member_attribute: str  # lower-case
    nested: bool
    ranged: bool  # ask in ranges from the start (AD)

    def members(self, conn: Connection, dn: str) -> list[bytes] | None:
        """Every value of the member attribute of `dn`, or None if `dn` is not visible."""
        attr = self.member_attribute
        start = 0
        request = f"{attr};range=0-{RANGE_WINDOW - 1}" if self.ranged else attr
        values: list[bytes] = []
        requests = 0
        while True:
            attrs = conn.read(dn, [request])
            requests += 1
            if attrs is None:
                if requests == 1:
                    return None
                raise SourceError(self.source, f"group {dn!r} vanished while its "
                                  f"{attr} ranges were read")
            end = self._take(dn, attrs, start, values)
            if end is None:
                break
            start = end + 1
            request = f"{attr};range={start}-{start + RANGE_WINDOW - 1}"
        if values:  # groups only: the users and empty entries read on the way stay quiet
            logger.debug("source.group_read", source=self.source, group=dn,
                         members=len(values), requests=requests)
        return values

    def _take(self, dn: str, attrs: dict[str, list[bytes]], start: int,
              values: list[bytes]) -> int | None:
        """Add this answer's values; the last index read when more ranges follow."""
        attr = self.member_attribute
        for name, got in attrs.items():
            lowered = name.lower()
            if lowered == attr:
                values.extend(got)
                return None
            if lowered.startswith(f"{attr};range="):
                low, _, high = lowered.split("=", 1)[1].partition("-")
                if not low.isdigit() or int(low) != start or not (high == "*" or
                                                                   high.isdigit()):
                    raise SourceError(self.source, (
                        f"group {dn!r}: the server answered {name} where the range "
                        f"starting at {start} was expected; the member list would be "
                        "incomplete"))
                values.extend(got)
                if high == "*":
                    return None
                if int(high) < start:
                    raise SourceError(self.source, f"group {dn!r}: empty range {name}")
                return int(high)
        return None  # no values (an empty group, or the last range ended exactly)

    def expand(self, conn: Connection, roots: Iterable[str], users: Iterable[str]) -> set[str]:
        """Normalised DNs of the users (among `users`) in `roots`, following nesting.

        Breadth-first over member DNs that are not known users; `seen` makes
        cycles (A in B in A) harmless. The roots were checked to exist before
        the read; a root that is gone now still fails rather than empty the scope.
        """
        user_keys = set(users)
        found: set[str] = set()
        seen: set[str] = set()
        queue: list[tuple[str, bool]] = [(dn, True) for dn in roots]
        while queue:
            dn, is_root = queue.pop()
            key = normalise_dn(dn)
            if key in seen:
                continue
            seen.add(key)
            members = self.members(conn, dn)
            if members is None:
                if is_root:
                    raise SourceError(self.source, (
                        f"group {dn!r} does not exist or the bind account cannot read it"))
                continue  # a dangling member value: normal without referential integrity
            for raw in members:
                member = raw.decode("utf-8", errors="replace")
                member_key = normalise_dn(member)
                if member_key in user_keys:
                    found.add(member_key)
                elif self.nested and member and member_key not in seen:
                    queue.append((member, False))
        return found
