"""``ctxdb mcp``: ctxdb's tools for agent clients, served over MCP (stdio).

A front end like the command line: the tools call only the service layer and render plain
text for the model. The tool modules (:mod:`ctxdb.mcp.knowledge`,
:mod:`ctxdb.mcp.coordination`, :mod:`ctxdb.mcp.continuity`, :mod:`ctxdb.mcp.details`) declare
them, each a module-level function with typed arguments, listed in ``TOOLS``;
:mod:`ctxdb.mcp.toolbox` turns each into the SDK's tool run in a worker thread, so the one
synchronous core serves the asynchronous protocol, and :mod:`ctxdb.mcp.server` chooses the
tool set. Only these modules import the optional ``mcp`` SDK.
"""

# Extras install from a clone (README: Install): 'ctxdb' on the public index is another
# project, so a hint never names it.
SDK_HINT = "install ctxdb with its mcp extra: pip install '.[mcp]' in a clone of ctxdb"
# The tool sets of ``ctxdb mcp --tools`` (see ``server.py``): here, so that the command line
# can offer them without importing the SDK.
TOOL_SETS = ("default", "all")
