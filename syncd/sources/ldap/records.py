"""Directory entries -> records: the LDAP source's per-entry hot path.

Runs once per person (a million times in a large read), so each attribute name
the server sends is lowered and classified once per source, and repeated values
(departments, cities) are decoded once and shared.
"""

from __future__ import annotations

from syncd.core.model import SourceRecord
from syncd.sources.base import SourceError
from syncd.sources.ldap.backends import Attributes
from syncd.sources.ldap.values import PSEUDO_ATTRIBUTES, ValueRules, dn_attributes


def _is_disabled(check: str, values: list[bytes]) -> bool:
    """Whether the values of the disabled-check attribute `check` mark the account."""
    if not values:
        return False
    if check == "pwdaccountlockedtime":
        return True
    try:
        return bool(int(values[0]) & 2)
    except ValueError:
        return False


# How an attribute the server returned is turned into a record value.
_PLAIN, _BINARY, _UNUSED = 0, 1, 2
# Distinct values remembered per attribute, so people who share a department or a
# city share one string; an attribute with more distinct values (mail) stops
# being remembered, so a unique value per person costs nothing extra.
_MAX_SHARED_VALUES = 4096


def _text(raw: bytes) -> str:
    """A single text value (ValueRules.render's rule, inlined for the hot path)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.hex()


class RecordBuilder:
    """Builds the record of one entry by the source's value rules.

    `wanted`: the template attribute names (lower-case); `check`: the lower-case
    attribute of the client-side disabled check, or None.
    """

    def __init__(self, source: str, wanted: frozenset[str], check: str | None,
                 rules: ValueRules) -> None:
        self._source = source
        self._wanted = wanted
        self._check = check
        self.rules = rules
        self._pseudo = wanted & PSEUDO_ATTRIBUTES
        self._multi_first = rules.multi_value == "first"
        # Attribute name as the server spells it -> (lower-case name, _PLAIN/_BINARY/
        # _UNUSED, whether it is the disabled check).
        self._names: dict[str, tuple[str, int, bool]] = {}
        # Lower-case name -> raw value -> its text, or None once the attribute has
        # more than _MAX_SHARED_VALUES distinct values.
        self._shared: dict[str, dict[bytes, str] | None] = {}

    def _name(self, dn: str, name: str) -> tuple[str, int, bool]:
        """Lower-case and classify an attribute name the first time the server sends it."""
        key = name.lower()
        if ";range=" in key:
            # AD hands out large multi-valued attributes in ranges; reading
            # only the first range would be a silent truncation.
            raise SourceError(self._source, (
                f"{dn}: the server returned {name} in ranges (very large "
                "multi-valued attribute); syncd reads ranges only for group "
                "members (group_lookup: member): remove it from the templates"))
        wanted = key in self._wanted and key not in PSEUDO_ATTRIBUTES
        how = (_UNUSED if not wanted else _BINARY if key in self.rules.binary else _PLAIN)
        kind = (key, how, key == self._check)
        self._names[name] = kind
        if how == _PLAIN:
            self._shared.setdefault(key, {})
        return kind

    def record(self, dn: str, attrs: Attributes) -> SourceRecord | None:
        """The entry as a record, or None for a disabled account (the client-side check).

        One pass over the entry's attributes: this runs once per person.
        """
        names = self._names
        values: dict[str, str] = {}
        for name, raw in attrs.items():
            key, how, check = names.get(name) or self._name(dn, name)
            if check and _is_disabled(key, raw):
                return None
            if not raw or how == _UNUSED:
                continue
            if how == _PLAIN and (len(raw) == 1 or self._multi_first):
                shared = self._shared.get(key)
                if shared is None:
                    values[key] = _text(raw[0])
                    continue
                text = shared.get(raw[0])
                if text is None:
                    text = _text(raw[0])
                    if len(shared) < _MAX_SHARED_VALUES:
                        shared[raw[0]] = text
                    else:
                        self._shared[key] = None
                values[key] = text
            elif how == _PLAIN:
                values[key] = self.rules.render(key, raw) or ""
            else:
                value = self.rules.render(key, raw)
                if value is not None:
                    values[key] = value
        if self._pseudo:
            values.update({k: v for k, v in dn_attributes(dn).items() if k in self._pseudo})
        # Keys are lower-case by construction (template names are lowered at parse
        # time), so the record is built directly rather than through base.record().
        return SourceRecord(values, dn)
