# Two commands do all the set-up on a fresh clone (only Python 3.11 needed):
#   make demo   - creates .venv if missing, writes the bundled example shot, runs tcvom on it
#   make test   - creates .venv if missing, runs the test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tcvom-installed
EXAMPLE ?= example
DEMO_OUT ?= out/example

.PHONY: demo test test-all venv lint clean

include mk/blender.mk

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tcvom example --out $(EXAMPLE) --progress none
	$(BIN)/tcvom run --plate '$(EXAMPLE)/plate/plate.####.exr' --keyframes '$(EXAMPLE)/keyframes/key.####.png' --out $(DEMO_OUT) --method classical --overwrite
	$(BIN)/tcvom preview --plate '$(EXAMPLE)/plate/plate.####.exr' --trimaps '$(DEMO_OUT)/trimaps/trimap.####.png' --alpha '$(DEMO_OUT)/alpha/alpha.####.exr' --out $(DEMO_OUT)
	@echo "demo written to $(DEMO_OUT): alpha/, trimaps/, contact_sheet.png, preview.mp4"

# The default run leaves out the tests marked slow (export races, the GPU check on the CPU,
# ONNX parity of the large bases, ...); `make test-all` runs them too.
test: $(STAMP) $(BLENDER_STAMP)
	$(MAKE) lint
	$(BIN)/python -m pytest -m "not slow"
	$(MAKE) blender-test

test-all: $(STAMP) $(BLENDER_STAMP)
	$(MAKE) lint
	$(BIN)/python -m pytest
	$(MAKE) blender-test

# ruff, then pyright: every import (tcvom's own and third-party) must resolve to a file.
lint: $(STAMP)
	$(BIN)/ruff check core/tcvom engines tests benchmarks blender_addon build_addon.py
	$(BIN)/pyright --pythonpath $(BIN)/python

clean:
	rm -rf $(VENV) $(EXAMPLE) out .pytest_cache
