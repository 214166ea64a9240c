# The README's commands. Each target is self-contained on a fresh machine: it creates .venv if missing,
# installs the package (pip caches wheels under ~/.cache/pip), fetches Apache Kafka's jars with Maven
# once (cached under ~/.cache/streamframe/kafka-<version>), then runs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup chromium demo test bench lint clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)
	$(BIN)/streamframe local fetch

# Debian's Chromium, for the browser test (tests/browser): installed with apt-get (needs root) if missing.
chromium:
	@command -v chromium >/dev/null 2>&1 || { echo "installing Debian's chromium for the browser test ..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

demo: setup
	$(BIN)/streamframe demo

test: setup chromium lint
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python benchmarks/run.py

# The layers and import rules (pyproject.toml [tool.importlinter]) and ruff; part of `make test`.
lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check streamframe tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info
