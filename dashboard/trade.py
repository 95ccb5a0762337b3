"""A thin, defensive bridge to the ``trading`` package for the API and the pages.

Trading is developed in parallel; when a module is not installed the callers show an empty state
(pages) or leave the route out of the API. Calls pass only the keyword arguments the trading
function accepts, and results are turned into plain JSON-ready dicts (dataclasses, Decimals, dates).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any


def module(name: str) -> Any | None:
    """``trading.<name>`` or None when trading (or that module) is not installed."""
    try:
        return importlib.import_module(f"trading.{name}")
    except ImportError:
        return None


def available(*names: str) -> bool:
    return all(module(n) is not None for n in names)


def function(mod: str, name: str) -> Callable[..., Any] | None:
    m = module(mod)
    f = getattr(m, name, None) if m is not None else None
    return f if callable(f) else None


def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn`` with only the keyword arguments its signature accepts (None values dropped
    unless accepted), so optional filters work across versions of the trading API."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return fn(*args, **kwargs)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return fn(*args, **kwargs)
    return fn(*args, **{k: v for k, v in kwargs.items() if k in params})


def plain(obj: Any) -> Any:
    """JSON-ready copy: dataclasses/objects to dicts, Decimal to str (exact money), dates to ISO."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [plain(v) for v in obj]
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    if hasattr(obj, "_asdict"):
        return plain(obj._asdict())
    if isinstance(obj, str | int | float | bool) or obj is None:
        return obj
    if hasattr(obj, "__dict__"):
        return {k: plain(v) for k, v in vars(obj).items() if not k.startswith("_")}
    return str(obj)


def rows(obj: Any) -> list[dict[str, Any]]:
    """A list of row dicts from whatever a trading call returned (list, dict with items, object)."""
    p = plain(obj)
    if p is None:
        return []
    if isinstance(p, dict):
        for key in ("items", "rows", "statements", "allocations", "orders", "lots"):
            if isinstance(p.get(key), list):
                return [r if isinstance(r, dict) else {"value": r} for r in p[key]]
        return [p]
    if isinstance(p, list):
        return [r if isinstance(r, dict) else {"value": r} for r in p]
    return [{"value": p}]


def error_class() -> type[Exception]:
    """``trading.errors.TradingError`` (or a never-raised stand-in when trading is absent)."""
    m = module("errors")
    return getattr(m, "TradingError", _Never) if m is not None else _Never


class _Never(Exception):
    http_status = 400

    def to_dict(self) -> dict[str, Any]:
        return {"message": str(self)}
