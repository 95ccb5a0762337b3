"""Device-health alerts from ``device_health``: silent gateways and low batteries.

A gateway is *silent* when no message has arrived for ``offline_after`` (default 2 h: gateways in
Wushan's mountains drop off the network for a while and upload their buffer later, so a short gap is
normal). A gateway that has never reported counts once it has been installed longer than that. A
battery under ``low_battery_v`` (default 3.4 V for a 1-cell Li-ion pack, *assumption*) is flagged too.
A device that is heard (messages arrive within ``offline_after``) but stored no reading in that time
raises ``device_stores_nothing``: typically its profile maps none of its keys (they are listed in
``device_unmapped_keys`` and in the alert's detail), or every value is refused (dead letters say why).
Alerts are raised through :mod:`registry.alerts` and resolved once the condition is gone.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg

from ingest.unmapped import devices_storing_nothing
from registry.alerts import Alert, raise_alerts, resolve_alerts


def evaluate_device_alerts(conn: psycopg.Connection, now: datetime, *,
                           offline_after: timedelta = timedelta(hours=2),
                           low_battery_v: float = 3.4) -> dict[str, int]:
    """Raise/refresh ``device_offline`` and ``low_battery`` alerts; returns counts of open alerts."""
    cutoff = now - offline_after
    silent = conn.execute(
        """SELECT d.device_id, d.orchard_id, o.cooperative_id, h.last_seen_at
           FROM devices d JOIN orchards o USING (orchard_id)
           LEFT JOIN device_health h USING (device_id)
           WHERE d.active AND coalesce(h.last_seen_at, d.installed_at) < %s""",
        (cutoff,),
    ).fetchall()
    offline = []
    for device_id, orchard_id, coop, last_seen in silent:
        hours = None if last_seen is None else round((now - last_seen).total_seconds() / 3600, 1)
        since_zh = "从未上报数据" if hours is None else f"已 {hours} 小时没有上报数据"
        since_en = "has never reported" if hours is None else f"silent for {hours} h"
        offline.append(Alert(
            dedupe_key=f"device_offline:{device_id}", kind="device_offline",
            severity="critical" if hours is None or hours >= 24 else "warning",
            title_zh=f"网关 {device_id} 离线：{since_zh}", title_en=f"Gateway {device_id} offline: {since_en}",
            advice_zh="检查网关电源和信号；恢复联网后网关会补传缓存数据。",
            advice_en="Check the gateway's power and signal; it uploads its buffer once back online.",
            orchard_id=orchard_id, device_id=device_id, cooperative_id=coop,
            detail={"last_seen_at": last_seen.isoformat() if last_seen else None, "silent_hours": hours},
        ))
    weak = conn.execute(
        """SELECT h.device_id, d.orchard_id, o.cooperative_id, h.battery_v
           FROM device_health h JOIN devices d USING (device_id) JOIN orchards o USING (orchard_id)
           WHERE d.active AND h.battery_v IS NOT NULL AND h.battery_v < %s""",
        (low_battery_v,),
    ).fetchall()
    battery = [Alert(
        dedupe_key=f"low_battery:{device_id}", kind="low_battery", severity="warning",
        title_zh=f"网关 {device_id} 电量低 ({volts:.2f} V)",
        title_en=f"Gateway {device_id} battery low ({volts:.2f} V)",
        advice_zh="尽快更换或充电电池，避免网关停止上报。",
        advice_en="Replace or charge the battery before the gateway stops.",
        orchard_id=orchard_id, device_id=device_id, cooperative_id=coop, detail={"battery_v": volts},
    ) for device_id, orchard_id, coop, volts in weak]
    empty = [Alert(
        dedupe_key=f"device_stores_nothing:{device_id}", kind="device_stores_nothing", severity="warning",
        title_zh=f"设备 {device_id} 有上报但没有存下任何数据" + (f"（{n} 个未识别字段）" if n else ""),
        title_en=f"Device {device_id} reports but nothing is stored" + (f" ({n} unmapped keys)" if n else ""),
        advice_zh="检查设备的型号配置（profile）是否与实际设备一致；未识别字段和被拒绝的数据见设备详情。",
        advice_en="Check that the device's profile matches the hardware; its unmapped keys and refused values "
                  "are listed under the device.",
        orchard_id=orchard_id, device_id=device_id, cooperative_id=coop,
        detail={"last_reading_at": last.isoformat() if last else None, "unmapped_keys": n},
    ) for device_id, orchard_id, coop, last, n in devices_storing_nothing(conn, cutoff)]
    raise_alerts(conn, offline)
    raise_alerts(conn, battery)
    raise_alerts(conn, empty)
    resolve_alerts(conn, kind="device_offline", keep_open={a.dedupe_key for a in offline})
    resolve_alerts(conn, kind="low_battery", keep_open={a.dedupe_key for a in battery})
    resolve_alerts(conn, kind="device_stores_nothing", keep_open={a.dedupe_key for a in empty})
    return {"device_offline": len(offline), "low_battery": len(battery), "device_stores_nothing": len(empty)}
