"""The sensor catalogue: every metric a gateway reports, its unit and its physical range.

Both the simulator and the ingest validator read this catalogue (reference data), but each writes
its own code from it: the ranges are physical limits of the quantity and the sensor, not tuned to
either side.
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


#: Readings stored in the time-series table (about 10 sensors per gateway).
METRICS: dict[str, Metric] = {
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

#: Gateway health values (not readings): stored with device health, not in the readings table.
HEALTH_METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("battery_v", "V", 0.0, 5.0, "电池电压", "Battery voltage"),
        Metric("rssi_dbm", "dBm", -150.0, 0.0, "信号强度", "Signal strength"),
    )
}
