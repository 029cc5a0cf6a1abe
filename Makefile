# possec: `make install`, `make test`, `make demo`.
#
# Uses the activated virtual environment (or conda env) when there is one,
# otherwise creates .venv. Each step is skipped when it is already satisfied,
# so a second `make install` does nothing expensive.

ifdef VIRTUAL_ENV
PYTHON ?= $(VIRTUAL_ENV)/bin/python
else ifdef CONDA_PREFIX
PYTHON ?= $(CONDA_PREFIX)/bin/python
else
PYTHON ?= .venv/bin/python
endif

TORCH_VERSION ?= 2.13.0
MMCV_VERSION ?= 2.1.0
STAMP := $(dir $(PYTHON)).possec-installed
PYTEST_ARGS ?=
# pytest-xdist workers; --dist loadfile keeps each test file in one process
TEST_JOBS ?= 2

.PHONY: install test demo clean-install help

help:
	@echo "make install  - environment with torch, mmcv (full, built once), mmseg, possec"
	@echo "make test     - install if needed, then run the test suite"
	@echo "make demo     - install if needed, then train the demo model on synthetic data"

install: $(STAMP)

$(STAMP): setup.py
	@test -x $(PYTHON) || { echo ">> creating .venv"; python3 -m venv .venv; }
	@if $(PYTHON) -c "import sys, torch; v = tuple(int(p) for p in torch.__version__.split('+')[0].split('.')[:2]); sys.exit(v < (2, 0))" 2>/dev/null; then \
	    echo ">> torch $$($(PYTHON) -c 'import torch; print(torch.__version__)') already installed: keeping it"; \
	else \
	    echo ">> installing torch==$(TORCH_VERSION) (CPU wheel)"; \
	    $(PYTHON) -m pip install "torch==$(TORCH_VERSION)"; \
	fi
	$(PYTHON) -m pip install "setuptools>=77,<82" wheel
	@if $(PYTHON) -c "import mmcv, mmcv.ops, sys; sys.exit(not mmcv.__version__.startswith('2.1.'))" 2>/dev/null; then \
	    echo ">> mmcv $$($(PYTHON) -c 'import mmcv; print(mmcv.__version__)') with ops already installed: keeping it"; \
	else \
	    echo ">> installing mmcv==$(MMCV_VERSION) with its ops (built from source the first time: ~20 min on 2 cores, then cached by pip)"; \
	    MAX_JOBS=$${MAX_JOBS:-$$(nproc)} $(PYTHON) -m pip install --no-build-isolation "mmcv==$(MMCV_VERSION)"; \
	fi
	$(PYTHON) -m pip install --no-build-isolation -e ".[tests]"
	@touch $@

test: install
	$(PYTHON) -m pytest tests -n $(TEST_JOBS) --dist loadfile $(PYTEST_ARGS)

demo: install
	$(PYTHON) tools/train.py configs/demo/parsenet_pos_synthetic.py

clean-install:
	rm -f $(STAMP)

# One-command GPU check (docs/benchmarks.md): GPU-marked tests, GPU variants
# of training and inference, the suite's device benchmarks on CUDA; one
# summary in work_dirs/gpu_check/. DRY_RUN=1: the same code on CPU, tiny.
.PHONY: gpu-check
gpu-check: install
	$(PYTHON) tools/gpu_check.py --out-dir work_dirs/gpu_check $(if $(DRY_RUN),--dry-run)

# Where the GPU time of the position head and of circular padding goes
# (possec.benchmarks.gpu_profile): both timed against their baselines on
# CUDA at R50-D8 2x512², one step of each profiled; summary in
# work_dirs/gpu_profile/. DRY_RUN=1: the same code on CPU, tiny.
.PHONY: gpu-profile
gpu-profile: install
	$(PYTHON) tools/gpu_check.py --profile --out-dir work_dirs/gpu_profile $(if $(DRY_RUN),--dry-run)
