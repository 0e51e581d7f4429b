# jmedseg build. `make test` works on a fresh Debian 12 machine: it installs
# what is missing first. LIBTORCH=/path selects another libtorch (a CUDA build,
# or the `torch` folder of a PyTorch 2.x install); the default is Debian's.
GO ?= go
LIBTORCH ?=
BUILD ?= build

ifneq ($(LIBTORCH),)
# PyTorch wheels may use the old C++ ABI; ask the install when it is one.
CXX11_ABI ?= $(shell python3 -c 'import torch;print(int(torch._C._GLIBCXX_USE_CXX11_ABI))' 2>/dev/null)
ABI_FLAG := $(if $(CXX11_ABI),-D_GLIBCXX_USE_CXX11_ABI=$(CXX11_ABI),)
CUDA_LIBS := $(if $(wildcard $(LIBTORCH)/lib/libtorch_cuda.so),-Wl,--no-as-needed -ltorch_cuda -lc10_cuda -Wl,--as-needed,)
# CUDA graphs (csrc/perf.cc) need the CUDA runtime's headers: CUDA_INCLUDE
# names their folder when they are not on the compiler's default path.
CUDA_INCLUDE ?=
CUDA_DEFS := $(if $(wildcard $(LIBTORCH)/lib/libtorch_cuda.so),-DJMEDSEG_CUDA $(if $(CUDA_INCLUDE),-I$(CUDA_INCLUDE)),)
export CGO_CXXFLAGS := -I$(LIBTORCH)/include -I$(LIBTORCH)/include/torch/csrc/api/include $(ABI_FLAG) $(CUDA_DEFS) $(CGO_CXXFLAGS)
export CGO_LDFLAGS := -L$(LIBTORCH)/lib -Wl,-rpath,$(LIBTORCH)/lib $(CUDA_LIBS) $(CGO_LDFLAGS)
CMAKE_PREFIX := -DCMAKE_PREFIX_PATH=$(LIBTORCH) $(if $(CXX11_ABI),-DCMAKE_CXX_FLAGS=$(ABI_FLAG),)
# The Winograd convolutions (csrc/wino.cc) are built on Debian's oneDNN 2,
# which another libtorch does not bring.
export GOFLAGS := $(strip $(GOFLAGS) -tags=nowinograd)
endif
# Go's build cache keys a cgo package by its own folder's files: the shim's
# sources in csrc/, #included from there, go in by their hash, so that an
# edit there rebuilds what includes them.
CSRC_REV := $(shell cat csrc/*.cc csrc/*.h | md5sum | cut -c1-12)
export CGO_CXXFLAGS := $(or $(strip $(CGO_CXXFLAGS)),-O2 -g) -DJMEDSEG_CSRC_REV=$(CSRC_REV)

.PHONY: zoo small all setup build test test-go test-race test-c test-torch2 check-cuda vet bench bench-ops brain clean

all: build

setup:
	@scripts/setup.sh

build: setup
	$(GO) build ./...
	$(GO) build -o bin/jmedseg ./cmd/jmedseg

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# The README's test command: formatting, vet, Go tests, the race detector,
# the C ABI test. CI (.ci/run) runs it, then test-torch2 and check-cuda.
test: setup vet test-go test-race test-c

# -count=1: the end-to-end tests in test/ exec a freshly built binary, which
# Go's test cache cannot see, so cached results could hide a regression.
test-go:
	$(GO) test -count=1 -timeout 30m ./...

# The race detector where goroutines meet tensors: torch/... (scopes, NoGrad
# per goroutine, concurrent inference, Free racing Scope.Close), data/... (the
# parallel loader), infer/... (the Predictor from many goroutines),
# internal/progress (mpb's goroutines against the callers'), in full.
# cgo and -race work together on libtorch (the race build recompiles the
# shim). The models tests take as long under -race as without (the time is in
# libtorch: 271 s against 268 s for the whole package at 00fa663), so only a
# representative subset runs here: every registered model's unscoped-forward
# and training-step leak checks (frames, scopes and the GC safety net's
# cleanup goroutine), the model file and the STN: about 30 s. It fails if
# RACE_RUN stops matching any test in ./models.
RACE_PKGS ?= ./torch/... ./data/... ./infer/... ./internal/progress/
RACE_RUN ?= UnscopedForward|TrainingStep|SaveLoadRoundTrip|STN
test-race:
	$(GO) test -race -count=1 -timeout 30m $(RACE_PKGS)
	@echo "$(GO) test -race -count=1 -timeout 30m -run '$(RACE_RUN)' ./models/..."; \
	out=$$($(GO) test -race -count=1 -timeout 30m -run '$(RACE_RUN)' ./models/... 2>&1); rc=$$?; echo "$$out"; \
	if echo "$$out" | grep -qE '^ok[[:space:]]+github.com/jmedseg/jmedseg/models[[:space:]].*no tests to run'; then \
	  echo "test-race: RACE_RUN='$(RACE_RUN)' matches no test in ./models"; exit 1; fi; exit $$rc

# The torch (nn, optim, ckpt, safetensors), models and loss tests against
# libtorch 2.x (Debian 13's libtorch-dev and python3-torch 2.6.0) in a trixie
# chroot made once with debootstrap and cached in TORCH2_ROOT (about 1.8 GB;
# scripts/torch2.sh says how). CI runs it after `make test`.
#
# CI time (.ci/run), measured on this project's 2-core machine while other
# jobs shared it, at 00fa663 (the zoo half done), cold Go build caches:
#   load average 3-6:  vet 75 s, test-go 128 s, test-race 103 s, test-c 32-42 s,
#                      test-torch2 326 s with the chroot cached (230 s of it
#                      the models tests): about 11 minutes;
#   load average 7-15: 221, 347, 830, 42 and 491 s: 32 minutes.
# Creating the chroot adds debootstrap (~30 s) and the packages (~1.5 min at
# light load; 2 min 24 s for the first whole test-torch2 at 6a60927, 10 min
# under load average 10). The CPU time of all legs is about 10 minutes; the
# rest is waiting for the other jobs, so an unshared machine stays well under
# 30 minutes.
TORCH2_ROOT ?= /var/cache/jmedseg/trixie
test-torch2:
	TORCH2_ROOT=$(TORCH2_ROOT) scripts/torch2.sh

# The shim's CUDA-only code (CUDA graphs) compiled with JMEDSEG_CUDA against
# this libtorch and the chroot's 2.x, with the CUDA runtime's headers
# (fetched once, ~0.9 GB download, 16 s after that): no GPU needed. CI runs it
# after test-torch2.
check-cuda:
	TORCH2_ROOT=$(TORCH2_ROOT) scripts/cuda-compile.sh

# The model-level C API: $(BUILD)/libjmedseg.so (go build -buildmode=c-shared
# ./capi, by CMake) with its header include/jmedseg/jmedseg.h; `cmake --install
# $(BUILD)` installs both.
capi: setup
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_PREFIX) >/dev/null
	cmake --build $(BUILD) --target jmedseg_capi

test-c:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_PREFIX) >/dev/null
	cmake --build $(BUILD) -j2
	ctest --test-dir $(BUILD) --output-on-failure

# Go against PyTorch on the same libtorch (README, Performance): every model,
# train step and inference, same threads, batch, size and width, one process
# per run; writes bench/results/cpu.{md,json}. Then the loader against
# pre-loaded tensors (bench/results/loader.json). About 15 minutes on 2 cores.
BENCH_FLAGS ?=
BENCH_DATA ?= datasets/bench-brain
bench: build
	$(GO) run ./bench/cmd/benchcmp -out bench/results -name cpu $(BENCH_FLAGS)
	$(GO) run ./bench/cmd/loaderbench -data $(BENCH_DATA) -steps 18 -blocks 3 -json bench/results/loader.json

# Per-op overhead: Go (cgo) against C++ on ATen, the C ABI, and Python.
bench-ops: setup test-c
	OMP_NUM_THREADS=1 $(GO) test -run '^$$' -bench . -benchmem ./torch/
	OMP_NUM_THREADS=1 $(BUILD)/op_bench
	OMP_NUM_THREADS=1 /usr/bin/python3 bench/op_overhead.py

# The main job: build the default brain MRI data set, train a U-Net on CPU
# (width 16, 128x128, SAS colour/blur and geometric augmentation, poly
# schedule, CE + Dice), test it on the held-out slab and the second subject,
# and write the report to runs/brain/report.md. A few minutes on 2 cores.
# Rerunning replaces the last main job's run (--force), as the target says.
BRAIN_DATA ?= datasets/brain
BRAIN_RUN ?= runs/brain
brain: build
	bin/jmedseg data prepare --out $(BRAIN_DATA) --force
	bin/jmedseg train --model unet --data $(BRAIN_DATA) --out $(BRAIN_RUN) --width 16 --epochs 30 --batch 8 \
	  --lr 3e-3 --poly --aug --geometric --loss ce:0.5+dice:0.5 --threads 2 --seed 1 --force

clean:
	rm -rf bin $(BUILD)

# The zoo comparison: every registered model with one protocol on the default
# brain data (runs/zoo/zoo.md, zoo.json, figures). About 32 minutes on an
# idle 2-core machine (measured at 1 epoch: 174 s for all 33; hrnet is the
# slowest); finished models are skipped on a rerun.
ZOO_RUN ?= runs/zoo
zoo: build
	test -d $(BRAIN_DATA) || bin/jmedseg data prepare --out $(BRAIN_DATA)
	bin/jmedseg zoo --data $(BRAIN_DATA) --out $(ZOO_RUN) --size 128x128 --fit-size --width-scale 0.125 --min-width 8 \
	  --epochs 16 --batch 8 --lr 3e-3 --poly --loss ce:0.5+dice:0.5 --seed 1 --threads 2

# The small-model claim (README, Models): the six smallest models and unet at
# their reference widths, the zoo's protocol otherwise but 8 epochs, so that it
# runs in about 40 minutes (runs/small/zoo.md).
SMALL_RUN ?= runs/small
small: build
	test -d $(BRAIN_DATA) || bin/jmedseg data prepare --out $(BRAIN_DATA)
	bin/jmedseg zoo --data $(BRAIN_DATA) --out $(SMALL_RUN) --models unet,u2netp,unext,dense,lightnet,simple,onenet \
	  --size 128x128 --fit-size --width-scale 1 --epochs 8 --batch 8 --lr 3e-3 --poly --loss ce:0.5+dice:0.5 --seed 1 --threads 2
