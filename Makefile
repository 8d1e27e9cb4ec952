# Two commands on a fresh machine: `make repro` and `make test`. Both build .venv from a bare python3.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: repro test install bench clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# DVC's ingest stage depends on data/raw; git keeps no empty folder and no data is committed
data/raw:
	mkdir -p $@

repro: $(STAMP) | data/raw
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

test: $(STAMP) | data/raw
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/bench_render.py --files 200
	$(BIN)/python bench/bench_stages.py --sizes 1000 4000 16000
	$(BIN)/python bench/bench_train_input.py

clean-venv:
	rm -rf $(VENV)
