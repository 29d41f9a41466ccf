"""The LDAP / Active Directory source: a complete, scoped roster or SourceError.

What "complete" means here: every page of every base DN was read to the last
cookie with a success result; a size/time/admin limit, a referral we do not
follow, a ranged attribute, a missing base DN or scope group, a timeout or a
dropped connection anywhere fails the whole read. A short roster would read as
departures downstream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from syncd import log
from syncd.config.secrets import read_secret
from syncd.core.templates import template_attributes
from syncd.sources.base import SourceError, SourceRead, SourceRecord
from syncd.sources.ldap.backends import (
    Attributes,
    BackendName,
    Connection,
    ConnectSettings,
    LdapFailure,
    choose_backend,
    connect,
)
from syncd.sources.ldap.config import (
    AD_DISABLED_FILTER,
    OPENLDAP_DISABLED_FILTER,
    LdapSourceConfig,
    url_problem,
)
from syncd.sources.ldap.values import (
    BUILTIN_BINARY,
    PSEUDO_ATTRIBUTES,
    ValueRules,
    dn_attributes,
    normalise_dn,
    search_filter,
)

PageCallback = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class SearchPlan:
    """What read() asks the directory for, derived once from the config."""

    filter: str
    attributes: tuple[str, ...]  # lower-case, as requested
    template_attributes: frozenset[str]
    client_groups: tuple[str, ...]  # group DNs expanded here (group_lookup: member)
    client_exclude_groups: tuple[str, ...]
    # A second, client-side check of the preset's disabled rule: the server
    # filter is the real one; this catches a server that does not evaluate it.
    disabled_check: str | None  # "ad" | "ppolicy" | None


def search_plan(config: LdapSourceConfig) -> SearchPlan:
    wanted = template_attributes(config)
    in_chain = config.effective_group_lookup == "in-chain"
    disabled = config.effective_disabled_filter
    check = None
    if disabled == AD_DISABLED_FILTER:
        check = "useraccountcontrol"
    elif disabled == OPENLDAP_DISABLED_FILTER:
        check = "pwdaccountlockedtime"
    requested = set(wanted - PSEUDO_ATTRIBUTES)
    if check:
        requested.add(check)
    return SearchPlan(
        filter=search_filter(
            config.user_filter, disabled_filter=disabled,
            groups=config.groups if in_chain else (),
            exclude_groups=config.exclude_groups if in_chain else (),
            nested=config.nested_groups),
        attributes=tuple(sorted(requested)),
        template_attributes=wanted,
        client_groups=() if in_chain else tuple(config.groups),
        client_exclude_groups=() if in_chain else tuple(config.exclude_groups),
        disabled_check=check,
    )


def _is_disabled(check: str | None, attrs: Mapping[str, list[bytes]]) -> bool:
    if check is None:
        return False
    values = attrs.get(check)
    if not values:
        return False
    if check == "pwdaccountlockedtime":
        return True
    try:
        return bool(int(values[0]) & 2)
    except ValueError:
        return False


class LdapSource:
    """Reads users from LDAP or AD. One connection per read(); nothing is cached.

    `on_page` (optional) is called after each page with the number of entries
    read so far: progress for logs/metrics, and the hook tests use to fail a
    server mid-read.
    """

    def __init__(self, config: LdapSourceConfig, *, on_page: PageCallback | None = None) -> None:
        self.config = config
        self.plan = search_plan(config)
        self.rules = ValueRules(config.multi_value, config.join_separator,
                                {**BUILTIN_BINARY, **config.binary_attributes})
        self._on_page = on_page
        # Per-entry hot path (100k entries a read): precomputed once here.
        self._plain = tuple(n for n in sorted(self.plan.template_attributes - PSEUDO_ATTRIBUTES)
                            if n not in self.rules.binary)
        self._binary = tuple(n for n in sorted(self.plan.template_attributes - PSEUDO_ATTRIBUTES)
                             if n in self.rules.binary)
        self._pseudo = self.plan.template_attributes & PSEUDO_ATTRIBUTES
        self._multi_first = config.multi_value == "first"
        self._lowered_names: dict[str, str] = {}

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def backend(self) -> BackendName:
        return choose_backend(self.config.backend)

    def read(self) -> SourceRead:
        try:
            return self._read()
        except LdapFailure as exc:
            raise SourceError(self.name, exc.message) from None

    def _read(self) -> SourceRead:
        config = self.config
        password = None
        if config.bind_dn:
            try:
                password = read_secret(config.bind_password, config.bind_password_file,
                                       "bind_password")
            except ValueError as exc:
                raise SourceError(self.name, str(exc)) from None
            log.register_secret(password)
        conn = self._connect(password)
        del password
        try:
            entries = self._search(conn)
            if self.plan.client_groups:
                scope = self._expand(conn, self.plan.client_groups, entries.keys())
                entries = {k: v for k, v in entries.items() if k in scope}
            if self.plan.client_exclude_groups:
                out = self._expand(conn, self.plan.client_exclude_groups, entries.keys())
                entries = {k: v for k, v in entries.items() if k not in out}
        finally:
            conn.close()
        return SourceRead(tuple(entries.values()))

    # -- connection with failover ---------------------------------------------------

    def _connect(self, password: str | None) -> Connection:
        config = self.config
        backend = self.backend
        errors: list[str] = []
        for url in config.urls:
            # Config validation already refuses plaintext; this guards configs built
            # without validation (model_construct) so a password never goes out in clear.
            problem = url_problem(url, config.start_tls, config.allow_plaintext)
            if problem:
                raise SourceError(self.name, problem)
            settings = ConnectSettings(url, config.start_tls, config.ca_file, config.tls_verify,
                                       config.connect_timeout, config.timeout)
            try:
                conn = connect(backend, settings)
            except LdapFailure as exc:
                errors.append(exc.message)
                continue  # next server in the list
            try:
                conn.bind(config.bind_dn, password)
            except LdapFailure as exc:
                conn.close()
                if exc.kind == "bind":
                    # Same account everywhere: trying more servers only risks a lockout.
                    raise SourceError(self.name, f"bind as {config.bind_dn!r} on {url} "
                                      f"refused: {exc.message}") from None
                errors.append(exc.message)
                continue
            return conn
        hint = ""
        if any(u.startswith("ldaps") for u in config.urls) or config.start_tls:
            hint = (" (if the server is up, check TLS: ca_file must hold the CA that signed "
                    "the server certificate, and the URL host must be a name in it)")
        raise SourceError(self.name, "no LDAP server could be reached: "
                          + "; ".join(errors) + hint)

    # -- search -------------------------------------------------------------------

    def _search(self, conn: Connection) -> dict[str, SourceRecord]:
        """Every matching entry of every base DN as a record, keyed by normalised DN.

        Entries become records at once so the raw values of a large directory are
        never all held in memory together.
        """
        config = self.config
        entries: dict[str, SourceRecord] = {}
        for base in config.base_dns:
            try:
                pages = conn.search(base, config.scope, self.plan.filter, self.plan.attributes,
                                    config.page_size)
                for page in pages:
                    if page.references and config.referrals == "fail":
                        raise SourceError(self.name, (
                            f"the search under {base!r} returned a referral to "
                            f"{page.references[0]} which syncd does not follow, so the read "
                            "would be incomplete; search a narrower base_dn, use the Global "
                            "Catalog port (3268/3269), or set referrals: ignore"))
                    for dn, attrs in page.entries:
                        lowered = self._lower(dn, attrs)
                        key = normalise_dn(dn)
                        if key not in entries and not _is_disabled(self.plan.disabled_check,
                                                                   lowered):
                            entries[key] = self._record(dn, lowered)
                    if self._on_page is not None:
                        self._on_page(len(entries))
            except LdapFailure as exc:
                raise SourceError(self.name, self._search_message(base, exc)) from None
        return entries

    def _search_message(self, base: str, exc: LdapFailure) -> str:
        if exc.kind == "no-such-object":
            return (f"base_dn {base!r} does not exist or the bind account cannot see it: "
                    f"{exc.message}")
        if exc.kind == "incomplete":
            return (f"the search under {base!r} stopped before the end ({exc.message}); "
                    "no partial roster is used. Raise the server limits for the bind account "
                    "or lower page_size")
        return f"the read under {base!r} failed part-way ({exc.message}); nothing was used"

    def _lower(self, dn: str, attrs: Attributes) -> Attributes:
        # Every entry repeats the same few names: lower-case and check each once.
        names = self._lowered_names
        out: Attributes = {}
        for name, values in attrs.items():
            key = names.get(name)
            if key is None:
                key = name.lower()
                if ";range=" in key:
                    # AD hands out large multi-valued attributes in ranges; reading
                    # only the first range would be a silent truncation.
                    raise SourceError(self.name, (
                        f"{dn}: the server returned {name} in ranges (very large "
                        "multi-valued attribute); syncd does not read ranges. For group "
                        "scope on AD use group_lookup: in-chain"))
                names[name] = key
            out[key] = values
        return out

    # -- client-side group scope ------------------------------------------------------

    def _expand(self, conn: Connection, roots: Iterable[str], users: Iterable[str]) -> set[str]:
        """Normalised DNs of the users (among `users`) in `roots`, following nesting.

        Breadth-first over member DNs that are not known users; `seen` makes
        cycles (A in B in A) harmless. A missing root group is an error: a typo
        in `groups` must not empty the roster.
        """
        member_attr = self.config.member_attribute.lower()
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
            attrs = conn.read(dn, [member_attr])
            if attrs is None:
                if is_root:
                    raise SourceError(self.name, (
                        f"group {dn!r} does not exist or the bind account cannot read it"))
                continue  # a dangling member value: normal without referential integrity
            members = self._lower(dn, attrs).get(member_attr, [])
            for raw in members:
                member = raw.decode("utf-8", errors="replace")
                member_key = normalise_dn(member)
                if member_key in user_keys:
                    found.add(member_key)
                elif self.config.nested_groups and member and member_key not in seen:
                    queue.append((member, False))
        return found

    # -- records -------------------------------------------------------------------

    def _record(self, dn: str, attrs: Attributes) -> SourceRecord:
        values: dict[str, str] = {}
        for name in self._plain:
            raw = attrs.get(name)
            if not raw:
                continue
            if len(raw) == 1 or self._multi_first:
                # Inline fast path of ValueRules.render for the common single text value.
                try:
                    values[name] = raw[0].decode("utf-8")
                except UnicodeDecodeError:
                    values[name] = raw[0].hex()
            else:
                values[name] = self.rules.render(name, raw) or ""
        for name in self._binary:
            value = self.rules.render(name, attrs.get(name, ()))
            if value is not None:
                values[name] = value
        if self._pseudo:
            values.update({k: v for k, v in dn_attributes(dn).items() if k in self._pseudo})
        # Keys are lower-case by construction (template names are lowered at parse
        # time), so the record is built directly rather than through base.record().
        return SourceRecord(values, dn)
