"""``ctxdb mcp``: ctxdb's tools for agent clients, served over MCP (stdio).

A front end like the command line: :mod:`ctxdb.mcp.tools` calls only the service layer and
renders plain text for the model, the tool modules (:mod:`ctxdb.mcp.knowledge`, :mod:`ctxdb.mcp.coordination`,
:mod:`ctxdb.mcp.continuity`; with :mod:`ctxdb.mcp.toolbox` and :mod:`ctxdb.mcp.server` the only
ones that import the optional ``mcp`` SDK) declare those functions as MCP tools, each a
module-level function with typed arguments, and the server registers them from their lists
and runs each call in a worker thread, so the one synchronous core serves the asynchronous
protocol.
"""

SDK_HINT = "pip install 'ctxdb[mcp]'"
