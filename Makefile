# The two commands a newcomer needs (see README.md):
#   make demo   build everything, generate demo audio, run the demo pipeline
#   make test   build everything, run the Rust, C and Python tests
PYTHON ?= python3

.PHONY: demo test develop install wheel sdist test-packaging plugins lint test-rust test-c test-python coverage fuzz bench
PREFIX ?= /usr/local

develop:  ## build the native library (cargo, release) and install the Python package editable, with the test, demo and ray extras (without ray where Ray cannot be installed: its tests then skip, saying so), and silero-vad's and pipecat-ai's model files
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e '.[test,demo,ray]' || { \
	  echo "warning: Ray could not be installed here; the Ray engine's tests will be skipped" >&2; \
	  $(PYTHON) -m pip install --quiet --disable-pip-version-check -e '.[test,demo]'; }
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --no-deps 'silero-vad>=5'  # its model file only, for the silero engine's tests (no torch)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --no-deps 'pyannote.audio>=3.1'  # its sample telephone call and RTTM only, for the VAD's default-level test (no torch)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --no-deps 'pipecat-ai>=1.14'  # its Smart Turn v3.2 model and numpy features, for SmartTurn and its reference tests
	for v in 0.0.92 0.0.98; do test -d target/pypi-models/pipecat-$$v/pipecat || \
	  $(PYTHON) -m pip install --quiet --disable-pip-version-check --no-deps --target target/pypi-models/pipecat-$$v "pipecat-ai==$$v"; done  # Smart Turn v3.0 and v3.1 as older pipecat-ai wheels ship them, for SmartTurn's older-model tests

install:  ## C/C++: the library (SONAME by ABI major), headers, pkg-config and CMake files under PREFIX (DESTDIR honoured)
	PREFIX=$(PREFIX) packaging/install.sh

sdist:  ## the source archive into dist/
	$(PYTHON) -m build --sdist --outdir dist .

wheel:  ## a manylinux abi3 wheel into dist/: built from the sdist, library stripped, repaired by auditwheel
	PYTHON=$(PYTHON) packaging/wheel.sh

test-packaging:  ## sdist -> wheel -> fresh venvs (native, and pure Python without cargo); make install -> C (pkg-config) and C++ (CMake)
	PYTHON=$(PYTHON) tests/packaging/run.sh

demo: develop  ## 48 kHz stereo int16 -> f32 -> mono -> 16 kHz -> 30 ms frames -> VAD; segments JSON + PNG in out/
	$(PYTHON) examples/make_demo_audio.py out/demo_in.wav
	$(PYTHON) -m remotemedia run examples/vad_pipeline.json --input out/demo_in.wav --events out/demo_events.json --segments out/demo_segments.json --metrics out/demo_metrics.json
	$(PYTHON) examples/plot_vad.py out/demo_in.wav out/demo_events.json out/demo_vad.png

plugins:  ## build the example plugins into target/plugins/ (use with REMOTEMEDIA_PLUGIN_PATH=$$PWD/target/plugins)
	plugins/build.sh

test: develop lint test-rust test-c test-python

lint:  ## formatting and lints, as committed in rustfmt.toml and pyproject.toml: any finding fails
	cargo fmt --all --check
	cargo clippy --quiet --workspace --all-targets -- -D warnings
	$(PYTHON) -m ruff check .

test-rust:  ## unit tests, executor tests, and the drift check of both headers
	cargo test --workspace

test-c: develop plugins  ## the C host test (loads the example plugins), then under valgrind and under ASan + UBSan
	tests/c/run.sh

test-python: develop plugins
	$(PYTHON) -m pytest

coverage: develop  ## Rust and Python line coverage (HTML in target/coverage/); fails under 80%; needs cargo-llvm-cov
	PYTHON=$(PYTHON) tests/coverage.sh

fuzz:  ## each cargo-fuzz target for FUZZ_SECONDS (default 60) from the committed seeds; needs nightly and cargo-fuzz
	tests/fuzz.sh

bench: develop
	cargo bench -p remotemedia --bench pipeline
	$(PYTHON) benchmarks/bench_run_overhead.py
	$(PYTHON) benchmarks/bench_resample.py
	$(PYTHON) benchmarks/count_instructions.py --rev 0705204
	plugins/build.sh && $(PYTHON) benchmarks/bench_plugins.py
	$(PYTHON) benchmarks/bench_isolation.py
	$(PYTHON) benchmarks/bench_smart_turn.py
	$(PYTHON) benchmarks/bench_asyncio.py
	$(PYTHON) benchmarks/bench_sessions.py
