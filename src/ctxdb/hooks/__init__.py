"""The agent-client hooks front end: ``ctxdb hook --client claude-code|codex|gemini``.

``command`` reads the event without click, ``dispatch`` runs it under a deadline — against the
database (the event's use cases are ``db.hook_events``, its payload and output forms
``ctxdb.domain.hook_events``) or, with ``CTXDB_URL=http(s)://…``, through a ctxdb server
(``remote``, standard library only) — and ``logfile`` records failures where the agent never
sees them. See docs/hooks.md for what each event does.
"""
