"""Cold chain (冷链): what temperatures a lot saw, from the same sensors ingest stores for orchards.

Cold rooms carry temperature devices (registry ``device_placements`` with a ``cold_room_id``, e.g. an
LHT65 or EM300-TH per room); their readings (metric ``air_temp_c``, °C) come from ingest through the
``temps`` function the caller passes (``ingest.read.room_air_temperatures``).
A lot's record covers the lot and everything upstream of it (its packed units and graded lots):

* ``hours_harvest_to_cold``: hours from the harvest event to the first entry into a cold room;
* per stay (room, entered, left): min / mean / max °C measured in the room meanwhile;
* ``hours_above_limit``: hours the room was above its upper limit while the lot was in it, each
  sample counting until the next one (at most ``MAX_SAMPLE_GAP``: a silent sensor does not count);
* ``worst_excursion_c``: the largest departure beyond the room's limits (°C, 0 = none).

Limits per room (``cold_room_limits``; defaults when a room has none): upper ``set point + 3 °C``,
lower ``-1.5 °C``, alert after 30 minutes outside. Plums keep at -1 to 0 °C and 90-95 % RH and
freeze at about -1.5 to -2 °C (Crisosto & Kader, "Plum and Fresh Prune", USDA Agriculture Handbook 66,
2016): the defaults are that advice as *assumptions* that a warehouse manager changes per room.

``check_excursions`` (a scheduler job) raises one alert per excursion (runs of samples outside the
limits lasting at least the room's ``alert_after_min``) for the warehouse manager, and resolves
alerts of excursions that have ended.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from registry.alerts import Alert, raise_alerts, resolve_alerts
from trading.errors import Invalid, NotFound

#: (conn, cold_room_id, t0, t1) -> [(time, °C)], as ``ingest.read.room_air_temperatures`` (the web layer and
#: the scheduler pass it in: trading does not read ingest's tables)
RoomTemperatures = Callable[[psycopg.Connection, str, datetime, datetime], list[tuple[datetime, float]]]
MAX_SAMPLE_GAP = timedelta(minutes=30)   #: longest time one sample stands for
DEFAULT_ABOVE_SET_POINT_C = 3.0          #: default upper limit = set point + this, °C
DEFAULT_MIN_C = -1.5                     #: default lower limit, °C (freezing injury below)
DEFAULT_ALERT_AFTER_MIN = 30             #: minutes outside the limits before an alert


@dataclass(frozen=True)
class Limits:
    """A room's limits: ``max_c`` / ``min_c`` in °C, ``alert_after_min`` in minutes."""

    max_c: float
    min_c: float
    alert_after_min: int


def room_limits(conn: psycopg.Connection, cold_room_id: str) -> Limits:
    row = conn.execute(
        """SELECT r.temperature_c, l.max_c, l.min_c, l.alert_after_min FROM cold_rooms r
             LEFT JOIN cold_room_limits l USING (cold_room_id) WHERE r.cold_room_id = %s""",
        (cold_room_id,)).fetchone()
    if row is None:
        raise NotFound(f"cold room {cold_room_id} not found", f"冷库 {cold_room_id} 不存在")
    set_point, max_c, min_c, after = row
    return Limits(float(max_c) if max_c is not None else float(set_point) + DEFAULT_ABOVE_SET_POINT_C,
                  float(min_c) if min_c is not None else DEFAULT_MIN_C,
                  int(after) if after is not None else DEFAULT_ALERT_AFTER_MIN)


def set_room_limits(conn: psycopg.Connection, cold_room_id: str, *, max_c: float, min_c: float,
                    alert_after_min: int) -> Limits:
    """Set a room's limits (°C, minutes); ``Invalid`` unless -10 <= min_c < max_c <= 30 and 1-1440 min."""
    for name, v in (("max_c", max_c), ("min_c", min_c)):
        if not isinstance(v, int | float) or v != v or not -10.0 <= v <= 30.0:
            raise Invalid(f"{name} must be a number of °C in -10..30", "温度限值不正确", field=name)
    if min_c >= max_c:
        raise Invalid("min_c must be below max_c", "下限必须低于上限", field="min_c")
    if not isinstance(alert_after_min, int) or not 1 <= alert_after_min <= 1440:
        raise Invalid("alert_after_min must be 1..1440", "报警延时不正确", field="alert_after_min")
    room_limits(conn, cold_room_id)   # NotFound for an unknown room
    conn.execute("""INSERT INTO cold_room_limits (cold_room_id, max_c, min_c, alert_after_min) VALUES (%s, %s, %s, %s)
                    ON CONFLICT (cold_room_id) DO UPDATE SET max_c = EXCLUDED.max_c, min_c = EXCLUDED.min_c,
                         alert_after_min = EXCLUDED.alert_after_min""",
                 (cold_room_id, max_c, min_c, alert_after_min))
    return Limits(max_c, min_c, alert_after_min)


def _durations(samples: list[tuple[datetime, float]], end: datetime) -> list[float]:
    """Hours each sample stands for: until the next sample (or ``end``), at most ``MAX_SAMPLE_GAP``."""
    out = []
    for i, (t, _) in enumerate(samples):
        nxt = samples[i + 1][0] if i + 1 < len(samples) else end
        out.append(min(max(nxt - t, timedelta(0)), MAX_SAMPLE_GAP).total_seconds() / 3600.0)
    return out


def stay_summary(samples: list[tuple[datetime, float]], end: datetime, lim: Limits) -> dict[str, Any]:
    """min / mean / max °C, hours above the upper limit, hours below the lower one, worst excursion °C."""
    if not samples:
        return {"samples": 0, "min_c": None, "mean_c": None, "max_c": None, "hours_above_limit": 0.0,
                "hours_below_limit": 0.0, "worst_excursion_c": 0.0}
    temps = [v for _, v in samples]
    dur = _durations(samples, end)
    return {
        "samples": len(samples),
        "min_c": round(min(temps), 2), "mean_c": round(sum(temps) / len(temps), 2), "max_c": round(max(temps), 2),
        "hours_above_limit": round(sum(d for d, v in zip(dur, temps, strict=True) if v > lim.max_c), 2),
        "hours_below_limit": round(sum(d for d, v in zip(dur, temps, strict=True) if v < lim.min_c), 2),
        "worst_excursion_c": round(max(0.0, max(temps) - lim.max_c, lim.min_c - min(temps)), 2),
    }


_UPSTREAM = """
WITH RECURSIVE up(object_id) AS (
    SELECT %(obj)s::text
    UNION
    SELECT e.from_object FROM trace_edges e JOIN up ON e.to_object = up.object_id
)
SELECT object_id FROM up
"""


def lot_record(conn: psycopg.Connection, object_id: str, now: datetime, temps: RoomTemperatures) -> dict[str, Any]:
    """The cold-chain record of a lot or packed unit (and all it was made of); see the module docstring."""
    ids = [r[0] for r in conn.execute(_UPSTREAM, {"obj": object_id}).fetchall()]
    with conn.cursor(row_factory=dict_row) as cur:
        if cur.execute("SELECT 1 FROM trace_objects WHERE object_id = %s", (object_id,)).fetchone() is None:
            raise NotFound(f"lot or unit {object_id} not found", f"批次或包装件 {object_id} 不存在")
        harvest = cur.execute(
            """SELECT min(e.event_time) AS t FROM trace_events e JOIN trace_event_items i USING (event_id)
                JOIN trace_objects o USING (object_id)
               WHERE o.object_id = ANY(%s) AND o.kind = 'harvest_lot' AND e.biz_step = 'commissioning'""",
            (ids,)).fetchone()
        stays = cur.execute(
            """SELECT s.cold_room_id, r.name, min(s.entered_at) AS entered_at,
                      max(coalesce(s.left_at, %s)) AS left_at
                 FROM trace_room_stays s JOIN cold_rooms r USING (cold_room_id)
                WHERE s.object_id = ANY(%s)
                GROUP BY s.cold_room_id, r.name ORDER BY entered_at""", (now, ids)).fetchall()
    out_stays = []
    for s in stays:
        lim = room_limits(conn, s["cold_room_id"])
        samples = temps(conn, s["cold_room_id"], s["entered_at"], s["left_at"])
        out_stays.append({"cold_room_id": s["cold_room_id"], "name": s["name"], "entered_at": s["entered_at"],
                          "left_at": s["left_at"], "limit_max_c": lim.max_c, "limit_min_c": lim.min_c,
                          **stay_summary(samples, s["left_at"], lim)})
    harvested_at = harvest["t"] if harvest else None
    first_cold = out_stays[0]["entered_at"] if out_stays else None
    return {
        "object_id": object_id,
        "harvested_at": harvested_at,
        "first_cold_at": first_cold,
        "hours_harvest_to_cold": (round((first_cold - harvested_at).total_seconds() / 3600.0, 2)
                                  if harvested_at and first_cold else None),
        "stays": out_stays,
        "hours_above_limit": round(sum(s["hours_above_limit"] for s in out_stays), 2),
        "worst_excursion_c": max((s["worst_excursion_c"] for s in out_stays), default=0.0),
        "monitored": any(s["samples"] for s in out_stays),
    }


def excursions(samples: list[tuple[datetime, float]], lim: Limits) -> list[dict[str, Any]]:
    """Runs of consecutive samples outside the limits lasting >= ``lim.alert_after_min`` minutes:
    ``{start, end, kind ('above'|'below'), worst_c, ongoing}`` (end = last sample outside)."""
    runs: list[dict[str, Any]] = []
    cur: dict[str, Any] | None = None
    for t, v in samples:
        kind = "above" if v > lim.max_c else "below" if v < lim.min_c else None
        if cur is not None and (kind != cur["kind"] or t - cur["end"] > MAX_SAMPLE_GAP):
            runs.append(cur)
            cur = None
        if kind is not None:
            if cur is None:
                cur = {"start": t, "end": t, "kind": kind, "worst_c": v}
            cur["end"] = t
            cur["worst_c"] = max(cur["worst_c"], v) if kind == "above" else min(cur["worst_c"], v)
    if cur is not None:
        cur["ongoing"] = True
        runs.append(cur)
    need = timedelta(minutes=lim.alert_after_min)
    return [{**r, "ongoing": r.get("ongoing", False)} for r in runs if r["end"] - r["start"] >= need]


def check_excursions(conn: psycopg.Connection, now: datetime, temps: RoomTemperatures,
                     lookback: timedelta = timedelta(hours=24)) -> dict[str, Any]:
    """Raise an alert per cold-room excursion in the last ``lookback`` (deduplicated per room and start);
    resolve open excursion alerts whose excursion has ended. Returns counts for ``job_runs``."""
    rooms = [r[0] for r in conn.execute("SELECT cold_room_id FROM cold_rooms WHERE active ORDER BY 1").fetchall()]
    settled = {r[0] for r in conn.execute("SELECT dedupe_key FROM alerts WHERE kind = 'cold_room_excursion' "
                                          "AND resolved_at IS NOT NULL").fetchall()}
    alerts: list[Alert] = []
    ongoing: set[str] = set()
    for room in rooms:
        lim = room_limits(conn, room)
        for x in excursions(temps(conn, room, now - lookback, now), lim):
            key = f"cold_room_excursion:{room}:{x['start'].isoformat()}"
            if x["ongoing"]:
                ongoing.add(key)
            elif key in settled:          # an excursion that ended and was already recorded
                continue
            word_zh, word_en = ("高于上限", "above") if x["kind"] == "above" else ("低于下限", "below")
            limit = lim.max_c if x["kind"] == "above" else lim.min_c
            alerts.append(Alert(
                dedupe_key=key, kind="cold_room_excursion",
                severity="critical" if abs(x["worst_c"] - limit) >= 2.0 else "warning",
                title_zh=f"冷库 {room} 温度{word_zh} {limit:.1f}°C (最{'高' if x['kind'] == 'above' else '低'} "
                         f"{x['worst_c']:.1f}°C)",
                title_en=f"Cold room {room} {word_en} {limit:.1f} °C (worst {x['worst_c']:.1f} °C)",
                advice_zh="检查制冷机组与库门, 核对库内批次; 超温批次在追溯页显示",
                advice_en="Check the refrigeration unit and the doors; lots inside show the excursion on their trace page",
                detail={"cold_room_id": room, "start": x["start"].isoformat(), "end": x["end"].isoformat(),
                        "worst_c": x["worst_c"], "limit_c": limit, "ongoing": x["ongoing"]}))
    raised = raise_alerts(conn, alerts) if alerts else 0
    resolved = resolve_alerts(conn, kind="cold_room_excursion", keep_open=ongoing)
    conn.commit()
    return {"rooms": len(rooms), "excursions": len(alerts), "raised": raised, "resolved": resolved}


def warehouse_lot_record(conn: psycopg.Connection, lot_id: str, grade: str, now: datetime,
                         temps: RoomTemperatures) -> dict[str, Any] | None:
    """The cold-chain record of a warehouse lot's grade (what a buyer sees before buying from stock);
    None for a lot received before genealogy was recorded."""
    row = conn.execute("SELECT object_id FROM trace_objects WHERE warehouse_lot = %s AND kind = 'graded_lot' "
                       "AND grade = %s", (lot_id, grade)).fetchone()
    return lot_record(conn, row[0], now, temps) if row else None
