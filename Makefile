# breastseg: two commands do all the set-up on a fresh machine.
#   make demo   create .venv, install, run the demo on built-in (synthetic) data
#   make test   create .venv, install, run lint, type checks and the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO   ?= demo_output

.PHONY: demo gallery test test-slow lint typecheck docs install clean models demo-model demo-lamellae bench-model bench-student \
	ultrasound-cv ultrasound-analysis ultrasound-model

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "breastseg needs Python >= 3.11; set PYTHON=python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/breastseg phantom specimen --out $(DEMO)/specimen --seed 0 --margin-mm 1.5 --placement translated
	$(BIN)/breastseg specimen assess --ct $(DEMO)/specimen/ct.nii.gz --pet $(DEMO)/specimen/pet.nii.gz \
	  --pet-info $(DEMO)/specimen/truth.json --method resunet --out $(DEMO)/specimen/assessment
	@echo "Truth: $$(python3 -c 'import json,sys; t=json.load(open(sys.argv[1])); print(t["margin_status"], round(t["margin_mm"], 2), "mm")' $(DEMO)/specimen/truth.json)"
	@echo "Open $(DEMO)/specimen/assessment/report.html to see the report."

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks docs/gallery
	$(BIN)/ruff format --check src tests benchmarks docs/gallery
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# the documentation site (build/site/), with the Python API generated from the docstrings; warnings fail it
docs: $(STAMP)
	$(BIN)/mkdocs build --strict --quiet

# the suite in TEST_WORKERS processes (pytest-xdist), each test file on one worker so that its fixtures are built once
TEST_WORKERS ?= 2
test: lint typecheck docs
	$(BIN)/pytest -m "not slow" -n $(TEST_WORKERS) --dist loadfile

test-slow: $(STAMP)
	$(BIN)/pytest -m slow

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .mypy_cache .ruff_cache

# Re-fit the packaged threshold model on phantom lamellae (seeds 100-109); its card says how it was made. It was
# fitted on lamellae of the raw PET (--lamella-pet-median-mm 0), which this keeps so that it reproduces.
models: $(STAMP)
	rm -rf build/threshold-fit
	for s in 100 101 102 103 104 105 106 107 108 109; do \
	  $(BIN)/breastseg phantom specimen --out build/threshold-fit/s$$s --seed $$s --lamellae 3 \
	    --lamella-pet-median-mm 0 > /dev/null || exit 1; \
	done
	$(BIN)/breastseg specimen fit-threshold --input petct --folds 5 \
	  --description "synthetic specimen phantoms, seeds 100-109, 3 lamellae each (make models)" \
	  $$(for s in 100 101 102 103 104 105 106 107 108 109; do echo --manifest build/threshold-fit/s$$s/lamellae/manifest.csv; done) \
	  --out src/breastseg/models/specimen_threshold_petct.json

# Re-train the packaged demo ResU-Net bundle on phantom lamellae (seeds 100-139); about 20 minutes on 2 cores
# (3 for the phantoms, 16 for the training; the weights reproduce bit for bit).
DEMO_SEEDS := $(shell seq 100 139)
# the benchmark ensemble's share of them (its timings in docs/results/speed.md were measured on these)
BENCH_SEEDS := $(shell seq 100 119)
# The 25-member ensemble benchmarks/specimen_inference.py times: the study's architecture (depth 5, channels
# 16-256), five repeats of 5-fold CV on the demo lamellae (0.2 mm pixels), joined into one bundle.
bench-model: $(STAMP)
	@test -d build/demo-model/s100 || $(MAKE) --no-print-directory demo-lamellae
	for seed in 0 1 2 3 4; do \
	  test -f build/bench-model/seed$$seed.pt || $(BIN)/breastseg specimen train --input petct --folds 5 --epochs 10 \
	    --depth 5 --channels 16 --patch-size 96 --patches-per-image 8 --seed $$seed --description "bench seed $$seed" \
	    $$(for s in $(BENCH_SEEDS); do echo --manifest build/demo-model/s$$s/lamellae/manifest.csv; done) \
	    --out build/bench-model/seed$$seed.pt || exit 1; \
	done
	$(BIN)/breastseg specimen combine build/bench-model/seed0.pt build/bench-model/seed1.pt build/bench-model/seed2.pt \
	  build/bench-model/seed3.pt build/bench-model/seed4.pt --out build/bench-model/ensemble25.pt \
	  --description "synthetic specimen phantoms, seeds 100-119 (make bench-model); 5 x 5-fold; benchmark only"

# the benchmark ensemble's distilled student (16 training specimens of the benchmark's geometry, seeds 1000-1015,
# disjoint from its phantoms, half of them with the confounders); the bundle keeps the 25 members (--exact)
bench-student: $(STAMP)
	@test -f build/bench-model/ensemble25.pt || $(MAKE) --no-print-directory bench-model
	@test -f build/bench-model/distil-mixed/manifest.csv || \
	  $(BIN)/python benchmarks/specimen_inference.py --write-distil-set build/bench-model/distil-mixed --count 16
	$(BIN)/breastseg specimen distil --model build/bench-model/ensemble25.pt \
	  --specimens build/bench-model/distil-mixed/manifest.csv --out build/bench-model/ensemble25_student.pt --steps 2000

# The pictures of docs/gallery.md, from phantoms, by the commands' own functions (web pages need Chromium)
gallery: $(STAMP)
	$(BIN)/python docs/gallery/make_gallery.py

demo-lamellae: $(STAMP)
	rm -rf build/demo-model
	for s in $(DEMO_SEEDS); do \
	  case $$((s % 3)) in 0) m="--positive";; 1) m="--margin-mm 1.0";; *) m="--margin-mm 3.0";; esac; \
	  $(BIN)/breastseg phantom specimen --out build/demo-model/s$$s --seed $$s --lamellae 3 $$m > /dev/null || exit 1; \
	done

demo-model: demo-lamellae
	$(BIN)/breastseg specimen train --input petct --folds 5 --epochs 40 --depth 4 --channels 16 \
	  --patch-size 96 --patches-per-image 8 --seed 0 --loss dice_ce --positive-bias 0.1 \
	  --description "synthetic specimen phantoms, seeds 100-139, 3 lamellae each (make demo-model); not for clinical use" \
	  $$(for s in $(DEMO_SEEDS); do echo --manifest build/demo-model/s$$s/lamellae/manifest.csv; done) \
	  --out src/breastseg/models/specimen_resunet_demo.pt

# The packaged BUSI ultrasound model (src/breastseg/models/ultrasound_busi.pt) and the CV that measured its recipe
# (docs/results/ultrasound.md). Needs BUSI (BUSI=path; see docs/reference/ultrasound.md for where to get it).
# About 65 minutes for the CV and 20 for the final model on 2 CPU cores with native bfloat16; both resume.
BUSI        ?= ../shared/data/busi
US_SPLIT    := src/breastseg/workflows/ultrasound/busi_5fold_split.json
US_RECIPE   := --net resunet --depth 5 --channels 16 --size 192 --epochs 60 --schedule poly --precision bfloat16
US_CV       := build/us-cv/resunet192-poly60
ultrasound-cv: $(STAMP)
	$(BIN)/breastseg ultrasound train --data $(BUSI) --split $(US_SPLIT) $(US_RECIPE) --out $(US_CV)

US_ANALYSIS := build/us-analysis/resunet192-poly60
ultrasound-analysis: ultrasound-cv
	$(BIN)/breastseg ultrasound analyse --cv $(US_CV) --data $(BUSI) --out $(US_ANALYSIS)

ultrasound-model: ultrasound-analysis
	$(BIN)/breastseg ultrasound train --data $(BUSI) --split $(US_SPLIT) $(US_RECIPE) --final \
	  --cv-summary $(US_CV)/cv_summary.json --mask-rule $(US_ANALYSIS)/mask_rule.json \
	  --licence "CC BY 4.0 as stated by third parties (BUSI: Al-Dhabyani et al., Data in Brief 2020;28:104863); attribution given" \
	  --card-note "Reproduce: make ultrasound-model BUSI=<path to BUSI> (the CV, then this model; docs/results/ultrasound.md)" \
	  --card-note "Inference: 192 x 192 px, left-right flip test-time augmentation by default (ultrasound predict --no-flip to disable); the mask rule above was chosen on the CV's out-of-fold predictions ($(US_ANALYSIS)/mask_rule.json)" \
	  --card-note "Known failures (CV error analysis, docs/results/ultrasound.md): about 10 % of lesion images get Dice 0, mostly missed axillary lymph nodes and iso- or hyperechoic lesions, or another dark structure outlined" \
	  --card-note "Limitations: trained from scratch on one public single-centre dataset (Cairo, 2018; one scanner family); CV Dice below published pretrained-encoder results; not validated for clinical use" \
	  --out build/us-final/resunet192-poly60
	cp build/us-final/resunet192-poly60/model.pt src/breastseg/models/ultrasound_busi.pt
	cp build/us-final/resunet192-poly60/model.card.md src/breastseg/models/ultrasound_busi.card.md
