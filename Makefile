# Two entry points for a fresh machine: `make demo` (set up, then run the main job offline) and
# `make test` (set up, then run the test suite). Both create .venv on first use. `make typecheck`
# runs mypy on econash/ (CI runs it too).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Pin torch so pip takes the CPU build when one is at hand instead of resolving a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
# PyPI's Linux torch wheels are CUDA builds; on a CPU machine with no local copy, take PyTorch's CPU
# index: make setup TORCH_INDEX=https://download.pytorch.org/whl/cpu (docs/install.md).
TORCH_INDEX ?=
# A portable llama.cpp build: a native build segfaults on CPUs with AMX (see docs/install.md).
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
STAMP := $(VENV)/.econash-installed

.PHONY: setup demo test test-slow test-all typecheck clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH_SPEC)"
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install --quiet -e '.[local,embeddings,dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/econash run

test: setup
	$(BIN)/python -m pytest

test-slow: setup
	$(BIN)/python -m pytest -m slow

test-all: test test-slow

typecheck: setup
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build *.egg-info
