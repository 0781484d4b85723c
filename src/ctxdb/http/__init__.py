"""``ctxdb serve``: the HTTP front end (docs/server.md).

An ASGI application (FastAPI on uvicorn, the ``server`` extra) over the service facade
:class:`ctxdb.service.Ctxdb` only. The synchronous service core runs in worker threads
(FastAPI runs plain ``def`` endpoints and dependencies in its thread pool); there is no async
copy of any rule. Nothing else in ctxdb imports this package: the core and the hooks never
load the HTTP stack.
"""
