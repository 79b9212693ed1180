# make demo : create .venv, install embedkit (CPU torch), run the demo
# make test : create .venv, install embedkit + test extras, run the linter (ruff) and the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# CPU build of torch by default; see README "GPU" to install a CUDA build instead.
TORCH  ?= torch==2.13.0

.PHONY: demo test lint install bench browser clean

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

test: install browser
	$(BIN)/ruff check embedkit tests benchmarks examples
	OMP_WAIT_POLICY=$${OMP_WAIT_POLICY:-PASSIVE} $(BIN)/python -m pytest -q tests

# Headless Chromium for the browser test (Debian's package). Installed when we may (root + apt);
# otherwise the browser test is skipped and says why.
browser:
	-@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null) ; } || \
	  echo "chromium not installed: the browser test will be skipped"

lint: install
	$(BIN)/ruff check embedkit tests benchmarks examples

bench: install
	$(BIN)/pip install -q -e ".[bench]"

clean:
	rm -rf $(VENV) build *.egg-info
