"""The production compose file validates offline against the compose specification."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_compose_file_validates() -> None:
    exe = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
    r = subprocess.run([exe, "--builtin-schema", "vendor.compose-spec", str(ROOT / "docker-compose.yml")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_compose_runs_timescaledb_and_authenticated_mosquitto() -> None:
    import yaml

    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = doc["services"]
    assert "timescale/timescaledb" in services["db"]["image"]
    conf = (ROOT / "deploy" / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf
    assert "persistence true" in conf
    assert "max_queued_messages" in conf


def test_compose_pins_the_timescaledb_release_ci_tests() -> None:
    import yaml

    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    # .ci/run installs TimescaleDB 2.28.3 for PostgreSQL 15, the major the project supports and tests
    assert doc["services"]["db"]["image"] == "timescale/timescaledb:2.28.3-pg15"


def test_compose_gives_every_ingest_instance_a_fixed_client_id() -> None:
    """A client id from the container hostname changes when the container is re-created, stranding what
    the broker queued for the old persistent session; each ingest service names its own, all distinct."""
    import yaml

    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    ingest = {name: svc for name, svc in doc["services"].items() if svc.get("command", [None])[0] == "ingest"}
    assert len(ingest) >= 2, "two ingest instances share the load"
    ids = []
    for name, svc in ingest.items():
        assert "replicas" not in svc.get("deploy", {}), f"{name}: replicas would share one client id setting"
        cmd = svc["command"]
        assert "--client-id" in cmd, f"{name} takes its client id from the hostname"
        ids.append(cmd[cmd.index("--client-id") + 1])
    assert len(set(ids)) == len(ids) and all(i and "$" not in i for i in ids), ids
    refreshing = [n for n, s in ingest.items() if "--refresh-every" not in s["command"]]
    assert len(refreshing) == 1, f"exactly one ingest instance refreshes the rollups: {refreshing}"
