"""Readers for ``ctxdb import``: they turn files into plain records and write nothing.

``files`` reads a project's file-based memory (agent instruction files, ``.claude/``, JSON
files of context items, the MCP memory server's graph); ``legacy`` reads a database built
with the seed's own SQLite schema. The service layer
(``ctxdb.service.operations.imports``) writes the records, in one transaction per import.
See docs/imports.md.
"""
