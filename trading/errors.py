"""Errors raised by the trading package: the shared domain errors of :mod:`registry.errors`.

``TradingError`` is :class:`registry.errors.DomainError` under trading's historical name, so
``except TradingError`` also catches the other packages' domain errors; the web layer maps every one
of them to its HTTP status in one handler (:mod:`yuncang.web.errors`).
"""

from __future__ import annotations

from registry.errors import Conflict, DomainError, Forbidden, Invalid, NotFound

TradingError = DomainError

__all__ = ["Conflict", "DomainError", "Forbidden", "Invalid", "NotFound", "TradingError"]
