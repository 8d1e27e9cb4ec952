# Two commands on a fresh machine: `make repro` and `make test`. Both build .venv from a bare python3.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: repro test test-browser install bench clean-venv constraints

# constraints.txt pins every package to the versions the results were made with (README: Reproducibility)
CONSTRAINTS := constraints.txt

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Re-pin after adding or upgrading a dependency in .venv (then re-run the tests and `make repro`)
constraints:
	{ sed -n '/^#/!q;p' $(CONSTRAINTS); $(BIN)/python -m pip freeze --all --exclude-editable | grep -v '^pip=='; } > $(CONSTRAINTS).new
	mv $(CONSTRAINTS).new $(CONSTRAINTS)

# DVC's ingest stage depends on data.raw_dir (params.yaml, the one place it is written); git keeps no
# empty folder and no data is committed
RAW_DIR := $(shell awk '/^data:/ {d = 1; next} /^[^ #]/ {d = 0} d && $$1 == "raw_dir:" {print $$2}' params.yaml)
$(RAW_DIR):
	mkdir -p $@

repro: $(STAMP) | $(RAW_DIR)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

test: $(STAMP) | $(RAW_DIR)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q

# The offline `dvc plots show` page in headless Chromium (not part of `make test`: Chromium is a large
# install). Installs Debian's chromium if missing; keeps the screenshot in dvc_plots/offline-check.png.
test-browser: $(STAMP)
	command -v chromium >/dev/null || { $(SUDO) apt-get update && $(SUDO) apt-get install -y chromium; }
	mkdir -p dvc_plots
	PATH="$(CURDIR)/$(BIN):$$PATH" PLOTS_SCREENSHOT=dvc_plots/offline-check.png \
		$(BIN)/python -m pytest -q -m browser tests/test_plots_browser.py

bench: $(STAMP)
	$(BIN)/python bench/bench_render.py --files 200
	$(BIN)/python bench/bench_stages.py --sizes 1000 4000 16000
	$(BIN)/python bench/bench_train_input.py
	$(BIN)/python bench/bench_fit_epoch.py
	$(BIN)/python bench/bench_dask.py --files 1000

clean-venv:
	rm -rf $(VENV)
