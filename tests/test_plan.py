"""The planner: table tests for each rule, hypothesis properties for the invariants."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.config.types import parse_limit
from syncd.core.model import DesiredUser, NebulyUser, id_key
from syncd.core.plan import Plan, plan
from syncd.core.policy import by_mode, check
from syncd.core.rules import PlanPolicy

TODAY = date(2026, 11, 22)
EARLIER = date(2026, 1, 5)
POLICY = PlanPolicy(managed_tag_keys=frozenset({"department", "region"}))


def want(end_user: str, **tags: str) -> DesiredUser:
    return DesiredUser(end_user, tags, "hr", sources=("hr",))


def have(end_user: str, active_to: date | None = None, **tags: str) -> NebulyUser:
    return NebulyUser(end_user, tags, EARLIER, active_to)


def desired(*users: DesiredUser) -> dict[str, DesiredUser]:
    return {id_key(u.end_user): u for u in users}


def test_new_person_is_inserted_with_todays_active_from() -> None:
    result = plan(desired(want("ann@x.com", department="Sales")), [], POLICY, TODAY)
    assert result.inserts == (NebulyUser("ann@x.com", {"department": "Sales"}, TODAY, None),)
    assert result.counts()["insert"] == 1 and result.unchanged == 0


def test_mapped_active_from_is_used_for_insert_and_managed_after() -> None:
    person = DesiredUser("ann@x.com", {}, "hr", active_from=date(2025, 3, 1))
    assert plan(desired(person), [], POLICY, TODAY).inserts[0].active_from == date(2025, 3, 1)
    moved = plan(desired(person), [have("ann@x.com")], POLICY, TODAY)
    assert moved.updates[0].after.active_from == date(2025, 3, 1)


def test_unmapped_active_from_is_left_alone() -> None:
    result = plan(desired(want("ann@x.com", department="Sales")),
                  [have("ann@x.com", department="Sales")], POLICY, TODAY)
    assert result.is_empty and result.unchanged == 1


def test_changed_tag_is_an_update_that_keeps_other_writers_tags() -> None:
    result = plan(desired(want("ann@x.com", department="Ops")),
                  [have("ann@x.com", department="Sales", cost_center="42")], POLICY, TODAY)
    (change,) = result.updates
    assert change.after.tags == {"department": "Ops", "cost_center": "42"}
    assert change.after.active_from == EARLIER


def test_prune_tags_drops_unmapped_keys() -> None:
    policy = PlanPolicy(managed_tag_keys=frozenset({"department"}), prune_tags=True)
    result = plan(desired(want("ann@x.com", department="Sales")),
                  [have("ann@x.com", department="Sales", cost_center="42")], policy, TODAY)
    assert result.updates[0].after.tags == {"department": "Sales"}


def test_managed_tag_missing_from_source_is_removed() -> None:
    result = plan(desired(want("ann@x.com")), [have("ann@x.com", region="FR")], POLICY, TODAY)
    assert result.updates[0].after.tags == {}


def test_ids_match_regardless_of_case_and_keep_nebulys_spelling() -> None:
    result = plan(desired(want("ann@x.com", department="Ops")),
                  [have("Ann@X.com", department="Sales")], POLICY, TODAY)
    assert not result.inserts and not result.deactivations
    assert result.updates[0].after.end_user == "Ann@X.com"


def test_departed_person_gets_active_to_today_never_deleted_by_default() -> None:
    result = plan({}, [have("bob@x.com", department="Sales")], POLICY, TODAY)
    assert not result.deletes
    (change,) = result.deactivations
    assert change.after == NebulyUser("bob@x.com", {"department": "Sales"}, EARLIER, TODAY)


def test_already_departed_person_is_unchanged() -> None:
    result = plan({}, [have("bob@x.com", active_to=EARLIER)], POLICY, TODAY)
    assert result.is_empty and result.unchanged == 1


def test_future_end_date_of_an_absent_person_becomes_today() -> None:
    result = plan({}, [have("bob@x.com", active_to=TODAY + timedelta(days=30))], POLICY, TODAY)
    assert result.deactivations[0].after.active_to == TODAY


def test_returning_person_is_reactivated_keeping_active_from() -> None:
    result = plan(desired(want("bob@x.com")), [have("bob@x.com", active_to=EARLIER)],
                  POLICY, TODAY)
    (change,) = result.reactivations
    assert change.after.active_to is None and change.after.active_from == EARLIER


def test_departed_delete_deletes() -> None:
    policy = PlanPolicy(departed="delete")
    result = plan({}, [have("bob@x.com")], policy, TODAY)
    assert [u.end_user for u in result.deletes] == ["bob@x.com"] and not result.deactivations


def test_upsert_only_never_deactivates() -> None:
    policy = PlanPolicy(mode="upsert-only", managed_tag_keys=frozenset({"department"}))
    result = by_mode(plan(desired(want("ann@x.com", department="Ops")),
                          [have("ann@x.com", department="Sales"), have("bob@x.com")],
                          policy, TODAY), policy.mode)
    assert len(result.updates) == 1 and not result.deactivations and not result.deletes


def test_create_only_only_inserts() -> None:
    policy = PlanPolicy(mode="create-only", managed_tag_keys=frozenset({"department"}))
    result = by_mode(plan(desired(want("ann@x.com", department="Ops"), want("new@x.com")),
                          [have("ann@x.com", department="Sales"), have("bob@x.com")],
                          policy, TODAY), policy.mode)
    assert [u.end_user for u in result.inserts] == ["new@x.com"]
    assert not result.updates and not result.deactivations


def test_owner_tag_limits_what_syncd_touches() -> None:
    policy = PlanPolicy(managed_tag_keys=frozenset({"department", "managed_by"}),
                        owner_tag=("managed_by", "syncd"))
    actual = [have("mine@x.com", managed_by="syncd"), have("theirs@x.com"),
              have("shared@x.com", department="Sales")]
    result = plan(desired(want("shared@x.com", department="Ops"), want("new@x.com")),
                  actual, policy, TODAY)
    assert [c.end_user for c in result.deactivations] == ["mine@x.com"]
    assert result.foreign == ("shared@x.com",) and not result.updates
    assert result.inserts[0].tags == {"managed_by": "syncd"}
    assert result.managed_active == 1


def test_protected_ids_are_neither_updated_nor_deactivated() -> None:
    result = plan({}, [have("bad@x.com")], POLICY, TODAY, protected=frozenset({"bad@x.com"}))
    assert result.is_empty


def test_duplicate_case_variants_in_nebuly_are_reported_not_duplicated() -> None:
    result = plan(desired(want("ann@x.com")), [have("Ann@x.com"), have("ann@x.com")],
                  POLICY, TODAY)
    assert not result.inserts and result.duplicate_ids == ("Ann@x.com",)


def test_guard_blocks_only_destructive_part() -> None:
    actual = [have(f"u{i}@x.com") for i in range(20)]
    result = plan(desired(want("new@x.com"), *(want(f"u{i}@x.com") for i in range(17))),
                  actual, POLICY, TODAY)
    assert len(result.deactivations) == 3
    guarded = check(result, parse_limit("10%"))  # 10% of 20 = 2 < 3
    assert guarded.trips and guarded.trips[0].blocked == 3
    assert guarded.allowed.inserts == result.inserts and not guarded.allowed.deactivations
    assert len(guarded.blocked.deactivations) == 3
    assert not check(result, parse_limit("10%"), force=True).trips
    assert not check(result, parse_limit(3)).trips


# -- properties ---------------------------------------------------------------

ids = st.sampled_from([f"user{i}@x.com" for i in range(12)])
tag_values = st.sampled_from(["Sales", "Ops", "Legal"])
tags = st.dictionaries(st.sampled_from(["department", "region", "extra"]), tag_values,
                       max_size=3)
case = st.sampled_from([str.lower, str.upper, str.title])


@st.composite
def nebuly_users(draw: st.DrawFn) -> list[NebulyUser]:
    users = {}
    for end_user in draw(st.lists(ids, unique=True)):
        spelled = draw(case)(end_user)
        users[end_user] = NebulyUser(
            spelled, draw(tags), draw(st.sampled_from([EARLIER, TODAY])),
            draw(st.sampled_from([None, EARLIER, TODAY + timedelta(days=3)])))
    return list(users.values())


@st.composite
def desired_rosters(draw: st.DrawFn) -> dict[str, DesiredUser]:
    users = [DesiredUser(draw(case)(i), {k: v for k, v in draw(tags).items() if k != "extra"},
                         "hr") for i in draw(st.lists(ids, unique=True))]
    return {id_key(u.end_user): u for u in users}


policies = st.builds(
    PlanPolicy, mode=st.sampled_from(["sync", "upsert-only", "create-only"]),
    departed=st.sampled_from(["deactivate", "delete"]),
    managed_tag_keys=st.just(frozenset({"department", "region"})), prune_tags=st.booleans())


def apply_to(actual: list[NebulyUser], result: Plan) -> list[NebulyUser]:
    """What a server following the documented contract holds after the plan is applied."""
    roster = {u.end_user: u for u in actual}
    for change in (*result.updates, *result.reactivations, *result.deactivations):
        roster[change.before.end_user] = change.after
    for user in result.deletes:
        del roster[user.end_user]
    for user in result.inserts:
        roster[user.end_user] = user
    return list(roster.values())


@settings(max_examples=400)
@given(desired_rosters(), nebuly_users(), policies)
def test_replanning_after_apply_yields_nothing(
        want_: dict[str, DesiredUser], actual: list[NebulyUser], policy: PlanPolicy) -> None:
    first = plan(want_, actual, policy, TODAY)
    second = plan(want_, apply_to(actual, first), policy, TODAY)
    assert second.is_empty, second


@settings(max_examples=300)
@given(desired_rosters(), nebuly_users())
def test_sync_makes_nebuly_equal_to_the_directory(
        want_: dict[str, DesiredUser], actual: list[NebulyUser]) -> None:
    after = apply_to(actual, plan(want_, actual, POLICY, TODAY))
    active = {id_key(u.end_user) for u in after if u.active_to is None or u.active_to > TODAY}
    assert active == set(want_)
    assert len({id_key(u.end_user) for u in after}) == len(after)  # no duplicates
    for user in after:
        if (key := id_key(user.end_user)) in want_:
            managed = {k: v for k, v in user.tags.items() if k in POLICY.managed_tag_keys}
            assert managed == want_[key].tags


@settings(max_examples=300)
@given(nebuly_users(), st.sampled_from(["0", "1", "3", "10%", "50%"]), st.booleans())
def test_cap_always_holds_and_inserts_always_go(
        actual: list[NebulyUser], cap: str, keep_some: bool) -> None:
    want_ = {id_key(u.end_user): DesiredUser(u.end_user, {}, "hr")
             for u in actual[: len(actual) // 2 if keep_some else 0]}
    want_["brand-new@x.com"] = DesiredUser("brand-new@x.com", {}, "hr")
    result = plan(want_, actual, POLICY, TODAY)
    limit = parse_limit(cap if cap.endswith("%") else int(cap))
    guarded = check(result, limit)
    assert guarded.allowed.destructive <= limit.ceiling(result.managed_active)
    assert guarded.allowed.inserts == result.inserts
    assert guarded.allowed.destructive + guarded.blocked.destructive == result.destructive


@given(nebuly_users())
def test_an_empty_read_is_never_planned_when_guarded(actual: list[NebulyUser]) -> None:
    # A failed/empty source never reaches the planner (the engine aborts); even if
    # it did, the default cap keeps a mass deactivation from being applied.
    result = plan({}, actual, POLICY, TODAY)
    guarded = check(result, parse_limit("10%"))
    assert guarded.allowed.destructive <= result.managed_active // 10


# -- review findings: each of these once planned the wrong thing ------------------


def test_delete_mode_respects_the_grace_period_and_leaves_history_alone() -> None:
    from syncd.core.plan import Missing

    policy = PlanPolicy(departed="delete", grace_runs=3)
    actual = [have("gone@x.com"), have("left-long-ago@x.com", active_to=EARLIER)]
    first = plan({}, actual, policy, TODAY)
    assert not first.deletes and first.waiting == ("gone@x.com",)
    third = plan({}, actual, policy, TODAY, missing={"gone@x.com": Missing(EARLIER, 2)})
    assert [u.end_user for u in third.deletes] == ["gone@x.com"]


def test_a_mapped_end_date_in_the_past_is_a_deactivation_under_the_cap() -> None:
    ended = DesiredUser("ann@x.com", {}, "hr", active_to=EARLIER)
    result = plan(desired(ended), [have("ann@x.com")], POLICY, TODAY)
    assert not result.updates and len(result.deactivations) == 1
    assert check(result, parse_limit(0)).trips  # the cap sees it


def test_protected_people_are_never_inserted_or_changed() -> None:
    # Their Nebuly entry (or source record) was unreadable: they exist.
    result = plan(desired(want("odd@x.com"), want("ann@x.com", department="Ops")),
                  [have("ann@x.com", department="Sales")], POLICY, TODAY,
                  protected=frozenset({"odd@x.com", "ann@x.com"}))
    assert result.is_empty and result.unchanged == 2


def test_sharp_s_and_ss_are_two_people() -> None:
    assert id_key("Straße@X.de") == "straße@x.de" != id_key("strasse@x.de")
