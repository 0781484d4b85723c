"""Shell completion (click's ``_CTXDB_COMPLETE``) through the real ``ctxdb`` program: the
scripts for each shell, and completions that reach into the lazily loaded command groups."""

from __future__ import annotations

import os
import subprocess
import sysconfig
from pathlib import Path

import pytest

PROGRAM = Path(sysconfig.get_path("scripts")) / "ctxdb"


def complete(instruction: str, words: str = "", cword: int = 0) -> str:
    env = {**os.environ, "_CTXDB_COMPLETE": instruction, "COMP_WORDS": words,
           "COMP_CWORD": str(cword)}
    done = subprocess.run([str(PROGRAM)], capture_output=True, text=True, env=env,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_each_shell_gets_its_script(shell: str) -> None:
    script = complete(f"{shell}_source")
    assert f"_CTXDB_COMPLETE={shell}_complete" in script.replace('"', "")


@pytest.mark.parametrize(("words", "cword", "expected"), [
    ("ctxdb ins", 1, {"install", "instance"}),
    ("ctxdb project ", 2, {"create", "list", "get"}),        # a lazily imported group
    ("ctxdb install cl", 2, {"claude-code"}),                 # a command's choices
    ("ctxdb --url x.db install --sc", 4, {"--scope"}),        # after the root's options
])
def test_bash_completes_commands_choices_and_options(words: str, cword: int,
                                                     expected: set[str]) -> None:
    lines = complete("bash_complete", words, cword).splitlines()
    offered = {line.split(",", 1)[1] for line in lines}
    assert expected <= offered
    assert all(value.startswith(words.split(" ")[cword]) for value in offered)
