# The Blender extension's tests run in their own environment: bpy from PyPI is Blender 5.0
# as a Python module, pinned to Python 3.11 and numpy<2, so it cannot share .venv.
#   make blender-venv    creates .venv-blender (Python 3.11, bpy 5.0.1, numpy<2, pytest)
#   make blender-test    builds the extension zip and runs tests/blender in it
# The tests drive the main environment's tcvom command line ($(BIN)/tcvom).
BLENDER_PYTHON ?= $(PYTHON)
BLENDER_VENV ?= .venv-blender
BLENDER_STAMP := $(BLENDER_VENV)/.bpy-installed

.PHONY: blender-venv blender-test addon

blender-venv: $(BLENDER_STAMP)

$(BLENDER_STAMP): mk/blender.mk
	test -x $(BLENDER_VENV)/bin/python || $(BLENDER_PYTHON) -m venv $(BLENDER_VENV)
	$(BLENDER_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BLENDER_VENV)/bin/python -m pip install --quiet 'bpy==5.0.1' 'numpy<2' 'pytest>=8' 'pytest-timeout>=2.3'
	touch $(BLENDER_STAMP)

addon:
	$(PYTHON) build_addon.py

blender-test: $(BLENDER_STAMP) $(STAMP)
	TCVOM_EXECUTABLE=$(CURDIR)/$(BIN)/tcvom $(BLENDER_VENV)/bin/python -m pytest tests/blender -q
