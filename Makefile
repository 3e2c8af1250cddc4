# The two set-up commands of the README: `make demo` and `make test`.
# Each creates .venv on first use and installs what it needs.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# The pre-1.0 `openai` package (the brief's section 5.2 code) cannot share a venv with openai>=1;
# the server tests run that code from this one.
LEGACY_VENV ?= .venv-legacy-openai
# A CPU-only machine that keeps a CPU build of torch in its pip find-links folder gets that build;
# everyone else gets whatever `pip install torch` gives them (override with TORCH=...).
TORCH ?= $(shell sh tools/pick_torch.sh)
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install demo test lint format bench clean

install: $(VENV)/.installed $(LEGACY_VENV)/.installed

$(VENV)/.installed: pyproject.toml tools/pick_torch.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install "$(TORCH)"
	$(PIP) install -e ".[dev]"
	touch $@

$(LEGACY_VENV)/.installed:
	test -x $(LEGACY_VENV)/bin/python || $(PYTHON) -m venv $(LEGACY_VENV)
	$(LEGACY_VENV)/bin/python -m pip install -q "openai==0.28.1"
	touch $@

demo: install
	$(VENV)/bin/instructgen quickstart --out runs/quickstart

test: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(PY) -m pytest -q $(PYTEST_ARGS)

format: install
	$(VENV)/bin/ruff format src tests benchmarks
	$(VENV)/bin/ruff check --fix src tests benchmarks

bench: install
	@# the quickstart variant runs as its fast proxy here: the full run takes ~6 minutes
	@for b in benchmarks/*.py; do echo "== $$b"; \
		$(PY) $$b $$([ $$b = benchmarks/quickstart_variant.py ] && echo --proxy) || exit 1; done

clean:
	rm -rf $(VENV) $(LEGACY_VENV) runs .pytest_cache .ruff_cache
