"""Every setting is read by the code, and the README documents only settings that exist (issue 14:
``YUNCANG_SECRET_KEY`` was documented as signing sessions but read by nothing)."""

from __future__ import annotations

import re
from pathlib import Path

from yuncang.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("yuncang", "dashboard", "trading", "orchard_models", "registry", "ingest", "sim_sensors", "bench")


def _source() -> str:
    own = (ROOT / "yuncang" / "settings.py").read_text(encoding="utf-8")
    # the module's functions count as readers (e.g. ingest_profile_options); the class that declares
    # the fields does not
    start = own.index("\nclass Settings(")
    end = re.search(r"\n(?=\S)", own[start + 1:])
    own = own[:start] + (own[start + 1 + end.start():] if end else "")
    return "\n".join([own, *(p.read_text(encoding="utf-8") for pkg in PACKAGES if (ROOT / pkg).is_dir()
                            for p in (ROOT / pkg).rglob("*.py") if p != ROOT / "yuncang" / "settings.py")])


def test_every_setting_is_read_somewhere() -> None:
    src = _source()
    unread = [name for name in Settings.model_fields if not re.search(rf"\.{name}\b", src)]
    assert unread == [], f"settings nothing reads: {unread}"


def test_readme_documents_only_real_settings() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`YUNCANG_([A-Z0-9_]+)`", readme))
    fields = {n.upper() for n in Settings.model_fields}
    assert documented - fields == set()
    compose = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    assert set(re.findall(r"\bYUNCANG_([A-Z0-9_]+):", compose)) - fields == set()
