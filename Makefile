# make demo : create .venv, install embedkit (CPU torch), run the demo
# make test : create .venv, install embedkit + test extras, run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# CPU build of torch by default; see README "GPU" to install a CUDA build instead.
TORCH  ?= torch==2.13.0

.PHONY: demo test install install-test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/embedkit demo

test: install
	$(BIN)/python -m pytest -q tests

bench: install
	$(BIN)/pip install -q -e ".[bench]"

clean:
	rm -rf $(VENV) build *.egg-info
