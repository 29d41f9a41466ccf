"""Pure helpers of the LDAP source: DNs, filters, and raw values -> template strings.

No I/O and no ldap3/python-ldap import: both backends hand over raw bytes, and
everything here is unit-tested with plain bytes.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

BinaryKind = Literal["guid", "sid", "hex", "base64"]

# Binary attributes every AD has; an admin may add more with `binary_attributes`.
BUILTIN_BINARY: Mapping[str, BinaryKind] = MappingProxyType({
    "objectguid": "guid",
    "objectsid": "sid",
    "msexchmailboxguid": "guid",
    "ms-ds-consistencyguid": "guid",
})

# Template names computed from the entry's DN rather than read from the directory.
# A `dn_` prefix keeps them apart from real attributes such as inetOrgPerson's `ou`.
PSEUDO_ATTRIBUTES = frozenset({"dn", "dn_rdn", "dn_ou", "dn_ou_path", "dn_parent", "dn_domain"})

IN_CHAIN_RULE = "1.2.840.113556.1.4.1941"  # AD LDAP_MATCHING_RULE_IN_CHAIN


# --- values ---------------------------------------------------------------------


def guid_string(raw: bytes) -> str:
    """AD objectGUID bytes -> `c8e2a5b1-...`: the first three fields are little-endian."""
    if len(raw) != 16:
        raise ValueError(f"a GUID is 16 bytes, got {len(raw)}")
    return str(uuid.UUID(bytes_le=raw))


def sid_string(raw: bytes) -> str:
    """objectSid bytes -> `S-1-5-21-...` (MS-DTYP 2.4.2.2)."""
    if len(raw) < 8:
        raise ValueError(f"a SID is at least 8 bytes, got {len(raw)}")
    revision, count = raw[0], raw[1]
    if len(raw) != 8 + 4 * count:
        raise ValueError(f"a SID with {count} sub-authorities is {8 + 4 * count} bytes, "
                         f"got {len(raw)}")
    authority = int.from_bytes(raw[2:8], "big")
    subs = [int.from_bytes(raw[8 + 4 * i:12 + 4 * i], "little") for i in range(count)]
    return "-".join(["S", str(revision), str(authority), *map(str, subs)])


def render_value(raw: bytes, kind: BinaryKind | None) -> str:
    """One raw value as text. Never fails: a malformed value must not drop a person
    (a dropped record reads as a departure), so anything undecodable becomes hex."""
    if kind in ("guid", "sid"):
        try:
            return guid_string(raw) if kind == "guid" else sid_string(raw)
        except ValueError:
            return raw.hex()
    if kind == "hex":
        return raw.hex()
    if kind == "base64":
        return base64.b64encode(raw).decode("ascii")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.hex()


@dataclass(frozen=True, slots=True)
class ValueRules:
    """How raw attribute values become one string per attribute."""

    multi_value: Literal["first", "join"] = "first"
    separator: str = ";"
    binary: Mapping[str, BinaryKind] = field(default_factory=lambda: BUILTIN_BINARY)

    def render(self, name: str, values: Sequence[bytes]) -> str | None:
        if not values:
            return None
        kind = self.binary.get(name)
        if self.multi_value == "first" or len(values) == 1:
            return render_value(values[0], kind)
        # Sorted: LDAP values are a set, and a stable order keeps tags from flapping.
        return self.separator.join(sorted({render_value(v, kind) for v in values}))


# --- DNs ------------------------------------------------------------------------


def _unescape(value: str) -> str:
    """RFC 4514 escapes (`\\,` and `\\2C`) -> text."""
    if "\\" not in value:
        return value
    out = bytearray()
    i = 0
    while i < len(value):
        char = value[i]
        if char == "\\" and i + 1 < len(value):
            pair = value[i + 1:i + 3]
            if len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair):
                out += bytes.fromhex(pair)
                i += 3
                continue
            out += value[i + 1].encode()
            i += 2
            continue
        out += char.encode()
        i += 1
    return out.decode("utf-8", errors="replace")


def _split(text: str, sep: str) -> list[str]:
    parts, current, escaped = [], [], False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif char == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def parse_dn(dn: str) -> list[list[tuple[str, str]]]:
    """`uid=a+cn=b,ou=x` -> [[("uid","a"),("cn","b")],[("ou","x")]] (types lower-case)."""
    rdns = []
    for rdn in _split(dn, ","):
        if not rdn.strip():
            continue
        avas = []
        for ava in _split(rdn, "+"):
            attr, _, value = ava.partition("=")
            avas.append((attr.strip().lower(), _unescape(value.strip())))
        rdns.append(avas)
    return rdns


def normalise_dn(dn: str) -> str:
    """A comparison key: case and spacing differences between DN spellings vanish."""
    if "\\" not in dn and "+" not in dn:
        # Fast paths for the usual DN (no escapes, single-valued RDNs): once per entry.
        if " =" not in dn and "= " not in dn and ", " not in dn and " ," not in dn:
            return dn.lower()
        return ",".join("=".join(p.strip() for p in rdn.split("=", 1))
                        for rdn in dn.lower().split(",") if rdn.strip())
    return ",".join("+".join(sorted(f"{t}={v.lower()}" for t, v in rdn))
                    for rdn in parse_dn(dn))


def dn_attributes(dn: str) -> dict[str, str]:
    """The pseudo-attributes a template may use (see PSEUDO_ATTRIBUTES)."""
    rdns = parse_dn(dn)
    ous = [v for rdn in rdns for t, v in rdn if t == "ou"]
    out = {"dn": dn}
    if rdns:
        out["dn_rdn"] = rdns[0][0][1]
        parent = _split(dn, ",")[1:]
        if parent:
            out["dn_parent"] = ",".join(parent).strip()
    if ous:
        out["dn_ou"] = ous[0]
        out["dn_ou_path"] = "/".join(reversed(ous))
    domain = [v for rdn in rdns for t, v in rdn if t == "dc"]
    if domain:
        out["dn_domain"] = ".".join(domain)
    return out


# --- filters --------------------------------------------------------------------


def escape_filter_value(value: str) -> str:
    """RFC 4515 escaping for a value placed inside a filter (e.g. a group DN)."""
    out = []
    for char in value:
        if char in "\\*()\x00":
            out.append(f"\\{ord(char):02x}")
        else:
            out.append(char)
    return "".join(out)


def _any_of(parts: Sequence[str]) -> str:
    return parts[0] if len(parts) == 1 else f"(|{''.join(parts)})"


def member_of_filter(groups: Sequence[str], nested: bool) -> str:
    """Server-side group scope: `memberOf` (direct) or AD's in-chain rule (nested)."""
    attr = f"memberOf:{IN_CHAIN_RULE}:" if nested else "memberOf"
    return _any_of([f"({attr}={escape_filter_value(g)})" for g in groups])


def search_filter(user_filter: str, *, disabled_filter: str | None = None,
                  groups: Sequence[str] = (), exclude_groups: Sequence[str] = (),
                  nested: bool = True) -> str:
    """The admin's filter AND not-disabled AND (server-side) group scope.

    The disabled rule is ANDed outside the admin's filter so that no filter an
    admin writes can bring disabled accounts back (only include_disabled can).
    """
    parts = [user_filter]
    if disabled_filter:
        parts.append(f"(!{disabled_filter})")
    if groups:
        parts.append(member_of_filter(groups, nested))
    if exclude_groups:
        parts.append(f"(!{member_of_filter(exclude_groups, nested)})")
    return parts[0] if len(parts) == 1 else f"(&{''.join(parts)})"
