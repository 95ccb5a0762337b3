"""Wushan county townships that grow crisp plum (named in county reports).

Coordinates are approximate township seats (WGS84 degrees), good enough for a map overview and a
climate lapse-rate model; they are reference data, replaceable by a cooperative's own.
"""

from __future__ import annotations

#: (township_id, name_zh, name_en, lat °N, lon °E, relative share of plum area)
TOWNSHIPS: tuple[tuple[str, str, str, float, float, float], ...] = (
    ("shuanglong", "双龙镇", "Shuanglong", 31.200, 109.720, 23.0),  # 23,000 mu reported
    ("liangping", "两坪乡", "Liangping", 31.090, 109.760, 9.0),
    ("quchi", "曲尺乡", "Quchi", 31.050, 109.950, 16.0),
    ("hongchun", "红椿乡", "Hongchun", 31.300, 109.990, 6.0),
    ("luoping", "骡坪镇", "Luoping", 31.250, 109.700, 12.0),
    ("zhuxian", "竹贤乡", "Zhuxian", 31.330, 109.950, 5.0),
    ("jinping", "金坪乡", "Jinping", 31.160, 109.640, 7.0),
    ("duping", "笃坪乡", "Duping", 31.180, 109.820, 8.0),
    ("guanyang", "官阳镇", "Guanyang", 31.390, 109.850, 5.0),
    ("longxi", "龙溪镇", "Longxi", 31.150, 109.870, 9.0),
)
