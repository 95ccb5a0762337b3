"""Storage DDL generated from the metrics catalogue (:data:`registry.metrics.METRICS`).

Adding a quantity to the catalogue must not mean editing SQL in several places. This module compares
what the database has with the catalogue and generates the additive DDL that closes the gap, for both
storage paths; migration ``ingest/sql/010_metric_columns.py`` runs it whenever the catalogue changed
(a *repeatable* migration, see :mod:`yuncang.migrations`):

* ``samples``: ``ALTER TABLE samples ADD COLUMN <metric> double precision`` for each metric without a
  column (nullable, no default: a catalogue-only change in PostgreSQL, instant on any size; the plain
  path's partitions inherit it, TimescaleDB adds it to compressed chunks too);
* the narrow view ``readings`` (device_id, metric, time, value) re-created over every metric column;
* TimescaleDB rollups: the continuous aggregates ``samples_hourly`` / ``samples_daily`` (created by
  ``005_wide_samples.tsdb.sql``) are never dropped or rebuilt, because their buckets outlive the raw
  data (raw retention 400 days, rollups for ever). Metrics no aggregate covers get a NEW pair
  ``samples_hourly_g<N>`` / ``samples_daily_g<N>`` with a column group (n, min, max, avg, sum) per
  metric and the same refresh policies, and the contract views ``readings_hourly`` /
  ``readings_daily`` are re-created as the union of all pairs (same columns as before);
* plain path rollups are narrow tables (device_id, metric, bucket) computed from ``readings`` by
  :mod:`ingest.rollups`: a new column in the view is all they need.

The generator never drops or renames anything; a metric removed from the catalogue keeps its column.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import psycopg

from registry.metrics import METRICS

#: options of a generated continuous aggregate (the TimescaleDB shim test replaces them)
CONTINUOUS_WITH = "WITH (timescaledb.continuous, timescaledb.materialized_only = false)"

#: hourly / daily aggregates, their bucket expressions and refresh-policy offsets (as in 005_wide_samples)
_KINDS = (
    ("hourly", "time_bucket(INTERVAL '1 hour', time)", "INTERVAL '3 days'", "INTERVAL '1 hour'",
     "INTERVAL '30 minutes'"),
    ("daily", "time_bucket(INTERVAL '1 day', time, 'Asia/Shanghai')", "INTERVAL '4 days'", "INTERVAL '1 day'",
     "INTERVAL '1 hour'"),
)
_AGGS = ("n", "min", "max", "avg", "sum")
_C = ' COLLATE "C"'  # the first VALUES row fixes the metric column's collation (byte order, as the tables)


def catalogue_checksum(metrics: Sequence[str] | None = None) -> str:
    """Identifies the catalogue's metric set and order (the repeatable migration re-runs when it changes)."""
    metrics = tuple(METRICS) if metrics is None else metrics
    return hashlib.sha256(("\n".join(metrics)).encode()).hexdigest()


def _columns(conn: psycopg.Connection, rel: str) -> list[str]:
    rows = conn.execute(
        "SELECT a.attname FROM pg_attribute a WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0"
        " AND NOT a.attisdropped ORDER BY a.attnum", (rel,)).fetchall()
    return [r[0] for r in rows]


def aggregate_generations(conn: psycopg.Connection) -> list[tuple[str, str, list[str]]]:
    """TimescaleDB: (hourly, daily, metrics covered) of every continuous-aggregate pair over ``samples``,
    the original pair first. Read from the catalogue (``pg_class``), so it also works on the test shim."""
    names = [r[0] for r in conn.execute(
        "SELECT relname FROM pg_class WHERE relname ~ '^samples_hourly(_g[0-9]+)?$'"
        " AND relnamespace = to_regnamespace(current_schema())::oid").fetchall()]
    names.sort(key=lambda n: 0 if n == "samples_hourly" else int(n.rsplit("_g", 1)[1]))
    out = []
    for hourly in names:
        daily = hourly.replace("samples_hourly", "samples_daily", 1)
        cols = _columns(conn, hourly)
        out.append((hourly, daily, [c[:-2] for c in cols if c.endswith("_n")]))
    return out


def extra_aggregates(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """TimescaleDB: the generated aggregate pairs beyond the original ``samples_hourly``/``samples_daily``
    (each must be refreshed like them)."""
    return [(h, d) for h, d, _ in aggregate_generations(conn) if h != "samples_hourly"]


def readings_view_sql(metrics: Sequence[str]) -> str:
    """The narrow view ``readings`` over the metric columns of ``samples``."""
    rows = ",\n".join(f"        ('{m}'{_C if i == 0 else ''}, s.{m})" for i, m in enumerate(metrics))
    return ("CREATE OR REPLACE VIEW readings AS\nSELECT s.device_id, v.metric, s.time, v.value\n  FROM samples s\n"
            f" CROSS JOIN LATERAL (VALUES\n{rows}\n       ) AS v(metric, value)\n WHERE v.value IS NOT NULL;\n")


def _aggregate_sql(name: str, bucket: str, metrics: Sequence[str]) -> str:
    groups = ",\n".join(
        f"       count({m})::integer AS {m}_n, min({m}) AS {m}_min, max({m}) AS {m}_max,"
        f" avg({m}) AS {m}_avg, sum({m}) AS {m}_sum" for m in metrics)
    return (f"CREATE MATERIALIZED VIEW {name}\n{CONTINUOUS_WITH} AS\nSELECT device_id,\n"
            f"       {bucket} AS bucket,\n{groups}\n  FROM samples\n GROUP BY device_id, {bucket}\nWITH NO DATA;\n")


def rollup_view_sql(kind: str, generations: Sequence[tuple[str, Sequence[str]]]) -> str:
    """The contract view ``readings_<kind>`` (device_id, metric, bucket, n, min, max, avg, sum) as the
    union of the aggregates ``generations`` = [(aggregate name, metrics it covers)]."""
    parts = []
    for name, metrics in generations:
        rows = ",\n".join(
            f"        ('{m}'{_C if i == 0 else ''}, " + ", ".join(f"c.{m}_{a}" for a in _AGGS) + ")"
            for i, m in enumerate(metrics))
        parts.append(f"SELECT c.device_id, v.metric, c.bucket, v.n, v.min, v.max, v.avg, v.sum\n  FROM {name} c\n"
                     f" CROSS JOIN LATERAL (VALUES\n{rows}\n       ) AS v(metric, n, min, max, avg, sum)\n"
                     " WHERE v.n > 0")
    return f"CREATE OR REPLACE VIEW readings_{kind} AS\n" + "\nUNION ALL\n".join(parts) + ";\n"


def sync_sql(conn: psycopg.Connection, path: str, metrics: Sequence[str] | None = None) -> str:
    """The DDL that brings the database's storage up to the catalogue ``metrics`` (default: METRICS)."""
    metrics = tuple(METRICS) if metrics is None else metrics
    have = _columns(conn, "samples")
    if not have:
        raise RuntimeError("table samples does not exist (migration ingest/005_wide_samples must run first)")
    missing = [m for m in metrics if m not in have]
    stored = [c for c in have if c not in ("device_id", "time")]
    out = [f"ALTER TABLE samples ADD COLUMN {m} double precision;\n" for m in missing]
    all_metrics = stored + missing
    out.append(readings_view_sql(all_metrics))
    if path == "timescaledb":
        gens = aggregate_generations(conn)
        covered = {m for _, _, ms in gens for m in ms}
        new = [m for m in all_metrics if m not in covered]
        if new:
            n = max([int(h.rsplit("_g", 1)[1]) for h, _, _ in gens if "_g" in h] + [1]) + 1
            pair = (f"samples_hourly_g{n}", f"samples_daily_g{n}")
            for (_kind, bucket, start, end, every), name in zip(_KINDS, pair, strict=True):
                out.append(_aggregate_sql(name, bucket, new))
                out.append(f"SELECT add_continuous_aggregate_policy('{name}', start_offset => {start},"
                           f" end_offset => {end}, schedule_interval => {every});\n")
            gens.append((pair[0], pair[1], new))
            for i, (kind, *_rest) in enumerate(_KINDS):
                out.append(rollup_view_sql(kind, [(str(g[i]), g[2]) for g in gens]))
    return "".join(out)

