//! `process()` cost of the built bundle, measured through the real CLAP entry point.
//!
//! Loads `target/bundled/WaveJam.clap` (or `$WAVEJAM_CLAP`) with the integration tests' host,
//! holds N notes with Thru on over a stopped transport (so the voice plays them and nothing else
//! happens), warms up, then times `process()` alone (no host-side copying) over many blocks.
//!
//! Run: `cargo xtask bundle wavejam --release && cargo bench --bench process`.
//! `WAVEJAM_BENCH_BLOCKS` sets the number of timed blocks per row (default 4000).

#[path = "../tests/common/clap_host.rs"]
mod clap_host;

use std::time::Duration;

use clap_host::{Host, Instance, Timed, Transport};

/// Blocks processed before timing (voices reach sustain, caches warm).
const WARMUP_BLOCKS: usize = 200;

/// One measured configuration.
struct Row {
    block: usize,
    sample_rate: f64,
    voices: usize,
    mean_us: f64,
    p99_us: f64,
    max_us: f64,
    /// Mean cost as a share of the block's duration.
    budget_pct: f64,
    peak: f32,
}

fn stopped(tempo: f64) -> Transport {
    Transport {
        tempo,
        playing: false,
        beats: 0.0,
        time_sig: (4, 4),
    }
}

fn measure(host: &Host, sample_rate: f64, block: usize, voices: usize, blocks: usize) -> Row {
    let mut inst: Instance = host.start(sample_rate, block, false);
    inst.set_param_plain("Thru", 1.0);
    let transport = Some(stopped(120.0));
    let notes: Vec<Timed> = (0..voices)
        .map(|i| Timed::note_on(0, 48 + i as u8, 0.8))
        .collect();
    inst.process(block, &notes, transport);
    let mut peak = 0.0f32;
    for _ in 0..WARMUP_BLOCKS {
        peak = peak.max(inst.process(block, &[], transport).peak());
    }
    let mut times: Vec<Duration> = Vec::with_capacity(blocks);
    for _ in 0..blocks {
        let out = inst.process(block, &[], transport);
        times.push(inst.last_process_time);
        peak = peak.max(out.peak());
    }
    times.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let mean_us = times.iter().map(|&d| us(d)).sum::<f64>() / times.len() as f64;
    let p99_us = us(times[(times.len() * 99 / 100).min(times.len() - 1)]);
    let max_us = us(*times.last().unwrap());
    let block_us = block as f64 / sample_rate * 1e6;
    Row {
        block,
        sample_rate,
        voices,
        mean_us,
        p99_us,
        max_us,
        budget_pct: mean_us / block_us * 100.0,
        peak,
    }
}

fn main() {
    let blocks = std::env::var("WAVEJAM_BENCH_BLOCKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000);
    let host = Host::load();
    let configs = [
        (48_000.0, 512, 0),
        (48_000.0, 512, 16),
        (48_000.0, 64, 16),
        (96_000.0, 512, 16),
    ];
    println!(
        "{:>6} {:>8} {:>6} {:>12} {:>10} {:>10} {:>10} {:>8}",
        "block", "rate Hz", "voices", "mean µs", "p99 µs", "max µs", "% budget", "peak"
    );
    for (sample_rate, block, voices) in configs {
        let row = measure(&host, sample_rate, block, voices, blocks);
        println!(
            "{:>6} {:>8} {:>6} {:>12.2} {:>10.2} {:>10.2} {:>9.3}% {:>8.3}",
            row.block,
            row.sample_rate,
            row.voices,
            row.mean_us,
            row.p99_us,
            row.max_us,
            row.budget_pct,
            row.peak
        );
        if row.voices > 0 && row.peak <= 1e-4 {
            eprintln!(
                "warning: {} held notes with Thru on produced no audio (peak {})",
                row.voices, row.peak
            );
        }
    }
    println!(
        "(% budget = mean process() time / block duration; {blocks} timed blocks per row after \
         {WARMUP_BLOCKS} warm-up blocks; real-time render mode)"
    );
}
