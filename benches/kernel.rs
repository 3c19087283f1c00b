//! Cost of the incremental phrase WaveNet on one thread, next to its compute floor.
//!
//! Loads the model file `$WAVEJAM_MODEL`, or the embedded default, and times the kernel on every
//! SIMD path this CPU runs, then the whole `hybrid` engine (with the embedded long-term memory):
//! - one step (mean and p99 over `$WAVEJAM_BENCH_STEPS` steps, default 4000, after warm-up);
//! - the first answer event: reset, read a 48-event phrase in one go (as the answerer primes an
//!   engine), have the next event's scores;
//! - for the engines, a whole 4-bar answer as the plugin makes it (`EventAnswerer`: priming,
//!   then sampling at temperature 1 until 16 beats are filled), with its mean number of events.
//!
//! Phrases and steps are real melodies (the embedded long-term memory's), read as the plugin's
//! answerer reads them: priming only observes, and the scores of the next event are asked for
//! once, after the phrase.
//!
//! The floor is FLOPs per step ÷ a single-core f32 peak: the assumed AVX-512 figure
//! (`ASSUMED_PEAK_GFLOPS`), and this core's own peak, measured with independent FMA chains on the
//! widest SIMD path it runs. Run: `cargo bench --bench kernel`.

use std::hint::black_box;
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use wavejam::assets::{default_long_term, default_tunes, DEFAULT_WAVENET};
use wavejam::generator::event_answer::EventAnswerer;
use wavejam::models::engines::{Brains, EngineKind};
use wavejam::models::stack::DilatedStack;
use wavejam::models::wavenet::kernel::SimdPath;
use wavejam::models::wavenet::{ModelFile, WaveNetKernel};
use wavejam::models::{EventModel, WaveNetModel};
use wavejam::music::encoding::Vocabulary;
use wavejam::music::Note;

/// Assumed single-core peak: 2 AVX-512 FMA units × 16 lanes × 2 FLOP × ~3.7 GHz.
const ASSUMED_PEAK_GFLOPS: f64 = 118.0;
/// Independent FMA chains in the peak measurement (enough to cover the FMA latency of two
/// pipes on current x86 cores).
const FMA_CHAINS: usize = 12;
/// Iterations of the peak measurement (~5·10⁹ FLOPs with 8 lanes).
const FMA_ITERATIONS: u64 = 25_000_000;
/// Steps before the single-step timing (caches, branch predictors, clocks).
const WARMUP_STEPS: usize = 500;
/// Events of the phrase that primes an answer.
const PHRASE_EVENTS: usize = 48;
/// Length of an answer in beats: 4 bars of 4/4.
const ANSWER_BEATS: f64 = 16.0;
/// Repetitions of the first-answer and 4-bar-answer timings.
const ANSWER_RUNS: usize = 200;

/// What the bench needs of an engine, as the plugin's answerer uses it: forget the past, read
/// one event, give the scores of the next one.
trait Engine {
    fn reset(&mut self);
    fn observe(&mut self, token: u16);
    /// Observe a whole phrase, as the answerer primes an engine.
    fn prime(&mut self, tokens: &[u16]);
    /// Scores of the next event (logits, or probabilities); the greedy next event is their
    /// largest.
    fn next(&mut self) -> &[f32];
    /// A whole answer to `phrase` as the plugin makes it, seeded by `seed`: the events it
    /// generated, or `None` for a bare kernel (it has no sampler).
    fn answer(&mut self, phrase: &[u16], seed: u64) -> Option<usize>;
}

/// The bare kernel, fed as the WaveNet engine feeds it; its scores are its logits (no softmax).
struct KernelEngine(WaveNetModel);

impl Engine for KernelEngine {
    fn reset(&mut self) {
        self.0.reset();
    }
    fn observe(&mut self, token: u16) {
        self.0.observe(token);
    }
    fn prime(&mut self, tokens: &[u16]) {
        self.0.observe_all(tokens);
    }
    fn next(&mut self) -> &[f32] {
        self.0.logits()
    }
    fn answer(&mut self, _phrase: &[u16], _seed: u64) -> Option<usize> {
        None
    }
}

/// A whole engine of the plugin (the hybrid: the WaveNet engine plus two Markov models and
/// their mixture); its scores are its probabilities.
struct EventEngine {
    model: Counted,
    probabilities: Vec<f64>,
    scores: Vec<f32>,
    answerer: EventAnswerer,
    notes: Vec<Note>,
}

impl EventEngine {
    fn new(model: Box<dyn EventModel + Send>) -> Self {
        let vocabulary = Vocabulary::default();
        Self {
            model: Counted { model, events: 0 },
            probabilities: vec![0.0; vocabulary.len()],
            scores: vec![0.0; vocabulary.len()],
            answerer: EventAnswerer::new(vocabulary),
            notes: Vec::new(),
        }
    }
}

/// An engine that counts the events it generates (those observed one at a time; priming
/// observes them all at once).
struct Counted {
    model: Box<dyn EventModel + Send>,
    events: usize,
}

impl EventModel for Counted {
    fn name(&self) -> String {
        self.model.name()
    }
    fn reset(&mut self) {
        self.model.reset();
    }
    fn distribution(&mut self, out: &mut [f64]) {
        self.model.distribution(out);
    }
    fn observe(&mut self, token: u16) {
        self.events += 1;
        self.model.observe(token);
    }
    fn observe_all(&mut self, tokens: &[u16]) {
        self.model.observe_all(tokens);
    }
}

impl Engine for EventEngine {
    fn reset(&mut self) {
        self.model.reset();
    }
    fn observe(&mut self, token: u16) {
        self.model.observe(token);
    }
    fn prime(&mut self, tokens: &[u16]) {
        self.model.observe_all(tokens);
    }
    fn next(&mut self) -> &[f32] {
        self.model.distribution(&mut self.probabilities);
        for (s, &p) in self.scores.iter_mut().zip(&self.probabilities) {
            *s = p as f32;
        }
        &self.scores
    }
    fn answer(&mut self, phrase: &[u16], seed: u64) -> Option<usize> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        self.model.events = 0;
        self.answerer.answer(
            &mut self.model,
            phrase,
            ANSWER_BEATS,
            1.0,
            100,
            &mut rng,
            &mut self.notes,
        );
        // NOTE: the event that ends the answer is sampled but never observed.
        Some(self.model.events + 1)
    }
}

/// Mean, median and 99th percentile of some durations, in µs.
struct Stats {
    mean_us: f64,
    median_us: f64,
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
            median_us: us[us.len() / 2],
            p99_us: us[(us.len() * 99 / 100).min(us.len() - 1)],
        }
    }
}

/// One engine's timings.
struct Row {
    name: String,
    step: Stats,
    first_answer: Stats,
    /// Whole answers and their mean number of events (engines only).
    answer: Option<(Stats, f64)>,
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

/// Times `engine` on real melodies: `tunes` (event ids from their first event to `END`) read one
/// after another for the step timing, and 48-event phrases of them for the answers.
fn measure(name: &str, engine: &mut dyn Engine, tunes: &[Vec<u16>], steps: usize) -> Row {
    let stream: Vec<u16> = tunes
        .iter()
        .flatten()
        .copied()
        .take(WARMUP_STEPS + steps)
        .collect();
    assert_eq!(
        stream.len(),
        WARMUP_STEPS + steps,
        "not enough melody events"
    );
    let phrases: Vec<&[u16]> = tunes
        .iter()
        .filter(|t| t.len() > PHRASE_EVENTS)
        .map(|t| &t[..PHRASE_EVENTS])
        .take(ANSWER_RUNS)
        .collect();
    assert_eq!(phrases.len(), ANSWER_RUNS, "not enough melodies");
    let mut checksum = 0.0f32;

    engine.reset();
    for &token in &stream[..WARMUP_STEPS] {
        engine.observe(token);
        checksum += engine.next()[0];
    }
    let mut step_us = Vec::with_capacity(steps);
    for &token in &stream[WARMUP_STEPS..] {
        let start = Instant::now();
        engine.observe(black_box(token));
        checksum += engine.next()[0];
        step_us.push(start.elapsed().as_secs_f64() * 1e6);
    }

    let mut first_us = Vec::with_capacity(ANSWER_RUNS);
    let mut answer_us = Vec::with_capacity(ANSWER_RUNS);
    let mut answer_events = 0;
    for (run, phrase) in phrases.into_iter().enumerate() {
        let start = Instant::now();
        engine.reset();
        engine.prime(black_box(phrase));
        checksum += f32::from(argmax(engine.next()));
        first_us.push(start.elapsed().as_secs_f64() * 1e6);

        let start = Instant::now();
        let Some(events) = engine.answer(black_box(phrase), run as u64) else {
            continue;
        };
        answer_us.push(start.elapsed().as_secs_f64() * 1e6);
        answer_events += events;
    }
    assert!(checksum.is_finite(), "{name}: non-finite scores");
    Row {
        name: name.to_string(),
        step: Stats::of(step_us),
        first_answer: Stats::of(first_us),
        answer: (!answer_us.is_empty()).then(|| {
            let runs = answer_us.len();
            (Stats::of(answer_us), answer_events as f64 / runs as f64)
        }),
    }
}

/// One vector of `FMA_CHAINS` independent multiply-add chains, written once per SIMD width.
macro_rules! fma_chains {
    ($name:ident, $feature:literal, $vector:ty, $splat:ident, $fma:ident, $store:ident, $lanes:literal) => {
        /// Runs the chains for `iterations` and returns a lane sum (so none is optimised away).
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $feature)]
        fn $name(iterations: u64, a: f32, b: f32) -> f32 {
            use std::arch::x86_64::*;
            let (a, b) = ($splat(a), $splat(b));
            let mut chains: [$vector; FMA_CHAINS] = [$splat(1.0); FMA_CHAINS];
            for _ in 0..iterations {
                for c in &mut chains {
                    *c = $fma(*c, a, b);
                }
            }
            let mut lanes = [0.0f32; $lanes];
            let mut total = 0.0;
            for c in chains {
                // SAFETY: `lanes` holds exactly one vector.
                unsafe { $store(lanes.as_mut_ptr(), c) };
                total += lanes.iter().sum::<f32>();
            }
            total
        }
    };
}
fma_chains!(
    fma_avx2,
    "avx2,fma",
    __m256,
    _mm256_set1_ps,
    _mm256_fmadd_ps,
    _mm256_storeu_ps,
    8
);
fma_chains!(
    fma_avx512,
    "avx512f",
    __m512,
    _mm512_set1_ps,
    _mm512_fmadd_ps,
    _mm512_storeu_ps,
    16
);

/// This core's f32 FMA peak in GFLOP/s and the instruction set it was measured with, or `None`
/// where no FMA path runs.
fn measured_peak_gflops() -> Option<(f64, &'static str)> {
    #[cfg(target_arch = "x86_64")]
    {
        let (a, b) = (black_box(0.999_999f32), black_box(1e-7f32));
        let (lanes, name): (u64, &'static str) = if SimdPath::Avx512.is_supported() {
            (16, "avx512")
        } else if SimdPath::Avx2Fma.is_supported() {
            (8, "avx2+fma")
        } else {
            return None;
        };
        let start = Instant::now();
        // SAFETY: the path's features were detected just above.
        let total = unsafe {
            if lanes == 16 {
                fma_avx512(FMA_ITERATIONS, a, b)
            } else {
                fma_avx2(FMA_ITERATIONS, a, b)
            }
        };
        let seconds = start.elapsed().as_secs_f64();
        black_box(total);
        let flops = FMA_ITERATIONS * FMA_CHAINS as u64 * lanes * 2;
        Some((flops as f64 / seconds / 1e9, name))
    }
    #[cfg(not(target_arch = "x86_64"))]
    None
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
    // What a plain load picks on this CPU, and the weight bytes its step reads.
    let (chosen, step_bytes) = {
        let kernel = WaveNetKernel::new(&file);
        (kernel.simd_path(), kernel.step_weight_bytes())
    };
    let flops = config.flops_per_step() as f64;
    let floor_us = flops / (ASSUMED_PEAK_GFLOPS * 1e3);
    let measured = measured_peak_gflops();
    let core_floor_us = measured.map(|(gflops, _)| flops / (gflops * 1e3));

    let tunes = default_tunes().expect("the embedded melodies");
    let mut rows = Vec::new();
    // NOTE: one row per SIMD path this CPU runs; another engine is one more `measure` call.
    for path in SimdPath::ALL {
        let Some(kernel) = WaveNetKernel::with_simd_path(&file, path) else {
            continue;
        };
        let mut kernel = KernelEngine(WaveNetModel::new(kernel));
        let mark = if path == chosen { " (chosen)" } else { "" };
        let name = format!("kernel {}{mark}", path.name());
        rows.push(measure(&name, &mut kernel, &tunes, steps));
    }
    let kernel_paths = rows.len();
    let brains = Brains {
        wavenet: WaveNetKernel::new(&file),
        long_term: Some(default_long_term()),
    };
    for kind in [EngineKind::WaveNet, EngineKind::Hybrid] {
        let mut engine = EventEngine::new(brains.engine(kind));
        let name = format!("{} engine (kernel {})", kind.name(), chosen.name());
        rows.push(measure(&name, &mut engine, &tunes, steps));
    }

    println!("model: {source}");
    println!(
        "{} parameters, {} FLOPs/step, receptive field {} events; SIMD path chosen at load: {} \
         ({:?}-precision file: a step reads {:.2} MB of weights)",
        config.param_count(),
        config.flops_per_step(),
        config.receptive_field(),
        chosen.name(),
        file.precision,
        step_bytes as f64 / 1e6
    );
    println!(
        "floor = FLOPs ÷ {ASSUMED_PEAK_GFLOPS} GFLOP/s (the issue's assumed single-core AVX-512 \
         FMA peak) = {floor_us:.2} µs/step"
    );
    match (measured, core_floor_us) {
        (Some((gflops, path)), Some(core)) => println!(
            "core floor = FLOPs ÷ {gflops:.1} GFLOP/s (this core's peak, measured: {FMA_CHAINS} \
             {path} FMA chains) = {core:.2} µs/step"
        ),
        _ => println!("core floor: no FMA path on this CPU to measure a peak with"),
    }
    println!();
    println!(
        "| engine | measurement | mean | median | p99 | floor | mean ÷ floor | mean ÷ core floor |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for row in &rows {
        let mut lines = vec![
            ("step".to_string(), &row.step, 1.0),
            (
                format!("first answer event (reset + {PHRASE_EVENTS}-event phrase)"),
                &row.first_answer,
                PHRASE_EVENTS as f64,
            ),
        ];
        if let Some((stats, events)) = &row.answer {
            lines.push((
                format!(
                    "4-bar answer ({ANSWER_BEATS} beats, {events:.1} events, priming included)"
                ),
                stats,
                PHRASE_EVENTS as f64 + events,
            ));
        }
        for (what, stats, n) in lines {
            let floor = floor_us * n;
            let core_ratio = core_floor_us.map_or("–".to_string(), |core| {
                format!("{:.1}×", stats.mean_us / (core * n))
            });
            println!(
                "| {} | {what} | {} | {} | {} | {} | {:.1}× | {core_ratio} |",
                row.name,
                time(stats.mean_us),
                time(stats.median_us),
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
    let kernel_rows = &rows[..kernel_paths];
    let chosen_row = kernel_rows
        .iter()
        .find(|row| row.name.ends_with("(chosen)"));
    let fastest = kernel_rows.iter().min_by(|a, b| {
        a.first_answer
            .median_us
            .total_cmp(&b.first_answer.median_us)
    });
    match (chosen_row, fastest) {
        (Some(chosen), Some(fastest)) if chosen.name == fastest.name => {
            println!("the chosen path is the fastest here (median first answer event)")
        }
        (Some(chosen), Some(fastest)) => println!(
            "WARNING: {} beat the chosen {} here (median first answer event {} vs {}): \
             revisit `SimdPath::detect`",
            fastest.name,
            chosen.name,
            time(fastest.first_answer.median_us),
            time(chosen.first_answer.median_us)
        ),
        _ => {}
    }
    println!(
        "(one thread; step: {steps} timed steps after {WARMUP_STEPS} warm-up steps; answers: \
         {ANSWER_RUNS} phrases, the first {PHRASE_EVENTS} events of as many melodies; answers \
         sampled at temperature 1, seeded by the phrase's index; melodies: the embedded \
         long-term memory's)"
    );
}
