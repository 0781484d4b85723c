"""``ctxdb mcp``: ctxdb's tools for agent clients, served over MCP (stdio).

A front end like the command line: :mod:`ctxdb.mcp.tools` calls only the service layer and
renders plain text for the model. The tool modules (:mod:`ctxdb.mcp.knowledge`,
:mod:`ctxdb.mcp.coordination`, :mod:`ctxdb.mcp.continuity`) declare those functions as MCP
tools, each a module-level function with typed arguments, listed in ``TOOLS``;
:mod:`ctxdb.mcp.server` registers them and runs each call in a worker thread, so the one
synchronous core serves the asynchronous protocol. They and :mod:`ctxdb.mcp.toolbox` are the
only modules that import the optional ``mcp`` SDK.
"""

SDK_HINT = "pip install 'ctxdb[mcp]'"
