-- ctxdb schema version 18 for SQLite: nothing to change (the PostgreSQL migration of this
-- number makes its search triggers build each document from the row they fire on).
--
-- PostgreSQL's PL/pgSQL trigger functions keep a generic plan per statement for the life of
-- a connection, made for the tables as they were then, and the one that read a new item
-- back through search_context_source walked every live item once the tables had grown
-- (issue 14). SQLite plans a trigger's statements each time its statement is prepared, with
-- no statistics unless ANALYZE ran, and reads the row back by its rowid: the same work at any
-- size. The number is kept on both backends so that a schema version means one thing.

-- migrate:up
SELECT 1;

-- migrate:down
SELECT 1;
