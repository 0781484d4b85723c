"""Errors as ``application/problem+json`` (RFC 9457), from ONE table of error categories.

Every error ctxdb raises on purpose has a ``category`` (see ``ctxdb.errors``); the table below
gives each its HTTP status, and the body carries the error's stable ``code`` and details.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi.responses import JSONResponse

from ctxdb.errors import CtxdbError
from ctxdb.http.models import Problem

PROBLEM_TYPE = "application/problem+json"

STATUS_BY_CATEGORY: dict[str, int] = {
    "invalid": 400,
    "unauthenticated": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "limit": 422,
    "internal": 500,
    "storage": 503,
}
TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
          409: "Conflict", 413: "Content Too Large", 422: "Unprocessable Content",
          500: "Internal Server Error", 503: "Service Unavailable"}

log = logging.getLogger(__name__)


# What every /v1 route may answer besides its success, for the OpenAPI document: any client
# error (bad input, a token refused, an unknown id, a conflict, a limit, a body too large) and
# 503 when the database cannot be reached. A 500 is a bug and is not promised.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": Problem, "description": "A client error (`code` says which)"},
    503: {"model": Problem, "description": "The database cannot be reached or is busy"},
}


def problem_media_type(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` (an OpenAPI document) with every error body declared as what it is sent
    as, ``application/problem+json`` (FastAPI declares a model's body as JSON)."""
    reference = "#/components/schemas/Problem"
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                if content.get("application/json", {}).get("schema") == {"$ref": reference}:
                    content[PROBLEM_TYPE] = content.pop("application/json")
    return document


def status_for(error: CtxdbError) -> int:
    return STATUS_BY_CATEGORY.get(error.category, 500)


def problem(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": TITLES.get(status, "Error"),
            "status": status, "code": code, "detail": detail, **extra}
    headers = {"WWW-Authenticate": 'Bearer realm="ctxdb"'} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_TYPE, headers=headers)


def problem_of(error: CtxdbError) -> JSONResponse:
    log.debug("%s answered as %d %s", type(error).__name__, status_for(error), error.code,
              exc_info=error)
    details = {k: v for k, v in error.details.items()
               if k not in ("type", "title", "status", "code", "detail")}
    details = json.loads(json.dumps(details, default=str))  # a detail may be a path or a date
    return problem(status_for(error), error.code, error.message, **details)
