"""The sensor catalogue: every metric yuncang stores, its unit and its physical range.

Both the simulator and the ingest validator read this catalogue (reference data), but each writes
its own code from it: the ranges are physical limits of the quantity and the sensor, not tuned to
either side.

:data:`METRICS` is the storage catalogue: every metric has a column in ``samples`` (and a column
group in the TimescaleDB rollups); the DDL is generated from this dict by
:mod:`ingest.ddl` (migration ``ingest/sql/010_metric_columns.py``), so adding a quantity is one line
here plus a profile mapping (docs/wire-format.md, "Adding a quantity"). :data:`GATEWAY_METRICS` is
the subset yuncang's own field gateway (and the simulator) measures.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    name: str        #: wire and storage name
    unit: str        #: SI / agronomic unit
    lo: float        #: lowest physically possible value (sensor range), inclusive
    hi: float        #: highest physically possible value, inclusive
    label_zh: str
    label_en: str


#: What yuncang's own field gateway measures (about 10 sensors per gateway; the simulator's set).
GATEWAY_METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("air_temp_c", "°C", -40.0, 60.0, "气温", "Air temperature"),
        Metric("air_rh_pct", "%", 0.0, 100.0, "空气湿度", "Relative humidity"),
        Metric("soil_vwc_10cm", "m³/m³", 0.0, 0.6, "土壤含水量(10cm)", "Soil moisture 10 cm"),
        Metric("soil_vwc_30cm", "m³/m³", 0.0, 0.6, "土壤含水量(30cm)", "Soil moisture 30 cm"),
        Metric("soil_temp_10cm_c", "°C", -20.0, 50.0, "土壤温度(10cm)", "Soil temperature 10 cm"),
        Metric("soil_temp_30cm_c", "°C", -20.0, 50.0, "土壤温度(30cm)", "Soil temperature 30 cm"),
        Metric("rain_mm", "mm", 0.0, 200.0, "降雨量", "Rainfall (per interval)"),
        Metric("leaf_wetness_pct", "%", 0.0, 100.0, "叶面湿度", "Leaf wetness"),
        Metric("solar_wm2", "W/m²", 0.0, 1500.0, "太阳辐射", "Solar radiation"),
        Metric("wind_ms", "m/s", 0.0, 60.0, "风速", "Wind speed"),
    )
}

#: Quantities third-party field hardware measures (device profiles map vendor keys to these). Ranges:
#: the widest of the sensors' published measuring ranges, or the quantity's physical limit.
DEVICE_METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        # dS/m (= mS/cm; 1 dS/m = 1000 µS/cm). SenseCAP S2105: 0-23 dS/m; Dragino LSE01's published
        # example decodes to 28.2 dS/m; 60 dS/m is above sea water (about 55 dS/m).
        Metric("soil_ec_10cm_ds_m", "dS/m", 0.0, 60.0, "土壤电导率(10cm)", "Soil EC 10 cm"),
        Metric("soil_ec_30cm_ds_m", "dS/m", 0.0, 60.0, "土壤电导率(30cm)", "Soil EC 30 cm"),
        # station pressure, hPa: SenseCAP S2120 300-1100 hPa (30,000-110,000 Pa); Milesight WTS506 300-1100
        Metric("air_pressure_hpa", "hPa", 300.0, 1100.0, "气压", "Barometric pressure"),
        # degrees clockwise from north, the direction the wind blows from
        Metric("wind_dir_deg", "°", 0.0, 360.0, "风向", "Wind direction"),
        # lux: SenseCAP S2120 0-188,000 lx; direct sunlight is about 100,000-130,000 lx
        Metric("illuminance_lux", "lx", 0.0, 200_000.0, "光照度", "Illuminance"),
        Metric("uv_index", "", 0.0, 20.0, "紫外线指数", "UV index"),
        # rainfall intensity over the last hour as some stations report it (SenseCAP S2120 id 4113), mm/h
        Metric("rain_rate_mm_h", "mm/h", 0.0, 300.0, "降雨强度", "Rain rate"),
        Metric("co2_ppm", "ppm", 0.0, 40_000.0, "二氧化碳浓度", "CO₂ concentration"),
        # state of charge as the device reports it (many LoRaWAN sensors send % instead of volts)
        Metric("battery_pct", "%", 0.0, 100.0, "电池电量", "Battery level"),
    )
}

#: Readings stored in the time-series table ``samples``: one column each, in this order.
METRICS: dict[str, Metric] = {**GATEWAY_METRICS, **DEVICE_METRICS}

#: Gateway health values (not readings): stored with device health, not in the readings table.
HEALTH_METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("battery_v", "V", 0.0, 5.0, "电池电压", "Battery voltage"),
        Metric("rssi_dbm", "dBm", -150.0, 0.0, "信号强度", "Signal strength"),
    )
}
