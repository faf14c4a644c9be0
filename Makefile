# Two commands do everything on a fresh machine (see README):
#   make run    creates .venv, installs sendplan, runs the embedded Devon default into results/
#   make test   creates .venv, installs sendplan with test extras, runs lint and the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: run test install lint bench app clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/sendplan run --out results

lint: $(STAMP)
	$(BIN)/ruff check model tests benchmarks app.py
	$(BIN)/ruff format --check model tests benchmarks app.py

# the suite runs on 2 workers (pytest-xdist): the development and CI machines have 2 cores
TEST_WORKERS ?= 2

test: $(STAMP) lint
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks

app: $(STAMP)
	$(BIN)/streamlit run app.py

clean:
	rm -rf $(VENV) results .pytest_cache .ruff_cache
