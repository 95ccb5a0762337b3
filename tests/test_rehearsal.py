"""The production rehearsal: docker-compose.yml's topology run natively (commands and environment read
from the compose file) on a private TimescaleDB and a private Mosquitto with deploy/mosquitto.conf,
through a broker restart, an ingest SIGKILL and a PostgreSQL restart (``python -m bench rehearsal``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.rehearsal import missing_binaries

ROOT = Path(__file__).resolve().parents[1]
WHY = missing_binaries()

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow,
              pytest.mark.skipif(WHY is not None, reason=f"production rehearsal: {WHY}")]


def test_production_rehearsal_stores_every_reading_once_through_faults() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YUNCANG_")}
    r = subprocess.run([sys.executable, "-m", "bench", "rehearsal", "--gateways", "300"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=580)
    fig = json.loads(r.stdout.strip().splitlines()[-1])
    print(json.dumps({k: v for k, v in fig.items() if k not in ("api", "services")}))
    assert "error" not in fig, fig.get("error")
    # the topology is the compose file's
    assert fig["services"]["migrate"] == ["migrate"]
    assert [s[:3] for s in fig["services"].values() if s[0] == "ingest"] == [
        ["ingest", "--client-id", "yuncang-ingest-1"], ["ingest", "--client-id", "yuncang-ingest-2"]]
    assert fig["storage_path"] == "timescaledb" and fig["web_workers"] == 2
    # the faults happened, each with a backlog in flight
    assert [f["fault"] for f in fig["faults"]] == ["broker_restart", "ingest_sigkill", "postgres_restart"]
    assert all(f["backlog_readings"] > 0 for f in fig["faults"]), fig["faults"]
    assert fig["restarts"]["broker"] == 1 and fig["restarts"]["postgres"] == 1
    assert fig["restarts"][f"{fig['faults'][1]['service']}_supervisor"] == 1
    # the simulator's faults happened too, and everything is counted exactly
    assert fig["duplicates"] > 0 and fig["invalid"] > 0
    assert fig["stored"] == fig["readings_sent"] - fig["duplicates"] - fig["invalid"] == fig["expected_stored"]
    assert fig["checks"] == {k: True for k in fig["checks"]}, fig["checks"]
    assert fig["rollups"]["hourly"]["rows"] > 0 and fig["rollups"]["daily"]["rows"] > 0
    assert len(fig["api"]["orchards"]) >= 3 and fig["api"]["ok"]
    assert r.returncode == 0 and fig["meets_goals"], f"over the time budget: {fig['total_s']} s"
