"""The agent-client hooks front end: ``ctxdb hook --client claude-code|codex|gemini``.

``payload`` turns each client's JSON into one vocabulary, ``repo`` finds which project a
working directory belongs to, ``dispatch`` runs one event against the service layer under a
deadline, and ``logfile`` records failures where the agent never sees them. See
docs/hooks.md for what each event does.
"""
