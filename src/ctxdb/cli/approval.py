"""``ctxdb approval …``: approval gates, requested by agents and decided once."""

from __future__ import annotations

from typing import Any

import click

from ctxdb.cli.application import Application, pass_app
from ctxdb.cli.options import JsonText, json_option, project_option
from ctxdb.cli.output import print_record, print_table, show
from ctxdb.domain.models import choices
from ctxdb.domain.vocabulary import GateStatus
from ctxdb.errors import ApprovalRejectedError

GATE_COLUMNS = ("gate_id", "gate_type", "title", "status", "requested_by", "decided_by",
                "created_at", "decided_at")


def show_gate(gate: dict[str, Any], as_json: bool) -> None:
    show(gate, as_json, lambda: print_record(gate, title=f"approval gate {gate['gate_id']}"))


def scope_option(func: Any) -> Any:
    """An optional ``--project``: the gate must belong to it (ids never cross projects)."""
    return click.option("--project", "-p", "project_id", metavar="PROJECT_ID",
                        help="Refuse the gate unless it belongs to this project.")(func)


def response_options(func: Any) -> Any:
    func = click.option("--comment", metavar="TEXT",
                        help="The response as plain text (instead of --response).")(func)
    return click.option("--response", type=JsonText(), default=None, metavar="JSON",
                        help="The response: any JSON value, e.g. '{\"conditions\": […]}'.")(func)


def chosen_response(response: Any, comment: str | None) -> Any:
    if response is not None and comment is not None:
        raise click.UsageError("give either --response or --comment, not both")
    return comment if comment is not None else response


@click.group("approval")
def approval_group() -> None:
    """Approval gates: an agent asks for a yes or no before going on (a plan, a deploy).

    A gate is pending until it is approved or rejected (with an optional response), or
    cancelled by the requester. It is decided once: deciding it again is refused (exit
    code 4) and the first decision stands. `wait` polls until the gate is decided.
    """


@approval_group.command("request")
@project_option
@click.argument("gate_type")
@click.argument("request", type=JsonText(), required=False)
@click.option("--title", default="", help="A one-line summary for whoever decides.")
@click.option("--phase", "phase_id", type=int, help="The phase the gate belongs to.")
@click.option("--instance", "instance_id", metavar="INSTANCE_ID",
              help="The requesting agent instance (of the project).")
@click.option("--key", "idempotency_key", metavar="KEY",
              help="Idempotency key: the same request again with it returns the same "
                   "gate; another request with it is refused.")
@json_option
@pass_app
def request_command(app: Application, project_id: str, gate_type: str, request: Any,
                    title: str, phase_id: int | None, instance_id: str | None,
                    idempotency_key: str | None, as_json: bool) -> None:
    """Ask for approval of a GATE_TYPE (plan, deploy, …) with REQUEST (JSON, default {}).

    \b
    Example:
      ctxdb approval request -p proj_… deploy '{"version": "2.1"}' --title "Ship 2.1"
    """
    gate = app.db().approvals.request(project_id, gate_type, request, title=title,
                                      phase_id=phase_id, instance_id=instance_id,
                                      idempotency_key=idempotency_key)
    show_gate(gate, as_json)


@approval_group.command("list")
@project_option
@click.option("--status", type=click.Choice(choices(GateStatus)), help="Only gates in this status.")
@click.option("--type", "gate_type", metavar="GATE_TYPE", help="Only gates of this type.")
@click.option("--after", type=int, default=0, metavar="GATE_ID",
              help="Start after this gate (paging).")
@click.option("--limit", type=int, default=100, show_default=True)
@json_option
@pass_app
def list_command(app: Application, project_id: str, status: str | None,
                 gate_type: str | None, after: int, limit: int, as_json: bool) -> None:
    """List a project's approval gates, oldest first (`--status pending`: what awaits you)."""
    gates = app.db().approvals.list(project_id, status=status, gate_type=gate_type,
                                    after=after, limit=limit)
    show(gates, as_json, lambda: print_table(gates, GATE_COLUMNS, title="approval gates",
                                            empty="no approval gates"))


@approval_group.command("show")
@click.argument("gate_id", type=int)
@scope_option
@json_option
@pass_app
def show_command(app: Application, gate_id: int, project_id: str | None,
                 as_json: bool) -> None:
    """Show one gate with its request and, once decided, its response."""
    show_gate(app.db().approvals.get(gate_id, project_id=project_id), as_json)


def _decision(verb: str, summary: str) -> None:
    @approval_group.command(verb, help=summary)
    @click.argument("gate_id", type=int)
    @response_options
    @scope_option
    @json_option
    @pass_app
    def decide(app: Application, gate_id: int, response: Any, comment: str | None,
               project_id: str | None, as_json: bool) -> None:
        method = getattr(app.db().approvals, verb)
        show_gate(method(gate_id, chosen_response(response, comment), project_id=project_id),
                  as_json)


_decision("approve", "Approve a pending gate (as the configured actor, CTXDB_ACTOR).")
_decision("reject", "Reject a pending gate; --comment or --response says why.")
_decision("cancel", "Withdraw a pending request: nobody needs to decide it any more.")


@approval_group.command("wait")
@click.argument("gate_id", type=int)
@click.option("--timeout", "timeout_seconds", type=float, default=600.0, show_default=True,
              help="Seconds to wait for a decision.")
@click.option("--interval", "poll_seconds", type=float, default=2.0, show_default=True,
              help="Seconds between two looks at the gate.")
@scope_option
@json_option
@pass_app
def wait_command(app: Application, gate_id: int, timeout_seconds: float, poll_seconds: float,
                 project_id: str | None, as_json: bool) -> None:
    """Wait until a gate is decided: exit 0 when approved (the gate is printed), 4 when
    rejected or cancelled, 5 when still pending after --timeout.

    \b
    Example:
      ctxdb approval wait 7 --timeout 3600 && ./deploy.sh
    """
    gate = app.db().approvals.wait(gate_id, timeout_seconds, poll_seconds=poll_seconds,
                                   project_id=project_id)
    if gate["status"] != "approved":
        raise ApprovalRejectedError(
            f"approval gate {gate_id} was {gate['status']} by {gate['decided_by']}",
            gate_id=gate_id, status=gate["status"], decided_by=gate["decided_by"],
            response=gate["response"])
    show_gate(gate, as_json)
