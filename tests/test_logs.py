"""Console logs: a person on a terminal reads progress and the address; pipes get one JSON object a line."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest

from yuncang.logs import HumanFormatter, JsonFormatter, setup_logging


def _record(msg: str, **extra: object) -> logging.LogRecord:
    r = logging.LogRecord("yuncang", logging.INFO, __file__, 1, msg, None, None)
    r.__dict__.update(extra)
    return r


def test_human_lines_show_progress_the_url_and_the_accounts() -> None:
    f = HumanFormatter()
    assert f.format(_record("demo data: preparing", step="yield forecast 产量预测", index=4, of=6)).endswith(
        "[4/6] yield forecast 产量预测 …")
    assert f.format(_record("demo data", step="yield forecast 产量预测", index=4, of=6, seconds=12.5)).endswith(
        "[4/6] yield forecast 产量预测 (12.5 s)")
    up = f.format(_record("yuncang is up", url="http://127.0.0.1:8000/",
                          accounts=[("grower", "G-00001", "plum-grower")]))
    assert "http://127.0.0.1:8000/" in up and "G-00001" in up and "plum-grower" in up.splitlines()[1]
    j = json.loads(JsonFormatter().format(_record("demo data", step="x", index=1, of=6, seconds=1.0)))
    assert j["msg"] == "demo data" and j["index"] == 1 and j["of"] == 6


@pytest.mark.parametrize(("fmt", "tty", "human"), [("auto", True, True), ("auto", False, False),
                                                    ("json", True, False), ("human", False, True)])
def test_the_format_follows_the_terminal_unless_asked(monkeypatch: pytest.MonkeyPatch, fmt: str, tty: bool,
                                                      human: bool) -> None:
    err = io.StringIO()
    err.isatty = lambda: tty  # type: ignore[method-assign]
    monkeypatch.setattr(sys, "stderr", err)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        setup_logging("INFO", fmt)
        assert isinstance(root.handlers[0].formatter, HumanFormatter if human else JsonFormatter)
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
