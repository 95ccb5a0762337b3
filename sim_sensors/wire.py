# ruff: noqa: UP031  (printf-style templates are deliberate: JSON braces, and speed)
"""Wire encoders for the three uplink formats of ``docs/wire-format.md``.

Written from that contract and the vendors' public specifications (ChirpStack v4 integration
``UplinkEvent`` JSON; ThingsBoard gateway MQTT API ``v1/gateway/telemetry``), never from ingest code.

Payloads are built from string templates rather than ``json.dumps`` of dicts: the simulator must
encode a day of 1,546 gateways (≈ 445,000 samples) much faster than ingest can store them. Values are
printed with a fixed number of decimals per metric (:data:`DECIMALS`); an invalid NaN reading is
written as the bare token ``NaN`` (what Python's ``json`` writes and reads; strict parsers reject it,
which is the point of the fault), or as the string ``"NaN"`` by string-valued ChirpStack codecs.
"""

from __future__ import annotations

import base64
import functools
import math
import struct
import time
from collections.abc import Sequence

import numpy as np

from registry.metrics import GATEWAY_METRICS as METRICS
from sim_sensors.fleet import Fleet, deployment_uuid, stable_key
from sim_sensors.sensors import SAMPLE_KEYS

FORMATS = ("native", "chirpstack", "thingsboard")

#: decimals printed per key (sensor resolution)
DECIMALS: dict[str, int] = {
    "air_temp_c": 2, "air_rh_pct": 1, "soil_vwc_10cm": 3, "soil_vwc_30cm": 3, "soil_temp_10cm_c": 2,
    "soil_temp_30cm_c": 2, "rain_mm": 1, "leaf_wetness_pct": 1, "solar_wm2": 1, "wind_ms": 2,
    "battery_v": 3, "rssi_dbm": 0,
}
#: keys a ChirpStack device codec decodes into ``object`` (signal comes from rxInfo, not the payload)
CHIRPSTACK_OBJECT_KEYS: tuple[str, ...] = tuple(k for k in SAMPLE_KEYS if k != "rssi_dbm")
_IDX = {k: i for i, k in enumerate(SAMPLE_KEYS)}
_CS_IDX = [_IDX[k] for k in CHIRPSTACK_OBJECT_KEYS]
RSSI = _IDX["rssi_dbm"]


def _spec(key: str) -> str:
    return f"%.{DECIMALS[key]}f"


def _body_template(keys: Sequence[str], quoted: bool) -> str:
    q = '"' if quoted else ""
    return ",".join(f'"{k}":{q}{_spec(k)}{q}' for k in keys)


NATIVE_BODY = _body_template(SAMPLE_KEYS, False)
CS_BODY_NUM = _body_template(CHIRPSTACK_OBJECT_KEYS, False)
CS_BODY_STR = _body_template(CHIRPSTACK_OBJECT_KEYS, True)
NATIVE_SAMPLE = '{"t":%d,' + NATIVE_BODY + "}"
TB_SAMPLE = '{"ts":%d,"values":{' + NATIVE_BODY + "}}"


def _value_text(key: str, v: float, quoted: bool) -> str:
    if math.isnan(v):
        return '"NaN"' if quoted else "NaN"
    s = (_spec(key) % v)
    return f'"{s}"' if quoted else s


def slow_body(keys: Sequence[str], row: Sequence[float], missing: Sequence[bool],
              quoted: bool = False) -> str:
    """Body of a sample with missing values (left out) or NaN (written as ``NaN``)."""
    parts = []
    for k in keys:
        i = _IDX[k]
        if missing[i]:
            continue
        parts.append(f'"{k}":{_value_text(k, row[i], quoted)}')
    return ",".join(parts)


def native_sample(t: int, row: Sequence[float], missing: Sequence[bool] | None) -> str:
    """One sample object of the native batch (``t`` Unix seconds)."""
    if missing is None:
        return NATIVE_SAMPLE % (t, *row)
    body = slow_body(SAMPLE_KEYS, row, missing)
    return '{"t":%d%s}' % (t, "," + body if body else "")


def tb_sample(t: int, row: Sequence[float], missing: Sequence[bool] | None) -> str:
    """One ``{"ts": ms, "values": {...}}`` entry of ThingsBoard gateway telemetry."""
    if missing is None:
        return TB_SAMPLE % (t * 1000, *row)
    return '{"ts":%d,"values":{%s}}' % (t * 1000, slow_body(SAMPLE_KEYS, row, missing))


def native_message(prefix: str, orchard_id: str, gw: str, seq: int, sent_at: int, samples: Sequence[str]
                   ) -> tuple[str, bytes]:
    topic = f"{prefix}orchards/{orchard_id}/{gw}/up"
    payload = '{"v":1,"gw":"%s","seq":%d,"sent_at":%d,"samples":[%s]}' % (gw, seq, sent_at, ",".join(samples))
    return topic, payload.encode()


def thingsboard_message(prefix: str, parts: Sequence[tuple[str, Sequence[str]]]) -> tuple[str, bytes]:
    """``parts``: (device name, rendered ``tb_sample`` entries) for each device in the message."""
    body = ",".join('"%s":[%s]' % (dev, ",".join(s)) for dev, s in parts)
    return f"{prefix}v1/gateway/telemetry", ("{" + body + "}").encode()


@functools.lru_cache(maxsize=8192)
def rfc3339(t: float) -> str:
    """UTC RFC 3339 timestamp with a ``Z`` suffix (ChirpStack writes protobuf Timestamps so)."""
    whole = int(t)
    frac = t - whole
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    return f"{base}.{int(frac * 1e6):06d}Z" if frac else base + "Z"


_FRAME = struct.Struct(">I" + "h" * len(METRICS) + "B")
FRAME_SIZE = _FRAME.size
_SCALE = {"air_temp_c": 100, "air_rh_pct": 10, "soil_vwc_10cm": 1000, "soil_vwc_30cm": 1000,
          "soil_temp_10cm_c": 100, "soil_temp_30cm_c": 100, "rain_mm": 10, "leaf_wetness_pct": 10,
          "solar_wm2": 10, "wind_ms": 100}


_FRAME_DTYPE = np.dtype([("t", ">u4"), ("r", ">i2", (len(METRICS),)), ("b", "u1")])
_SCALES = np.array([_SCALE[k] for k in METRICS], dtype=float)


def frames_for_block(times: np.ndarray, values: np.ndarray) -> bytes:
    """:func:`frm_payload` frames of every (gateway, sample) of a block at once, concatenated in
    (gateway, sample) order; frame ``j`` is ``out[j * FRAME_SIZE:(j + 1) * FRAME_SIZE]``.
    ``times`` (n, m) Unix s; ``values`` (n, m, len(SAMPLE_KEYS)) with NaN for no value."""
    n, m = times.shape
    arr = np.empty((n, m), dtype=_FRAME_DTYPE)
    arr["t"] = (times.astype(np.int64) & 0xFFFFFFFF).astype(np.uint32)
    r = values[:, :, :len(METRICS)] * _SCALES
    arr["r"] = np.where(np.isnan(r), -32768, np.clip(np.rint(np.nan_to_num(r)), -32767, 32767)).astype(np.int16)
    bat = values[:, :, _IDX["battery_v"]]
    arr["b"] = np.where(np.isnan(bat), 0, np.clip(np.rint(np.nan_to_num(bat) * 50), 0, 255)).astype(np.uint8)
    return arr.tobytes()


def frm_payload(samples: Sequence[tuple[int, Sequence[float], Sequence[bool] | None]]) -> bytes:
    """The device's binary FRMPayload for ``samples``: per sample a big-endian uint32 time, one int16
    per reading (value x scale, -32768 = no value) and a uint8 battery (V x 50)."""
    out = bytearray()
    for t, row, missing in samples:
        ints = []
        for k, scale in _SCALE.items():
            v = row[_IDX[k]]
            if (missing is not None and missing[_IDX[k]]) or math.isnan(v):
                ints.append(-32768)
            else:
                ints.append(max(-32767, min(32767, round(v * scale))))
        bat = row[_IDX["battery_v"]]
        out += _FRAME.pack(t & 0xFFFFFFFF, *ints, 0 if math.isnan(bat) else max(0, min(255, round(bat * 50))))
    return bytes(out)


def _uuid4(x: int) -> str:
    """A version-4 UUID string from 128 bits (what ``uuid.UUID(int=x, version=4)`` prints, faster)."""
    h = "%032x" % (x & ((1 << 128) - 1))
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


class ChirpStackEncoder:
    """ChirpStack v4 ``event/up`` JSON for the fleet's devices (deployment ids stable per seed)."""

    LORA_GATEWAYS = 12
    #: CN470-510 uplink channels (LoRaWAN Regional Parameters RP002, 125 kHz from 470.3 MHz, 200 kHz step)
    CHANNELS_HZ = tuple(470_300_000 + 200_000 * c for c in range(8))

    def __init__(self, fleet: Fleet, prefix: str = ""):
        seed = fleet.seed
        self.prefix = prefix
        self.tenant_id = deployment_uuid(seed, "tenant")
        self.application_id = deployment_uuid(seed, "application")
        self.profile_num = deployment_uuid(seed, "profile-num")
        self.profile_str = deployment_uuid(seed, "profile-str")
        self.fleet = fleet
        self._info: list[str] = []
        self._topic: list[str] = []
        self._rx: list[tuple[str, float, float, float, int]] = []
        self._static: list[str] = []
        self._loc: list[str] = []
        for i, dev in enumerate(fleet.device_ids):
            strings = bool(fleet.codec_strings[i])
            info = ('{"tenantId":"%s","tenantName":"巫山数字果园","applicationId":"%s",'
                    '"applicationName":"wushan-orchard-gateways","deviceProfileId":"%s",'
                    '"deviceProfileName":"%s","deviceName":"%s","devEui":"%s","deviceClassEnabled":"CLASS_A",'
                    '"tags":{"orchard_id":"%s"}}') % (
                self.tenant_id, self.application_id, self.profile_str if strings else self.profile_num,
                "YC-GW1 CN470 (JS codec, string values)" if strings else "YC-GW1 CN470",
                dev, fleet.dev_euis[i], fleet.orchard_ids[i])
            self._info.append(info)
            self._topic.append(f"{prefix}application/{self.application_id}/device/{fleet.dev_euis[i]}/event/up")
            k = stable_key(fleet.orchard_ids[i])
            gw = f"0016c001ff{(k % self.LORA_GATEWAYS):06x}"
            self._rx.append((gw, float(fleet.lat[i]), float(fleet.lon[i]), float(fleet.elevation_m[i]), k))
            self._static.append('"deviceInfo":%s,"devAddr":"%s","adr":true' % (info, fleet.dev_addr[i]))
            self._loc.append('"location":{"latitude":%.5f,"longitude":%.5f,"altitude":%.1f}' % (
                fleet.lat[i], fleet.lon[i], fleet.elevation_m[i]))

    def message(self, i: int, fcnt: int, sent_at: int, samples: Sequence[tuple[int, Sequence[float],
                                                                                 Sequence[bool] | None]],
                uid: int, frames: bytes | None = None) -> tuple[str, bytes]:
        """One uplink of device ``i``: a flat ``object`` for one sample, ``object.samples`` for a buffer."""
        strings = bool(self.fleet.codec_strings[i])
        if len(samples) == 1:
            t, row, missing = samples[0]
            if missing is None:
                obj = (CS_BODY_STR if strings else CS_BODY_NUM) % tuple(row[:RSSI])   # rssi is last
            else:
                obj = slow_body(CHIRPSTACK_OBJECT_KEYS, row, missing, quoted=strings)
            when = t
        else:
            obj = '"samples":[%s]' % ",".join(native_sample(t, row, m) for t, row, m in samples)
            when = sent_at
        last_row = samples[-1][1]
        rssi = last_row[RSSI]
        rssi_i = -110 if math.isnan(rssi) else int(rssi)
        snr = round(max(-20.0, min(12.0, (rssi_i + 120) * 0.45 - 3.0)), 1)
        gw, _lat, _lon, _alt, k = self._rx[i]
        sf = 7 + min(5, max(0, (-rssi_i - 95) // 5))
        dr = 12 - sf if sf <= 12 else 0
        chan = (fcnt + k) % 8
        data = base64.b64encode(frames if frames is not None else frm_payload(samples)).decode()
        dedup = _uuid4(uid)
        ts = rfc3339(when)
        ctx = base64.b64encode(((uid >> 7) & 0xFFFFFFFF).to_bytes(4, "big")).decode()
        payload = (
            '{"deduplicationId":"%s","time":"%s",%s,"dr":%d,'
            '"fCnt":%d,"fPort":2,"confirmed":false,"data":"%s","object":{%s},'
            '"rxInfo":[{"gatewayId":"%s","uplinkId":%d,"gwTime":"%s","nsTime":"%s","rssi":%d,"snr":%.1f,'
            '"channel":%d,"rfChain":%d,%s,"context":"%s","crcStatus":"CRC_OK"}],'
            '"txInfo":{"frequency":%d,"modulation":{"lora":{"bandwidth":125000,"spreadingFactor":%d,'
            '"codeRate":"CR_4_5"}}}}'
        ) % (dedup, ts, self._static[i], dr, fcnt, data, obj, gw, (uid >> 3) & 0xFFFFFFFF, ts, ts, rssi_i, snr,
             chan, chan // 4, self._loc[i], ctx, self.CHANNELS_HZ[chan], sf)
        return self._topic[i], payload.encode()
