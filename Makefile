# The two commands of the README: `make demo` (the main job) and `make test` (what CI runs).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Re-install when the project's metadata changes. `make demo` needs every extra but the test
# tools; `make test` adds them.
DEMO_STAMP := $(VENV)/.installed-demo
STAMP      := $(VENV)/.installed

.PHONY: demo demo-fastapi demo-django test lint typecheck system-packages bench fuzz clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all,test]'
	@touch $@ $(DEMO_STAMP)

$(DEMO_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all]'
	@touch $@

system-packages:
	@bash scripts/system-packages.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests examples bench
	$(BIN)/ruff format --check src tests examples bench

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

test: $(STAMP) system-packages lint typecheck
	$(BIN)/python -m pytest

# The local Entra ID and the demo app at http://localhost:5000 (a real tenant with ENTRA_AUTHORITY).
demo: $(DEMO_STAMP)
	$(BIN)/python -m examples.demo.run

# The local Entra ID and the demo API on FastAPI, Swagger UI at http://localhost:8000/docs.
demo-fastapi: $(DEMO_STAMP)
	$(BIN)/python -m examples.fastapi_demo.run

# The local Entra ID and the Django demo (a real Django User, the admin) at http://localhost:5000.
demo-django: $(DEMO_STAMP)
	$(BIN)/python -m examples.django_demo.run

# Benchmarks print ratios against peers measured in the same run; not part of `make test`.
bench: $(STAMP) system-packages
	$(BIN)/python -m pip install --quiet -e '.[all,test,bench]'
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -q wrk >/dev/null; } || echo "wrk missing: apt-get install wrk"
	$(BIN)/python bench/run_all.py

# Over 100,000 fuzzed inputs (hypothesis) against the validator, the decorator, the callback and
# the session cookie; prints how many were tried. Not part of `make test` (which runs a few).
fuzz: $(STAMP)
	ENTRA_FUZZ=1 $(BIN)/python -m pytest tests/security/test_fuzz.py -q -p no:cacheprovider --timeout=0

clean:
	rm -rf $(VENV) .entra-emulator .pytest_cache .mypy_cache .ruff_cache
