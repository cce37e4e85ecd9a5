# The two commands of the README: `make run` (install, then the whole pipeline on the bundled
# digits) and `make test` (install, then the test suite). Both create .venv from the project's files.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install browser team run test repro lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,corpus,transfer]"
	touch $@

# Debian's Chromium and its driver, for the browser test of the three UIs (tests/ui).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		{ $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

# Debian's PostgreSQL and OpenSSH server, for the team-setup test (tests/team): the shared servers'
# database, and an SSH server on localhost that stands in for the machine holding the DVC remote.
team:
	@{ ls -d /usr/lib/postgresql/*/bin && [ -x /usr/sbin/sshd ]; } >/dev/null 2>&1 || \
		{ $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql openssh-server; }

run: install
	$(BIN)/dlautoml run

# Two pytest workers, given one test at a time, the slowest modules first (tests/conftest.py), then the
# tests marked `timing` alone: their few-second wall-clock bounds do not hold when a second worker
# shares the two cores. The 25 slowest tests are listed at the end.
test: install browser team
	$(BIN)/python -m pytest -n 2 --maxschedchunk 1 -m "not timing" --durations=25
	$(BIN)/python -m pytest -m timing

repro: install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dlautoml dataset
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf outputs .nni mlflow.db mlartifacts .dvc/cache .dvc-storage dvc.lock test-artifacts
