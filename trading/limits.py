"""The ranges every caller of trading gets checked against, so forms and the API answer the same 422.

* Dates of trade (order weeks, harvest days) lie in a season from :data:`FIRST_SEASON` to
  :data:`SEASONS_AHEAD` years after the current one: the records start with the digital-orchard
  deployment, and forward orders are placed at most a few seasons ahead. (Outside that range a day such
  as 9999-12-31 cannot even have the day after it computed, which trace pages need.)
* Money typed in yuan per kg becomes integer fen per kg (1 yuan = 100 fen) only when it is a finite
  decimal with at most 2 places, from 0 to :data:`MAX_PRICE_FEN_PER_KG` fen — ``Infinity``, ``NaN`` and
  ``1e999999`` are refused with a message, never turned into a server error.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation

from trading.errors import Invalid

FIRST_SEASON = 2000  #: earliest season year accepted
SEASONS_AHEAD = 5  #: latest season year accepted = this year + SEASONS_AHEAD
MAX_PRICE_FEN_PER_KG = 1_000_000  #: 10,000 yuan/kg


def season_years(today: date | None = None) -> tuple[int, int]:
    """(first, last) season year accepted today."""
    return FIRST_SEASON, (today or date.today()).year + SEASONS_AHEAD


def check_trade_date(d: date, field: str, today: date | None = None) -> date:
    """``d`` when its season (ISO year) lies in :func:`season_years`, else :class:`Invalid`."""
    lo, hi = season_years(today)
    if not lo <= d.isocalendar().year <= hi:
        raise Invalid(f"{field}={d.isoformat()} is outside the seasons {lo}-{hi}",
                      f"{field} 须在 {lo}-{hi} 产季内", field=field)
    return d


def yuan_to_fen(text: str, field: str) -> int:
    """A price typed in yuan/kg (``"12.5"``) as integer fen/kg (``1250``); :class:`Invalid` otherwise."""
    s = text.strip()
    try:
        v = Decimal(s) if len(s) <= 20 else None
    except InvalidOperation:
        v = None
    if v is None or not v.is_finite():
        raise Invalid(f"{field}={text[:30]!r} is not a price in yuan", f"{field} 不是有效的价格(元)", field=field)
    if v.adjusted() > 12:  # ten-thousand-billion yuan and more: too large to scale without overflow
        raise Invalid(f"{field} must be 0-{MAX_PRICE_FEN_PER_KG // 100} yuan/kg", f"{field} 超出范围", field=field)
    fen = v * 100
    if fen != fen.to_integral_value():
        raise Invalid(f"{field} has more than 2 decimals (fen)", f"{field} 最多保留2位小数", field=field)
    if not 0 <= fen <= MAX_PRICE_FEN_PER_KG:
        raise Invalid(f"{field} must be 0-{MAX_PRICE_FEN_PER_KG // 100} yuan/kg", f"{field} 超出范围", field=field)
    return int(fen)
