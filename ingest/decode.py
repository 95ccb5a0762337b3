"""Route an MQTT message to its format's decoder by topic (after the deployment prefix)."""

from __future__ import annotations

from ingest import decode_chirpstack, decode_native, decode_thingsboard
from ingest.model import Decoded
from ingest.validate import MAX_MESSAGE_BYTES, Validator

#: topic filters (without prefix) the ingest service subscribes to
TOPIC_FILTERS: tuple[str, ...] = (
    "orchards/+/+/up",
    "application/+/device/+/event/up",
    decode_thingsboard.TOPIC,
)


def decode_message(topic: str, payload: bytes, v: Validator, prefix: str = "") -> Decoded:
    """Decode a message received on ``topic`` (full topic, including ``prefix``); never raises."""
    if prefix and topic.startswith(prefix):
        topic = topic[len(prefix):]
    elif prefix:
        dec = Decoded()
        dec.reject("unknown_topic", f"topic {topic[:200]!r} lacks the prefix {prefix!r}")
        return dec
    if topic.startswith("orchards/"):
        return decode_native.decode(topic, payload, v)
    if topic.startswith("application/"):
        return decode_chirpstack.decode(topic, payload, v)
    if decode_thingsboard.match(topic):
        return decode_thingsboard.decode(topic, payload, v)
    dec = Decoded()
    if len(payload) > MAX_MESSAGE_BYTES:
        dec.reject("oversized", f"{len(payload)} bytes > {MAX_MESSAGE_BYTES}")
    else:
        dec.reject("unknown_topic", f"no decoder for topic {topic[:200]!r}")
    return dec
