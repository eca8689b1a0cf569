# Two commands for a fresh machine: `make demo` and `make test`. Both create or reuse .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.fnx-setup

.PHONY: setup demo test test-targets test-slow arm-parity bench clean

setup: $(STAMP)

# torch==2.13.0 first: the CPU build on local disk; the package's own range then installs nothing more.
$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

demo: setup
	$(VENV)/bin/fnx models
	$(VENV)/bin/fnx demo --out demo_out

# ARM parity beside pytest (scripts/run_tests.sh): its table after pytest's output, pytest's summary the closing
# line; both must pass. pytest runs in TEST_WORKERS processes (pytest-xdist; a test file stays on one worker, so its
# module fixtures are made once; tests/conftest.py gives each worker its share of torch's threads).
TEST_WORKERS ?= 2
test: setup
	@bash scripts/run_tests.sh $(PY) -q --durations=15 -n $(TEST_WORKERS) --dist loadfile

# The targets whose converters run in isolated toolchains (fnx.toolchains): each environment is created once per
# machine (kept under FNX_TOOLCHAINS_DIR, timed here), then the tests marked `toolchain` run the real converters,
# and those marked `full_size` export the NPU targets at 224 px (T2 where it fits).
TOOLCHAINS_DIR ?= $(or $(FNX_TOOLCHAINS_DIR),$(or $(FNX_CACHE_DIR),$(HOME)/.cache/fnx)/toolchains)
TARGET_TOOLCHAINS := rknn imx500

test-targets: setup
	@for tc in $(TARGET_TOOLCHAINS); do start=$$(date +%s); \
	  FNX_TOOLCHAINS_DIR=$(TOOLCHAINS_DIR) $(VENV)/bin/fnx toolchains create $$tc || exit 1; \
	  echo "toolchain $$tc ready in $$(( $$(date +%s) - start )) s"; done
	FNX_TOOLCHAINS_DIR=$(TOOLCHAINS_DIR) OMP_WAIT_POLICY=PASSIVE $(PY) -m pytest -q -m 'toolchain or full_size' --durations=5 \
	  -n $(TEST_WORKERS) --dist loadfile

arm-parity: setup
	$(PY) scripts/arm_parity.py

bench: setup
	$(PY) -m benchmarks

test-slow: setup
	$(PY) -m pytest -q -m slow

clean:
	rm -rf $(VENV) build *.egg-info
