# Two commands (see README): `make run` and `make test`. Everything else here serves them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501

.PHONY: run test prepare bench clean

# uv (from the package index) installs the packages: about 7x faster than pip on a cold cache here (18 s vs 134 s).
UV := $(BIN)/uv pip install --quiet --python $(BIN)/python
# The test and bench installs compile the packages' bytecode at install (about 18 s here), so no process start pays for
# it where Python cannot write its cache (PYTHONDONTWRITEBYTECODE, a read-only install): importing the dashboard's
# packages took 7.1 s without it, 2.6 s with it. `make run` compiles it in the background instead (below).
INSTALL := $(UV) --compile-bytecode

# The virtualenv gets no pip of its own (creating one took 6.7 s of a fresh clone's wait): the interpreter's own pip
# puts uv in it. An interpreter without pip gets the usual virtualenv with pip instead.
$(BIN)/python:
	$(PYTHON) -m venv --without-pip $(VENV)
	$(PYTHON) -m pip --python $(BIN)/python install --quiet uv || \
	  { $(PYTHON) -m venv $(VENV) && $(BIN)/pip install --quiet uv; }

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(UV) -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(INSTALL) -e '.[dev]'
	touch $@ $(VENV)/.installed

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(INSTALL) -e '.[dev,bench]'
	touch $@ $(VENV)/.installed-dev $(VENV)/.installed

# Prepare the database from the bundled real snapshot (when it is empty), then serve the dashboard. MALLOC_ARENA_MAX=2:
# glibc gives each thread that allocates an arena of its own (up to 8 per core), each keeping the memory it freed, and
# Streamlit draws pages in threads; two keep a dashboard process's peak under 300 MB (docs/deployment.md).
# The packages' bytecode is compiled on the second core while prepare loads the snapshot on one: compiled at install,
# it held up a fresh clone's first chart by about 18 s. Once compiled, this pass takes under a second.
run: $(VENV)/.installed
	nice $(BIN)/python -m compileall -q -j 1 $(VENV)/lib >/dev/null 2>&1 &
	$(BIN)/tracker prepare
	MALLOC_ARENA_MAX=2 $(BIN)/streamlit run streamlit_app.py --server.port $(PORT) --server.headless true --browser.gatherUsageStats false

prepare: $(VENV)/.installed
	$(BIN)/tracker prepare

# The whole suite, SQLite and a real PostgreSQL 15, plus the browser test in Debian's Chromium.
test: $(VENV)/.installed-dev
	bash scripts/test.sh

bench: $(VENV)/.installed-bench
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) var test-artifacts
