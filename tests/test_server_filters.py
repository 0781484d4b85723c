"""The isolation matrix for ids named in query strings (list filters such as
``?instance_id=``), on both backends: another project's id is answered exactly like an
unknown one, without a byte of the other project."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from ctxdb.service import Ctxdb
from test_server_api import (  # fixtures and helpers of the route matrices
    SECRET_OF_B,
    auth,
    client,
    routes,
    same_shape,
    token,
    url_of,
    world,
)

__all__ = ["client", "world"]  # the fixtures this module uses
FILTERS = {"instance_id": "inst_nope", "phase_id": 999_996}


def test_filters_naming_another_projects_record(db: Ctxdb, client: TestClient,
                                               world: dict[str, Any]) -> None:
    a, b = world["A"], world["B"]
    headers = auth(token(db, a["project_id"], "read"))
    tried = 0
    for route in routes(client):
        if "GET" not in route.methods or "{project_id}" not in route.path:
            continue
        named = [p.name for p in route.dependant.query_params if p.name in FILTERS]
        for name in named:
            url = url_of(route, a)
            query = {"priority": "HIGH", "budget_tokens": 1000, "q": "x"}
            foreign = client.get(url, params={**query, name: b[name]}, headers=headers)
            unknown = client.get(url, params={**query, name: FILTERS[name]}, headers=headers)
            assert SECRET_OF_B not in foreign.text and b["project_id"] not in foreign.text, \
                (route.path, name, foreign.text)
            assert foreign.status_code == unknown.status_code, (route.path, name, foreign.text)
            names = {"project_id", name}
            assert same_shape(foreign.json(), {**a, name: b[name]}, names) == \
                same_shape(unknown.json(), {**a, name: FILTERS[name]}, names), route.path
            tried += 1
    assert tried >= 5
