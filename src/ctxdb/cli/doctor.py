"""``ctxdb doctor``: render the checks of the database's health (service/operations/doctor.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ctxdb.cli.application import Application, pass_app
from ctxdb.cli.options import json_option
from ctxdb.cli.output import EXIT_OK, EXIT_UNHEALTHY, console, show
from ctxdb.cli.progress import phase_progress

if TYPE_CHECKING:
    from ctxdb.clients import trust
    from ctxdb.service.operations.doctor_report import Check, DoctorReport

STATUS_STYLES = {"pass": "green", "warn": "yellow", "fail": "bold red", "skipped": "dim"}
MIB = 1024 * 1024


@click.command("doctor")
@click.option("--fix", is_flag=True,
              help="Also make the safe repairs: recreate missing indexes, rebuild damaged ones "
                   "and the full-text index, mark silent instances crashed, checkpoint the "
                   "WAL. User data is never changed.")
@click.option("--thorough", is_flag=True,
              help="Run the complete integrity check (SQLite integrity_check instead of "
                   "quick_check, which also compares every index with its table; PostgreSQL: "
                   "amcheck with heap verification). Slower on large databases.")
@click.option("--dry-run", is_flag=True,
              help="Change nothing, even with --fix: each finding that --fix would repair "
                   "says which repair that is.")
@click.option("--wal-limit", "wal_limit_mib", type=click.IntRange(0), default=64,
              show_default=True, metavar="MIB",
              help="Warn when the SQLite write-ahead log is larger than this many MiB.")
@json_option
@pass_app
def doctor_command(
    app: Application, fix: bool, thorough: bool, dry_run: bool, wal_limit_mib: int,
    as_json: bool,
) -> int:
    """Check the database's health: settings, integrity, schema, indexes, instances, size.

    Prints one row per check with pass, warn, fail or skipped (a check that could not look,
    e.g. integrity on PostgreSQL without the amcheck extension). Exits with 7 when a check failed
    (warnings exit 0), so it can guard scripts and CI. The database is examined as it is:
    doctor never upgrades the schema and, without --fix (or with --dry-run), changes nothing:
    each finding --fix would repair names the repair. See docs/doctor.md for what each check
    means and what to do about a failure.

    \b
    Examples:
      ctxdb doctor
      ctxdb doctor --thorough --json
      ctxdb doctor --fix --dry-run
      ctxdb --url postgresql://ctxdb@db:5432/ctxdb doctor --fix
    """
    from ctxdb.service.operations.doctor import diagnose

    with phase_progress(not as_json) as progress:
        report = diagnose(app.settings, fix=fix and not dry_run, thorough=thorough,
                          wal_warn_bytes=wal_limit_mib * MIB, progress=progress)
    report = dataclasses.replace(report, checks=(*report.checks, *_client_checks()))
    show({**report.to_dict(), "dry_run": dry_run}, as_json, lambda: _render(report))
    return EXIT_OK if report.ok else EXIT_UNHEALTHY


def _client_checks() -> list[Check]:
    """Agent-client settings that keep ctxdb's hooks from running here (only when found)."""
    import os

    from ctxdb.clients import codex, project_root, trust
    from ctxdb.service.operations.doctor_report import WARN, Check

    root, home = project_root(Path.cwd()), Path.home()
    checks = []
    if codex.untrusted_project_hooks(root, home):
        checks.append(Check(
            "codex trust", WARN,
            f"ctxdb's Codex hooks are installed in {root / '.codex'}, but Codex ignores that "
            "folder until the project is trusted: run 'ctxdb install codex --trust' (then "
            "approve the hooks in Codex's /hooks review)"))
    codex_home = codex.codex_home(home)
    if codex.is_project_trusted(root, home):
        project_hooks = codex.settings_paths("project", root, home)[0]
        checks += _codex_hook_checks(trust.codex_hooks_trust(project_hooks, codex_home), root, "")
    checks += _codex_hook_checks(trust.codex_hooks_trust(codex_home / "hooks.json", codex_home),
                                 root, " (user)")
    if trust.gemini_project_hooks(root):
        checks.append(_gemini_check(root, trust.gemini_folder_trusted(root, home, os.environ)))
    return checks


_UNTRUSTED_REASONS = {
    "untrusted": "not approved yet",
    "modified": "changed since you approved it",
    "disabled": "turned off in /hooks",
}


def _codex_hook_checks(hooks: list[trust.HookTrust], root: Path, scope: str) -> list[Check]:
    """One warning per ctxdb hook Codex will skip; one pass when it runs them all. ``scope``
    tells the user's hooks (`` (user)``) from the project's in the check names."""
    from ctxdb.service.operations.doctor_report import PASS, WARN, Check

    skipped = [hook for hook in hooks if hook.status != "trusted"]
    if hooks and not skipped:
        source = hooks[0].key.rsplit(":", 3)[0]
        return [Check(f"codex hook trust{scope}", PASS,
                      f"Codex runs ctxdb's {len(hooks)} hook(s) of {source}",
                      data={"hooks": [hook.key for hook in hooks]})]
    return [Check(f"codex hook {hook.event}{scope}", WARN,
                  f"Codex skips ctxdb's {hook.event} hook ({_UNTRUSTED_REASONS[hook.status]}): "
                  f"run 'codex' in {root} and approve it in the /hooks review",
                  data={"key": hook.key, "status": hook.status})
            for hook in skipped]


def _gemini_check(root: Path, trusted: bool) -> Check:
    from ctxdb.service.operations.doctor_report import PASS, WARN, Check

    if trusted:
        return Check("gemini trust", PASS,
                     f"Gemini CLI trusts {root}, where ctxdb's hooks are installed")
    return Check("gemini trust", WARN,
                 f"ctxdb's Gemini CLI hooks are installed in {root / '.gemini'}, but Gemini CLI "
                 f"ignores that folder until you trust it: run 'gemini' in {root} and trust "
                 "the folder when asked (or with /permissions); for headless runs, set "
                 "GEMINI_CLI_TRUST_WORKSPACE=true")


def _render(report: DoctorReport) -> None:
    from rich.markup import escape
    from rich.table import Table

    # Details quote SQL and plans, whose brackets must not be read as Rich markup.
    table = Table(title=escape(f"ctxdb doctor: {report.backend} database at {report.location}"),
                  title_justify="left")
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("detail", overflow="fold")
    any_fixed = any(check.fixed for check in report.checks)
    if any_fixed:
        table.add_column("fixed", overflow="fold")
    for check in report.checks:
        style = STATUS_STYLES.get(check.status, "")
        row = [check.name, f"[{style}]{check.status}[/{style}]", escape(check.detail)]
        table.add_row(*row, *([escape(check.fixed)] if any_fixed else []))
    out = console()
    out.print(table)
    counts = report.to_dict()["summary"]
    verdict = "[green]healthy[/green]" if report.ok else "[bold red]unhealthy[/bold red]"
    skipped = f", {counts['skipped']} skipped" if counts["skipped"] else ""
    out.print(f"{verdict}: {counts['pass']} passed, {counts['warn']} warning(s), "
              f"{counts['fail']} failed{skipped}" + ("" if report.fix or report.ok else
                                            "; see docs/doctor.md, or try --fix"))
