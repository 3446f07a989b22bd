# One-command workflows. Each target creates the virtual environment when missing.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: reports test test-fast lint bench browser-deps java-deps clean-outputs

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,spark]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

# The example data is regenerated (deterministically) only when its generator changes.
data/example/.generated: $(wildcard spimpact/synthetic/*.py) $(STAMP)
	$(BIN)/spimpact example-data
	touch $@

reports: $(STAMP) data/example/.generated
	$(BIN)/spimpact run --jobs 2

AXE_VERSION := 4.10.3
AXE := $(VENV)/axe/node_modules/axe-core/axe.min.js

# Chromium + chromedriver (browser tests, `spimpact run --pdf`), poppler-utils (the PDF
# test rasterises pages with pdftoppm) and axe-core (accessibility test; vendored from the
# npm registry into .venv/axe, never fetched at run time). Root installs them; without
# them those tests are skipped locally and fail under CI=true.
browser-deps:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null || missing="$$missing chromium-driver"; \
	command -v pdftoppm >/dev/null || missing="$$missing poppler-utils"; \
	{ [ -f $(AXE) ] || command -v npm >/dev/null; } || missing="$$missing npm"; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else echo "missing:$$missing: install these Debian packages for the browser tests"; fi
	@if [ -f $(AXE) ]; then :; \
	elif command -v npm >/dev/null; then \
	  npm install --silent --no-save --no-audit --no-fund --prefix $(VENV)/axe axe-core@$(AXE_VERSION); \
	else echo "npm missing: install Debian's npm so that the accessibility test can vendor axe-core"; fi

# Debian's headless Java runtime for the Spark engine's tests (PySpark runs on the JVM;
# root installs it; without it the Spark tests are skipped locally and fail under CI=true).
java-deps:
	@if command -v java >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless >/dev/null; \
	else echo "java missing: install Debian's default-jre-headless for the Spark tests"; fi

# Unit, reference and simulation tests on two workers; the Spark tests in one process (one
# local[2] session); then the end-to-end tests in one process, which share one rendering
# of every example report (rendered two at a time).
test: $(STAMP) browser-deps java-deps
	$(BIN)/python -m pytest -n 2 -m "not e2e and not spark"
	$(BIN)/python -m pytest -m "spark and not e2e"
	$(BIN)/python -m pytest -m e2e

test-fast: $(STAMP)
	$(BIN)/python -m pytest -n 2 -m "not slow and not e2e and not spark"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean-outputs:
	rm -rf outputs/*
