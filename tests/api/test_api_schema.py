"""Schemathesis against the live OpenAPI document of a real `python -m api`: every operation, a
few generated requests each (admin key, so every operation is reachable), no server error, and
every response's status, content type and body as the document says.

Operations are driven one by one with Hypothesis here rather than by schemathesis' pytest
parametrisation, whose subtests do not run under this pytest (9.2)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 8

pytestmark = pytest.mark.db


def test_every_operation_answers_as_documented(api_server, world):
    schema = schemathesis.openapi.from_url(f"{api_server.base_url}/openapi.json")
    headers = {"Authorization": f"Bearer {world.keys['admin']}"}
    tried, failures = [], {}
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def exercise(case):
            case.call_and_validate(base_url=api_server.base_url, headers=headers, checks=CHECKS, timeout=10)

        try:
            exercise()
        except Exception as exc:  # noqa: BLE001 - collected, so one failing operation does not hide others
            failures[operation.label] = str(exc)[:2000]
        tried.append(operation.label)
    documented = sum(len([m for m in item if m in {"get", "post", "patch", "delete", "put"}])
                     for item in schema.raw_schema["paths"].values())
    assert len(tried) == documented >= 20
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
