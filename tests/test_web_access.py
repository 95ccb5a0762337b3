"""The access rules are pure functions of the signed-in user: tested here without HTTP or a database."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from registry.read import OrchardScope
from yuncang.auth import Principal
from yuncang.web import access


def user(role: str, *, grower: str | None = None, buyer: str | None = None, coop: str | None = None) -> Principal:
    return Principal(1, "u", "u", role, grower, buyer, coop, "csrf", "bearer")


def test_each_role_sees_its_own_orchards_only() -> None:
    assert access.orchard_scope(user("admin")).everything
    assert access.orchard_scope(user("manager", coop="c1")) == OrchardScope(cooperative_id="c1")
    assert access.orchard_scope(user("grower", grower="G-1")) == OrchardScope(grower_id="G-1")
    assert access.orchard_scope(user("buyer", buyer="b")).sql() == ("FALSE", [])
    assert access.may_see_orchard(user("grower", grower="G-1"), "G-1", "c9")
    assert not access.may_see_orchard(user("grower", grower="G-1"), "G-2", "c9")
    assert access.may_see_orchard(user("manager", coop="c1"), "G-2", "c1")
    assert not access.may_see_orchard(user("manager", coop="c1"), "G-2", "c2")
    assert not access.may_see_orchard(user("buyer", buyer="b"), "G-1", "c1")


@given(role=st.sampled_from(["grower", "manager", "admin", "buyer"]), mine=st.sampled_from(["G-1", "c1", None]),
       grower=st.sampled_from(["G-1", "G-2"]), coop=st.sampled_from(["c1", "c2", None]))
def test_the_sql_scope_and_the_python_check_agree(role: str, mine: str | None, grower: str, coop: str | None) -> None:
    """What ``OrchardScope.sql`` selects (its condition evaluated by hand on one orchard row) is exactly
    what ``OrchardScope.allows`` admits."""
    scope = access.orchard_scope(user(role, grower=mine, coop=mine))
    where, params = scope.sql()
    row = {"o.cooperative_id": coop, "o.grower_id": grower}
    if where in ("TRUE", "FALSE"):
        selected = where == "TRUE"
    else:
        column = where.split(" = ")[0]
        selected = row[column] is not None and row[column] == params[0]
    assert scope.allows(grower, coop) == selected


def test_orders_allocations_statements_and_notices_by_role() -> None:
    buyer, other = user("buyer", buyer="b1"), user("buyer", buyer="b2")
    assert access.may_see_order(buyer, "b1") and not access.may_see_order(other, "b1")
    assert access.may_see_order(user("manager", coop="c1"), "b1")
    assert not access.may_see_order(user("grower", grower="G-1"), "b1")
    assert access.may_place_orders(buyer) and not access.may_place_orders(user("admin"))
    assert access.order_buyer(buyer) == "b1" and access.order_buyer(user("admin")) is None
    assert access.allocation_filter(buyer) == {"buyer_id": "b1"}
    assert access.allocation_filter(user("manager", coop="c1")) == {"cooperative_id": "c1"}
    assert access.allocation_filter(user("grower", grower="G-1")) is None
    g = user("grower", grower="G-1")
    assert access.statement_scope(g, None, None) == {"grower_id": "G-1"}
    assert access.statement_scope(g, "G-2", None) is None
    m = user("manager", coop="c1")
    assert access.statement_scope(m, "G-2", "c2") is None
    assert access.statement_scope(m, "G-2", "c1") == {"cooperative_id": "c1", "grower_id": "G-2"}
    assert access.statement_scope(buyer, None, None) is None
    assert access.notification_recipient(buyer) == ("buyer", "b1")
    assert access.notification_recipient(g) == ("grower", "G-1")
    assert access.notification_recipient(m) is None
