# `make run` and `make test` each set up everything on a fresh Debian machine, then run.

VENV            := .venv
# Debian's own interpreter where there is one: built with PGO and LTO, it starts `anchor` a fifth sooner than a
# plain source build found first on PATH (pyenv, /usr/local).
PYTHON          ?= $(shell [ -x /usr/bin/python3 ] && echo /usr/bin/python3 || echo python3)
# Debian's unversioned names (postgresql, not postgresql-15), so the lists hold on the next release too.
# Running needs speech, audio and video, and the fonts the file output draws with; the tests add the real
# programs they check against (Prometheus and promtool, systemd as PID 1, OBS under Xvfb, a throwaway
# PostgreSQL cluster, pdftotext for the monthly report).
RUN_PACKAGES    := ffmpeg espeak-ng fonts-wqy-microhei fontconfig
TEST_PACKAGES   := $(RUN_PACKAGES) prometheus systemd obs-studio xvfb postgresql poppler-utils faketime
# Many tests wait on real airings rather than the CPU: three workers on two cores halve the time, and more
# starve the airings that tests time (six gave a flaky suite).
TEST_WORKERS    ?= 3
SUDO            := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
STAMP           := $(VENV)/.installed

.PHONY: run test lint setup system-packages bench clean

run: setup
	$(VENV)/bin/anchor check
	$(VENV)/bin/anchor run

test: PACKAGES = $(TEST_PACKAGES)
# Then the tests that read the date run again with the clock a year ahead (libfaketime, which every program
# they start inherits): a test or a sample that only works this year fails here, not next year.
test: setup lint
	$(VENV)/bin/python -m pytest -n $(TEST_WORKERS) --dist loadgroup
	faketime -f +365d $(VENV)/bin/python -m pytest -n $(TEST_WORKERS) --dist loadgroup -m dated -p no:cacheprovider

# The code's shape is tested too: style, types, and the layers of the data flow (pyproject.toml).
lint: setup
	$(VENV)/bin/ruff check anchor
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: PACKAGES = $(TEST_PACKAGES)
bench: setup
	$(VENV)/bin/python benchmarks/render.py
	$(VENV)/bin/python benchmarks/punctuality.py
	$(VENV)/bin/python benchmarks/plan.py
	$(VENV)/bin/python benchmarks/avatar.py
	$(VENV)/bin/python benchmarks/obs_roundtrip.py
	$(VENV)/bin/python benchmarks/obs_punctuality.py
	$(VENV)/bin/python benchmarks/cli.py
	$(VENV)/bin/python benchmarks/normalize.py
	$(VENV)/bin/python benchmarks/audit.py
	$(VENV)/bin/python benchmarks/audience.py
	$(VENV)/bin/python benchmarks/soak.py

# Bytecode written ahead: where PYTHONDONTWRITEBYTECODE is set, every command would compile anchor anew.
setup: system-packages
	@[ "$$($(VENV)/bin/python -c 'import sys; print(sys.base_prefix)' 2>/dev/null)" = \
	   "$$($(PYTHON) -c 'import sys; print(sys.base_prefix)')" ] || rm -f $(STAMP)  # made by another interpreter
	@$(MAKE) --no-print-directory -s $(STAMP)
	@$(VENV)/bin/python -m compileall -q anchor

# apt-get only what is missing, so a set-up machine starts at once. `make test` (and what it runs first)
# installs TEST_PACKAGES; every other target what running needs.
PACKAGES ?= $(RUN_PACKAGES)
system-packages:
	@missing=""; \
	for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	$(PYTHON) -c 'import ensurepip' >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv --clear $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

clean:
	rm -rf $(VENV) data/renders data/cache

# A local OBS under Xvfb records a few airings of `anchor run`; prints where the recording is.
.PHONY: obs-demo
obs-demo: PACKAGES = $(RUN_PACKAGES) obs-studio xvfb
obs-demo: setup
	$(VENV)/bin/python tools/obs_demo.py
