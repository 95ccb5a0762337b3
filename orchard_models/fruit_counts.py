"""Sample-tree fruit counts: stored (table ``fruit_counts``, owned here) and assimilated into the forecast.

The standard practice of orchard yield estimation (e.g. Wulfsohn et al. 2012, Precision Agric.
13:256-275; Link 2000 on crop load): after fruit set, count the fruits on a few sample trees, and
``crop kg = trees x mean fruits per tree x mean fruit mass``. Here that estimate is a measurement
of the orchard's season kg, combined with the model's forecast by a Bayesian update on the log
scale (both lognormal):

* prior: the forecast, median P50 and SD ``(log P90 - log P10) / (2 z90)``;
* measurement: ``log kg_count`` with variance ``log(1 + CV²)`` summed over independent parts --
  (1) sampling between trees: the sample's own CV² / n (at least ``MIN_TREE_CV``, since 2-3 trees
  cannot show the orchard's spread), (2) the counter's error per tree, ``COUNT_CV`` (fruit hidden in
  the canopy, double counting; *assumption* 10 %, visual counts in Wulfsohn et al. were within about
  that of the true number), averaged over the trees, (3) fruit mass at harvest: measured mean mass
  with ``MASS_CV_MEASURED`` (fruit still grows after the count, *assumption* 10 %), else the
  default mass ``DEFAULT_FRUIT_G`` with ``MASS_CV_DEFAULT`` (*assumption* 25 %), (4) the loss between
  the count and harvest (drop, pests, picking), ``LOSS_CV`` (*assumption* 10 %), with no bias assumed;
* posterior: precision-weighted mean of the two, variance ``1 / (1/v_prior + 1/v_count)``, so the
  interval always shrinks and moves toward the count as much as the count is precise.

The county total moves by the counted orchards' change of expected kg (their idiosyncratic part;
the season-level term the model shares with every orchard is left as it is).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np

__all__ = ["CountRecord", "FruitCounts", "add_fruit_count", "assimilate_counts", "count_estimate", "read_fruit_counts"]

Z90 = 1.2815515655446004
DEFAULT_FRUIT_G = 40.0      #: mean fresh mass of a Wushan crisp plum at harvest, g (*assumption*, DOMAIN: size grades)
MIN_TREE_CV = 0.25          #: floor of the between-tree CV of fruit number (*assumption*)
COUNT_CV = 0.10             #: counting error per tree (*assumption*)
MASS_CV_MEASURED = 0.10
MASS_CV_DEFAULT = 0.25
LOSS_CV = 0.10
MAX_FRUIT_PER_TREE = 20_000


@dataclass
class FruitCounts:
    """Per orchard (orchard axis of the forecast): mean fruits per sample tree, their between-tree CV,
    number of sample trees, mean fruit mass (g, NaN = not weighed), day index of the count (-1 = none)."""

    mean_per_tree: np.ndarray
    tree_cv: np.ndarray
    n_trees: np.ndarray
    mean_fruit_g: np.ndarray
    day: np.ndarray

    @classmethod
    def empty(cls, n: int) -> FruitCounts:
        nan = np.full(n, np.nan)
        return cls(nan, nan.copy(), np.zeros(n, dtype=np.int64), nan.copy(), np.full(n, -1, dtype=np.int64))

    def subset(self, idx: np.ndarray | slice) -> FruitCounts:
        return FruitCounts(self.mean_per_tree[idx], self.tree_cv[idx], self.n_trees[idx], self.mean_fruit_g[idx],
                           self.day[idx])


def count_estimate(c: FruitCounts, tree_count: np.ndarray, as_of_day: int) -> tuple[np.ndarray, np.ndarray]:
    """(log kg estimate, its variance) per orchard from counts known on ``as_of_day``; NaN where none."""
    known = (c.day >= 0) & (c.day <= as_of_day) & (c.n_trees > 0) & np.isfinite(c.mean_per_tree)
    mass = np.where(np.isfinite(c.mean_fruit_g), c.mean_fruit_g, DEFAULT_FRUIT_G)
    with np.errstate(divide="ignore", invalid="ignore"):
        kg = np.asarray(tree_count, dtype=np.float64) * c.mean_per_tree * mass / 1000.0
        n = np.maximum(c.n_trees, 1)
        cv_tree = np.maximum(np.nan_to_num(c.tree_cv, nan=MIN_TREE_CV), MIN_TREE_CV)
        mass_cv = np.where(np.isfinite(c.mean_fruit_g), MASS_CV_MEASURED, MASS_CV_DEFAULT)
        var = (np.log1p(cv_tree ** 2 / n) + np.log1p(COUNT_CV ** 2 / n) + np.log1p(mass_cv ** 2)
               + np.log1p(LOSS_CV ** 2))
        ok = known & (kg > 0)
        return np.where(ok, np.log(np.where(ok, kg, 1.0)), np.nan), np.where(ok, var, np.nan)


def assimilate_counts(p10: np.ndarray, p50: np.ndarray, p90: np.ndarray, c: FruitCounts, tree_count: np.ndarray,
                      as_of_day: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Posterior (P10, P50, P90) kg per orchard and a mask of the orchards updated (see module doc)."""
    m_c, v_c = count_estimate(c, tree_count, as_of_day)
    ok = np.isfinite(m_c) & (p10 > 0) & (p50 > 0) & (p90 > p10)
    out10, out50, out90 = p10.copy(), p50.copy(), p90.copy()
    if not ok.any():
        return out10, out50, out90, ok
    mu0 = np.log(p50[ok])
    v0 = ((np.log(p90[ok]) - np.log(p10[ok])) / (2 * Z90)) ** 2
    v1 = v_c[ok]
    v = 1.0 / (1.0 / v0 + 1.0 / v1)
    mu = v * (mu0 / v0 + m_c[ok] / v1)
    sd = np.sqrt(v)
    out50[ok] = np.exp(mu)
    out10[ok] = np.exp(mu - Z90 * sd)
    out90[ok] = np.exp(mu + Z90 * sd)
    return out10, out50, out90, ok


# -- storage ---------------------------------------------------------------------------------------

@dataclass
class CountRecord:
    client_id: str
    orchard_id: str
    counted_on: date
    tree_ids: list[str]
    fruit_per_tree: list[float]
    mean_fruit_g: float | None
    recorded_by: str | None


_COLS = ("count_id, client_id, orchard_id, counted_on, tree_ids, fruit_per_tree, mean_fruit_g, recorded_by, "
         "recorded_at")


def add_fruit_count(conn: Any, rec: CountRecord) -> tuple[dict[str, Any], bool]:
    """Insert one count (caller commits). Returns (the stored row, created). The same ``client_id``
    again returns the stored row with created False when its content is the same, and raises
    ``registry.errors.Conflict`` (HTTP 409) when it differs (a client id names one submission)."""
    from psycopg.rows import dict_row

    cur = conn.cursor(row_factory=dict_row)
    row = cur.execute(
        f"""INSERT INTO fruit_counts (client_id, orchard_id, counted_on, tree_ids, fruit_per_tree, mean_fruit_g,
                                      recorded_by)
            VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (client_id) DO NOTHING RETURNING {_COLS}""",
        (rec.client_id, rec.orchard_id, rec.counted_on, rec.tree_ids, rec.fruit_per_tree, rec.mean_fruit_g,
         rec.recorded_by)).fetchone()
    if row is not None:
        return row, True
    old = cur.execute(f"SELECT {_COLS} FROM fruit_counts WHERE client_id = %s", (rec.client_id,)).fetchone()
    same = (old["orchard_id"] == rec.orchard_id and old["counted_on"] == rec.counted_on
            and list(old["tree_ids"]) == rec.tree_ids
            and [float(v) for v in old["fruit_per_tree"]] == [float(v) for v in rec.fruit_per_tree]
            and (old["mean_fruit_g"] is None) == (rec.mean_fruit_g is None)
            and (rec.mean_fruit_g is None or float(old["mean_fruit_g"]) == float(rec.mean_fruit_g)))
    if not same:
        from registry.errors import Conflict

        raise Conflict(f"client_id {rec.client_id!r} was already used for a different count",
                       zh=f"提交编号 {rec.client_id!r} 已用于另一条计数记录", client_id=rec.client_id)
    return old, False


def read_fruit_counts(conn: Any, index: dict[str, int], season_start_day: date, until: datetime) -> FruitCounts:
    """Counts of the season (counted on or after ``season_start_day``, recorded before ``until``) per
    orchard of ``index``: the latest counting day's records pooled (all their trees)."""
    out = FruitCounts.empty(len(index))
    rows = conn.execute(
        """SELECT orchard_id, counted_on, fruit_per_tree, mean_fruit_g FROM fruit_counts
            WHERE counted_on >= %s AND recorded_at < %s AND counted_on <= (%s AT TIME ZONE 'Asia/Shanghai')::date
            ORDER BY orchard_id, counted_on""", (season_start_day, until, until)).fetchall()
    latest: dict[str, tuple[date, list[float], list[float]]] = {}
    for oid, day, fruits, mass in rows:
        if oid not in index:
            continue
        cur = latest.get(oid)
        if cur is None or day > cur[0]:
            cur = (day, [], [])
            latest[oid] = cur
        cur[1].extend(float(v) for v in fruits)
        if mass is not None:
            cur[2].append(float(mass))
    for oid, (day, fruits, masses) in latest.items():
        i = index[oid]
        a = np.asarray(fruits)
        out.mean_per_tree[i] = float(a.mean())
        out.tree_cv[i] = float(a.std(ddof=1) / a.mean()) if a.size >= 2 and a.mean() > 0 else np.nan
        out.n_trees[i] = a.size
        out.mean_fruit_g[i] = float(np.mean(masses)) if masses else np.nan
        out.day[i] = (day - season_start_day).days
    return out
