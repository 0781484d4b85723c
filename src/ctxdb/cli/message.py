"""``ctxdb message …``: messages between agent instances, delivered at least once."""

from __future__ import annotations

from typing import Any

import click

from ctxdb.cli.application import Application, pass_app
from ctxdb.cli.options import JsonText, json_option, project_option
from ctxdb.cli.output import print_record, print_table, show
from ctxdb.domain.models import choices
from ctxdb.domain.vocabulary import PromotionTarget

INBOX_COLUMNS = ("message_id", "sender", "recipient", "subject", "body", "delivered_count",
                 "created_at")


def show_record(record: dict[str, Any], as_json: bool, title: str) -> None:
    show(record, as_json, lambda: print_record(record, title=title))


@click.group("message")
def message_group() -> None:
    """Messages between agent instances: to one instance, to a role or to the whole project.

    `inbox` hands an instance its unacknowledged messages and hides them from it for the
    visibility timeout; unless acknowledged with `ack`, they come back after that. A role
    is the "role" key of an instance's metadata.
    """


@message_group.command("send")
@project_option
@click.argument("body", type=JsonText(), required=False)
@click.option("--text", metavar="TEXT", help="Send TEXT as the body (a JSON string), "
              "instead of BODY.")
@click.option("--to", "to_instance", metavar="INSTANCE_ID", help="Send to one instance.")
@click.option("--role", metavar="ROLE", help="Send to every instance with this role.")
@click.option("--broadcast", is_flag=True, help="Send to every instance of the project.")
@click.option("--subject", default="", help="A short subject line.")
@click.option("--sender", metavar="ID", help="The sending instance or actor.")
@json_option
@pass_app
def send_command(app: Application, project_id: str, body: Any, text: str | None,
                 to_instance: str | None, role: str | None, broadcast: bool, subject: str,
                 sender: str | None, as_json: bool) -> None:
    """Send BODY (JSON text) or --text to exactly one of --to, --role or --broadcast.

    A message to a role waits for the instances that have it; when no live instance has
    it yet, the command says so on stderr.

    \b
    Examples:
      ctxdb message send -p proj_… --role reviewer '{"review": "pr-12"}' --subject review
      ctxdb message send -p proj_… --broadcast --text "main is green again"
    """
    if (body is None) == (text is None):
        raise click.UsageError("give the body as BODY (JSON text) or as --text, not both")
    chosen = [(kind, value) for kind, value in (
        ("instance", to_instance), ("role", role), ("broadcast", broadcast or None))
        if value is not None]
    if len(chosen) != 1:
        raise click.UsageError("give exactly one of --to, --role or --broadcast")
    kind, recipient = chosen[0]
    message = app.db().messages.send(project_id, kind, None if kind == "broadcast" else
                                     str(recipient), text if body is None else body,
                                     subject=subject, sender=sender)
    if kind != "instance" and not message["live_recipients"]:
        click.echo(f"warning: no live instance is {_audience(kind, recipient)} yet; the "
                   "message waits for one", err=True)
    show_record(message, as_json, f"message {message['message_id']}")


def _audience(kind: str, recipient: Any) -> str:
    return f"in role {recipient!r}" if kind == "role" else "in the project besides the sender"


@message_group.command("inbox")
@click.argument("instance_id")
@click.option("--visibility", "visibility_seconds", type=float, default=30.0,
              show_default=True, help="Seconds the received messages stay hidden.")
@click.option("--limit", type=int, default=10, show_default=True)
@json_option
@pass_app
def inbox_command(app: Application, instance_id: str, visibility_seconds: float, limit: int,
                  as_json: bool) -> None:
    """Receive INSTANCE_ID's visible, unacknowledged messages, oldest first."""
    messages = app.db().messages.inbox(instance_id, visibility_seconds, limit)
    show(messages, as_json, lambda: print_table(messages, INBOX_COLUMNS, title="inbox",
                                                empty="no messages"))


@message_group.command("ack")
@click.argument("instance_id")
@click.argument("message_id")
@json_option
@pass_app
def ack_command(app: Application, instance_id: str, message_id: str, as_json: bool) -> None:
    """Acknowledge message MESSAGE_ID for INSTANCE_ID: it is never delivered to it again.

    The instance comes first, as in `inbox`; the older order (MESSAGE_ID INSTANCE_ID) is
    still understood, since a message id is a number and an instance id is not.

    \b
    Example:
      ctxdb message ack inst_… 12
    """
    if instance_id.isdigit() and not message_id.isdigit():
        instance_id, message_id = message_id, instance_id
    if not message_id.isdigit():
        raise click.BadParameter(f"{message_id!r} is not a message id (a number)",
                                 param_hint="MESSAGE_ID")
    number = int(message_id)
    show_record(app.db().messages.ack(number, instance_id), as_json,
                f"message {number} acknowledged")


@message_group.command("promote")
@click.argument("message_id", type=int)
@click.argument("target", type=click.Choice(choices(PromotionTarget)))
@click.option("--project", "-p", "project_id", metavar="PROJECT_ID",
              help="Refuse the message unless it belongs to this project.")
@click.option("--namespace", help="The memory's namespace (memory only).")
@click.option("--key", help="The memory's key (memory only).")
@click.option("--priority", default="HIGH", show_default=True,
              help="The context item's priority (context only).")
@json_option
@pass_app
def promote_command(app: Application, message_id: int, target: str, project_id: str | None,
                    namespace: str | None, key: str | None, priority: str,
                    as_json: bool) -> None:
    """Keep a message as a memory or a context item.

    \b
    Example:
      ctxdb message promote 12 memory --namespace team:conventions --key format
    """
    result = app.db().messages.promote(message_id, target, project_id=project_id,
                                       namespace=namespace, key=key, priority=priority)
    show_record(result, as_json, f"message {message_id} promoted to {target}")
