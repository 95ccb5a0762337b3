"""ingest.paho_speedups makes paho's Properties cheaper without changing what it does: the same
script run against unpatched and patched paho (separate interpreters) must print the same bytes,
JSON and errors for every property type and packet type used."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = r'''
import json, sys
from paho.mqtt.packettypes import PacketTypes as P
from paho.mqtt.properties import Properties
if sys.argv[1] == "patched":
    from ingest import paho_speedups
    assert paho_speedups.install() and paho_speedups.install()  # idempotent

CASES = [
    (P.PUBLISH, {}),
    (P.PUBLISH, {"PayloadFormatIndicator": 1, "MessageExpiryInterval": 3600, "ContentType": "application/json",
                 "ResponseTopic": "r/t", "CorrelationData": b"\x00\x01", "TopicAlias": 7,
                 "UserProperty": [("a", "1"), ("b", "2")]}),
    (P.CONNECT, {"SessionExpiryInterval": 604800, "ReceiveMaximum": 4000, "MaximumPacketSize": 1 << 20,
                 "TopicAliasMaximum": 10, "RequestResponseInformation": 1, "RequestProblemInformation": 0,
                 "AuthenticationMethod": "m", "AuthenticationData": b"d"}),
    (P.CONNACK, {"ReceiveMaximum": 20, "MaximumQoS": 1, "RetainAvailable": 1, "AssignedClientIdentifier": "x",
                 "ReasonString": "ok", "ServerKeepAlive": 30, "SharedSubscriptionAvailable": 1,
                 "WildcardSubscriptionAvailable": 1, "SubscriptionIdentifierAvailable": 0}),
    (P.SUBSCRIBE, {"SubscriptionIdentifier": 5, "UserProperty": ("k", "v")}),
    (P.DISCONNECT, {"SessionExpiryInterval": 0, "ReasonString": "bye", "ServerReference": "s"}),
    (P.PUBACK, {"ReasonString": "fine"}),
    (P.WILLMESSAGE, {"WillDelayInterval": 5, "PayloadFormatIndicator": 0}),
    # refused: property not allowed for the packet type, out-of-range value, unknown name
    (P.PUBLISH, {"SessionExpiryInterval": 1}),
    (P.CONNECT, {"ReceiveMaximum": 0}),
    (P.PUBLISH, {"NoSuchProperty": 1}),
]
out = []
for pt, props in CASES:
    p = Properties(pt)
    rec = {"empty_before": p.isEmpty()}
    try:
        for k, v in props.items():
            setattr(p, k, v)
    except Exception as exc:
        rec["error"] = f"{type(exc).__name__}: {exc}"
    packed = p.pack()
    rec.update(packed=packed.hex(), json={k: (v.hex() if isinstance(v, bytes) else v) for k, v in p.json().items()},
               str=str(p), empty=p.isEmpty())
    q = Properties(pt)
    q.unpack(packed)
    rec["round_trip"] = q.pack().hex()
    q.clear()
    rec["cleared"] = [q.isEmpty(), q.pack().hex(), str(q)]
    q.unpack(packed)  # unpack into a used object clears it first
    rec["reused"] = q.pack().hex()
    out.append(rec)
print(json.dumps(out, sort_keys=True, default=list))
'''


def _run(mode: str) -> list[dict[str, object]]:
    r = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def test_patched_properties_behave_exactly_like_pahos_own() -> None:
    plain, patched = _run("plain"), _run("patched")
    assert patched == plain
    assert any("error" in r for r in plain)               # the refusals were exercised
    assert any(len(str(r["packed"])) > 40 for r in plain)  # and real property blocks


def test_patched_constructor_shares_the_tables() -> None:
    # what makes it cheaper (the saving itself is measured by bench ingest, not here): an instance
    # holds only its packet type, the lookup tables exist once
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    from ingest import paho_speedups

    assert paho_speedups.install()
    p = Properties(PacketTypes.PUBLISH)
    assert set(vars(p)) == {"packetType"}
    assert Properties(PacketTypes.CONNECT).names is p.names
