//! Cost of the incremental phrase WaveNet on one thread, next to its compute floor.
//!
//! Loads the model file `$WAVEJAM_MODEL`, or the embedded default, and times the kernel on every
//! SIMD path this CPU runs, then the whole `hybrid` engine (with the embedded long-term memory):
//! - one step (mean and p99 over `$WAVEJAM_BENCH_STEPS` steps, default 4000, after warm-up);
//! - the first answer event: reset, prime with a 48-event phrase, have the first logits;
//! - a 4-bar answer: 64 more steps after priming, each fed the previous step's argmax.
//!
//! The floor is FLOPs per step ÷ an assumed single-core peak (`PEAK_GFLOPS`), so the ratio says
//! how far a row is from perfect use of one AVX-512 core. Run: `cargo bench --bench kernel`.

use std::hint::black_box;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use wavejam::assets::{default_long_term, DEFAULT_WAVENET};
use wavejam::model::kernel::SimdPath;
use wavejam::model::{ModelFile, WaveNetKernel};
use wavejam::symbolic::engines::{Brains, EngineKind};
use wavejam::symbolic::models::EventModel;

/// Assumed single-core peak: 2 AVX-512 FMA units × 16 lanes × 2 FLOP × ~3.7 GHz.
const PEAK_GFLOPS: f64 = 118.0;
/// Steps before the single-step timing (caches, branch predictors, clocks).
const WARMUP_STEPS: usize = 500;
/// Events of the phrase that primes an answer.
const PHRASE_EVENTS: usize = 48;
/// Steps of a 4-bar answer.
const ANSWER_STEPS: usize = 64;
/// Repetitions of the first-answer and 4-bar-answer timings.
const ANSWER_RUNS: usize = 200;

/// What the bench needs of an engine: forget the past, feed one event and read its logits.
trait Engine {
    fn reset(&mut self);
    fn step(&mut self, token: u16, position: u32) -> &[f32];
}

/// A whole engine of the plugin (the hybrid: the kernel plus three Markov models and their
/// mixture), fed like the kernel; its "logits" are its probabilities.
struct EventEngine {
    model: Box<dyn EventModel + Send>,
    probabilities: Vec<f64>,
    logits: Vec<f32>,
}

impl Engine for EventEngine {
    fn reset(&mut self) {
        self.model.reset();
    }
    fn step(&mut self, token: u16, _position: u32) -> &[f32] {
        // NOTE: the engine tracks bar positions itself from the time shifts it reads.
        self.model.observe(token);
        self.model.distribution(&mut self.probabilities);
        for (l, &p) in self.logits.iter_mut().zip(&self.probabilities) {
            *l = p as f32;
        }
        &self.logits
    }
}

impl Engine for WaveNetKernel {
    fn reset(&mut self) {
        WaveNetKernel::reset(self);
    }
    fn step(&mut self, token: u16, position: u32) -> &[f32] {
        WaveNetKernel::step(self, token, position)
    }
}

/// Mean and 99th percentile of some durations, in µs.
struct Stats {
    mean_us: f64,
    p99_us: f64,
}

impl Stats {
    fn of(mut us: Vec<f64>) -> Self {
        us.sort_by(f64::total_cmp);
        let mut total = 0.0;
        for &u in &us {
            total += u;
        }
        Self {
            mean_us: total / us.len() as f64,
            p99_us: us[(us.len() * 99 / 100).min(us.len() - 1)],
        }
    }
}

/// One engine's timings.
struct Row {
    name: String,
    step: Stats,
    first_answer: Stats,
    answer: Stats,
}

/// The index of the largest logit (the greedy next event).
fn argmax(logits: &[f32]) -> u16 {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best as u16
}

/// Times `engine` on seeded random events (`vocab` ids, `positions` bar positions).
fn measure(name: &str, engine: &mut dyn Engine, vocab: u16, positions: u32, steps: usize) -> Row {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut event = || (rng.random_range(0..vocab), rng.random_range(0..positions));
    let events: Vec<(u16, u32)> = (0..WARMUP_STEPS + steps).map(|_| event()).collect();
    let mut checksum = 0.0f32;

    engine.reset();
    for &(token, position) in &events[..WARMUP_STEPS] {
        checksum += engine.step(token, position)[0];
    }
    let mut step_us = Vec::with_capacity(steps);
    for &(token, position) in &events[WARMUP_STEPS..] {
        let start = Instant::now();
        let logits = engine.step(black_box(token), black_box(position));
        checksum += logits[0];
        step_us.push(start.elapsed().as_secs_f64() * 1e6);
    }

    let mut first_us = Vec::with_capacity(ANSWER_RUNS);
    let mut answer_us = Vec::with_capacity(ANSWER_RUNS);
    for run in 0..ANSWER_RUNS {
        let phrase = &events[run..run + PHRASE_EVENTS];
        let start = Instant::now();
        engine.reset();
        let mut logits = &[][..];
        for &(token, position) in phrase {
            logits = engine.step(black_box(token), black_box(position));
        }
        let mut next = argmax(logits);
        first_us.push(start.elapsed().as_secs_f64() * 1e6);

        let start = Instant::now();
        // NOTE: positions advance an eighth note (12 ticks) an event; costs do not depend on them.
        for i in 0..ANSWER_STEPS {
            next = argmax(engine.step(next, (i as u32 * 12) % positions));
        }
        answer_us.push(start.elapsed().as_secs_f64() * 1e6);
        checksum += f32::from(next);
    }
    assert!(checksum.is_finite(), "{name}: non-finite logits");
    Row {
        name: name.to_string(),
        step: Stats::of(step_us),
        first_answer: Stats::of(first_us),
        answer: Stats::of(answer_us),
    }
}

/// `µs` as µs below 1 ms, else as ms.
fn time(us: f64) -> String {
    if us < 1000.0 {
        format!("{us:.1} µs")
    } else {
        format!("{:.2} ms", us / 1000.0)
    }
}

fn main() {
    let steps = std::env::var("WAVEJAM_BENCH_STEPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000)
        .max(100);
    let (bytes, source) = match std::env::var("WAVEJAM_MODEL") {
        Ok(path) => (
            std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}")),
            path,
        ),
        Err(_) => (
            DEFAULT_WAVENET.to_vec(),
            "the embedded default (assets/wavenet.safetensors)".to_string(),
        ),
    };
    let file = ModelFile::parse(&bytes).unwrap_or_else(|e| panic!("{source}: {e}"));
    let config = file.config;
    // What a plain load picks on this CPU.
    let chosen = WaveNetKernel::new(&file).simd_path();
    let flops = config.flops_per_step() as f64;
    let floor_us = flops / (PEAK_GFLOPS * 1e3);

    let vocab = config.vocab_size.min(usize::from(u16::MAX)) as u16;
    let positions = config.bar_positions as u32;
    let mut rows = Vec::new();
    // NOTE: one row per SIMD path this CPU runs; another engine is one more `measure` call.
    for path in SimdPath::ALL {
        let Some(mut kernel) = WaveNetKernel::with_simd_path(&file, path) else {
            continue;
        };
        let mark = if path == chosen { " (chosen)" } else { "" };
        let name = format!("kernel {}{mark}", path.name());
        rows.push(measure(&name, &mut kernel, vocab, positions, steps));
    }
    let brains = Brains {
        wavenet: WaveNetKernel::new(&file),
        long_term: default_long_term(),
    };
    let mut hybrid = EventEngine {
        model: brains.engine(EngineKind::Hybrid),
        probabilities: vec![0.0; config.vocab_size],
        logits: vec![0.0; config.vocab_size],
    };
    let name = format!("hybrid (kernel {} + markov)", chosen.name());
    rows.push(measure(&name, &mut hybrid, vocab, positions, steps));

    println!("model: {source}");
    println!(
        "{} parameters, {} FLOPs/step, receptive field {} events; SIMD path chosen at load: {}",
        config.param_count(),
        config.flops_per_step(),
        config.receptive_field(),
        chosen.name()
    );
    println!(
        "floor = FLOPs ÷ {PEAK_GFLOPS} GFLOP/s (assumed single-core AVX-512 FMA peak, not \
         measured) = {floor_us:.2} µs/step"
    );
    println!();
    println!("| engine | measurement | mean | p99 | floor | mean ÷ floor |");
    println!("|---|---|---:|---:|---:|---:|");
    for row in &rows {
        let lines = [
            ("step", &row.step, 1),
            (
                "first answer event (reset + 48-event phrase)",
                &row.first_answer,
                PHRASE_EVENTS,
            ),
            ("4-bar answer (64 steps)", &row.answer, ANSWER_STEPS),
        ];
        for (what, stats, n) in lines {
            let floor = floor_us * n as f64;
            println!(
                "| {} | {what} | {} | {} | {} | {:.1}× |",
                row.name,
                time(stats.mean_us),
                time(stats.p99_us),
                time(floor),
                stats.mean_us / floor
            );
        }
    }
    println!();
    for row in &rows {
        println!(
            "{}: {:.1} GFLOP/s over its timed steps",
            row.name,
            flops / row.step.mean_us / 1e3
        );
    }
    println!(
        "(one thread; step: {steps} timed steps after {WARMUP_STEPS} warm-up steps; answers: \
         {ANSWER_RUNS} runs, each answer step fed the argmax of the last)"
    );
}
