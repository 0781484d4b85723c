"""The ``ctxdb`` command line: a thin front end over :mod:`ctxdb.service`.

``main.py`` is the entry point and the command registry (it runs an agent hook without
importing click); ``root.py`` holds the application's root group and the one table from error
category to exit code; each command group lives in its own module and is imported only when it
is invoked, so that short-lived commands start fast.
"""
