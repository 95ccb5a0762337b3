"""The one string catalogue: zh-CN first, English second."""

from __future__ import annotations

from fastapi import Request

DEFAULT_LANG = "zh"
LANGS = ("zh", "en")

CATALOGUE: dict[str, dict[str, str]] = {
    "app_name": {"zh": "巫山脆李云仓", "en": "Wushan Crisp Plum Cloud Warehouse"},
    "orchards": {"zh": "果园", "en": "Orchards"},
    "orchard_id": {"zh": "编号", "en": "ID"},
    "name": {"zh": "名称", "en": "Name"},
    "township": {"zh": "乡镇", "en": "Township"},
    "area_mu": {"zh": "面积(亩)", "en": "Area (mu)"},
    "elevation_m": {"zh": "海拔(米)", "en": "Elevation (m)"},
    "planting_year": {"zh": "定植年份", "en": "Planted"},
    "tree_count": {"zh": "株数", "en": "Trees"},
    "total_orchards": {"zh": "果园总数", "en": "Orchards in total"},
    "total_area": {"zh": "总面积(亩)", "en": "Total area (mu)"},
    "prev": {"zh": "上一页", "en": "Previous"},
    "next": {"zh": "下一页", "en": "Next"},
    "switch_lang": {"zh": "English", "en": "中文"},
}


def lang_of(request: Request) -> str:
    """Language from ``?lang=``, then the ``lang`` cookie, else zh."""
    q = request.query_params.get("lang") or request.cookies.get("lang") or DEFAULT_LANG
    return q if q in LANGS else DEFAULT_LANG


def t(key: str, lang: str) -> str:
    entry = CATALOGUE.get(key)
    if entry is None:
        return key
    return entry.get(lang) or entry[DEFAULT_LANG]
