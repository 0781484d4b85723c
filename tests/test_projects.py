from __future__ import annotations

from typing import Any

import pytest

from ctxdb.errors import ProjectNotFoundError, TooManyProjectsError
from ctxdb.service import Ctxdb


def test_create_and_get_project(db: Ctxdb) -> None:
    created = db.projects.create("Alpha", "first", 300)
    assert created["project_id"].startswith("proj_")
    assert db.projects.get(created["project_id"])["total_story_points"] == 300


def test_unknown_project_is_a_typed_error(db: Ctxdb) -> None:
    with pytest.raises(ProjectNotFoundError, match="proj_nope"):
        db.projects.get("proj_nope")


def test_project_limit(make_settings: Any) -> None:
    with Ctxdb.open(make_settings(max_projects=2)) as db:
        db.projects.create("a")
        db.projects.create("b")
        with pytest.raises(TooManyProjectsError):
            db.projects.create("c")
        assert len(db.projects.list()) == 2
