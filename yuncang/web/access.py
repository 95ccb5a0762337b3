"""Who may see what: pure rules from the signed-in :class:`~yuncang.auth.Principal` to a scope.

No HTTP and no database here, so each rule is tested on its own (``tests/test_web_access.py``); the
web layer's dependencies (:mod:`yuncang.web.deps`) turn a refusal into 401/403/404.

* a grower sees their own orchards; a manager their cooperative's; an admin everything;
* a buyer sees no orchard, only their own orders, and the public supply offer.
"""

from __future__ import annotations

from registry.read import EVERYTHING, NOTHING, OrchardScope
from yuncang.auth import Principal

#: roles that read orchards (their conditions, charts, alerts, forecasts, records)
ORCHARD_READERS = ("grower", "manager", "admin")
#: roles that see orders and allocations
ORDER_READERS = ("buyer", "manager", "admin")


def orchard_scope(p: Principal) -> OrchardScope:
    """The orchards ``p`` may see."""
    if p.role == "admin":
        return EVERYTHING
    if p.role == "manager":
        return OrchardScope(cooperative_id=p.cooperative_id)
    if p.role == "grower":
        return OrchardScope(grower_id=p.grower_id)
    return NOTHING


def may_see_orchard(p: Principal, grower_id: str, cooperative_id: str | None) -> bool:
    """Whether ``p`` may see an orchard with these owners."""
    return p.role in ORCHARD_READERS and orchard_scope(p).allows(grower_id, cooperative_id)


def has_role(p: Principal, *roles: str) -> bool:
    return p.role in roles


def order_buyer(p: Principal) -> str | None:
    """Whose orders ``p`` sees: a buyer their own (their buyer id); managers and admins every buyer's (None)."""
    return p.buyer_id if p.role == "buyer" else None


def may_see_order(p: Principal, buyer_id: str) -> bool:
    return p.role in ("manager", "admin") or (p.role == "buyer" and p.buyer_id == buyer_id)


def may_place_orders(p: Principal) -> bool:
    return p.role == "buyer" and bool(p.buyer_id)


def allocation_filter(p: Principal) -> dict[str, str | None] | None:
    """Which allocation rows ``p`` sees, as filters of ``trading.allocation.get_allocations``: a buyer's
    own orders, a manager's cooperative orchards, all for admin; None for growers (not theirs to see)."""
    if p.role == "buyer":
        return {"buyer_id": p.buyer_id}
    if p.role == "manager":
        return {"cooperative_id": p.cooperative_id}
    if p.role == "admin":
        return {}
    return None


def statement_scope(p: Principal, grower_id: str | None, grower_coop: str | None) -> dict[str, str | None] | None:
    """Which grower statements ``p`` sees (filters of ``trading.settlement.statements``), None if refused:
    a grower only their own; a manager their cooperative's (``grower_coop`` is the asked grower's
    cooperative, when one is asked); an admin any."""
    if p.role == "grower":
        return {"grower_id": p.grower_id} if grower_id in (None, p.grower_id) else None
    if p.role == "manager":
        if grower_id is not None and grower_coop is not None and grower_coop != p.cooperative_id:
            return None
        return {"cooperative_id": p.cooperative_id, "grower_id": grower_id}
    if p.role == "admin":
        return {"grower_id": grower_id}
    return None


def notification_recipient(p: Principal) -> tuple[str, str] | None:
    """(recipient kind, id) of the allocation notices addressed to ``p``; None for managers and admins."""
    if p.role == "buyer" and p.buyer_id:
        return "buyer", p.buyer_id
    if p.role == "grower" and p.grower_id:
        return "grower", p.grower_id
    return None
