"""The source types a config can name, and where each one's code lives.

Each type's config model is imported the first time a config names it: a config
with one CSV source never imports, nor builds the pydantic models of, the LDAP,
Entra, Okta and Google configs (a noticeable part of every start). The JSON
schema, which describes every type, loads them all.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, Union, cast

from pydantic import Field, TypeAdapter, ValidationError
from pydantic_core import InitErrorDetails, core_schema

from syncd.sources.config_base import SourceConfigBase

if TYPE_CHECKING:
    from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
    from pydantic.json_schema import JsonSchemaValue

    from syncd.sources.csv.config import CsvSourceConfig
    from syncd.sources.entra.config import EntraSourceConfig
    from syncd.sources.google.config import GoogleSourceConfig
    from syncd.sources.ldap.config import LdapSourceConfig
    from syncd.sources.okta.config import OktaSourceConfig

    AnySourceConfig = (CsvSourceConfig | LdapSourceConfig | EntraSourceConfig
                       | OktaSourceConfig | GoogleSourceConfig)

SourceType = Literal["csv", "ldap", "entra", "okta", "google"]

# type -> (module, class) of its config model, in the order the schema lists them.
CONFIG_MODELS: Final[dict[str, tuple[str, str]]] = {
    "csv": ("syncd.sources.csv.config", "CsvSourceConfig"),
    "ldap": ("syncd.sources.ldap.config", "LdapSourceConfig"),
    "entra": ("syncd.sources.entra.config", "EntraSourceConfig"),
    "okta": ("syncd.sources.okta.config", "OktaSourceConfig"),
    "google": ("syncd.sources.google.config", "GoogleSourceConfig"),
}
_EXPECTED = ", ".join(f"'{name}'" for name in list(CONFIG_MODELS)[:-1]) + \
    f" or '{list(CONFIG_MODELS)[-1]}'"


def config_model(source_type: str) -> type[SourceConfigBase]:
    module, name = CONFIG_MODELS[source_type]
    return cast("type[SourceConfigBase]", getattr(importlib.import_module(module), name))


def _problem(kind: str, loc: tuple[str, ...], value: Any, **context: Any) -> ValidationError:
    detail = InitErrorDetails(type=kind, loc=loc, input=value)
    if context:
        detail["ctx"] = context
    return ValidationError.from_exception_data("source", [detail])


def validate_source(value: Any) -> SourceConfigBase:
    """One entry of `sources:`, validated by the model its `type` names.

    Errors keep their place in the file (`sources[1].path`), as a discriminated
    union's would, without the union's tag in the location.
    """
    if isinstance(value, SourceConfigBase):  # built in code: valid if of a known type
        built_as = getattr(value, "type", None)
        if isinstance(built_as, str) and built_as in CONFIG_MODELS \
                and isinstance(value, config_model(built_as)):
            return value
    if not isinstance(value, dict):
        raise _problem("model_attributes_type", (), value)
    if "type" not in value:
        raise _problem("missing", ("type",), value)
    source_type = value["type"]
    # Any YAML value may be written here (a list, a mapping, null): only a known
    # name is looked up.
    if not isinstance(source_type, str) or source_type not in CONFIG_MODELS:
        raise _problem("literal_error", ("type",), source_type, expected=_EXPECTED)
    return config_model(source_type).model_validate(value)


class LazySourceConfig:
    """The pydantic type of one `sources:` entry (see the module's docstring)."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler
                                     ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(validate_source)

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: core_schema.CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        # The schema is the discriminated union of every type, as pydantic writes it.
        models = tuple(config_model(name) for name in CONFIG_MODELS)
        union: Any = Annotated[Union[models], Field(discriminator="type")]  # noqa: UP007
        return handler(TypeAdapter(union).core_schema)

