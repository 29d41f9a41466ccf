"""Templates, transforms, defaults, bad records, and the merge of several sources."""

from __future__ import annotations

from datetime import date

import pytest

from syncd.config.types import TagTemplate
from syncd.core.mapping import MappedSource, SourceMapper
from syncd.core.merge import merge
from syncd.core.model import DesiredUser, IdCase
from syncd.core.templates import Template, TemplateError
from syncd.sources.base import record
from syncd.sources.csv.config import CsvSourceConfig


def source(**extra: object) -> CsvSourceConfig:
    fields: dict[str, object] = {"name": "hr", "type": "csv", "path": "x.csv",
                                 "end_user": "{Mail}", **extra}
    return CsvSourceConfig.model_validate(fields)


def test_template_parsing_and_rendering() -> None:
    template = Template.parse("{givenName}.{sn}@corp.example {{literal}}")
    assert template.attributes == {"givenname", "sn"}
    assert template.render({"givenname": "Ann", "sn": "Lee"}) == "Ann.Lee@corp.example {literal}"
    assert template.render({"givenname": "Ann", "sn": "  "}) is None
    for bad in ("{mail", "{}", "{mail:>10}", "{mail!r}"):
        with pytest.raises(TemplateError):
            Template.parse(bad)


def test_ids_are_normalised_and_attribute_names_case_insensitive() -> None:
    mapped = SourceMapper(source()).map([record({"MAIL": " Ann@X.COM "}, "line 2")])
    assert [u.end_user for u in mapped.users] == ["ann@x.com"]
    kept = SourceMapper(source(), IdCase.PRESERVE).map([record({"mail": "Ann@X.com"}, "l")])
    assert kept.users[0].end_user == "Ann@X.com"


def test_tags_defaults_transforms_and_value_maps() -> None:
    config = source(tags={
        "department": "{dept}",
        "region": TagTemplate(template="{c}", map={"FR": "EMEA", "US": "AMER"}),
        "role": TagTemplate(template="{title}", transform="lower", default="unknown"),
    })
    mapped = SourceMapper(config).map([
        record({"mail": "a@x", "dept": "Sales", "c": "FR", "title": "Engineer"}, "1"),
        record({"mail": "b@x", "c": "DE"}, "2"),
    ])
    a, b = mapped.users
    assert a.tags == {"department": "Sales", "region": "EMEA", "role": "engineer"}
    assert b.tags == {"region": "DE", "role": "unknown"}  # missing dept omits the tag


def test_record_problems_are_reported_and_the_rest_kept() -> None:
    config = source(tags={"note": "{note}"}, active_from="{start}")
    mapped = SourceMapper(config).map([
        record({"mail": ""}, "line 2"),
        record({"mail": "ok@x", "start": "2026-02-03"}, "line 3"),
        record({"mail": "late@x", "start": "not a date"}, "line 4"),
        record({"mail": "long@x", "note": "x" * 1000}, "line 5"),
        record({"mail": "ctl\x00@x"}, "line 6"),
        record({"mail": "OK@x"}, "line 7"),
    ])
    assert [u.end_user for u in mapped.users] == ["ok@x", "long@x"]
    assert mapped.users[0].active_from == date(2026, 2, 3)
    reasons = {p.origin: p.message for p in mapped.problems}
    assert "attribute(s) mail missing" in reasons["line 2"]
    assert "not an ISO date" in reasons["line 4"]
    assert "control characters" in reasons["line 6"]
    assert "duplicate id 'ok@x'" in reasons["line 7"]
    # A tag value over max_length is cut, and said so: the person is kept.
    assert mapped.users[1].tags["note"] == "x" * 100
    assert "cut from 1000 to 100 characters" in mapped.notices[0].message
    # People whose id is known but whose data is bad must not look like leavers.
    assert mapped.protected_ids == {"late@x"}


def test_exclude_ids() -> None:
    mapped = SourceMapper(source(exclude_ids=["^svc-", "@test\\."])).map([
        record({"mail": "svc-backup@x"}, "1"), record({"mail": "a@test.x"}, "2"),
        record({"mail": "ann@x"}, "3")])
    assert [u.end_user for u in mapped.users] == ["ann@x"] and mapped.excluded == 2


def user(end_user: str, source: str, **tags: str) -> DesiredUser:
    return DesiredUser(end_user, tags, source, sources=(source,))


def test_merge_precedence_and_conflicts() -> None:
    ldap = MappedSource("ldap", (user("ann@x", "ldap", department="Sales"),
                                 user("bob@x", "ldap", department="Ops")))
    entra = MappedSource("entra", (user("ann@x", "entra", department="Legal", role="dev"),
                                   user("cid@x", "entra", role="pm")))
    merged = merge([ldap, entra])
    assert set(merged.users) == {"ann@x", "bob@x", "cid@x"}
    ann = merged.users["ann@x"]
    assert ann.tags == {"department": "Sales", "role": "dev"}
    assert ann.sources == ("ldap", "entra")
    assert merged.conflicts == (("ann@x", "department", (("ldap", "Sales"), ("entra", "Legal"))),)
    flipped = merge([ldap, entra], precedence=["entra", "ldap"])
    assert flipped.users["ann@x"].tags["department"] == "Legal"


def test_a_person_unreadable_in_one_source_stays_protected_though_another_reads_him() -> None:
    # Changing him on half the data would drop what the unreadable source maps.
    a = MappedSource("a", (), protected_ids=frozenset({"ann@x", "bob@x"}))
    b = MappedSource("b", (user("ann@x", "b"),))
    assert merge([a, b]).protected_ids == {"ann@x", "bob@x"}


def test_people_with_the_same_raw_values_get_the_same_tags_and_their_own_notices() -> None:
    # Tags are remembered by the raw values of all one-placeholder tags together;
    # a cut value (notice) must still be said for every person who has it.
    config = source(tags={
        "department": TagTemplate(template="{dept}", max_length=5),
        "role": TagTemplate(template="{title}", transform="lower", default="unknown"),
    })
    mapped = SourceMapper(config).map([
        record({"mail": "a@x", "dept": "Marketing", "title": "Lead"}, "1"),
        record({"mail": "b@x", "dept": "Marketing", "title": "Lead"}, "2"),
        record({"mail": "c@x", "dept": "Sales", "title": "Lead"}, "3"),
        record({"mail": "d@x", "dept": "Sales", "title": "Lead"}, "4"),
        record({"mail": "e@x", "dept": "Sales"}, "5"),
        record({"mail": "f@x", "title": "Lead"}, "6"),
    ])
    tags = [u.tags for u in mapped.users]
    assert tags == [{"department": "Marke", "role": "lead"}] * 2 + [
        {"department": "Sales", "role": "lead"}] * 2 + [
        {"department": "Sales", "role": "unknown"}, {"role": "lead"}]
    assert [n.origin for n in mapped.notices] == ["1", "2"]
    assert tags[2] is tags[3]  # one shared (never mutated) dict


def test_every_duplicate_names_the_record_kept_for_its_id() -> None:
    mapped = SourceMapper(source()).map([
        record({"mail": "a@x"}, "line 2"), record({"mail": "b@x"}, "line 3"),
        record({"mail": "A@x"}, "line 4"), record({"mail": "c@x"}, "line 5"),
        record({"mail": "b@X"}, "line 6"), record({"mail": "c@x"}, "line 7"),
    ])
    assert [u.end_user for u in mapped.users] == ["a@x", "b@x", "c@x"]
    assert [(p.origin, p.message.split("; ")[1]) for p in mapped.problems] == [
        ("line 4", "the first record (line 2) is kept"),
        ("line 6", "the first record (line 3) is kept"),
        ("line 7", "the first record (line 5) is kept")]
