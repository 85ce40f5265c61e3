# Every user-facing target bootstraps .venv from nothing first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# CPU machines get the pinned CPU build of torch (an unpinned torch pulls a multi-GB CUDA build);
# machines with an NVIDIA driver keep pip's default (CUDA) build. Override with `make TORCH_SPEC=...`.
TORCH_SPEC ?= $(shell command -v nvidia-smi >/dev/null 2>&1 && echo torch || echo torch==2.13.0)

.PHONY: setup demo test bench soak ui clean gpu-kit

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

# ARGS (demo, bench, soak) is appended to the command: `make demo ARGS="pretrain.epochs=1"`.
demo: $(STAMP)
	$(VENV)/bin/tubelab sweep ablation=demo $(ARGS)

test: $(STAMP)
	@# the MLflow UI test (tests/e2e/test_cluster_submit_e2e.py) drives Debian's headless chromium
	@if [ -x /usr/bin/chromium ]; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian's chromium for the MLflow UI test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "note: /usr/bin/chromium missing (needs root and apt-get): the MLflow UI browser test will skip"; fi
	$(VENV)/bin/lint-imports  # the layer contracts in pyproject.toml [tool.importlinter]
	$(PY) -m pytest -q --durations=15  # the slowest tests, to keep the suite under its 25-minute budget

bench: $(STAMP)
	@for b in jobs/benchmark_*.py; do echo "== $$b"; $(PY) $$b $(ARGS) || exit 1; done

# Not in CI (minutes): 20,000 clips decoded in one long-lived process per backend, RSS sampled; flat or not,
# with the curve as a PNG (docs/reliability.md "Soak").
soak: $(STAMP)
	$(PY) jobs/memory_decode.py --clips 20000 --every 250 --out .tubelab/soak/memory.json --check $(ARGS)

# The GPU machine's image has torch but not omegaconf, antlr4 or decord, and no network: this folder carries
# their wheels (Python 3.12, manylinux) and real shards (the synthetic set at training geometry, 170x128,
# 64 frames, 200 videos). Run command: README "Benchmarks"; figures: docs/benchmarks.md "GPU".
KIT := .gpu-kit
gpu-kit: $(STAMP)
	rm -rf $(KIT) && mkdir -p $(KIT)/wheels
	$(PY) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux2010_x86_64 --platform manylinux_2_17_x86_64 -d $(KIT)/wheels decord==0.6.0 omegaconf==2.3.0
	$(PY) -m pip wheel -q --no-deps -w $(KIT)/wheels antlr4-python3-runtime==4.9.3  # sdist only on PyPI; pure Python
	TUBELAB_HOME=.tubelab/gpu-kit-home $(VENV)/bin/tubelab prepare dataset=synthetic out=$(abspath $(KIT))/shards \
		dataset.generator.num_frames=64 dataset.generator.width=170 dataset.generator.height=128 \
		dataset.encode.short_side=128 dataset.generator.train_per_class=16 dataset.generator.test_per_class=4
	du -sh $(KIT)

ui: $(STAMP)
	$(VENV)/bin/tubelab ui

clean:
	rm -rf .tubelab
