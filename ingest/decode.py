"""Route an MQTT message to its format's decoder by topic (after the deployment prefix).

=========================  ==============================================  ===========================
format                     topic (after the prefix)                        decoder
=========================  ==============================================  ===========================
native batch               ``orchards/<orchard>/<gateway>/up``             :mod:`ingest.decode_native`
ChirpStack v4 and v3       ``application/<app>/device/<dev_eui>/event/up``  :mod:`ingest.decode_chirpstack`
ThingsBoard gateway API    ``v1/gateway/telemetry``                        :mod:`ingest.decode_thingsboard`
ThingsBoard gateway, own   ``tbgw/<account>/v1/gateway/telemetry``         :mod:`ingest.decode_thingsboard`
listener (mounted)         (namespace configurable)
ThingsBoard device API     ``tb/<device_id>/v1/devices/me/telemetry``      :mod:`ingest.decode_thingsboard`
The Things Stack v3        ``v3/+/devices/+/up`` (configurable)            :mod:`ingest.decode_tts`
=========================  ==============================================  ===========================
"""

from __future__ import annotations

from paho.mqtt.client import topic_matches_sub

from ingest import decode_chirpstack, decode_native, decode_thingsboard, decode_tts
from ingest.model import Decoded
from ingest.validate import MAX_MESSAGE_BYTES, Validator
from registry.broker_accounts import TB_GATEWAY_MOUNT

#: The Things Stack uplink topics: its own MQTT server's form. An operator whose Pub/Sub integration
#: publishes elsewhere sets YUNCANG_TTS_TOPICS (IngestConfig.tts_topics).
TTS_TOPICS: tuple[str, ...] = ("v3/+/devices/+/up",)

#: topic filters (without prefix) the ingest service subscribes to, besides the TTS ones
TOPIC_FILTERS: tuple[str, ...] = (
    "orchards/+/+/up",
    "application/+/device/+/event/up",
    decode_thingsboard.TOPIC,
    decode_thingsboard.DEVICE_FILTER,
    decode_thingsboard.DEVICE_TOPIC,  # no identity: subscribed so that such messages are dead-lettered
)


def topic_filters(tts_topics: tuple[str, ...] = TTS_TOPICS,
                  tb_gateway_mount: str = TB_GATEWAY_MOUNT) -> tuple[str, ...]:
    """Every filter (without prefix) ingest subscribes to with these settings; also what the broker ACL
    must let ingest's account read."""
    return (*TOPIC_FILTERS, decode_thingsboard.mounted_filter(tb_gateway_mount), *tts_topics)


def decode_message(topic: str, payload: bytes, v: Validator, prefix: str = "",
                   tts_topics: tuple[str, ...] = TTS_TOPICS, tb_gateway_mount: str = TB_GATEWAY_MOUNT) -> Decoded:
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
    if decode_thingsboard.match_mounted(topic, tb_gateway_mount) is not None:
        return decode_thingsboard.decode_mounted(topic, payload, v, tb_gateway_mount)
    if decode_thingsboard.match_device(topic) is not None:
        return decode_thingsboard.decode_device(topic, payload, v)
    if any(topic_matches_sub(f, topic) for f in tts_topics):
        return decode_tts.decode(topic, payload, v)
    dec = Decoded()
    if len(payload) > MAX_MESSAGE_BYTES:
        dec.reject("oversized", f"{len(payload)} bytes > {MAX_MESSAGE_BYTES}")
    else:
        dec.reject("unknown_topic", f"no decoder for topic {topic[:200]!r}")
    return dec
