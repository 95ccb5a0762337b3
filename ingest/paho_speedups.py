"""Make paho-mqtt's MQTT v5 ``Properties`` cheap to create (it is created for every PUBLISH received).

paho-mqtt 2.x builds three constant lookup tables (property types, names and identifiers: a list and
two dicts of 27 entries, 40 list lookups) in ``Properties.__init__``, and ``clear()`` (called by every
``unpack``) probes every one of the 27 names with ``hasattr``. For a PUBLISH without properties that is
about 8 µs of the ingest event loop's CPU per message, ~0.3 CPU-s per replayed county-day and more with
one reading per message (measured with ``python -m timeit``; py-spy showed ``Properties.__init__`` as
the largest single frame of the MQTT side).

:func:`install` builds the tables once, moves them to the class (paho only ever reads them) and
replaces ``__init__``, ``clear`` and ``isEmpty`` with versions that touch only the instance's own
attributes, which are exactly ``packetType`` plus the properties that were set. Every other method
(``pack``, ``unpack``, ``json``, ``__setattr__`` with its checks) is paho's own. It patches nothing when
paho's layout is not the one this was written against (then paho simply stays slower);
``tests/test_ingest_paho_speedups.py`` compares packed bytes, ``json()`` and errors with the
unpatched class.
"""

from __future__ import annotations

from typing import Any

_TABLES = ("types", "names", "properties")


def install() -> bool:
    """Patch ``paho.mqtt.properties.Properties`` in place (idempotent); returns whether it is patched."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    if getattr(Properties, "_yuncang_fast", False):
        return True
    probe = Properties(PacketTypes.PUBLISH)
    if set(vars(probe)) != {"packetType", *_TABLES}:
        return False  # not the layout this was written against
    for name in _TABLES:
        setattr(Properties, name, vars(probe)[name])

    def __init__(self: Any, packetType: int) -> None:
        object.__setattr__(self, "packetType", packetType)

    def clear(self: Any) -> None:
        d = vars(self)
        for k in [k for k in d if k != "packetType"]:
            del d[k]

    def isEmpty(self: Any) -> bool:
        return not any(k != "packetType" for k in vars(self))

    Properties.__init__ = __init__  # type: ignore[method-assign]
    Properties.clear = clear  # type: ignore[method-assign]
    Properties.isEmpty = isEmpty  # type: ignore[method-assign]
    Properties._yuncang_fast = True  # type: ignore[attr-defined]
    return True
