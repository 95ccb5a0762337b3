"""The simulated gateways: one per registry device, with the orchard's site and fixed radio/battery traits."""

from __future__ import annotations

import uuid
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from registry.townships import TOWNSHIPS


def stable_key(text: str) -> int:
    """A stable 32-bit key for seeding per-device random generators (CRC-32 of the UTF-8 text)."""
    return zlib.crc32(text.encode("utf-8"))


@dataclass
class Fleet:
    """Per-gateway arrays in device order.

    ``elevation_m``, ``lat``, ``lon`` come from the device row when it carries them (join devices with
    orchards); otherwise from a deterministic stand-in derived from the orchard id (400-800 m inside
    the county), so a bare ``devices`` row still gets a plausible site.
    """

    device_ids: list[str]
    orchard_ids: list[str]
    dev_euis: list[str]
    elevation_m: np.ndarray      #: m
    lat: np.ndarray              #: ° N
    lon: np.ndarray              #: ° E
    rssi_base_dbm: np.ndarray    #: typical uplink signal at the gateway's site, dBm
    soc_base: np.ndarray         #: battery state of charge in a normal day (0-1)
    codec_strings: np.ndarray    #: bool: this device profile's codec emits numbers as strings
    dev_addr: list[str]          #: LoRaWAN device address (8 hex)
    seed: int

    @property
    def n(self) -> int:
        return len(self.device_ids)

    def orchard_rows(self) -> list[dict[str, Any]]:
        """Orchard-like rows for the history generator (site only; yield fields neutral)."""
        return [{"orchard_id": o, "area_mu": 10.0, "elevation_m": float(e), "lat": float(la),
                 "lon": float(lo), "planting_year": 2010, "tree_count": 450}
                for o, e, la, lo in zip(self.orchard_ids, self.elevation_m, self.lat, self.lon, strict=True)]


def make_fleet(devices: list[dict[str, Any]], seed: int = 0) -> Fleet:
    """Build the fleet from device rows (``device_id``, ``orchard_id``, ``dev_eui`` and optionally
    ``elevation_m``, ``lat``, ``lon``)."""
    n = len(devices)
    elev = np.empty(n)
    lat = np.empty(n)
    lon = np.empty(n)
    rssi = np.empty(n)
    soc = np.empty(n)
    strings = np.zeros(n, dtype=bool)
    addr: list[str] = []
    for i, d in enumerate(devices):
        g = np.random.default_rng([seed, stable_key(str(d["device_id"])), 21])
        u = g.random(8)
        town = TOWNSHIPS[int(u[0] * len(TOWNSHIPS)) % len(TOWNSHIPS)]
        elev[i] = float(d["elevation_m"]) if d.get("elevation_m") is not None else 400.0 + 400.0 * u[1]
        lat[i] = float(d["lat"]) if d.get("lat") is not None else town[3] + 0.06 * (u[2] - 0.5)
        lon[i] = float(d["lon"]) if d.get("lon") is not None else town[4] + 0.06 * (u[3] - 0.5)
        rssi[i] = -118.0 + 33.0 * u[4]            # mountain valleys: -118 .. -85 dBm
        soc[i] = 0.65 + 0.3 * u[5]
        strings[i] = u[6] < 0.3                   # about a third of device profiles use a string codec
        addr.append(f"{int(u[7] * 2**25) | 0x00000000:08x}")
    return Fleet(
        device_ids=[str(d["device_id"]) for d in devices],
        orchard_ids=[str(d["orchard_id"]) for d in devices],
        dev_euis=[str(d.get("dev_eui") or f"{stable_key(str(d['device_id'])):016x}") for d in devices],
        elevation_m=elev, lat=lat, lon=lon, rssi_base_dbm=rssi, soc_base=soc, codec_strings=strings,
        dev_addr=addr, seed=seed,
    )


def deployment_uuid(seed: int, name: str) -> str:
    """A stable UUID for a named deployment object (ChirpStack tenant, application, device profile)."""
    return str(uuid.UUID(int=(stable_key(f"{seed}:{name}") << 96) | (stable_key(name) << 32) | 0x4000))
