"""``ctxdb mcp``: ctxdb's tools for agent clients, served over MCP (stdio).

A front end like the command line: :mod:`ctxdb.mcp.tools` calls only the service layer and
renders plain text for the model, :mod:`ctxdb.mcp.server` (the only module that imports the
optional ``mcp`` SDK) exposes those functions as MCP tools and runs each call in a worker
thread, so the one synchronous core serves the asynchronous protocol.
"""

SDK_HINT = "pip install 'ctxdb[mcp]'"
