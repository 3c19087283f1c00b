#!/usr/bin/env bash
# Build WaveJam's CLAP and VST3 bundles, install them for the current user (~/.clap, ~/.vst3),
# and run the demo: a phrase and WaveJam's answer rendered to demo/answer.mid and demo/answer.wav.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo xtask bundle wavejam --release
mkdir -p ~/.clap ~/.vst3
rm -rf ~/.clap/WaveJam.clap ~/.vst3/WaveJam.vst3
cp -r target/bundled/WaveJam.clap ~/.clap/
cp -r target/bundled/WaveJam.vst3 ~/.vst3/
echo "installed ~/.clap/WaveJam.clap and ~/.vst3/WaveJam.vst3"
cargo run --release --quiet --bin wavejam -- render --out-dir demo
