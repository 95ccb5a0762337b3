# ruff: noqa: F811  (session fixtures imported from test_web_fixtures)
"""Schemathesis against the app's own OpenAPI document: no 5xx, responses conform to the schema.

Runs in-process (ASGI) with an admin bearer token so the generated requests reach the handlers;
max_examples is small so the whole run stays well under two minutes.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from test_web_fixtures import TEST_PASSWORD, bearer, client, sample, token_for, web_app, web_db  # noqa: F401

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def admin_headers(client: Any) -> dict[str, str]:
    return bearer(token_for(client, "admin", role="admin"))


def _runner(op: Any, headers: dict[str, str]) -> Any:
    """A hypothesis test of one operation with one caller's headers."""

    @given(case=op.as_strategy())
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case: Any) -> None:
        # positive_data_acceptance is left out: business rules the schema cannot state (an
        # observation day not in the future, an orchard that exists) rightly answer 4xx.
        case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

    return run


def test_api_conforms(web_app: Any, client: Any, sample: Any, admin_headers: dict[str, str], web_db: str) -> None:
    """Every operation in /openapi.json, a few generated requests each (pytest-plugin parametrisation
    is not used: the app only exists once the database fixture has run)."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", web_app)
    ops = []
    for result in schema.get_all_operations():
        op = result.ok()
        if op.path == "/api/v1/auth/logout":
            continue  # would revoke the shared admin token
        ops.append(op)
    assert len(ops) >= 20, [o.path for o in ops]
    # buyers own the order operations: run those as a buyer too, so generated orders reach trading
    buyer = bearer(token_for(client, "buyer-test-b-user", TEST_PASSWORD))
    runs = [(op, admin_headers) for op in ops] + [
        (op, buyer) for op in ops if op.path.startswith(("/api/v1/orders", "/api/v1/allocations", "/api/v1/supply"))
    ]
    # every role: a grower and a cooperative manager read every GET operation too (their scopes differ)
    with psycopg.connect(web_db) as conn:
        coop = conn.execute("SELECT cooperative_id FROM cooperatives ORDER BY 1 LIMIT 1").fetchone()[0]
    grower = bearer(token_for(client, "G-00005", role="grower"))
    manager = bearer(token_for(client, coop, role="manager"))
    runs += [(op, who) for who in (grower, manager) for op in ops if op.method.upper() == "GET"]
    failures: list[str] = []
    for op, headers in runs:
        run = _runner(op, headers)
        try:
            run()
        except Exception as exc:  # collect every failing operation, then fail once with all of them
            failures.append(f"{op.method.upper()} {op.path}: {exc}")
    assert not failures, "\n\n".join(failures)
