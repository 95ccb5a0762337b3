"""Domain errors every package raises, each mapping to one HTTP status in the web layer.

=================  ======  =====================================================
class              HTTP    meaning
=================  ======  =====================================================
``NotFound``       404     the orchard / buyer / order / lot / trace code does not exist
``Conflict``       409     the request clashes with the current state (order already
                           allocated, idempotency key reused with another body,
                           cold room full, not enough stock in a lot)
``Invalid``        422     the request itself is malformed (unknown grade, week not a
                           Monday, quantity <= 0, floor price above price)
``Forbidden``      403     the caller may not do this (another buyer's order, a
                           blacklisted supplier's lot, a role that may not see it)
=================  ======  =====================================================

Every error carries an English message (``str(err)``), a Chinese message (``err.zh``) and optional
machine-readable ``detail``. The web layer turns them into HTTP in one handler
(:mod:`yuncang.web.errors`); domain code never raises ``HTTPException``.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base class; ``http_status`` is what the web layer answers, ``code`` the machine-readable kind."""

    http_status = 400
    code = "error"

    def __init__(self, message: str, zh: str | None = None, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        self.zh = zh or message
        self.detail = detail

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready body: ``{"error": code, "message": en, "message_zh": zh, "detail": {...}}``."""
        return {"error": self.code, "message": self.message, "message_zh": self.zh, "detail": self.detail}

    def text(self, lang: str) -> str:
        """The message in ``lang`` ('zh' or 'en')."""
        return self.zh if lang == "zh" else self.message


class NotFound(DomainError):
    http_status = 404
    code = "not_found"


class Conflict(DomainError):
    http_status = 409
    code = "conflict"


class Invalid(DomainError):
    http_status = 422
    code = "invalid"


class Forbidden(DomainError):
    http_status = 403
    code = "forbidden"
