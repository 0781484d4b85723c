# Two commands do everything: `make demo` runs ctxdb's guided demo on a throwaway SQLite
# file, `make test` runs the linters, the type checker and the whole test suite.
# Both create the virtual environment in .venv and install what they need first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench bench-scale bench-peers install clean

demo: $(STAMP)
	$(BIN)/ctxdb demo

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -n auto --dist loadfile

bench: $(STAMP)
	$(BIN)/python bench/run.py

# 1,000,000 items over 100 projects on both backends: about half an hour, several GB of disk.
bench-scale: $(STAMP)
	$(BIN)/python bench/scale.py

# ctxdb side by side with LangGraph's stores, the OpenAI Agents SDK's SQLiteSession and the raw
# drivers (docs/benchmarks.md). The peers live in a virtual environment of their own, so that
# ctxdb's never has them; PEERS_ARGS passes options, e.g. PEERS_ARGS="--items 1000 --runs 1".
PEERS_VENV := .venv-peers
PEERS_STAMP := $(PEERS_VENV)/.installed
PEERS_ARGS ?=

bench-peers: $(PEERS_STAMP)
	$(PEERS_VENV)/bin/python bench/peers.py $(PEERS_ARGS)

$(PEERS_STAMP): pyproject.toml bench/peers-requirements.txt
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "ctxdb needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PEERS_VENV)/bin/python -m pip install --quiet -e ".[postgres]" -r bench/peers-requirements.txt
	touch $(PEERS_STAMP)

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "ctxdb needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

clean:
	rm -rf $(VENV) $(PEERS_VENV) .pytest_cache .mypy_cache .ruff_cache build src/*.egg-info
