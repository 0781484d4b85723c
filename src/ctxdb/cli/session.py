"""``ctxdb session …``: an app's conversation sessions with its users, and their event logs."""

from __future__ import annotations

from typing import Any

import click

from ctxdb.cli.application import Application, pass_app
from ctxdb.cli.options import (
    JSON_OBJECT,
    content_options,
    json_option,
    project_option,
    read_content,
)
from ctxdb.cli.output import print_record, print_table, show
from ctxdb.domain.models import choices
from ctxdb.domain.vocabulary import ConversationStatus, Role

SESSION_COLUMNS = ("session_id", "app_name", "user_id", "instance_id", "status",
                   "next_event_seq", "created_at", "updated_at")
EVENT_COLUMNS = ("sequence", "role", "content", "metadata", "created_at")


def show_session(session: dict[str, Any], as_json: bool) -> None:
    show(session, as_json, lambda: print_record(session, title=f"session {session['session_id']}"))


def scope_option(func: Any) -> Any:
    """An optional ``--project``: the session must belong to it (ids never cross projects)."""
    return click.option("--project", "-p", "project_id", metavar="PROJECT_ID",
                        help="Refuse the session unless it belongs to this project.")(func)


@click.group("session")
def session_group() -> None:
    """Conversation sessions (app, user, JSON state) and their ordered event logs.

    Events are numbered 1, 2, 3… per session; a closed session refuses appends and state
    changes (exit code 4). These are not the agent-client sessions of `ctxdb hook`.
    """


@session_group.command("create")
@project_option
@click.argument("app_name")
@click.argument("user_id")
@click.option("--instance", "instance_id", metavar="INSTANCE_ID",
              help="The agent instance that runs the session (of the same project).")
@click.option("--state", type=JSON_OBJECT, default=None, help="The initial state (JSON object).")
@json_option
@pass_app
def create_command(app: Application, project_id: str, app_name: str, user_id: str,
                   instance_id: str | None, state: dict[str, Any] | None, as_json: bool) -> None:
    """Open a session of APP_NAME with USER_ID; prints it with its id (sess_…).

    \b
    Example:
      ctxdb session create -p proj_… shop-bot user-42 --state '{"cart": []}'
    """
    session = app.db().conversations.create(project_id, app_name, user_id,
                                            instance_id=instance_id, state=state)
    show_session(session, as_json)


@session_group.command("get")
@click.argument("session_id")
@scope_option
@json_option
@pass_app
def get_command(app: Application, session_id: str, project_id: str | None,
                as_json: bool) -> None:
    """Show one session, with its state."""
    show_session(app.db().conversations.get(session_id, project_id=project_id), as_json)


@session_group.command("list")
@project_option
@click.option("--app", "app_name", help="Only sessions of this app.")
@click.option("--user", "user_id", help="Only sessions of this user.")
@click.option("--status", type=click.Choice(choices(ConversationStatus)),
              help="Only open or closed.")
@click.option("--after", metavar="SESSION_ID", help="Start after this session (paging).")
@click.option("--limit", type=int, default=100, show_default=True)
@json_option
@pass_app
def list_command(app: Application, project_id: str, app_name: str | None, user_id: str | None,
                 status: str | None, after: str | None, limit: int, as_json: bool) -> None:
    """List a project's sessions, oldest first."""
    sessions = app.db().conversations.list(project_id, app_name=app_name, user_id=user_id,
                                           status=status, after=after, limit=limit)
    show(sessions, as_json, lambda: print_table(sessions, SESSION_COLUMNS, title="sessions",
                                               empty="no sessions"))


@session_group.command("state")
@click.argument("session_id")
@click.argument("state", type=JSON_OBJECT)
@scope_option
@json_option
@pass_app
def state_command(app: Application, session_id: str, state: dict[str, Any],
                  project_id: str | None, as_json: bool) -> None:
    """Replace the state of an open session with STATE (a JSON object)."""
    session = app.db().conversations.update_state(session_id, state, project_id=project_id)
    show_session(session, as_json)


@session_group.command("append")
@click.argument("session_id")
@click.argument("role", type=click.Choice(choices(Role)))
@content_options
@click.option("--metadata", type=JSON_OBJECT, default=None, help="Metadata (a JSON object).")
@click.option("--key", "idempotency_key",
              help="Idempotency key: appending the same event again with it returns the first "
                   "one; another event with it is refused.")
@scope_option
@json_option
@pass_app
def append_command(app: Application, session_id: str, role: str, content: str | None,
                   file: str | None, as_text: bool, metadata: dict[str, Any] | None,
                   idempotency_key: str | None, project_id: str | None, as_json: bool) -> None:
    """Append an event (CONTENT as JSON, or --text) to an open session.

    \b
    Example:
      ctxdb session append sess_… user 'hello' --text --key msg-1
    """
    event = app.db().conversations.append(
        session_id, role, read_content(content, file, as_text), metadata=metadata,
        idempotency_key=idempotency_key, project_id=project_id)
    show(event, as_json, lambda: print_record(event, title=f"event {event['sequence']}"))


@session_group.command("events")
@click.argument("session_id")
@click.option("--after", "after_sequence", type=int, default=0, show_default=True,
              help="Only events numbered after this one (the last of the previous page).")
@click.option("--limit", type=int, default=100, show_default=True)
@scope_option
@json_option
@pass_app
def events_command(app: Application, session_id: str, after_sequence: int, limit: int,
                   project_id: str | None, as_json: bool) -> None:
    """List a session's events in order, a page at a time."""
    events = app.db().conversations.events(session_id, after_sequence=after_sequence,
                                           limit=limit, project_id=project_id)
    show(events, as_json, lambda: print_table(events, EVENT_COLUMNS, title=session_id,
                                             empty="no events"))


@session_group.command("close")
@click.argument("session_id")
@scope_option
@json_option
@pass_app
def close_command(app: Application, session_id: str, project_id: str | None,
                  as_json: bool) -> None:
    """Close an open session; its events stay readable."""
    show_session(app.db().conversations.close(session_id, project_id=project_id), as_json)
