"""Reading git's files gives what ``git rev-parse`` gives, or leaves the question to git.

Each layout is made with git itself, and :func:`ctxdb.git_files.read_layout` is compared with
:func:`ctxdb.repo_identity.git_layout` (git's own answer) on it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from ctxdb.git_files import read_layout
from ctxdb.repo_identity import git_layout, repo_identity


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com",
                           "-c", "init.defaultBranch=main", *args], cwd=cwd, check=True,
                          capture_output=True, text=True)
    return done.stdout.strip()


def new_repo(tmp_path: Path, commit: bool = True) -> Path:
    repo = tmp_path / "repo"
    (repo / "src" / "deep").mkdir(parents=True)
    git(repo, "init", "-q")
    if commit:
        git(repo, "commit", "-q", "--allow-empty", "-m", "root")
    return repo


def as_git_says(directory: Path) -> tuple[str, str, str | None] | None:
    layout = git_layout(os.path.realpath(directory))
    return None if layout is None else (layout[0], str(layout[1]), layout[2])


def plain(tmp_path: Path) -> Path:
    return new_repo(tmp_path) / "src" / "deep"


def detached(tmp_path: Path) -> Path:
    repo = new_repo(tmp_path)
    git(repo, "checkout", "-q", "--detach")
    return repo


def worktree(tmp_path: Path) -> Path:
    repo = new_repo(tmp_path)
    git(repo, "worktree", "add", "-q", "-b", "feature/x", str(tmp_path / "linked"))
    return tmp_path / "linked"


def packed(tmp_path: Path) -> Path:
    repo = new_repo(tmp_path)
    git(repo, "branch", "other")
    git(repo, "pack-refs", "--all")
    assert not (repo / ".git" / "refs" / "heads" / "main").exists()
    return repo / "src"


def unborn(tmp_path: Path) -> Path:
    repo = new_repo(tmp_path)
    git(repo, "checkout", "-q", "--orphan", "fresh")
    return repo


def no_commits(tmp_path: Path) -> Path:
    return new_repo(tmp_path, commit=False)


@pytest.mark.parametrize("layout", [plain, detached, worktree, packed, unborn, no_commits])
def test_the_files_say_what_git_says(tmp_path: Path, layout: Callable[[Path], Path]) -> None:
    directory = layout(tmp_path)
    read = read_layout(os.path.realpath(directory))
    assert read is not None  # understood: no git process
    assert read == as_git_says(directory)


def ambiguous_branch(tmp_path: Path) -> Path:
    repo = new_repo(tmp_path)
    git(repo, "tag", "main")  # git --abbrev-ref then says "heads/main"
    return repo


def moved_worktree(tmp_path: Path) -> Path:
    repo = new_repo(tmp_path)
    git(repo, "config", "core.worktree", str(repo))
    return repo


def bare_parent(tmp_path: Path) -> Path:
    bare = tmp_path / "bare.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    (bare / "hooks" / "inner").mkdir(parents=True)
    return bare / "hooks" / "inner"


def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "plain" / "folder"
    folder.mkdir(parents=True)
    return folder


@pytest.mark.parametrize("layout", [ambiguous_branch, moved_worktree, bare_parent, outside])
def test_what_the_files_cannot_settle_is_left_to_git(
    tmp_path: Path, layout: Callable[[Path], Path]
) -> None:
    assert read_layout(os.path.realpath(layout(tmp_path))) is None


def test_git_variables_leave_it_to_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = new_repo(tmp_path)
    monkeypatch.setenv("GIT_DIR", str(repo / ".git"))
    assert read_layout(os.path.realpath(repo)) is None


def test_the_identity_is_the_same_with_and_without_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first identity runs git (and caches the key); the next reads the files, and both
    are the same (a worktree's included); without git on the PATH the files still answer."""
    directory = worktree(tmp_path)
    first = repo_identity(str(directory))
    assert (first.name, first.branch) == ("repo", "feature/x")
    monkeypatch.setenv("PATH", str(tmp_path / "no-git-here"))
    assert repo_identity(str(directory)) == first
    assert repo_identity(str(tmp_path / "repo")) == first._replace(
        worktree=os.path.realpath(tmp_path / "repo"), branch="main")
