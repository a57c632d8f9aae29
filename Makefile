# eolab — the two set-up commands: `make demo` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.eolab-installed

.PHONY: demo test install gdal-venv system-deps lint lock clean help

help:
	@echo "make demo   - install into $(VENV) and run the workflow on the embedded tiny config"
	@echo "make test   - install (Python + Debian packages where root), lint, run every test"
	@echo "make lint   - ruff, snakefmt --check, snakemake --lint"
	@echo "make lock   - re-pin constraints.txt from the current environment"
	@echo "make gdal-venv - .venv-gdal: rasterio 1.5 (GDAL 3.12) for the interop GDAL test"

$(STAMP): pyproject.toml constraints.txt
	@test -n "$(PYTHON)" || { echo "eolab: Python 3.11+ not found" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "eolab: needs Python >= 3.11, found $$($(PYTHON) --version)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	# stackstac 0.5.1 declares pandas<3; it runs with pandas 3 (tests/interop): no deps.
	$(BIN)/pip install --quiet --no-deps -c constraints.txt stackstac
	@touch $@

install: $(STAMP)

# A second venv with a newer GDAL (envs/gdal-reader.txt) for the interop test that GDAL reads the
# Zarr cube; skipped (and that test skips, saying so) where no Python >= 3.12 is installed.
# (the first that runs: on PATH, else a pyenv-installed one)
GDAL_PYTHON ?= $(shell for p in python3.12 python3.13 $(wildcard $(HOME)/.pyenv/versions/3.1[23]*/bin/python3); \
	do $$p -c '' 2>/dev/null && { command -v $$p; break; }; done)
GDAL_VENV ?= .venv-gdal
$(GDAL_VENV)/.installed: envs/gdal-reader.txt
	@if [ -z "$(GDAL_PYTHON)" ]; then \
		echo "gdal-venv: SKIPPED (no python3.12/3.13 for rasterio 1.5's GDAL 3.12)"; exit 0; fi; \
	$(GDAL_PYTHON) -m venv $(GDAL_VENV) && \
	$(GDAL_VENV)/bin/pip install --quiet -r envs/gdal-reader.txt && touch $@

gdal-venv: $(GDAL_VENV)/.installed

# Debian packages for the integration tests (Slurm, munge, …): installed where root, else skipped
# with the reason (the tests that need them then skip and say why).
system-deps:
	@pkgs="$$(grep -v '^#' envs/debian-packages.txt | xargs)"; \
	missing=""; for p in $$pkgs; do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then echo "system-deps: all present ($$pkgs)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "system-deps: installing$$missing"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else echo "system-deps: SKIPPED (not root or no apt-get): missing$$missing; tests needing them will skip"; fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile rules
	$(BIN)/snakemake --lint --quiet

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake --profile profiles/local
	@echo
	@echo "eolab demo done. Results are in $(CURDIR)/results/ (tour: README.md, 'Tour of results/')."

test: $(STAMP) gdal-venv system-deps lint
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest -ra

lock:
	$(BIN)/pip freeze --exclude-editable | grep -v '^eolab' > constraints.txt

clean:
	rm -rf results/* .snakemake
	git checkout -- results/README.md 2>/dev/null || true
