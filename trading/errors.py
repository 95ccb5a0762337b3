"""Errors raised by the trading API, each mapping to one HTTP status in the web layer.

=================  ======  =====================================================
class              HTTP    meaning
=================  ======  =====================================================
``NotFound``       404     the buyer / order / lot / trace code does not exist
``Conflict``       409     the request clashes with the current state (order
                           already allocated, idempotency key reused with another
                           body, cold room full, not enough stock in a lot)
``Invalid``        422     the request itself is malformed (unknown grade, week
                           not a Monday, quantity <= 0, floor price above price)
``Forbidden``      403     the caller may not do this (another buyer's order, a
                           blacklisted supplier's lot)
=================  ======  =====================================================

Every error carries an English message (``str(err)``), an optional Chinese message (``err.zh``)
and optional machine-readable ``detail``.
"""

from __future__ import annotations

from typing import Any


class TradingError(Exception):
    """Base class; ``http_status`` is what the web layer should answer."""

    http_status = 400
    code = "trading_error"

    def __init__(self, message: str, zh: str | None = None, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        self.zh = zh or message
        self.detail = detail

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready body: ``{"error": code, "message": en, "message_zh": zh, "detail": {...}}``."""
        return {"error": self.code, "message": self.message, "message_zh": self.zh, "detail": self.detail}


class NotFound(TradingError):
    http_status = 404
    code = "not_found"


class Conflict(TradingError):
    http_status = 409
    code = "conflict"


class Invalid(TradingError):
    http_status = 422
    code = "invalid"


class Forbidden(TradingError):
    http_status = 403
    code = "forbidden"
