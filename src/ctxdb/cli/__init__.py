"""The ``ctxdb`` command line: a thin front end over :mod:`ctxdb.service`.

``main.py`` holds the application's root group and the one table from error category to exit
code; each command group lives in its own module and is imported only when it is invoked, so
that short-lived commands (such as an agent hook) start fast.
"""
