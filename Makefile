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

# Two pytest workers: most of the suite's time is processes starting (a search trial, a pipeline stage
# or a CLI call imports PyTorch, Lightning, NNI and MLflow for 6 to 9 s) and servers waiting, so two
# workers on 2 cores take the suite from about 17 to 11 minutes.
test: install
	$(BIN)/python -m pytest -n 2

repro: install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dlautoml dataset
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf outputs .nni mlflow.db mlartifacts .dvc/cache .dvc-storage dvc.lock
