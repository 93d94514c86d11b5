# llbench developer entry points. `make demo` and `make test` install what they need first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml setup.py .ci/constraints.txt | cksum | cut -d' ' -f1)
# torch is pinned so nothing pulls the CUDA build; torchvision then resolves to a matching release.
export PIP_CONSTRAINT := $(CURDIR)/.ci/constraints.txt
PYTEST_ARGS ?=

.PHONY: install demo test test-slow test-cluster benchmark lint clean

$(STAMP):
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[test,iqa,video]"
	# pyiqa's own requirements pull transformers, bitsandbytes and 1 GB more: install it alone;
	# the `iqa` extra above holds what it really imports.
	$(BIN)/python -m pip install -q --no-deps pyiqa==0.1.16
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/llbench run --method lime --dataset synthetic
	$(BIN)/llbench report

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-slow: install
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

# Executors on real clusters (Slurm through submitit, Ray); .ci/run installs what they need.
test-cluster: install
	$(BIN)/python -m pytest -m "slurm or ray" $(PYTEST_ARGS)

benchmark: install
	$(BIN)/python -m pytest tests/benchmarks --benchmark-enable --benchmark-only $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check harness plugins datasets reports tests metrics segmenters executors

clean:
	rm -rf $(VENV) build *.egg-info
