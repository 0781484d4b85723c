"""Operations on a whole database: backup and restore, bundles, ``db copy``, imports,
retention, ``doctor``, the audit chain and the schema.

They read or write across projects and tables, often in many transactions with progress, and
may use the use cases' rules (``service.usecases``); no use case imports them.
"""
