"""Schemathesis against the REST API's own OpenAPI schema (``/openapi.json``) on a live server.

Every operation of the schema gets requests generated from it (query values, path ids, multipart and
raw image bodies). The properties: no 5xx, and each response conforms to the schema where the schema
declares it (status code, content type, JSON body). A few hand-written probes follow for inputs the
generator does not reach (REST text that Python's own parsers choke on). ``scripts/fuzz.sh`` runs more.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import given
from schemathesis import checks
from schemathesis.specs.openapi import checks as openapi_checks

from fuzz.hypo import fuzz_settings
from fuzz.live import STYLES, FuzzServer
from tests.tinymodels import write_tiny_models


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzServer]:
    models = write_tiny_models(tmp_path_factory.mktemp("models"), names=STYLES)
    with FuzzServer(Path(models)) as s:
        yield s


def asked_for_a_timeout(response: Any, case: Any) -> bool:
    """A 504 because the caller's own ``timeout_s`` passed: the caller's doing, by design (the error
    table maps DeadlineExceeded to 504); schemathesis draws tiny timeouts like 2e-16 s often."""
    return response.status_code == 504 and "timeout_s" in (case.query or {})


def not_a_server_error(ctx: Any, response: Any, case: Any) -> bool | None:
    if asked_for_a_timeout(response, case):
        return None
    return checks.not_a_server_error(ctx, response, case)


CHECKS = [
    not_a_server_error,
    openapi_checks.status_code_conformance,  # 504 included: the schema documents it
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
]
SEEN: dict[str, Counter[int]] = {}  # status codes per operation, printed with -s (docs/fuzzing.md)


def test_every_operation_conforms_to_its_schema_and_never_fails(server: FuzzServer) -> None:
    # One Hypothesis run per operation of the live schema (schemathesis' pytest fixture loader does not
    # work with pytest 9, so the operations are walked here).
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 10, [op.label for op in operations]
    for op in operations:

        @fuzz_settings(12)
        @given(case=op.as_strategy())
        def run(case: Any) -> None:
            response = case.call_and_validate(base_url=server.url, checks=CHECKS, timeout=30)
            SEEN.setdefault(case.operation.label, Counter())[response.status_code] += 1

        run()
    for label, codes in sorted(SEEN.items()):
        print(f"{label}: {dict(codes)}")


def test_the_schema_documents_the_timeout_status(server: FuzzServer) -> None:
    spec = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            if any(p["name"] == "timeout_s" for p in op.get("parameters", [])):
                assert "504" in op["responses"], f"{method.upper()} {path}"


@pytest.mark.parametrize(
    "path, params",
    [
        ("/v1/jobs/deepdream", {"options": "[" * 3000}),
        ("/v1/saliency", {"target": "²"}),
        ("/v1/jobs/deepdream", {"options": '{"steps": ' + "9" * 5000 + "}"}),
    ],
    ids=["deep-json", "superscript-target", "long-int"],
)
def test_rest_text_python_cannot_parse_is_a_4xx(
    server: FuzzServer, path: str, params: dict[str, str]
) -> None:
    from fuzz.grpc_strategies import small_image

    r = httpx.post(
        server.url + path,
        params=params,
        content=small_image(32, 32, "PNG", 0),
        headers={"Content-Type": "image/png"},
        timeout=30,
    )
    assert r.status_code < 500, r.text
