# The two commands of the README: `make run` (install, then the whole pipeline on the bundled
# digits) and `make test` (install, then the test suite). Both create .venv from the project's files.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install run test repro lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $@

run: install
	$(BIN)/dlautoml run

# Serial: with two pytest workers (pytest-xdist is installed) the suite takes 11 to 13 minutes instead
# of 17, but its deadline tests (a 3-second fit budget) then share the cores and fail now and then.
test: install
	$(BIN)/python -m pytest

repro: install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dlautoml dataset
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf outputs .nni mlflow.db mlartifacts .dvc/cache .dvc-storage dvc.lock
