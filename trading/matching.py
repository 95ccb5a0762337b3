"""The allocation core: forecast supply matched to forward orders as a sparse LP (scipy HiGHS).

Pure numpy/scipy: no database. :mod:`trading.allocation` loads the inputs from the database and
stores what this returns.

The model
---------
Fruit travels orchard -> origin cloud warehouse (产地仓: cooled, graded, stored) -> buyer. Costs are
therefore separable: orchard ``o`` pays ``transport_fen_per_kg[o]`` to reach the warehouse; an order
earns ``value_fen_per_kg`` = its price minus freight from the warehouse to its destination. So the LP
works on *pools* ``(harvest week h, grade g)`` in the warehouse instead of one arc per orchard and order:

* ``y[o,h,g]``   kg that orchard ``o`` commits for harvest week ``h`` in grade ``g``,
  ``0 <= y <= supply[o,h,g]`` (supply at the chosen confidence, e.g. P10; blacklisted orchards have none);
* ``x[c,h,g',t]`` kg of pool ``(h,g')`` delivered in week ``t`` to order class ``c``;
  an order class is all orders asking for the same grade in the same delivery window, ``g'`` is the
  ordered grade or a better one (``registry.grades.can_fill``; paid at the ordered grade's price),
  ``t`` lies in the window and ``h <= t <= h + max_storage_weeks`` (fruit waits in cold storage);
* pool balance ``sum_o y[o,h,g] = sum x[.,h,g,.]`` (equality rows);
* class demand ``sum x[c,...] <= sum of the class's order quantities``;
* cold-storage capacity ``sum of x with h <= tau < t  <= capacity_kg[tau]`` for each week ``tau``:
  fruit dispatched in its harvest week is cross-docked (pre-cooled, graded, sent on); fruit held for a
  later week occupies a cold room at the end of every week from its harvest week to the week before
  its dispatch;
* poverty-alleviated share ``sum_{o poor} y >= s * sum_o y - z``, ``z >= 0`` penalised: the share is
  guaranteed whenever those orchards have the fruit, and never reduces the volume committed.

Objective (maximise, lexicographic by weights): first the volume filled (``fill_weight`` per kg, chosen
ten times larger than any value difference), then the poverty share (``poverty_weight`` per kg short,
half the fill weight, so it never costs volume), then seniority (``fill_weight / 5`` per kg filled for
orders that already hold an allocation: an order placed later fills from what is left and never takes
volume committed earlier; seniors share any forecast shortfall pro rata among themselves), then value
minus cost: order value, minus orchard
transport, minus ``storage_fen_per_kg_week`` per week held, minus a small penalty per grade step of
substitution (so exact grades are preferred when the value is equal).

Within an order class the fill is shared **pro rata** by ordered quantity, floored to whole crates,
and the crates left over go one by one to the earliest orders (time priority). Whatever an order
does not get is reported as its shortfall; nothing is dropped silently.

Re-allocation: given the previous plan, every LP variable ``v`` with a previous value ``v0`` is
written ``v = v0 + p - m`` and ``move_penalty_fen_per_kg * (p + m)`` is subtracted, so the new plan
moves volume only when that gains more than the penalty; the split of pools to orchards and orders
first keeps previous pairings ("sticky" north-west corner), then fills the rest in order.

Two stages: ``commit`` against the committing confidence (P10 by default), then ``expected`` for the
remaining demand against the next quantile's increment (P50 - what P10 committed), with the
remaining cold-storage capacity.

Units: kg, fen per kg (1 yuan = 100 fen), weeks as indices into ``SupplyGrid.weeks``.
The pooled formulation is checked against an independently built per-orchard/per-order LP and,
where the problem is a pure network, against networkx's max-flow-min-cost (tests/test_trading_matching.py).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from registry.grades import GRADES

log = logging.getLogger(__name__)

GRADE_ORDER: tuple[str, ...] = tuple(g.code for g in sorted(GRADES, key=lambda g: g.rank))
_GIDX = {g: i for i, g in enumerate(GRADE_ORDER)}
_EPS = 1e-7


class MatchError(RuntimeError):
    """The LP could not be solved (should not happen: the model is always feasible)."""


@dataclass
class SupplyGrid:
    """Forecast supply in kg per orchard, week and grade (grades in ``GRADE_ORDER``, best first)."""

    orchard_ids: list[str]
    weeks: list[Any]                      #: week labels (Monday dates); index = week number
    kg: np.ndarray                        #: shape (orchards, weeks, grades), kg at the committing confidence
    transport_fen_per_kg: np.ndarray      #: shape (orchards,), orchard -> warehouse, fen/kg
    poor: np.ndarray                      #: shape (orchards,), bool: a poverty-alleviated household's orchard
    eligible: np.ndarray | None = None    #: shape (orchards,), bool: False = blacklisted supplier
    #: several sites, exact: shape (orchards, sites), orchard -> site haulage, fen/kg (every orchard its own hub)
    site_transport_fen_per_kg: np.ndarray | None = None
    #: several sites through hubs: the hub (e.g. township seat) of each orchard, shape (orchards,) int;
    #: haulage orchard -> site = ``transport_fen_per_kg`` (orchard -> hub) + ``hub_site_fen_per_kg``
    hub_of: np.ndarray | None = None
    hub_site_fen_per_kg: np.ndarray | None = None   #: shape (hubs, sites), hub -> site, fen/kg

    @property
    def n_sites(self) -> int:
        if self.hub_site_fen_per_kg is not None:
            return int(self.hub_site_fen_per_kg.shape[1])
        return 1 if self.site_transport_fen_per_kg is None else int(self.site_transport_fen_per_kg.shape[1])

    def hubs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(hub of each orchard, orchard -> hub fen/kg, hub -> site fen/kg (hubs, sites))."""
        n = len(self.orchard_ids)
        if self.hub_site_fen_per_kg is not None:
            assert self.hub_of is not None
            return self.hub_of, self.transport_fen_per_kg, self.hub_site_fen_per_kg
        if self.site_transport_fen_per_kg is not None:
            return np.arange(n), np.zeros(n), self.site_transport_fen_per_kg
        return np.zeros(n, dtype=np.int64), self.transport_fen_per_kg, np.zeros((1, 1))

    @property
    def transport_os(self) -> np.ndarray:
        """(orchards, sites) haulage cost orchard -> site, fen/kg."""
        hub, a, b = self.hubs()
        return a[:, None] + b[hub]

    def __post_init__(self) -> None:
        n, w = len(self.orchard_ids), len(self.weeks)
        if self.site_transport_fen_per_kg is not None:
            self.site_transport_fen_per_kg = np.asarray(self.site_transport_fen_per_kg, dtype=float)
            if self.site_transport_fen_per_kg.ndim != 2 or self.site_transport_fen_per_kg.shape[0] != n:
                raise ValueError(f"site transport shape {self.site_transport_fen_per_kg.shape} != ({n}, sites)")
        if self.hub_site_fen_per_kg is not None:
            self.hub_site_fen_per_kg = np.asarray(self.hub_site_fen_per_kg, dtype=float)
            if self.hub_of is None or self.hub_site_fen_per_kg.ndim != 2:
                raise ValueError("hub_site_fen_per_kg needs hub_of and shape (hubs, sites)")
            self.hub_of = np.asarray(self.hub_of, dtype=np.int64).reshape(n)
            if n and (self.hub_of.min() < 0 or self.hub_of.max() >= self.hub_site_fen_per_kg.shape[0]):
                raise ValueError("hub_of indexes outside hub_site_fen_per_kg")
        self.kg = np.asarray(self.kg, dtype=float)
        if self.kg.shape != (n, w, len(GRADE_ORDER)):
            raise ValueError(f"supply shape {self.kg.shape} != {(n, w, len(GRADE_ORDER))}")
        if np.any(self.kg < 0) or not np.all(np.isfinite(self.kg)):
            raise ValueError("supply kg must be finite and >= 0")
        self.transport_fen_per_kg = np.asarray(self.transport_fen_per_kg, dtype=float).reshape(n)
        self.poor = np.asarray(self.poor, dtype=bool).reshape(n)
        self.eligible = (np.ones(n, dtype=bool) if self.eligible is None
                         else np.asarray(self.eligible, dtype=bool).reshape(n))


#: (ordered grade, first week, last week, tier, freight per site): tier 0 = orders holding an earlier
#: allocation; the freight tuple is empty with one site (freight is then inside the order's value)
ClassKey = tuple[str, int, int, int, tuple[float, ...]]


@dataclass(frozen=True)
class OrderDemand:
    """One forward order as the matcher sees it."""

    order_id: str
    grade: str                  #: ordered grade code
    quantity_kg: float          #: kg still to allocate in this stage
    week_from: int              #: first delivery week index (inclusive)
    week_to: int                #: last delivery week index (inclusive)
    value_fen_per_kg: float     #: price minus warehouse->destination freight, fen/kg
    priority: int = 0           #: time priority: lower = placed earlier
    senior: bool = False        #: already holds an allocation: filled before orders placed since
    #: several sites: freight from each site to the order's destination, fen/kg (then ``value_fen_per_kg``
    #: is the price alone); empty with one site
    site_freight_fen_per_kg: tuple[float, ...] = ()

    @property
    def class_key(self) -> ClassKey:
        return (self.grade, self.week_from, self.week_to, 0 if self.senior else 1,
                tuple(round(f, 6) for f in self.site_freight_fen_per_kg))

    def value_at(self, site: int) -> float:
        """Value of a kg delivered from ``site``: price minus freight, fen/kg."""
        return self.value_fen_per_kg - (self.site_freight_fen_per_kg[site] if self.site_freight_fen_per_kg else 0.0)


@dataclass
class MatchParams:
    """Tunable rules (every default is an *assumption*, stated in the note and the API docs)."""

    crate_kg: float = 10.0                    #: orders are filled in whole crates of this many kg
    storage_fen_per_kg_week: float = 6.0      #: cold storage cost, fen per kg per week held
    max_storage_weeks: int = 2                #: crisp plum keeps about 2-3 weeks at 0-2 °C (assumption)
    #: cold-storage capacity, kg: a number, one per week (one site), one per site, or (sites, weeks); None = unlimited
    capacity_kg_per_week: Any = None
    #: intake a site can receive, pre-cool and grade per week, kg (same shapes); None = unlimited
    intake_kg_per_week: Any = None
    poverty_min_share: float = 0.25           #: min share of committed kg from poverty-alleviated orchards
    substitution_penalty_fen_per_kg: float = 1.0   #: per grade step of a better grade filling a lower one
    move_penalty_fen_per_kg: float = 20.0     #: re-allocation: cost per kg moved against the previous plan

    def capacity_array(self, n_weeks: int, n_sites: int = 1) -> np.ndarray | None:
        """Cold-storage capacity as (weeks,) for one site, (sites, weeks) for several; None = unlimited."""
        return _per_site_week(self.capacity_kg_per_week, n_weeks, n_sites, "capacity_kg_per_week")

    def intake_array(self, n_weeks: int, n_sites: int = 1) -> np.ndarray | None:
        """Weekly intake limit, shaped like :meth:`capacity_array`."""
        return _per_site_week(self.intake_kg_per_week, n_weeks, n_sites, "intake_kg_per_week")


def _per_site_week(value: Any, n_weeks: int, n_sites: int, name: str) -> np.ndarray | None:
    """A number, (weeks,) [one site], (sites,) [several; constant over weeks] or (sites, weeks) -> (weeks,)
    for one site or (sites, weeks) for several."""
    if value is None:
        return None
    if isinstance(value, int | float):
        arr = np.full((n_sites, n_weeks), float(value))
    else:
        a = np.asarray(value, dtype=float)
        if n_sites == 1 and a.shape == (n_weeks,):
            arr = a[None, :]
        elif n_sites > 1 and a.shape == (n_sites,):
            arr = np.repeat(a[:, None], n_weeks, axis=1)
        elif a.shape == (n_sites, n_weeks):
            arr = a
        else:
            raise ValueError(f"{name} needs {n_weeks} values (one site), {n_sites} (one per site) or "
                             f"({n_sites}, {n_weeks}); got {a.shape}")
    return arr[0] if n_sites == 1 else arr


def _as_sw(arr: np.ndarray | None, n_sites: int, n_weeks: int) -> np.ndarray | None:
    if arr is None:
        return None
    return np.asarray(arr, dtype=float).reshape(n_sites, n_weeks)


@dataclass(frozen=True)
class AllocRow:
    """Orchard ``orchard`` supplies ``kg`` of ``grade`` harvested in week ``harvest_week`` to ``order_id``,
    delivered in ``delivery_week``."""

    order_id: str
    orchard: int
    harvest_week: int
    delivery_week: int
    grade: str
    kg: float
    site: int = 0           #: index of the origin warehouse site the fruit goes through


@dataclass
class StageResult:
    rows: list[AllocRow]
    filled_kg: dict[str, float]          #: per order, kg (whole crates unless the order is smaller)
    used_kg: np.ndarray                  #: (orchards, weeks, grades) kg taken from supply
    occupancy_kg: np.ndarray             #: kg held in cold storage at the end of each week: (weeks,) or (sites, weeks)
    value_fen: float                     #: sum of order value minus transport and storage cost, fen
    lp_objective: float                  #: the LP's own objective (with priority weights), fen-equivalent
    poor_share: float                    #: share of committed kg from poverty-alleviated orchards
    stats: dict[str, Any] = field(default_factory=dict)
    intake_kg: np.ndarray | None = None  #: (sites, weeks) kg received per site and harvest week


@dataclass
class MatchResult:
    commit: StageResult
    expected: StageResult | None
    orders: dict[str, dict[str, float]]  #: order_id -> requested/committed/expected/shortfall kg

    @property
    def rows(self) -> list[tuple[str, AllocRow]]:
        out = [("committed", r) for r in self.commit.rows]
        if self.expected is not None:
            out += [("expected", r) for r in self.expected.rows]
        return out


# --------------------------------------------------------------------------------------------- LP

@dataclass
class _LP:
    c: np.ndarray            # maximisation coefficients
    a_eq: sp.csc_matrix
    b_eq: np.ndarray
    a_ub: sp.csc_matrix
    b_ub: np.ndarray
    ub: np.ndarray
    y_idx: tuple[np.ndarray, np.ndarray, np.ndarray]   # (o, h, g) of y columns
    x_keys: list[tuple[ClassKey, int, int, int, int]]  # (class, s, h, g', t) of x columns
    n_y: int
    n_x: int
    fill_weight: float
    poverty_weight: float
    seniority_weight: float
    value: np.ndarray        # value-minus-cost coefficient per column (no priority weights)
    poor_row: int | None
    r_idx: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None  # (hub, s, h, g) of r columns
    n_r: int = 0

    @property
    def x0(self) -> int:
        """Index of the first x column (after y and r)."""
        return self.n_y + self.n_r

    @property
    def n_move(self) -> int:
        """Columns whose moves re-allocation penalises (y, r, x)."""
        return self.n_y + self.n_r + self.n_x


def _classes(orders: Sequence[OrderDemand]) -> dict[ClassKey, list[OrderDemand]]:
    out: dict[ClassKey, list[OrderDemand]] = defaultdict(list)
    for od in orders:
        if od.quantity_kg > _EPS:
            out[od.class_key].append(od)
    for members in out.values():
        members.sort(key=lambda o: (o.priority, o.order_id))
    return dict(sorted(out.items()))


def build_lp(supply: SupplyGrid, orders: Sequence[OrderDemand], params: MatchParams,
             capacity: np.ndarray | None, intake: np.ndarray | None = None
             ) -> tuple[_LP, dict[ClassKey, list[OrderDemand]]]:
    """Assemble the pooled LP as sparse matrices (see the module docstring). ``capacity`` and ``intake``
    are (weeks,) with one site or (sites, weeks) with several, or None (unlimited)."""
    n_o, n_w, n_g = supply.kg.shape
    n_s = supply.n_sites
    classes = _classes(orders)
    for ck in classes:
        if len(ck[4]) != n_s and (n_s > 1 or len(ck[4]) > 1):
            raise ValueError(f"orders need one freight per site ({n_s}) with several sites; got {len(ck[4])}")
    cap = _as_sw(capacity, n_s, n_w)
    inl = _as_sw(intake, n_s, n_w)
    hub, to_hub, hub_site = supply.hubs()
    bound = np.floor(supply.kg + 1e-9)
    assert supply.eligible is not None
    mask = (bound > 0) & supply.eligible[:, None, None]
    yo, yh, yg = np.nonzero(mask)
    n_y = len(yo)
    y_ub = bound[yo, yh, yg]
    y_val = -supply.transport_os[yo, 0] if n_s == 1 else -to_hub[yo]
    # several sites: r columns route a hub's kg of (h, g) to each site (hub -> site cost)
    n_r = 0
    r_idx = None
    r_val: np.ndarray = np.zeros(0)
    r_ub: np.ndarray = np.zeros(0)
    if n_s > 1:
        hkey = (hub[yo] * n_w + yh) * n_g + yg
        hcells, hinv = np.unique(hkey, return_inverse=True)
        n_hc = len(hcells)
        rc = np.repeat(np.arange(n_hc), n_s)
        rs = np.tile(np.arange(n_s), n_hc)
        rk, rh, rg = hcells[rc] // (n_w * n_g), (hcells[rc] // n_g) % n_w, hcells[rc] % n_g
        n_r = len(rc)
        r_idx = (rk, rs, rh, rg)
        r_val = -hub_site[rk, rs]
        r_ub = np.bincount(hinv, weights=y_ub, minlength=n_hc)[rc]
    else:
        n_hc = 0

    site_values = [m.value_at(si) for m in orders for si in range(n_s)]
    max_abs_value = max([abs(v) for v in site_values] or [0.0])
    max_tr = float(np.max(np.abs(supply.transport_os))) if n_o else 0.0
    spread = (max_abs_value + max_tr + params.storage_fen_per_kg_week * (params.max_storage_weeks + 1)
              + params.substitution_penalty_fen_per_kg * n_g + 1.0)
    fill_weight = max(100.0, 10.0 * spread, 10.0 * params.move_penalty_fen_per_kg)
    poverty_weight = fill_weight / 2.0
    seniority_weight = fill_weight / 5.0

    # x columns
    x_keys: list[tuple[ClassKey, int, int, int, int]] = []
    x_val: list[float] = []
    x_class: list[int] = []
    cls_list = list(classes)
    for ci, ck in enumerate(cls_list):
        members = classes[ck]
        dem = sum(m.quantity_kg for m in members)
        gi = _GIDX[ck[0]]
        for si in range(n_s):
            v = sum(m.quantity_kg * m.value_at(si) for m in members) / dem
            for t in range(max(ck[1], 0), min(ck[2], n_w - 1) + 1):
                for h in range(max(0, t - params.max_storage_weeks), t + 1):
                    for g2 in range(gi + 1):
                        x_keys.append((ck, si, h, g2, t))
                        x_val.append(v - params.storage_fen_per_kg_week * (t - h)
                                     - params.substitution_penalty_fen_per_kg * (gi - g2))
                        x_class.append(ci)
    n_x = len(x_keys)
    x0 = n_y + n_r
    xs = np.fromiter((k[1] for k in x_keys), dtype=np.int64, count=n_x)
    xh = np.fromiter((k[2] for k in x_keys), dtype=np.int64, count=n_x)
    xg = np.fromiter((k[3] for k in x_keys), dtype=np.int64, count=n_x)
    xt = np.fromiter((k[4] for k in x_keys), dtype=np.int64, count=n_x)
    xc = np.asarray(x_class, dtype=np.int64)
    class_dem = np.array([sum(m.quantity_kg for m in classes[k]) for k in cls_list], dtype=float)

    s = float(params.poverty_min_share)
    has_poor = s > 0 and n_y > 0
    n_z = 1 if has_poor else 0
    n_cols = x0 + n_x + n_z

    # equality rows: [hub cells (several sites)], then pools, pool index = (site * weeks + h) * grades + g
    x_pool = n_hc + (xs * n_w + xh) * n_g + xg
    if n_s == 1:
        into_pool_r, into_pool_c = yh * n_g + yg, np.arange(n_y)
        eq_parts = [(into_pool_r, into_pool_c, np.ones(n_y))]
    else:
        assert r_idx is not None
        rk, rs, rh, rg = r_idx
        eq_parts = [(hinv, np.arange(n_y), np.ones(n_y)),                          # y into the hub cell
                    (rc, n_y + np.arange(n_r), -np.ones(n_r)),                      # r out of the hub cell
                    (n_hc + (rs * n_w + rh) * n_g + rg, n_y + np.arange(n_r), np.ones(n_r))]  # r into the pool
    eq_parts.append((x_pool, x0 + np.arange(n_x), -np.ones(n_x)))
    n_eq = n_hc + n_s * n_w * n_g
    a_eq = sp.csc_matrix((np.concatenate([p[2] for p in eq_parts]),
                          (np.concatenate([p[0] for p in eq_parts]), np.concatenate([p[1] for p in eq_parts]))),
                         shape=(n_eq, n_cols))
    b_eq = np.zeros(n_eq)

    # inequality rows: classes, [capacity site-weeks], [intake site-weeks], poverty
    rows_r = [xc]
    rows_c = [x0 + np.arange(n_x)]
    rows_v = [np.ones(n_x)]
    b_ub_parts = [class_dem]
    r0 = len(cls_list)
    if cap is not None:
        span = xt - xh
        rep = np.repeat(np.arange(n_x), span)
        offs = np.arange(int(span.sum())) - np.repeat(np.cumsum(span) - span, span)
        rows_r.append(r0 + xs[rep] * n_w + xh[rep] + offs)
        rows_c.append(x0 + rep)
        rows_v.append(np.ones(len(rep)))
        b_ub_parts.append(cap.reshape(-1))
        r0 += n_s * n_w
    if inl is not None:
        if n_s == 1:
            rows_r.append(r0 + yh)
            rows_c.append(np.arange(n_y))
            rows_v.append(np.ones(n_y))
        else:
            assert r_idx is not None
            rows_r.append(r0 + r_idx[1] * n_w + r_idx[2])
            rows_c.append(n_y + np.arange(n_r))
            rows_v.append(np.ones(n_r))
        b_ub_parts.append(inl.reshape(-1))
        r0 += n_s * n_w
    poor_row = None
    if has_poor:
        poor_row = r0
        rows_r.append(np.full(n_y + 1, r0))
        rows_c.append(np.concatenate([np.arange(n_y), [n_cols - 1]]))
        rows_v.append(np.concatenate([s - supply.poor[yo].astype(float), [-1.0]]))
        b_ub_parts.append(np.zeros(1))
        r0 += 1
    a_ub = sp.csc_matrix((np.concatenate(rows_v), (np.concatenate(rows_r), np.concatenate(rows_c))),
                         shape=(r0, n_cols))
    b_ub = np.concatenate(b_ub_parts)

    value = np.concatenate([y_val, r_val, np.asarray(x_val, dtype=float), np.zeros(n_z)])
    c = value.copy()
    c[x0:x0 + n_x] += fill_weight
    senior_cols = np.fromiter((k[0][3] == 0 for k in x_keys), dtype=bool, count=n_x)
    c[x0:x0 + n_x][senior_cols] += seniority_weight
    if has_poor:
        c[-1] = -poverty_weight
    ub = np.concatenate([y_ub, r_ub, class_dem[xc] if n_x else np.zeros(0), np.full(n_z, np.inf)])
    return _LP(c, a_eq, b_eq, a_ub, b_ub, ub, (yo, yh, yg), x_keys, n_y, n_x, fill_weight,
               poverty_weight, seniority_weight, value, poor_row, r_idx, n_r), classes


def _solve(lp: _LP, v0: np.ndarray | None, move_penalty: float) -> tuple[np.ndarray, float, dict[str, Any]]:
    """Solve; with ``v0`` (previous values of the y and x columns) penalise moves (v = v0 + p - m)."""
    c, a_eq, b_eq, a_ub, b_ub, ub = lp.c, lp.a_eq, lp.b_eq, lp.a_ub, lp.b_ub, lp.ub
    n = len(c)
    lb = np.zeros(n)
    m_cols = np.zeros(0, dtype=np.int64)
    if v0 is not None:
        nm = lp.n_move
        full_v0 = np.zeros(n)
        full_v0[:nm] = v0
        pen = np.zeros(n)
        pen[:nm] = move_penalty
        m_cols = np.nonzero(full_v0 > _EPS)[0]
        b_eq = b_eq - a_eq @ full_v0
        b_ub = b_ub - a_ub @ full_v0
        p_ub = np.where(full_v0 > 0, np.maximum(0.0, ub - full_v0), ub)
        m_lb = np.maximum(0.0, full_v0[m_cols] - ub[m_cols])
        m_ub = full_v0[m_cols]
        a_eq = sp.hstack([a_eq, -a_eq[:, m_cols]], format="csc")
        a_ub = sp.hstack([a_ub, -a_ub[:, m_cols]], format="csc")
        c = np.concatenate([c - pen, -c[m_cols] - pen[m_cols]])
        lb = np.concatenate([np.zeros(n), m_lb])
        ub = np.concatenate([p_ub, m_ub])
    t0 = time.perf_counter()
    res = linprog(-c, A_ub=a_ub if a_ub.shape[0] else None, b_ub=b_ub if a_ub.shape[0] else None,
                  A_eq=a_eq, b_eq=b_eq, bounds=np.column_stack([lb, ub]), method="highs")
    solve_s = time.perf_counter() - t0
    if res.status != 0:
        raise MatchError(f"allocation LP failed: status {res.status}: {res.message}")
    sol = np.asarray(res.x, dtype=float)
    v = sol[:n].copy()
    if v0 is not None:
        v[: lp.n_move] += v0
        v[m_cols] -= sol[n:]
    v = np.maximum(v, 0.0)
    return v, float(-res.fun), {"solve_s": solve_s, "lp_rows": int(a_eq.shape[0] + a_ub.shape[0]),
                                "lp_cols": len(c), "lp_nonzeros": int(a_eq.nnz + a_ub.nnz)}


# ---------------------------------------------------------------------------- disaggregation

def sticky_northwest(left: Sequence[tuple[Any, float]], right: Sequence[tuple[Any, float]],
                     previous: dict[tuple[Any, Any], float] | None = None
                     ) -> list[tuple[Any, Any, float]]:
    """Split ``left`` amounts over ``right`` amounts (transport-problem basis, at most
    ``len(left) + len(right)`` pieces): first keep ``previous`` pairings, then north-west corner."""
    lrem = {k: a for k, a in left}
    rrem = {k: a for k, a in right}
    out: list[tuple[Any, Any, float]] = []
    if previous:
        for (lk, rk), pa in sorted(previous.items(), key=lambda kv: repr(kv[0])):
            if lk in lrem and rk in rrem:
                a = min(pa, lrem[lk], rrem[rk])
                if a > _EPS:
                    out.append((lk, rk, a))
                    lrem[lk] -= a
                    rrem[rk] -= a
    ri = 0
    rkeys = [k for k, _ in right]
    for lk, _ in left:
        need = lrem[lk]
        while need > _EPS and ri < len(rkeys):
            rk = rkeys[ri]
            a = min(need, rrem[rk])
            if a > _EPS:
                out.append((lk, rk, a))
                need -= a
                rrem[rk] -= a
            if rrem[rk] <= _EPS:
                ri += 1
        lrem[lk] = need
    return out


def pro_rata_crates(total_kg: float, members: Sequence[OrderDemand], crate_kg: float,
                    previous: dict[str, float] | None = None) -> dict[str, float]:
    """Share ``total_kg`` over ``members`` in proportion to their quantity, each floored to whole crates
    (never above its quantity); leftover crates go one at a time to the earliest orders (``members`` are
    in time priority), never lifting an order more than one crate above its exact share.

    ``previous`` (re-allocation): the fills of the previous plan are kept as they are when they still
    fit (their sum within ``total_kg``) and each is within one crate of its exact share, so solver noise
    or an unchanged forecast never moves crates between orders. Integer arithmetic in grams."""
    q = [round(m.quantity_kg * 1000) for m in members]
    dem = sum(q)
    if dem <= 0:
        return {m.order_id: 0.0 for m in members}
    total = min(round(total_kg * 1000), dem)
    crate = max(1, round(crate_kg * 1000))
    got = [min(qi, (total * qi // dem) // crate * crate) for qi in q]
    if previous:
        prev = [min(qi, round(previous.get(m.order_id, 0.0) * 1000)) for m, qi in zip(members, q, strict=True)]
        if sum(prev) <= total and all(abs(p * dem - total * qi) <= crate * dem for p, qi in zip(prev, q, strict=True)):
            got = prev
    left = total - sum(got)
    progress = True
    while left > 0 and progress:
        progress = False
        for i, qi in enumerate(q):
            step = min(crate, qi - got[i])
            if 0 < step <= left and (got[i] + step) * dem <= total * qi + crate * dem:
                got[i] += step
                left -= step
                progress = True
                if left <= 0:
                    break
    return {m.order_id: g / 1000 for m, g in zip(members, got, strict=True)}


def solve_stage(supply: SupplyGrid, orders: Sequence[OrderDemand], params: MatchParams,
                capacity: np.ndarray | None = None, previous: Sequence[AllocRow] = (),
                intake: np.ndarray | None = None) -> StageResult:
    """Allocate one stage (see the module docstring); ``previous`` rows make it a re-allocation."""
    t0 = time.perf_counter()
    lp, classes = build_lp(supply, orders, params, capacity, intake)
    build_s = time.perf_counter() - t0
    n_o, n_w, n_g = supply.kg.shape
    n_s = supply.n_sites
    hub = supply.hubs()[0]
    by_id = {o.order_id: o for o in orders}

    v0 = None
    prev_pairs_cls: dict[tuple[Hashable, Hashable], float] = defaultdict(float)
    # pool (s, h, g) -> ((order, t), hub or orchard); hub cell (k, h, g) -> (((order, t), s), orchard)
    prev_pairs_pool: dict[tuple[int, int, int], dict[tuple[Hashable, Hashable], float]] = defaultdict(
        lambda: defaultdict(float))
    prev_pairs_hub: dict[tuple[int, int, int], dict[tuple[Hashable, Hashable], float]] = defaultdict(
        lambda: defaultdict(float))
    prev_fill: dict[str, float] = defaultdict(float)
    if previous:
        for r in previous:
            prev_fill[r.order_id] += r.kg
        yo, yh, yg = lp.y_idx
        ycol = {(int(o), int(h), int(g)): i for i, (o, h, g) in enumerate(zip(yo, yh, yg, strict=True))}
        rcol = ({} if lp.r_idx is None else
                {(int(k), int(si), int(h), int(g)): lp.n_y + i
                 for i, (k, si, h, g) in enumerate(zip(*lp.r_idx, strict=True))})
        xcol = {k: lp.x0 + i for i, k in enumerate(lp.x_keys)}
        v0 = np.zeros(lp.n_move)
        for r in previous:
            od = by_id.get(r.order_id)
            g2 = _GIDX[r.grade]
            j = ycol.get((r.orchard, r.harvest_week, g2))
            if j is not None:
                v0[j] += r.kg
            k = int(hub[r.orchard])
            rj = rcol.get((k, r.site, r.harvest_week, g2))
            if rj is not None:
                v0[rj] += r.kg
            if od is None:
                continue
            xj = xcol.get((od.class_key, r.site, r.harvest_week, g2, r.delivery_week))
            if xj is not None:
                v0[xj] += r.kg
            prev_pairs_cls[(r.order_id, (r.site, r.harvest_week, g2, r.delivery_week))] += r.kg
            src = k if n_s > 1 else r.orchard
            prev_pairs_pool[(r.site, r.harvest_week, g2)][((r.order_id, r.delivery_week), src)] += r.kg
            prev_pairs_hub[(k, r.harvest_week, g2)][(((r.order_id, r.delivery_week), r.site), r.orchard)] += r.kg
        v0 = np.minimum(v0, lp.ub[: lp.n_move])
    v, lp_obj, stats = _solve(lp, v0, params.move_penalty_fen_per_kg)
    v = np.round(v, 3)   # to the gram: solver noise must not flip crates between identical runs
    t1 = time.perf_counter()

    # class fills -> per-order crates (pro rata) -> pieces per flow
    x = v[lp.x0:lp.x0 + lp.n_x]
    flows_by_class: dict[ClassKey, list[tuple[Any, float]]] = defaultdict(list)
    for key, amt in zip(lp.x_keys, x, strict=True):
        if amt > _EPS:
            flows_by_class[key[0]].append(((key[1], key[2], key[3], key[4]), float(amt)))
    filled: dict[str, float] = {o.order_id: 0.0 for o in orders}
    pool_out: dict[tuple[int, int, int], list[tuple[Hashable, float]]] = defaultdict(list)
    for ck, members in classes.items():   # flow key (site, h, g', t): in time order, then harvest, grade, site
        flows = sorted(flows_by_class.get(ck, []), key=lambda f: (f[0][3], f[0][1], f[0][2], f[0][0]))
        total = sum(a for _, a in flows)
        shares = pro_rata_crates(total, members, params.crate_kg, prev_fill or None)
        filled.update(shares)
        got = sum(shares.values())
        if got <= _EPS:
            continue
        rho = 1.0 if abs(got - total) < 1e-6 else got / total
        pieces = sticky_northwest([(m.order_id, shares[m.order_id]) for m in members],
                                  [(fk, a * rho) for fk, a in flows], prev_pairs_cls)
        for oid, fk, a in pieces:
            si, h, g2, t = fk
            pool_out[(si, h, g2)].append(((oid, t), a))

    # pools -> sources: orchards (one site) or hubs, then hubs -> orchards (several sites)
    yo, yh, yg = lp.y_idx
    yv = v[: lp.n_y]
    from_y: dict[tuple[int, int, int], list[tuple[Hashable, float]]] = defaultdict(list)
    for o, h, g, a in zip(yo, yh, yg, yv, strict=True):
        if a > _EPS:
            from_y[(int(hub[o]) if n_s > 1 else 0, int(h), int(g))].append((int(o), float(a)))
    if n_s > 1:
        assert lp.r_idx is not None
        into_pool: dict[tuple[int, int, int], list[tuple[Hashable, float]]] = defaultdict(list)
        for k, si, h, g, a in zip(*lp.r_idx, v[lp.n_y:lp.x0], strict=True):
            if a > _EPS:
                into_pool[(int(si), int(h), int(g))].append((int(k), float(a)))
    else:
        into_pool = from_y
    rows: list[AllocRow] = []
    hub_out: dict[tuple[int, int, int], list[tuple[Hashable, float]]] = defaultdict(list)
    for pool, outs in sorted(pool_out.items()):
        si, h, g2 = pool
        for (oid, t), src, a in _split(outs, into_pool.get(pool, []), prev_pairs_pool.get(pool), by_id):
            if n_s == 1:
                rows.append(AllocRow(oid, int(src), h, int(t), GRADE_ORDER[g2], a, si))
            else:
                hub_out[(int(src), h, g2)].append((((oid, t), si), a))
    for cell, outs in sorted(hub_out.items()):
        k, h, g2 = cell
        for ((oid, t), si), o, a in _split(outs, from_y.get(cell, []), prev_pairs_hub.get(cell), by_id):
            rows.append(AllocRow(oid, int(o), h, int(t), GRADE_ORDER[g2], a, int(si)))
    rows = _round_rows(rows, filled)
    used = np.zeros((n_o, n_w, n_g))
    occupancy = np.zeros((n_s, n_w))
    intake_kg = np.zeros((n_s, n_w))
    tr = supply.transport_os
    for r in rows:
        used[r.orchard, r.harvest_week, _GIDX[r.grade]] += r.kg
        occupancy[r.site, r.harvest_week:r.delivery_week] += r.kg
        intake_kg[r.site, r.harvest_week] += r.kg
    committed = used.sum()
    poor_kg = used[supply.poor].sum()
    value = sum(r.kg * (by_id[r.order_id].value_at(r.site) - tr[r.orchard, r.site]
                        - params.storage_fen_per_kg_week * (r.delivery_week - r.harvest_week)) for r in rows)
    stats.update({"build_s": build_s, "disaggregate_s": time.perf_counter() - t1, "classes": len(classes),
                  "y_vars": lp.n_y, "r_vars": lp.n_r, "x_vars": lp.n_x, "fill_weight": lp.fill_weight,
                  "seniority_weight": lp.seniority_weight,
                  "lp_value_fen": float(lp.value @ v), "lp_fill_kg": float(x.sum())})
    return StageResult(rows, filled, used, occupancy[0] if n_s == 1 else occupancy, float(value), lp_obj,
                       float(poor_kg / committed) if committed > 0 else 0.0, stats, intake_kg)


def _split(outs: list[tuple[Hashable, float]], ins: list[tuple[Hashable, float]],
           previous: dict[tuple[Hashable, Hashable], float] | None, by_id: dict[str, OrderDemand]
           ) -> list[tuple[Any, Any, float]]:
    """Split a node's outflows (keys whose first item starts with an order id) over its inflows, in the
    orders' time priority, keeping previous pairings first (:func:`sticky_northwest`)."""
    merged: dict[Any, float] = defaultdict(float)
    for ok, a in outs:
        merged[ok] += a

    def first_order(key: Any) -> str:
        while isinstance(key, tuple):
            key = key[0]
        return str(key)

    outs_m = sorted(merged.items(), key=lambda kv: (by_id[first_order(kv[0])].priority, kv[0]))
    tot_in = sum(a for _, a in ins)
    tot_out = sum(a for _, a in outs_m)
    rho = (1.0 if abs(tot_out - tot_in) < 1e-6 else tot_out / tot_in) if tot_in > 0 else 0.0
    return sticky_northwest(outs_m, [(o, a * rho) for o, a in ins], previous)


def _round_rows(rows: list[AllocRow], filled: dict[str, float]) -> list[AllocRow]:
    """Round row kg to grams, keeping each order's total equal to its (crate) fill."""
    by_order: dict[str, list[AllocRow]] = defaultdict(list)
    for r in rows:
        by_order[r.order_id].append(r)
    out: list[AllocRow] = []
    for oid, rs in by_order.items():
        amounts = [round(r.kg, 3) for r in rs]
        diff = round(filled[oid] - sum(amounts), 3)
        if abs(diff) > 0:
            i = int(np.argmax(amounts))
            amounts[i] = round(amounts[i] + diff, 3)
        out += [AllocRow(r.order_id, r.orchard, r.harvest_week, r.delivery_week, r.grade, a, r.site)
                for r, a in zip(rs, amounts, strict=True) if a > 0]
    return out


def match(supply: SupplyGrid, orders: Sequence[OrderDemand], params: MatchParams | None = None, *,
          expected_kg: np.ndarray | None = None,
          previous_committed: Sequence[AllocRow] = (), previous_expected: Sequence[AllocRow] = ()
          ) -> MatchResult:
    """Commit against ``supply.kg`` (e.g. P10), then offer the remaining demand against
    ``expected_kg`` (e.g. P50; same shape) minus what was committed, as 'expected'."""
    params = params or MatchParams()
    n_w = supply.kg.shape[1]
    n_s = supply.n_sites
    cap = params.capacity_array(n_w, n_s)
    intake = params.intake_array(n_w, n_s)
    commit = solve_stage(supply, orders, params, cap, previous_committed, intake)
    expected = None
    rest = [replace(o, quantity_kg=o.quantity_kg - commit.filled_kg.get(o.order_id, 0.0)) for o in orders]
    rest = [o for o in rest if o.quantity_kg > _EPS]
    if expected_kg is not None and rest:
        extra = np.maximum(0.0, np.floor(np.asarray(expected_kg, dtype=float) + 1e-9) - commit.used_kg)
        extra = np.floor(extra + 1e-6)
        sup2 = replace(supply, kg=extra)
        cap2 = None if cap is None else np.maximum(0.0, cap - commit.occupancy_kg)
        used_in = commit.intake_kg if commit.intake_kg is not None else np.zeros((n_s, n_w))
        intake2 = None if intake is None else np.maximum(0.0, intake - (used_in[0] if n_s == 1 else used_in))
        expected = solve_stage(sup2, rest, params, cap2, previous_expected, intake2)
    summary: dict[str, dict[str, float]] = {}
    for o in orders:
        c = commit.filled_kg.get(o.order_id, 0.0)
        e = expected.filled_kg.get(o.order_id, 0.0) if expected else 0.0
        summary[o.order_id] = {"requested_kg": o.quantity_kg, "committed_kg": c, "expected_kg": e,
                               "shortfall_kg": max(0.0, o.quantity_kg - c - e)}
    return MatchResult(commit, expected, summary)
