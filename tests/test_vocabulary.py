"""The domain vocabulary is defined once: the CLI's choices and the MCP tools' enums are the
values of the enums in ``ctxdb.domain.models``, so that the front ends cannot drift from what
the services accept; and the one generic choice check names the accepted values."""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any

import anyio
import click
import pytest

from ctxdb.cli.main import cli
from ctxdb.cli.reference import walk
from ctxdb.domain.models import InstanceStatus, Priority, choices
from ctxdb.domain.validation import check_choice
from ctxdb.domain.vocabulary import (
    FINISHED_RUN_STATUSES,
    ConversationStatus,
    GateStatus,
    MemoryType,
    PromotionTarget,
    Role,
    RunStatus,
    SearchKind,
    TaskStatus,
    TokenScope,
)
from ctxdb.errors import InvalidStatusError, ValidationError
from ctxdb.service import Ctxdb
from ctxdb.settings import load_settings

# Every choice of a domain word in the CLI: (command, parameter) -> its values.
CLI_CHOICES = {
    ("task list", "status"): choices(TaskStatus),
    ("command list", "status"): choices(RunStatus),
    ("command finish", "status"): choices(FINISHED_RUN_STATUSES),
    ("command record", "status"): choices(FINISHED_RUN_STATUSES),
    ("approval list", "status"): choices(GateStatus),
    ("session list", "status"): choices(ConversationStatus),
    ("session append", "role"): choices(Role),
    ("memory put", "memory_type"): choices(MemoryType),
    ("message promote", "target"): choices(PromotionTarget),
    ("search", "kinds"): choices(SearchKind),
    ("search", "priority"): choices(Priority),
    ("token create", "scope"): choices(TokenScope),
}

# Every enum in the MCP tools' input schemas: (tool, argument) -> its values.
MCP_ENUMS = {
    ("store_context", "priority"): choices(Priority),
    ("search_context", "priority"): choices(Priority),
    ("search", "priority"): choices(Priority),
    ("search", "kinds"): choices(SearchKind),
    ("list_instances", "status"): choices(InstanceStatus),
    ("memory_put", "memory_type"): choices(MemoryType),
    ("session_append", "role"): choices(Role),
    ("task_list", "status"): choices(TaskStatus),
    ("command_record", "status"): choices(FINISHED_RUN_STATUSES),
}

DOMAIN_WORDS = {member.value for enum in StrEnum.__subclasses__()
                if enum.__module__ in ("ctxdb.domain.models", "ctxdb.domain.vocabulary")
                for member in enum}


def cli_choices() -> dict[tuple[str, str], list[str]]:
    """Every ``click.Choice`` of the CLI whose values are all domain words."""
    found = {}
    for ctx in walk(cli, cli.make_context("ctxdb", [], resilient_parsing=True)):
        path = " ".join(ctx.command_path.split()[1:])
        for param in ctx.command.params:
            if isinstance(param.type, click.Choice) and param.name is not None:
                values = [str(choice) for choice in param.type.choices]
                if set(values) <= DOMAIN_WORDS:
                    found[(path, param.name)] = values
    return found


def test_the_cli_offers_exactly_the_domain_values() -> None:
    assert cli_choices() == CLI_CHOICES


def enums_in(schema: Any) -> Iterator[list[str]]:
    if isinstance(schema, dict):
        if isinstance(schema.get("enum"), list):
            yield schema["enum"]
        for value in schema.values():
            yield from enums_in(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from enums_in(value)


def test_the_mcp_tools_advertise_exactly_the_domain_values(tmp_path: Path) -> None:
    pytest.importorskip("mcp")  # the optional extra ctxdb[mcp]
    from ctxdb.mcp.server import build_server
    from ctxdb.mcp.tools import ContextTools

    settings = load_settings(env={"HOME": str(tmp_path)}, url=str(tmp_path / "ctxdb.db"))

    def advertised(which: str) -> tuple[dict[tuple[str, str], list[str]], set[str]]:
        with Ctxdb.open(settings) as db:
            tools = anyio.run(build_server(ContextTools(db), which).list_tools)
        found = {}
        for tool in tools:
            for name, schema in tool.input_schema["properties"].items():
                for values in enums_in(schema):
                    assert (tool.name, name) not in found, "one enum per argument"
                    found[(tool.name, name)] = values
        return found, {tool.name for tool in tools}

    every, every_name = advertised("all")
    assert every == MCP_ENUMS
    default, _names = advertised("default")
    # `call` names the tools it runs: tool names, not values of the domain.
    assert set(default.pop(("call", "tool"))) <= every_name
    # The lean set has the same values wherever it has the argument.
    assert ("search", "kinds") in default
    assert all(MCP_ENUMS[key] == values for key, values in default.items())


def test_the_choice_check_names_the_accepted_values() -> None:
    assert check_choice("done", TaskStatus, "task status") is TaskStatus.DONE
    assert check_choice(TaskStatus.DONE, TaskStatus, "task status") is TaskStatus.DONE
    with pytest.raises(InvalidStatusError) as raised:
        check_choice("finished", TaskStatus, "task status", error=InvalidStatusError)
    assert raised.value.message == (
        "task status must be one of pending, ready, claimed, running, done, failed, blocked, "
        "cancelled, got 'finished'")
    for wrong in (None, 3, ["done"], "DONE", " done"):
        with pytest.raises(ValidationError, match="must be one of"):
            check_choice(wrong, TaskStatus, "task status")
    with pytest.raises(ValidationError, match="must be one of success, failed, cancelled, "
                                              "got 'running'"):
        check_choice("running", RunStatus, "status", allowed=FINISHED_RUN_STATUSES)
    with pytest.raises(ValidationError) as raised:
        check_choice("file", SearchKind, "kind", value="'file'")
    assert raised.value.details == {"value": "'file'"}
