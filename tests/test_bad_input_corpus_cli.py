"""The bad-input corpus through the command line, in process (click's CliRunner; see
``bad_input_corpus.py``).

Each case is a valid command with one argument, option or ``CTXDB_*`` variable poisoned. It
must exit with the code of a refusal (2 invalid, 3 not found, 4 conflict, 5 limit: never 1,
an internal error, and never 0 unless it only read), say why in one ``error:`` line naming
the limit where there is one, and leave the database as it was. ``--traceback`` makes an
unexpected exception fail the case with its traceback instead of exiting 1.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from bad_input_corpus import (
    ANY_REFUSAL,
    CORPUS_SETTINGS,
    EXAMPLES,
    INVALID,
    INVALID_OR_NOT_FOUND,
    LONE_SURROGATE,
    LONG,
    MAX_CONTENT_BYTES,
    NOT_FOUND,
    ODD_TEXT,
    Poison,
    Unchanged,
    World,
    build_world,
    counted,
    odd_query,
    text_with,
)
from ctxdb.cli.main import cli
from test_cli import CLEAN_ENV

EXIT_CODES = {"invalid": 2, "not_found": 3, "conflict": 4, "limit": 5}
Argv = list[str]


def identifier_text(what: str, categories: frozenset[str] = INVALID) -> st.SearchStrategy[
        Poison]:
    """An identifier argument as a command line carries it (an argument that is not UTF-8
    arrives as lone surrogates: Python's surrogateescape)."""
    return st.one_of(
        st.just(Poison("", f"empty {what}", categories)),
        st.builds(lambda text: Poison(text, f"NUL in {what}", categories), text_with("\x00")),
        st.builds(lambda s, text: Poison(text + s, f"undecodable {what}", categories),
                  LONE_SURROGATE, ODD_TEXT),
        st.just(Poison("i" * LONG, f"long {what}", categories, "longer than")),
    )


def unknown(prefix: str) -> st.SearchStrategy[Poison]:
    return st.builds(lambda tail: Poison(prefix + tail, f"unknown {prefix}",
                                         INVALID_OR_NOT_FOUND),
                     st.text("abcdef0123456789", min_size=1, max_size=20))


def integer_text(what: str, foreign: int | None = None, low: int = 1) -> st.SearchStrategy[
        Poison]:
    found = [
        st.builds(lambda n: Poison(str(n), f"{what} {n}", INVALID_OR_NOT_FOUND),
                  st.integers(max_value=low - 1)),
        st.builds(lambda n: Poison(str(n), f"huge {what}", INVALID), st.integers(2**63, 2**90)),
        st.builds(lambda n: Poison("9" * n, f"{n}-digit {what}", INVALID),
                  st.integers(4_301, 6_000)),
        st.builds(lambda t: Poison(t, f"{what} not a number", INVALID),
                  st.sampled_from(["abc", "1.5", "", "0x10", "1e3", "½", " 7x", "--"])),
        st.builds(lambda n: Poison(str(n), f"unknown {what}", NOT_FOUND),
                  st.integers(10**9, 2**62)),
    ]
    if foreign is not None:
        found.append(st.just(Poison(str(foreign), f"another project's {what}", NOT_FOUND)))
    return st.one_of(found)


def deep_text(levels: int, as_object: bool) -> str:
    if as_object:
        return '{"k":' * levels + "1" + "}" * levels
    return "[" * levels + "]" * levels


JSON_TEXT = st.one_of(
    st.builds(lambda n, o: Poison(deep_text(n, o), f"JSON nested {n}", INVALID,
                                  "nested deeper than the limit of 100 levels"),
              st.integers(101, 5_000), st.booleans()),
    st.builds(lambda n: Poison("[" + "8" * n + "]", f"{n}-digit JSON integer", INVALID,
                               "4300|4,300"), st.integers(4_301, 8_000)),
    st.builds(lambda t: Poison(t, "JSON that is not", INVALID),
              st.sampled_from(["NaN", "[Infinity]", '{"a": -Infinity}', '{"a": [1, 2',
                               "{'a': 1}", "", "[1,]", '"\\x41"', "tru"])),
    st.builds(lambda t: Poison(f'["{t}\\u0000"]', "JSON with NUL", INVALID, "NUL"),
              st.text("abc", max_size=5)),
    st.builds(lambda s: Poison(f'{{"a": "{s}"}}', "JSON with a lone surrogate", INVALID,
                               "surrogate"), LONE_SURROGATE),
    st.builds(lambda s: Poison('{"a": "\\ud800"}', "JSON escaping a lone surrogate", INVALID,
                               "surrogate"), st.just(0)),
    st.builds(lambda n: Poison('"' + "x" * n + '"', "JSON too large", INVALID,
                               f"over the limit of {MAX_CONTENT_BYTES} bytes"),
              st.integers(MAX_CONTENT_BYTES, 3 * MAX_CONTENT_BYTES)),
)
PRIORITY_TEXT = st.builds(
    lambda t: Poison(t, "priority", INVALID),
    st.text(max_size=10).filter(lambda t: t.upper() not in ("CRITICAL", "HIGH", "MEDIUM",
                                                             "LOW")))
SECONDS_TEXT = st.builds(lambda t: Poison(t, f"seconds {t!r}", INVALID),
                         st.sampled_from(["0", "-1", "nan", "inf", "-inf", "1e999",
                                          "604801000", "abc", ""]))
# (variable, values): settings a person may get wrong; each is refused when read.
ENVIRONMENT = {
    "CTXDB_CONTEXT_WINDOW": ["9" * 5_000, "-5", "0", "1.5", "many", "1e999"],
    "CTXDB_MAX_CONTENT_BYTES": ["9" * 4_400, "-1", "nan", "0x10"],
    "CTXDB_CLEAR_THRESHOLD": ["nan", "inf", "2", "-0.5", "1" + "0" * 5_000],
    "CTXDB_MAX_PROJECTS": ["-1", "1e9", str(2**70), "lots"],
    "CTXDB_BUSY_TIMEOUT_MS": ["1", "-1", "9" * 5_000],
    "CTXDB_PACK_BUDGET_FRACTION": ["nan", "-1", "7"],
    "CTXDB_AUTO_MIGRATE": ["maybe", "2"],
    "CTXDB_SQLITE_SYNCHRONOUS": ["OFF", "sometimes"],
    "CTXDB_MEMORY_TTL_SEMANTIC": ["-1", "9" * 5_000, "1.5"],
    "CTXDB_STALE_AFTER": ["nan", "-3", "inf"],
}


def environment() -> st.SearchStrategy[tuple[Argv, dict[str, str], Poison]]:
    return st.builds(
        lambda pair, command: (command, {pair[0]: pair[1]},
                               Poison(pair[1], f"{pair[0]}={pair[1][:20]!r}", INVALID)),
        st.sampled_from([(name, value) for name, values in ENVIRONMENT.items()
                         for value in values]),
        st.sampled_from([["project", "list"], ["summary"], ["memory", "list", "-p", "x"]]))


Command = Callable[[World, dict[str, str]], Argv]


def commands(world: World) -> list[tuple[str, Command, dict[str, str],
                                         dict[str, st.SearchStrategy[Poison]]]]:
    """(name, argv of the arguments, valid arguments, poisons of each argument)."""
    project = identifier_text("project_id", INVALID_OR_NOT_FOUND) | unknown("proj_")
    instance = identifier_text("instance_id", INVALID_OR_NOT_FOUND) | unknown("inst_") | \
        st.just(Poison(world.other["instance"], "another project's instance",
                       INVALID_OR_NOT_FOUND))
    return [
        ("context store",
         lambda w, a: ["context", "store", "-p", a["p"], a["content"], "--priority",
                       a["priority"], "--type", a["type"], "--phase", a["phase"],
                       "--token-count", a["tokens"], "--metadata", a["metadata"],
                       "--created-by", a["by"]],
         {"p": world.project, "content": '{"a": 1}', "priority": "HIGH", "type": "note",
          "phase": str(world.phase), "tokens": "3", "metadata": '{"m": 1}',
          "by": world.instance},
         {"p": project, "content": JSON_TEXT, "priority": PRIORITY_TEXT,
          "type": identifier_text("content_type"),
          "phase": integer_text("phase", world.other["phase"]),
          "tokens": integer_text("token count", low=0).filter(
              lambda p: p.categories != NOT_FOUND),
          "metadata": JSON_TEXT.map(lambda p: Poison('{"m": ' + p.value + "}", p.label,
                                                     p.categories, p.says))
          | st.just(Poison("[1]", "metadata a list", INVALID)),
          "by": instance}),
        ("context get", lambda w, a: ["context", "get", a["item"], "-p", a["p"]],
         {"item": str(world.item), "p": world.project},
         {"item": integer_text("item", world.other["item"]), "p": project}),
        ("memory put",
         lambda w, a: ["memory", "put", "-p", a["p"], a["ns"], a["key"], a["value"],
                       "--expect-version", a["version"], "--ttl", a["ttl"]],
         {"p": world.project, "ns": "user:prefs", "key": "theme", "value": '{"dark": 0}',
          "version": "1", "ttl": "60"},
         {"p": project, "ns": identifier_text("namespace") | st.sampled_from(
             [Poison(t, "not a namespace path") for t in ["a b", "::", "x:", "ü", "a/b"]]),
          "key": identifier_text("key"), "value": JSON_TEXT,
          "version": integer_text("version").map(
              lambda p: Poison(p.value, p.label, ANY_REFUSAL)),
          "ttl": integer_text("ttl").filter(lambda p: p.categories != NOT_FOUND).map(
              lambda p: Poison(p.value, p.label, INVALID))}),
        ("message send",
         lambda w, a: ["message", "send", "-p", a["p"], a["body"], "--to", a["to"],
                       "--subject", a["subject"]],
         {"p": world.project, "body": '{"hi": 1}', "to": world.instance, "subject": "s"},
         {"p": project, "body": JSON_TEXT, "to": instance,
          "subject": identifier_text("subject").filter(lambda p: p.value != "")}),
        ("task create",
         lambda w, a: ["task", "create", "-p", a["p"], a["title"], "--priority",
                       a["priority"], "--parent", a["parent"], "--depends-on", a["dep"]],
         {"p": world.project, "title": "t", "priority": "5", "parent": str(world.task),
          "dep": str(world.task)},
         {"p": project, "title": identifier_text("title"),
          "priority": PRIORITY_TEXT.filter(lambda p: not p.value.strip().lstrip("-+")
                                           .isdigit()) | st.builds(
              lambda n: Poison(str(n), "task priority out of range"),
              st.integers(10**6 + 1, 10**30)),
          "parent": integer_text("parent", world.other["task"]),
          "dep": integer_text("dependency", world.other["task"])}),
        ("task claim", lambda w, a: ["task", "claim", a["inst"], "-p", a["p"], "--lease",
                                     a["lease"]],
         {"inst": world.instance, "p": world.project, "lease": "60"},
         {"inst": instance, "p": project, "lease": SECONDS_TEXT}),
        ("task complete", lambda w, a: ["task", "complete", a["task"], a["epoch"],
                                        "--result", a["result"]],
         {"task": str(world.task), "epoch": "1", "result": '{"ok": 1}'},
         {"task": integer_text("task", None), "result": JSON_TEXT,
          "epoch": integer_text("epoch").map(lambda p: Poison(p.value, p.label,
                                                              ANY_REFUSAL))}),
        ("approval request",
         lambda w, a: ["approval", "request", "-p", a["p"], a["type"], a["request"],
                       "--title", a["title"], "--phase", a["phase"], "--instance", a["inst"]],
         {"p": world.project, "type": "deploy", "request": '{"plan": 1}', "title": "t",
          "phase": str(world.phase), "inst": world.instance},
         {"p": project, "type": identifier_text("gate_type"), "request": JSON_TEXT,
          "title": identifier_text("title").filter(lambda p: p.value != ""),
          "phase": integer_text("phase", world.other["phase"]), "inst": instance}),
        ("checkpoint save",
         lambda w, a: ["checkpoint", "save", a["inst"], a["state"], "--label", a["label"],
                       "-p", a["p"]],
         {"inst": world.instance, "state": '{"step": 3}', "label": "l", "p": world.project},
         {"inst": instance, "state": JSON_TEXT, "p": project,
          "label": identifier_text("label").filter(lambda p: p.value != "")}),
        ("search",
         lambda w, a: ["search", "-p", a["p"], a["words"], "--since", a["since"],
                       "--limit", a["limit"], *(["--raw"] if a["raw"] else [])],
         {"p": world.project, "words": "sqlite", "since": "7d", "limit": "5", "raw": ""},
         {"p": project, "words": odd_query() | identifier_text("query").filter(
             lambda p: p.value != ""),
          "raw": odd_query().map(lambda p: Poison(p.value, "raw " + p.label,
                                                  may_succeed=True)),
          "since": st.sampled_from([Poison(t, f"since {t!r}") for t in
                                    ["7x", "2025-13-45", "-1d", "yesterday", "", "\x00"]]),
          "limit": integer_text("limit").map(lambda p: Poison(p.value, p.label, INVALID))}),
    ]


def cases(world: World) -> st.SearchStrategy[tuple[Argv, dict[str, str], Poison]]:
    def poisoned(command: Command, valid: dict[str, str], name: str,
                 poison: Poison) -> tuple[Argv, dict[str, str], Poison]:
        arguments = {**valid, name: poison.value}
        if name == "raw":  # the words themselves, read in the engine's syntax
            arguments = {**valid, "words": poison.value, "raw": "yes"}
        return command(world, arguments), {}, poison

    found = [st.builds(poisoned, st.just(command), st.just(valid), st.just(name), poisons)
             for _label, command, valid, all_poisons in commands(world)
             for name, poisons in sorted(all_poisons.items())]
    return st.one_of([*found, environment()])


def test_bad_input_through_the_cli_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    world = build_world(str(tmp_path / "corpus.db"), tmp_path)
    unchanged = Unchanged(world.db)
    base_env = {**CLEAN_ENV, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
                "CTXDB_ACTOR": "user:test", "CTXDB_MAX_CONTENT_BYTES": str(MAX_CONTENT_BYTES)}
    runner = CliRunner()
    count = counted("cli")
    ran = 0

    @settings(CORPUS_SETTINGS, max_examples=EXAMPLES["cli"])
    @given(case=cases(world))
    def corpus(case: tuple[Argv, dict[str, str], Poison]) -> None:
        nonlocal ran
        argv, env, poison = case
        result = runner.invoke(cli, ["--traceback", "--url", world.settings.url, *argv],
                               env={**base_env, **env})
        unchanged.check(f"ctxdb {' '.join(argv)[:200]}")
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            f"{poison.label}: {result.exception!r}")
        allowed = {EXIT_CODES[c] for c in poison.categories} | {2}  # usage errors: 2
        if poison.may_succeed:
            allowed.add(0)
        assert result.exit_code in allowed, (poison.label, result.exit_code, result.output)
        if result.exit_code:
            lines = result.stderr.strip().split("\n")
            assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[:500]
            assert "internal error" not in lines[0]
            if poison.says:
                assert re.search(poison.says, lines[0]), (poison.label, lines[0][:300])
        ran += 1
        count()

    try:
        corpus()
    finally:
        world.db.close()
    assert ran >= EXAMPLES["cli"], f"only {ran} of {EXAMPLES['cli']} cases ran"
