# The two commands a fresh machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch unless an NVIDIA driver answers; override with `make TORCH_SPEC=... setup`.
TORCH_SPEC ?= $(shell nvidia-smi >/dev/null 2>&1 && echo 'torch>=2.4' || echo 'torch==2.13.0')
STAMP := $(VENV)/.installed-$(shell echo '$(TORCH_SPEC)' | tr -c 'a-zA-Z0-9.' '_')
PYTEST_ARGS ?=

.PHONY: setup demo test lint schemas bench-train clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q '$(TORCH_SPEC)'
	$(BIN)/python -m pip install -q -e '.[dev,embedded]'
	@touch $@

setup: $(STAMP)

demo: setup
	$(BIN)/prodcat demo

test: setup lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

schemas: setup
	$(BIN)/python -m prodcat.schemas.generate

clean:
	rm -rf .cache .pytest_cache .mypy_cache .ruff_cache
