"""The LDAP / Active Directory source: a complete, scoped roster or SourceError.

What "complete" means here: every page of every base DN was read to the last
cookie with a success result; a size/time/admin limit, a referral we do not
follow, a ranged attribute, a missing base DN or scope group, a timeout or a
dropped connection anywhere fails the whole read. A short roster would read as
departures downstream.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass

from syncd import log
from syncd.config.secrets import read_secret
from syncd.core.templates import template_attributes
from syncd.sources.base import NO_PROGRESS, ReadProgress, SourceError, SourceRead, SourceRecord
from syncd.sources.ldap.backends import (
    ADMIN_LIMIT_EXCEEDED,
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
from syncd.sources.ldap.groups import GroupReader
from syncd.sources.ldap.records import RecordBuilder
from syncd.sources.ldap.tls import probe, ssl_context
from syncd.sources.ldap.values import (
    BUILTIN_BINARY,
    PSEUDO_ATTRIBUTES,
    ValueRules,
    normalise_dn,
    search_filter,
)

logger = log.get_logger()


class _PageRefused(Exception):
    """The server refused the page size before sending any entry."""


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


class LdapSource:
    """Reads users from LDAP or AD. One connection per read(); nothing is cached.

    The read's `progress` is told after each page (the run's progress events).
    """

    def __init__(self, config: LdapSourceConfig) -> None:
        self.config = config
        self.plan = search_plan(config)
        self.rules = ValueRules(config.multi_value, config.join_separator,
                                {**BUILTIN_BINARY, **config.binary_attributes})
        self._groups = GroupReader(config.name, config.member_attribute.lower(),
                                   config.nested_groups, config.preset == "active-directory")
        # Entries become records as they arrive (the per-entry hot path).
        self._records = RecordBuilder(config.name, self.plan.template_attributes,
                                      self.plan.disabled_check, self.rules)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def backend(self) -> BackendName:
        return choose_backend(self.config.backend)

    def read(self, progress: ReadProgress = NO_PROGRESS) -> SourceRead:
        try:
            return self._read(progress)
        except LdapFailure as exc:
            raise SourceError(self.name, exc.message) from None

    def open(self) -> tuple[Connection, str]:
        """A bound connection and the URL it went to (failover in url order)."""
        config = self.config
        password = None
        if config.bind_dn:
            try:
                password = read_secret(config.bind_password, config.bind_password_file,
                                       "bind_password")
            except ValueError as exc:
                raise SourceError(self.name, str(exc)) from None
            log.register_secret(password)
        try:
            return self._connect(password)
        except LdapFailure as exc:
            raise SourceError(self.name, exc.message) from None

    def _read(self, progress: ReadProgress) -> SourceRead:
        config = self.config
        conn, _ = self.open()
        try:
            missing = self.missing_objects(conn)
            if missing:
                raise SourceError(self.name, "; ".join(f"{field}: {problem}"
                                                       for field, problem in missing))
            logger.info("source.search", source=self.name, base_dn=config.base_dns,
                        scope=config.scope, filter=self.plan.filter,
                        group_lookup=config.effective_group_lookup if config.groups
                        or config.exclude_groups else None)
            entries = self._search(conn, progress)
            if self.plan.client_groups:
                scope = self._groups.expand(conn, self.plan.client_groups, entries.keys())
                entries = {k: v for k, v in entries.items() if k in scope}
            if self.plan.client_exclude_groups:
                out = self._groups.expand(conn, self.plan.client_exclude_groups,
                                          entries.keys())
                entries = {k: v for k, v in entries.items() if k not in out}
        finally:
            conn.close()
        # In DN order, not the server's: when two entries map to ids that differ only
        # in case, the one kept (the first) must not change from run to run.
        return SourceRead(tuple(entries[key] for key in sorted(entries)))

    def missing_objects(self, conn: Connection) -> list[tuple[str, str]]:
        """(field, problem) for every base DN and group that is not there.

        Checked before the read with every preset: AD's in-chain rule matches
        nobody for a mistyped group DN, which would silently drop (or, in
        exclude_groups, keep) people instead of failing.
        """
        config = self.config
        problems: list[tuple[str, str]] = []
        named = [("base_dn", dn) for dn in config.base_dns]
        named += [("groups", dn) for dn in config.groups]
        named += [("exclude_groups", dn) for dn in config.exclude_groups]
        counters: dict[str, int] = {}
        for field, dn in named:
            index = counters.get(field, 0)
            counters[field] = index + 1
            try:
                found = conn.read(dn, ["objectClass"])
            except LdapFailure as exc:
                found, why = None, f" ({exc.message})"
            else:
                why = ""
            if found is None:
                label = field if field == "base_dn" and isinstance(config.base_dn, str) \
                    else f"{field}[{index}]"
                what = "no such base DN" if field == "base_dn" else "no such group"
                problems.append((label, f"{what} {dn!r} (it does not exist, or the bind "
                                 f"account cannot see it){why}"))
        return problems

    # -- connection with failover ---------------------------------------------------

    def _connect(self, password: str | None) -> tuple[Connection, str]:
        config = self.config
        backend = self.backend
        errors: list[str] = []
        for position, url in enumerate(config.urls, 1):
            # Config validation already refuses plaintext; this guards configs built
            # without validation (model_construct) so a password never goes out in clear.
            problem = url_problem(url, config.start_tls, config.allow_plaintext)
            if problem:
                raise SourceError(self.name, problem)
            settings = ConnectSettings(url, config.start_tls, config.ca_file, config.tls_verify,
                                       config.tls_strict, config.connect_timeout, config.timeout)
            conn: Connection | None = None
            try:
                conn = connect(backend, settings)
                conn.bind(config.bind_dn, password)
            except LdapFailure as exc:
                if conn is not None:
                    conn.close()
                if exc.kind == "refused":
                    # Same account everywhere: trying more servers only risks a lockout.
                    raise SourceError(self.name, f"bind as {config.bind_dn!r} on {url} "
                                      f"refused: {exc.message}") from None
                reason = self._why(settings, backend, exc)
                errors.append(f"{url}: {reason}")
                if position < len(config.urls):
                    logger.warning("source.server_skipped", source=self.name, url=url,
                                   reason=reason, next_url=config.urls[position])
                continue
            return conn, url
        raise SourceError(self.name, "no LDAP server could be reached: " + "; ".join(errors))

    @staticmethod
    def _why(settings: ConnectSettings, backend: BackendName, exc: LdapFailure) -> str:
        """The cause of a failed connection, the same words for both backends.

        A probe with the socket and ssl modules names it (refused, timed out,
        which certificate check failed); the library's own text follows for search.
        libldap applies no strict X.509 rules, so its probe does not either.
        """
        if exc.kind != "connect":
            return exc.message
        try:
            context = ssl_context(settings.ca_file, settings.tls_verify,
                                  settings.tls_strict and backend == "ldap3")
        except (OSError, ValueError) as error:
            return f"ca_file {settings.ca_file} cannot be used ({error}) [{exc.message}]"
        cause = probe(settings.url, settings.start_tls, context, settings.connect_timeout)
        if cause is None:
            return exc.message
        return f"{cause} [{backend}: {exc.message}]"

    # -- search -------------------------------------------------------------------

    def _search(self, conn: Connection, progress: ReadProgress) -> dict[str, SourceRecord]:
        """Every matching entry of every base DN as a record, keyed by normalised DN.

        Entries become records at once so the raw values of a large directory are
        never all held in memory together.
        """
        config = self.config
        entries: dict[str, SourceRecord] = {}
        size = config.page_size
        for base in config.base_dns:
            while True:
                try:
                    self._search_base(conn, base, size, entries, progress)
                    break
                except _PageRefused:
                    # Smaller pages return the same entries, only in more round trips.
                    size //= 2
        if size != config.page_size:
            logger.warning("source.page_size_reduced", source=self.name,
                           page_size=config.page_size, page_size_used=size,
                           hint=f"the server refused pages of {config.page_size}; set "
                           f"page_size: {size} to skip the refused requests")
        return entries

    def _search_base(self, conn: Connection, base: str, size: int,
                     entries: dict[str, SourceRecord], progress: ReadProgress) -> None:
        """Read one base DN in pages of `size` into `entries`.

        Raises _PageRefused when the server turns the size down before sending any
        entry: OpenLDAP answers a page above its `size.pr` limit with
        adminLimitExceeded (AD caps the page silently, so it never gets here).
        """
        config = self.config
        started = False
        # closing(): a read that stops early (a referral, a disabled check) ends the
        # search here, while the connection is open; left to the garbage collector,
        # python-ldap's abandon() would run after unbind and print a traceback.
        try:
            with closing(conn.search(base, config.scope, self.plan.filter,
                                     self.plan.attributes, size)) as pages:
                for page in pages:
                    started = True
                    if page.references and config.referrals == "fail":
                        raise SourceError(self.name, (
                            f"the search under {base!r} returned a referral to "
                            f"{page.references[0]} which syncd does not follow, so the read "
                            "would be incomplete; search a narrower base_dn, use the Global "
                            "Catalog port (3268/3269), or set referrals: ignore"))
                    for dn, attrs in page.entries:
                        key = normalise_dn(dn)
                        if key not in entries:
                            record = self._records.record(dn, attrs)
                            if record is not None:
                                entries[key] = record
                    progress.page(len(page.entries))
        except LdapFailure as exc:
            if not started and exc.code == ADMIN_LIMIT_EXCEEDED and size > 1:
                logger.debug("source.page_size_refused", source=self.name, base_dn=base,
                            page_size=size, reason=exc.message)
                raise _PageRefused from None
            raise SourceError(self.name, self._search_message(base, exc)) from None

    def _search_message(self, base: str, exc: LdapFailure) -> str:
        if exc.kind == "no-such-object":
            return (f"base_dn {base!r} does not exist or the bind account cannot see it: "
                    f"{exc.message}")
        if exc.kind == "incomplete":
            return (f"the search under {base!r} stopped before the end ({exc.message}); "
                    "no partial roster is used. Raise the server limits for the bind account "
                    "or lower page_size")
        return f"the read under {base!r} failed part-way ({exc.message}); nothing was used"
