"""Device profiles: how one device model's decoded payload becomes yuncang metrics (data, not code).

A profile is a TOML file (parsed with the standard library's :mod:`tomllib`): the built-in catalogue is
the ``*.toml`` beside this module, and an operator adds or overrides profiles with files in a
directory of their own (setting ``YUNCANG_DEVICE_PROFILES_DIR``; a file there with the same ``id`` as
a built-in one replaces it). Adding a device model is writing one file. The format, key by key, is in
docs/wire-format.md ("Device profiles"); in short::

    id = "dragino-lse01"                    # what devices.profile names
    name = "Dragino LSE01 soil moisture, temperature and EC probe"
    formats = ["chirpstack_v4", "chirpstack_v3", "tts_v3"]
    ignore = ["TempC_DS18B20"]              # keys deliberately not stored (globs allowed)
    identity = false                        # true: keys that are catalogue metric names map to themselves

    [fields]                                # key or dotted path -> metric
    water_SOIL = { metric = "soil_vwc_10cm", unit = "percent" }    # % -> m³/m³
    rainfall_total = { metric = "rain_mm", counter = true }        # running total -> mm per interval

    [measurements]                          # id/value lists (SenseCAP)
    path = "messages"
    id_key = "measurementId"
    value_key = "measurementValue"
    ids = { "4097" = { metric = "air_temp_c" } }

    [history]                               # buffered records with their own times (Milesight history[])
    path = "history"
    time_key = "timestamp"
    time_format = "epoch_s"                 # epoch_s | epoch_ms | rfc3339

Loading validates every key and raises :class:`ProfileError` naming the file, the key and the problem.
"""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from registry.metrics import HEALTH_METRICS, METRICS

#: Wire formats a profile may name (see ingest.decode and docs/wire-format.md)
FORMATS = ("native", "chirpstack_v4", "chirpstack_v3", "tts_v3", "thingsboard_gateway", "thingsboard_device")

#: The profile of devices whose ``devices.profile`` is NULL (yuncang's own gateway dialect)
DEFAULT_PROFILE = "yuncang-native"


def _lin(scale: float, offset: float = 0.0) -> Callable[[float], float]:
    return lambda x: x * scale + offset


#: unit name -> (the metric unit it converts into, conversion). A field without ``unit`` is already in
#: its metric's unit.
UNITS: dict[str, tuple[str, Callable[[float], float]]] = {
    "percent": ("m³/m³", _lin(0.01)),          # volumetric water content in % -> m³/m³
    "us_per_cm": ("dS/m", _lin(0.001)),        # µS/cm -> dS/m (1 dS/m = 1000 µS/cm)
    "ms_per_cm": ("dS/m", _lin(1.0)),          # mS/cm = dS/m
    "pa": ("hPa", _lin(0.01)),
    "kpa": ("hPa", _lin(10.0)),
    "fahrenheit": ("°C", lambda f: (f - 32.0) / 1.8),
    "mv": ("V", _lin(0.001)),
    "km_h": ("m/s", _lin(1 / 3.6)),
    "inch": ("mm", _lin(25.4)),
}

TIME_FORMATS = ("epoch_s", "epoch_ms", "rfc3339")

_TOP_KEYS = {"id", "name", "vendor", "model", "formats", "source", "notes", "ignore", "identity", "fields",
             "measurements", "history"}
_FIELD_KEYS = {"metric", "unit", "scale", "offset", "counter", "note"}


class ProfileError(ValueError):
    """A profile file that cannot be used; the message names the file, the key and the problem."""


@dataclass(frozen=True, slots=True)
class FieldMap:
    """One vendor key -> one metric."""

    metric: str
    convert: Callable[[float], float] | None = None  #: into the metric's unit (None: already in it)
    counter: bool = False  #: a running total: stored as the increment since the previous message


@dataclass(frozen=True)
class Profile:
    id: str
    name: str
    source: str                              #: the file it was loaded from
    formats: frozenset[str]
    fields: dict[str, FieldMap]
    ignore_exact: frozenset[str]
    ignore_globs: tuple[str, ...]
    identity: bool = False
    #: measurements list: (path, id key, value key), ids -> field
    meas_path: str | None = None
    meas_id_key: str = "measurementId"
    meas_value_key: str = "measurementValue"
    meas_ids: dict[str, FieldMap] = field(default_factory=dict)
    #: buffered records: (path, time key, time format)
    hist_path: str | None = None
    hist_time_key: str = "timestamp"
    hist_time_format: str = "epoch_s"

    def field_for(self, key: str) -> FieldMap | None:
        f = self.fields.get(key)
        if f is None and self.identity and (key in METRICS or key in HEALTH_METRICS):
            return _IDENTITY[key]
        return f

    def ignores(self, key: str) -> bool:
        if key in self.ignore_exact:
            return True
        return any(fnmatch.fnmatchcase(key, g) for g in self.ignore_globs)


_IDENTITY = {m: FieldMap(m) for m in (*METRICS, *HEALTH_METRICS)}


def _err(src: str, key: str, problem: str) -> ProfileError:
    return ProfileError(f"{src}: {key}: {problem}")


def _field(src: str, key: str, raw: Any) -> FieldMap:
    if not isinstance(raw, dict):
        raise _err(src, key, f"must be a table like {{ metric = \"air_temp_c\" }}, got {type(raw).__name__}")
    extra = set(raw) - _FIELD_KEYS
    if extra:
        raise _err(src, key, f"unknown setting(s) {sorted(extra)}; allowed: {sorted(_FIELD_KEYS)}")
    metric = raw.get("metric")
    meta = METRICS.get(metric) or HEALTH_METRICS.get(metric) if isinstance(metric, str) else None
    if meta is None:
        raise _err(src, f"{key}.metric", f"{metric!r} is not a metric of registry.metrics; known: "
                   f"{', '.join([*METRICS, *HEALTH_METRICS])}")
    conv: Callable[[float], float] | None = None
    unit = raw.get("unit")
    if unit is not None:
        if unit not in UNITS:
            raise _err(src, f"{key}.unit", f"unknown unit {unit!r}; known: {', '.join(UNITS)}")
        target, conv = UNITS[unit]
        if target != meta.unit:
            raise _err(src, f"{key}.unit", f"{unit!r} converts into {target}, but {metric} is in {meta.unit!r}")
    scale, offset = raw.get("scale"), raw.get("offset")
    for name, val in (("scale", scale), ("offset", offset)):
        if val is not None and (isinstance(val, bool) or not isinstance(val, int | float)):
            raise _err(src, f"{key}.{name}", f"must be a number, got {val!r}")
    if scale is not None or offset is not None:
        if conv is not None:
            raise _err(src, key, "give either unit or scale/offset, not both")
        conv = _lin(float(scale if scale is not None else 1.0), float(offset or 0.0))
    counter = raw.get("counter", False)
    if not isinstance(counter, bool):
        raise _err(src, f"{key}.counter", f"must be true or false, got {counter!r}")
    return FieldMap(str(metric), conv, counter)


def parse_profile(data: dict[str, Any], src: str) -> Profile:
    """Validate a parsed TOML document into a :class:`Profile` (``src`` names it in errors)."""
    extra = set(data) - _TOP_KEYS
    if extra:
        raise _err(src, ", ".join(sorted(extra)), f"unknown key(s); allowed: {sorted(_TOP_KEYS)}")
    pid = data.get("id")
    if not isinstance(pid, str) or not pid or len(pid) > 64 or not all(c.isalnum() or c in "-_." for c in pid):
        raise _err(src, "id", f"must be a non-empty name of letters, digits, '-', '_', '.', got {pid!r}")
    name = data.get("name", pid)
    if not isinstance(name, str):
        raise _err(src, "name", "must be a string")
    formats = data.get("formats")
    if not isinstance(formats, list) or not formats or any(f not in FORMATS for f in formats):
        raise _err(src, "formats", f"must be a non-empty list of {', '.join(FORMATS)}; got {formats!r}")
    ignore = data.get("ignore", [])
    if not isinstance(ignore, list) or any(not isinstance(k, str) or not k for k in ignore):
        raise _err(src, "ignore", "must be a list of key names or glob patterns")
    identity = data.get("identity", False)
    if not isinstance(identity, bool):
        raise _err(src, "identity", "must be true or false")
    raw_fields = data.get("fields", {})
    if not isinstance(raw_fields, dict):
        raise _err(src, "fields", "must be a table of key = { metric = ... }")
    fields = {k: _field(src, f"fields.{k}", v) for k, v in raw_fields.items()}
    kw: dict[str, Any] = {}
    meas = data.get("measurements")
    if meas is not None:
        if not isinstance(meas, dict):
            raise _err(src, "measurements", "must be a table")
        bad = set(meas) - {"path", "id_key", "value_key", "ids"}
        if bad:
            raise _err(src, "measurements", f"unknown key(s) {sorted(bad)}")
        for k in ("path", "id_key", "value_key"):
            if k in meas and (not isinstance(meas[k], str) or not meas[k]):
                raise _err(src, f"measurements.{k}", "must be a non-empty string")
        if "path" not in meas:
            raise _err(src, "measurements.path", "is required")
        ids = meas.get("ids", {})
        if not isinstance(ids, dict) or not ids:
            raise _err(src, "measurements.ids", "must be a non-empty table of id = { metric = ... }")
        kw.update(meas_path=meas["path"], meas_id_key=meas.get("id_key", "measurementId"),
                  meas_value_key=meas.get("value_key", "measurementValue"),
                  meas_ids={str(k): _field(src, f"measurements.ids.{k}", v) for k, v in ids.items()})
    hist = data.get("history")
    if hist is not None:
        if not isinstance(hist, dict):
            raise _err(src, "history", "must be a table")
        bad = set(hist) - {"path", "time_key", "time_format"}
        if bad:
            raise _err(src, "history", f"unknown key(s) {sorted(bad)}")
        if not isinstance(hist.get("path"), str) or not hist["path"]:
            raise _err(src, "history.path", "is required (use \".\" when the payload itself is the list)")
        tk = hist.get("time_key", "timestamp")
        if not isinstance(tk, str) or not tk:
            raise _err(src, "history.time_key", "must be a non-empty string")
        tf = hist.get("time_format", "epoch_s")
        if tf not in TIME_FORMATS:
            raise _err(src, "history.time_format", f"must be one of {', '.join(TIME_FORMATS)}, got {tf!r}")
        kw.update(hist_path=hist["path"], hist_time_key=tk, hist_time_format=tf)
    globs = tuple(k for k in ignore if any(c in k for c in "*?["))
    return Profile(pid, name, src, frozenset(formats), fields, frozenset(k for k in ignore if k not in globs),
                   globs, identity, **kw)


def load_file(path: Path | Any, src: str | None = None) -> Profile:
    """Load and validate one profile file (a path or an importlib resource)."""
    src = src or str(path)
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{src}: not valid TOML: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{src}: cannot be read: {exc}") from exc
    return parse_profile(data, src)


def builtin_files() -> list[Any]:
    return sorted((e for e in resources.files(__name__).iterdir() if e.name.endswith(".toml")),
                  key=lambda e: e.name)


class Catalogue:
    """Profiles by id: the built-in ones, then the operator's directory (same id: the operator's wins)."""

    def __init__(self, profiles: Iterable[Profile]):
        self.by_id: dict[str, Profile] = {}
        for p in profiles:
            self.by_id[p.id] = p

    @classmethod
    def load(cls, extra_dir: str | Path | None = None) -> Catalogue:
        """The built-in catalogue plus every ``*.toml`` in ``extra_dir``; raises :class:`ProfileError`."""
        found: dict[str, Profile] = {}
        for e in builtin_files():
            p = load_file(e, f"ingest/profiles/{e.name}")
            if p.id in found:
                raise ProfileError(f"{p.source}: id: {p.id!r} is also the id of {found[p.id].source}")
            found[p.id] = p
        if extra_dir:
            d = Path(extra_dir)
            if not d.is_dir():
                raise ProfileError(f"{d}: the device profile directory does not exist")
            seen: dict[str, str] = {}
            for f in sorted(d.glob("*.toml")):
                p = load_file(f)
                if p.id in seen:
                    raise ProfileError(f"{f}: id: {p.id!r} is also the id of {seen[p.id]}")
                seen[p.id] = str(f)
                found[p.id] = p
        return cls(found.values())

    def get(self, pid: str | None) -> Profile | None:
        return self.by_id.get(pid or DEFAULT_PROFILE)

    def __contains__(self, pid: object) -> bool:
        return pid in self.by_id

    def __len__(self) -> int:
        return len(self.by_id)
