#!/usr/bin/env bash
# The whole WaveJam test suite: formatting, lints (all targets, so the benchmark is checked too),
# unit and in-process host tests (debug build, so nice-plug's allocation checker guards every
# process() call), the release bundles, the CLAP real-host tests (clack-host), the listening
# checks on validation melodies, and the VST3 real-host tests (pedalboard, in .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

echo "== module layout: no dependency cycle (tools/layout/check.py)"
python3 tools/layout/check.py
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy (plugin build, and with the candle training code)"
cargo clippy --all-targets -- -D warnings
cargo clippy --all-targets --features train -- -D warnings
echo "== unit and in-process host tests (incl. kernel = candle equivalence)"
cargo test --lib --bins --features train
echo "== bundles"
cargo xtask bundle wavejam --release
echo "== CLAP host tests (clack-host on target/bundled/WaveJam.clap; one binary with a failing generator)"
cargo test --release --test clap_host --test clap_generator_failure
echo "== listening: validation melodies played live, over chords, swung, at free tempos (in-process host, release)"
cargo test --release --test listening
echo "== corpus extractor tests (tools/corpus, in .venv-corpus)"
bash tools/corpus/run.sh --self-test
echo "== VST3 host tests (pedalboard on target/bundled/WaveJam.vst3)"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r tests/requirements.txt
.venv/bin/python tests/vst3_host.py target/bundled/WaveJam.vst3
echo "== all tests passed"
