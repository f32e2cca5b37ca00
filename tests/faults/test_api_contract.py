"""Schemathesis over the OpenAPI document (every route the router registers): generated calls
as an admin and as an agent never get a 5xx, and every answer matches the document."""

from __future__ import annotations

import schemathesis
from fault_peers import examples
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

import inbox.service.app  # noqa: F401  (registers every route of the API)
from inbox.api.router import API

SCHEMA = schemathesis.openapi.from_dict(API.openapi())
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@SCHEMA.parametrize()
@settings(
    max_examples=examples(2),
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_generated_calls_get_no_5xx_and_match_the_document(
    case: schemathesis.Case, live_url: str, role_headers: dict[str, dict[str, str]]
) -> None:
    for headers in role_headers.values():
        case.call_and_validate(base_url=live_url, headers=headers, checks=CHECKS, timeout=30)
