"""Destinations and freight costs (orchard -> cloud warehouse -> buyer's city).

Freight is distance-based: great-circle distance (haversine, R = 6,371 km) times a road factor,
times a rate in fen per kg per km. Rates and the road factor are *assumptions* (configurable):
local mountain haulage by small truck ~0.8 fen/kg/km (0.2-0.4 yuan/kg for 25-50 km);
long-distance cold-chain trucking ~0.03 fen/kg/km (about 0.3 yuan per tonne-km).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from trading.errors import Invalid

EARTH_RADIUS_KM = 6371.0
ROAD_FACTOR = 1.4                  #: road km per great-circle km in mountain country (assumption)
LOCAL_FEN_PER_KG_KM = 0.8          #: orchard -> warehouse haulage, fen/kg/km (assumption)
LONG_HAUL_FEN_PER_KG_KM = 0.03     #: warehouse -> city cold-chain freight, fen/kg/km (assumption)


@dataclass(frozen=True)
class City:
    key: str
    name_zh: str
    name_en: str
    lat: float
    lon: float


#: Destinations named in the reports (Yantai zones, Beibei and Tongliang halls, Chongqing hall,
#: 三峡e购 in Yichang) and main e-commerce hubs. A destination is given by key, Chinese or English name.
CITIES: tuple[City, ...] = (
    City("wushan", "巫山", "Wushan", 31.074, 109.878),
    City("chongqing", "重庆", "Chongqing", 29.563, 106.551),
    City("beibei", "北碚", "Beibei", 29.825, 106.437),
    City("tongliang", "铜梁", "Tongliang", 29.845, 106.056),
    City("wanzhou", "万州", "Wanzhou", 30.808, 108.408),
    City("yichang", "宜昌", "Yichang", 30.692, 111.286),
    City("wuhan", "武汉", "Wuhan", 30.593, 114.305),
    City("yantai", "烟台", "Yantai", 37.464, 121.448),
    City("chengdu", "成都", "Chengdu", 30.573, 104.066),
    City("xian", "西安", "Xi'an", 34.342, 108.940),
    City("beijing", "北京", "Beijing", 39.904, 116.407),
    City("shanghai", "上海", "Shanghai", 31.230, 121.474),
    City("hangzhou", "杭州", "Hangzhou", 30.274, 120.155),
    City("guangzhou", "广州", "Guangzhou", 23.129, 113.264),
    City("shenzhen", "深圳", "Shenzhen", 22.543, 114.058),
)
_LOOKUP = {k.lower(): c for c in CITIES for k in (c.key, c.name_zh, c.name_en, c.name_zh + "市")}


def city(name: str) -> City:
    """The destination city for a key or name; raises :class:`Invalid` listing the known ones."""
    c = _LOOKUP.get(name.strip().lower())
    if c is None:
        raise Invalid(f"unknown destination {name!r}; known: {', '.join(c.key for c in CITIES)}",
                      f"未知的目的地 {name!r}", field="destination")
    return c


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


def road_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    return ROAD_FACTOR * haversine_km(lat1, lon1, lat2, lon2)


def freight_fen_per_kg(destination: str, wh_lat: float, wh_lon: float,
                       rate: float = LONG_HAUL_FEN_PER_KG_KM) -> float:
    """Cold-chain freight warehouse -> destination city, fen/kg."""
    c = city(destination)
    return rate * road_km(wh_lat, wh_lon, c.lat, c.lon)
