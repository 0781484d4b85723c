"""The fleet dashboard: server-rendered pages over the service layer, served by
``ctxdb serve`` (docs/dashboard.md). Needs the ``server`` extra (FastAPI, Jinja2)."""
