"""A property-based test of the HTTP API against its own OpenAPI document (schemathesis 4).

For every operation of the document, requests generated from it (valid ones, and invalid ones
that break the declared types) are sent in process to the ASGI app over SQLite, with a
fleet-wide admin token, over a project holding one record of every kind: half of the requests
name those records' ids (in the path, the query and the body), so they get past the lookups
into the services. Whatever is sent, no answer may be a 5xx, and every answer must have a
status, a content type and a body that the document declares for it.

The examples are derandomized, so a run is reproducible; ``CTXDB_OPENAPI_EXAMPLES`` raises
their number for a longer hunt (the default keeps the whole file under a minute here).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ctxdb.http.app import create_app
from ctxdb.service import Ctxdb
from ctxdb.settings import load_settings
from test_server_api import OPENAPI_DOC, build_world

EXAMPLES = int(os.environ.get("CTXDB_OPENAPI_EXAMPLES", "12"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
# Names under which a request refers to a record of the world (path, query or body).
REFERENCES = ("project_id", "phase_id", "instance_id", "item_id", "namespace", "key",
              "task_id", "message_id", "session_id", "gate_id", "run_id", "checkpoint_id")
# Fields the document types as any string (or number) of which the services take a few.
ACCEPTED = {"priority": "HIGH", "role": "user", "recipient_kind": "broadcast", "exit_code": 0,
            "client": "claude-code"}


def operations() -> list[tuple[str, str]]:
    document = json.loads(OPENAPI_DOC.read_text())
    # Per path, deleting comes last, so that the other operations find the record first.
    return [(method.upper(), path) for path, methods in sorted(document["paths"].items())
            for method in sorted(methods, key=lambda method: (method == "delete", method))]


class Api:
    """The app over a fresh SQLite store, its schema as schemathesis loaded it, an admin
    token and the ids of project A's records."""

    def __init__(self, folder: Path) -> None:
        env = {"HOME": str(folder), "XDG_CONFIG_HOME": str(folder / "config")}
        self.db = Ctxdb.open(load_settings(env=env, url=str(folder / "api.db"),
                                           actor="user:test"))
        self.ids: dict[str, Any] = build_world(self.db)["A"]
        secret = self.db.access_tokens.create(None, "admin")["secret"]
        self.headers = {"Authorization": f"Bearer {secret}"}
        self.schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(self.db))


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    with tempfile.TemporaryDirectory() as folder:
        built = Api(Path(folder))
        try:
            yield built
        finally:
            built.db.close()


def name_known_records(case: Any, ids: dict[str, Any]) -> None:
    """Point every reference the case makes (where it makes one) at a record that exists,
    and give the fields of :data:`ACCEPTED` a value the services take."""
    known = {**ids, **ACCEPTED}
    for parameters in (case.path_parameters, case.query):
        for name in set(known) & set(parameters or {}):
            parameters[name] = known[name]
    if isinstance(case.body, dict):
        for name in set(known) & set(case.body) - {"project_id"}:
            case.body[name] = known[name]


@pytest.mark.parametrize(("method", "path"), operations())
def test_every_answer_is_declared_and_none_is_a_server_error(api: Api, method: str,
                                                              path: str) -> None:
    operation = api.schema[path][method]
    generated = st.one_of(operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
                          operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=generated, known=st.booleans())
    def answers_as_declared(case: Any, known: bool) -> None:
        if known:
            name_known_records(case, api.ids)
        if path == "/v1/events":
            # The feed streams until the client goes: here it sends what there is and ends.
            case.query = {**(case.query or {}), "max_seconds": 0}
        response = case.call(headers=api.headers)
        case.validate_response(response, checks=CHECKS)

    answers_as_declared()
