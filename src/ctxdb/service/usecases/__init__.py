"""The agents' use cases: each a service over one project's records, one transaction per call.

Projects, phases, instances, context, tokens, memories, tasks, messages, approvals, command
runs, checkpoints, conversations, search, and the agent sessions and transcripts the client
hooks report. They import each other and ``service.common``, never ``service.operations``.
"""
