"""Template attribute names <-> Graph user properties, and Graph JSON -> flat strings.

Pure (no msgraph import): the config check and the tests use it without the SDK.
Templates are case-insensitive (`{department}` and `{Department}` are the same),
Graph property names are camelCase; this module bridges the two.

Templates may also name a value inside a complex or list property with a
dotted path, as Okta and Google templates do (syncd/sources/paths.py):
`{onPremisesExtensionAttributes.extensionAttribute3}`, `{employeeOrgData.division}`,
`{otherMails.0}`. `$select` asks for the top-level property; a path that is
not there renders as a missing attribute.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from syncd.core.templates import template_attributes
from syncd.sources.config_base import SourceConfigBase
from syncd.sources.paths import path_tree, pick

Flatten = Callable[[Mapping[str, Any]], dict[str, str]]

# Properties of microsoft.graph.user (v1.0) that `$select` accepts and that make
# sense as an id or a tag. Anything else in a template is sent in the admin's own
# spelling (directory extensions such as extension_<appid>_costCenter).
USER_PROPERTIES = (
    "aboutMe", "accountEnabled", "ageGroup", "birthday", "businessPhones", "city", "companyName",
    "consentProvidedForMinor", "country", "createdDateTime", "creationType", "department",
    "displayName", "employeeHireDate", "employeeId", "employeeLeaveDateTime", "employeeOrgData",
    "employeeType", "externalUserState", "externalUserStateChangeDateTime", "faxNumber",
    "givenName", "hireDate", "id", "imAddresses", "interests", "isResourceAccount", "jobTitle",
    "lastPasswordChangeDateTime", "legalAgeGroupClassification", "mail", "mailNickname",
    "mobilePhone", "mySite", "officeLocation", "onPremisesDistinguishedName",
    "onPremisesDomainName", "onPremisesExtensionAttributes", "onPremisesImmutableId",
    "onPremisesLastSyncDateTime", "onPremisesSamAccountName", "onPremisesSecurityIdentifier",
    "onPremisesSyncEnabled", "onPremisesUserPrincipalName", "otherMails", "passwordPolicies",
    "pastProjects", "postalCode", "preferredDataLocation", "preferredLanguage", "preferredName",
    "proxyAddresses", "responsibilities", "schools", "securityIdentifier", "showInAddressList",
    "signInSessionsValidFromDateTime", "skills", "state", "streetAddress", "surname",
    "usageLocation", "userPrincipalName", "userType",
)
_BY_LOWER = {name.lower(): name for name in USER_PROPERTIES}

# Fields of complex properties that templates may name directly: `{costCenter}`
# selects employeeOrgData, `{extensionAttribute3}` onPremisesExtensionAttributes
# (the AD extensionAttribute1-15 synced by Entra Connect).
NESTED_FIELDS = {"costcenter": "employeeOrgData", "division": "employeeOrgData"} | {
    f"extensionattribute{i}": "onPremisesExtensionAttributes" for i in range(1, 16)
}

# Attributes syncd computes rather than reads from the user object: never in $select.
# assignedDateTime: the earliest createdDateTime of the user's direct app assignments
# (added by the app scope; lower-case, as templates match).
ASSIGNED = "assigneddatetime"
COMPUTED = frozenset({ASSIGNED})

# Always read: the id (dedup, origin), the filters, and the UPN (origin for admins).
ALWAYS_SELECTED = ("id", "accountEnabled", "userType", "userPrincipalName")


def _template_texts(config: SourceConfigBase) -> list[str]:
    texts = [config.end_user]
    for spec in config.tags.values():
        texts.append(spec if isinstance(spec, str) else spec.template)
    texts += [t for t in (config.active_from, config.active_to) if t]
    return texts


def _spellings(config: SourceConfigBase) -> dict[str, str]:
    """lower-case name -> the spelling the admin wrote (first one wins)."""
    out: dict[str, str] = {}
    for text in _template_texts(config):
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError:
            continue  # template_problems reports it at config time
        for _, name, _, _ in parsed:
            if name:
                out.setdefault(name.lower(), name)
    return out


def graph_select(config: SourceConfigBase) -> list[str]:
    """`$select` for the templates of `config`, in Graph's spelling, stable order."""
    spelled = _spellings(config)
    wanted: list[str] = list(ALWAYS_SELECTED)
    for name in sorted(template_attributes(config) - COMPUTED):
        if "." in name:  # a path into a property: select the property
            top = name.split(".", 1)[0]
            prop = _BY_LOWER.get(top) or spelled.get(name, name).split(".", 1)[0]
        else:
            prop = _BY_LOWER.get(name) or NESTED_FIELDS.get(name) or spelled.get(name, name)
        if prop not in wanted:
            wanted.append(prop)
    return wanted


def user_flattener(config: SourceConfigBase) -> Flatten:
    """flatten_user, plus the dotted paths the templates of `config` name, if any."""
    dotted = sorted(name for name in template_attributes(config) - COMPUTED if "." in name)
    if not dotted:
        return flatten_user
    tree = path_tree(dotted)

    def flatten_with_paths(user: Mapping[str, Any]) -> dict[str, str]:
        flat = flatten_user(user)
        flat.update(pick(user, tree))
        return flat

    return flatten_with_paths


def flatten_user(user: Mapping[str, Any]) -> dict[str, str]:
    """One Graph user object -> lower-case attribute name -> string.

    null and empty values are left out (a template naming them renders as
    missing). Lists (businessPhones, otherMails...) are joined with ", ";
    complex values (employeeOrgData, onPremisesExtensionAttributes) add their
    fields as attributes of their own. This runs once per user (100,000 in a
    large tenant): exact type checks and a cache of lower-cased keys keep it
    cheap.
    """
    out: dict[str, str] = {}
    lower = _LOWER
    for key, value in user.items():
        name = lower.get(key)
        if name is None:
            name = lower[key] = "" if key[:1] == "@" else key.lower()  # "" = @odata.* skipped
        kind = type(value)
        if kind is str:
            if value and name:
                out[name] = value
        elif value is None or not name:
            continue
        elif kind is bool:
            out[name] = "true" if value else "false"
        elif kind is int or kind is float:
            out[name] = str(value)
        elif kind is list:
            joined = ", ".join(_scalars(value))
            if joined:
                out[name] = joined
        elif kind is dict:
            for sub_key, sub_value in value.items():
                if type(sub_value) is str and sub_value:
                    out.setdefault(sub_key.lower(), sub_value)
    return out


# Graph property name -> lower-case name; "" for annotations (@odata.type...).
# Bounded by the properties a tenant's objects carry.
_LOWER: dict[str, str] = {}


def _scalars(values: Iterable[Any]) -> Iterable[str]:
    for value in values:
        if isinstance(value, str):
            if value:
                yield value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            yield str(value)


def is_guest(user: Mapping[str, Any]) -> bool:
    """userType Guest. A missing userType (old accounts) counts as a member."""
    value = user.get("userType")
    return isinstance(value, str) and value.lower() == "guest"

