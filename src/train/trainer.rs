//! Training the phrase WaveNet ([`PhraseWaveNet`]) on a corpus folder: random fixed-length
//! windows with transposition augmentation, AdamW on next-event cross-entropy, validation bits
//! per event after every epoch, the best model kept, a resumable checkpoint and a loss curve.
//!
//! # Files (for `--out model.safetensors`)
//! - `model.safetensors`: the best model so far (written only when validation improves), with a
//!   JSON training summary in its `training` metadata.
//! - `model.resume.safetensors`: the latest weights, with the step count, epochs done, seed and
//!   history in its `training` metadata (`{"resume": …}`). AdamW's moment estimates are *not*
//!   saved: a resumed run starts a fresh optimizer (moments and bias correction restart) while
//!   the step count, epoch and data RNG continue. Checkpoints are written at epoch ends; a run
//!   stopped by `max_minutes` validates and saves there, counting its partial epoch as done.
//! - `model.loss.svg`: training loss (bits/event, bucket-averaged) and validation points.
//!
//! # Data conventions (see [`crate::models::wavenet`])
//! Each tune is fed as `[END, e_0, …, e_n]` (the leading `END` is the start marker) with targets
//! `[e_0, …, e_n]` (`e_n` is the tune's own `END`); the position of each input is the bar
//! position of the time after it ([`input_positions`]), in the bars of the tune's own time
//! signatures ([`crate::music::meter`]; 4/4 where a file has none).

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarMap};
use indicatif::{ProgressBar, ProgressStyle};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::wavenet::{init_seeded, new_model, to_safetensors, PhraseWaveNet, WaveNetConfig};
use crate::lab::eval::load_folder;
use crate::models::container::write_whole;
use crate::models::wavenet::{input_positions, ModelFile, Precision};
use crate::music::encoding::{Token, Vocabulary};
use crate::music::meter::Meter;

/// What [`train`] does.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Corpus folder with `train/` and `validation/` subfolders of MIDI files.
    pub data: PathBuf,
    /// Best model file; the checkpoint and loss curve go next to it.
    pub out: PathBuf,
    pub config: WaveNetConfig,
    /// Total epochs (a resumed run continues up to this many).
    pub epochs: usize,
    pub batch: usize,
    /// Window length in events.
    pub seq_len: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub seed: u64,
    /// Continue from the `.resume.safetensors` checkpoint (which must exist).
    pub resume: bool,
    /// Start a new run over an earlier run's model and checkpoint at `out`.
    pub overwrite: bool,
    /// Stop (validate and save) once this much wall time has passed in this run.
    pub max_minutes: Option<f64>,
    /// Include polyphonic tunes (default: melodies only).
    pub all: bool,
    /// Steps per epoch; by default the training targets over `batch · seq_len`.
    pub steps_per_epoch: Option<usize>,
    /// Largest transposition of the augmentation, in semitones (each way).
    pub max_transpose: u8,
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// The command line, for the training summary.
    pub command_line: String,
}

impl TrainOptions {
    /// Defaults for `data` → `out`: the default config, 10 epochs of batch 16 × 256 events,
    /// lr 2e-3, seed 1, ±5 semitones.
    pub fn new(data: impl Into<PathBuf>, out: impl Into<PathBuf>) -> Self {
        Self {
            data: data.into(),
            out: out.into(),
            config: WaveNetConfig::default(),
            epochs: 10,
            batch: 16,
            seq_len: 256,
            lr: 2e-3,
            weight_decay: 0.01,
            seed: 1,
            resume: false,
            overwrite: false,
            max_minutes: None,
            all: false,
            steps_per_epoch: None,
            max_transpose: 5,
            progress: false,
            command_line: String::new(),
        }
    }

    /// `model.resume.safetensors` next to `model.safetensors`.
    pub fn resume_path(&self) -> PathBuf {
        self.out.with_extension("resume.safetensors")
    }

    /// `model.loss.svg` next to `model.safetensors`.
    pub fn svg_path(&self) -> PathBuf {
        self.out.with_extension("loss.svg")
    }
}

/// One epoch's result.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochRecord {
    /// 1-based.
    pub epoch: usize,
    /// Optimizer steps done at its end.
    pub step: usize,
    /// Mean training loss over the epoch, bits per event.
    pub train_bits: f64,
    /// Validation bits per event (teacher-forced, whole tunes).
    pub validation_bits: f64,
    /// Wall seconds (all runs) at its end.
    pub seconds: f64,
}

/// What a run's steps and validation depend on besides the model's config, kept in its
/// checkpoint: a resumed run given other values would not go on with that run (its steps would
/// draw other windows, or be scored on another validation set).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct RunShape {
    pub batch: usize,
    /// Window length: events for a phrase model, samples for a voice.
    pub window: usize,
    pub steps_per_epoch: usize,
    pub lr: f64,
    pub seed: u64,
    /// What the data came to: files (or tunes) and their sizes, training and validation.
    pub data: String,
}

/// Refuses to resume the checkpoint at `path` (made with `saved`; `None` for one from before
/// shapes were kept) as a run of another shape.
pub(crate) fn check_shape(
    path: &Path,
    saved: Option<&RunShape>,
    now: &RunShape,
) -> Result<(), String> {
    match saved {
        Some(saved) if saved != now => Err(format!(
            "{} is a run of {saved:?}; this one would be {now:?}: give the options it was \
             started with (and the same data) to go on with it, or --overwrite to start anew",
            path.display()
        )),
        _ => Ok(()),
    }
}

/// What is saved in the resume checkpoint's metadata.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct ResumeState {
    /// The run's shape (`None` in a checkpoint from before it was kept).
    #[serde(default)]
    shape: Option<RunShape>,
    step: usize,
    epochs_done: usize,
    seed: u64,
    best_validation_bits: f64,
    initial_validation_bits: f64,
    seconds: f64,
    history: Vec<EpochRecord>,
    /// (step, training bits/event) of every step.
    curve: Vec<(usize, f32)>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ResumeMetadata {
    resume: ResumeState,
}

/// What a training run did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TrainReport {
    /// Step count this run started from (0 unless resumed).
    pub start_step: usize,
    pub steps: usize,
    pub epochs_done: usize,
    /// Validation bits/event of the untrained model.
    pub initial_validation_bits: f64,
    pub best_validation_bits: f64,
    pub history: Vec<EpochRecord>,
    pub train_tunes: usize,
    pub validation_tunes: usize,
    pub train_events: usize,
    pub validation_events: usize,
    /// Wall seconds, all runs.
    pub seconds: f64,
    /// Training target events per second in this run.
    pub tokens_per_second: f64,
    /// Whether `--max-minutes` ended the run.
    pub stopped_by_time: bool,
}

/// One tune ready to feed: inputs `[END, e_0, …, e_n]` and their position indices.
struct Sequence {
    ids: Vec<u32>,
    positions: Vec<u32>,
}

impl Sequence {
    fn new(tokens: &[u16], vocabulary: &Vocabulary, config: &WaveNetConfig, meter: &Meter) -> Self {
        let mut ids = Vec::with_capacity(tokens.len() + 1);
        ids.push(u32::from(vocabulary.end_id()));
        ids.extend(tokens.iter().map(|&t| u32::from(t)));
        let as_tokens: Vec<Token> = ids
            .iter()
            .filter_map(|&id| vocabulary.token(id as u16))
            .collect();
        let positions = input_positions(&as_tokens, meter)
            .into_iter()
            .map(|p| config.position_index(p))
            .collect();
        Self { ids, positions }
    }

    /// Number of targets (events predicted).
    fn targets(&self) -> usize {
        self.ids.len() - 1
    }
}

/// A padded batch: inputs, positions, targets `[B, T]` and a mask of the real targets.
struct Batch {
    inputs: Tensor,
    positions: Tensor,
    targets: Tensor,
    mask: Tensor,
    real: usize,
}

struct BatchBuilder {
    t: usize,
    inputs: Vec<u32>,
    positions: Vec<u32>,
    targets: Vec<u32>,
    mask: Vec<f32>,
    pad: u32,
}

impl BatchBuilder {
    fn new(t: usize, pad: u32) -> Self {
        Self {
            t,
            inputs: Vec::new(),
            positions: Vec::new(),
            targets: Vec::new(),
            mask: Vec::new(),
            pad,
        }
    }

    /// Adds the window `start .. start + len` of `seq` (inputs) with the next ids as targets,
    /// note pitches moved by `shift`, padded to `t`.
    fn push(&mut self, seq: &Sequence, start: usize, len: usize, shift: i32, vocab: &Vocabulary) {
        let moved = |id: u32| transpose(id, shift, vocab);
        for i in 0..self.t {
            if i < len {
                self.inputs.push(moved(seq.ids[start + i]));
                self.positions.push(seq.positions[start + i]);
                self.targets.push(moved(seq.ids[start + i + 1]));
                self.mask.push(1.0);
            } else {
                self.inputs.push(self.pad);
                self.positions.push(0);
                self.targets.push(0);
                self.mask.push(0.0);
            }
        }
    }

    fn build(self, device: &Device) -> candle_core::Result<Batch> {
        let b = self.inputs.len() / self.t.max(1);
        let shape = (b, self.t);
        let real = self.mask.iter().filter(|&&m| m > 0.0).count();
        Ok(Batch {
            inputs: Tensor::from_vec(self.inputs, shape, device)?,
            positions: Tensor::from_vec(self.positions, shape, device)?,
            targets: Tensor::from_vec(self.targets, shape, device)?,
            mask: Tensor::from_vec(self.mask, shape, device)?,
            real,
        })
    }
}

/// `id` with its pitch moved by `shift` if it is a note event (the caller keeps pitches in range).
fn transpose(id: u32, shift: i32, vocab: &Vocabulary) -> u32 {
    match vocab.token(id as u16) {
        Some(Token::NoteOn(_) | Token::NoteOff(_)) => (id as i32 + shift) as u32,
        _ => id,
    }
}

/// The range of shifts within ±`max` that keep every pitch of `ids` in 0..=127.
fn shift_range(ids: &[u32], max: i32, vocab: &Vocabulary) -> (i32, i32) {
    let (mut lo, mut hi) = (127i32, 0i32);
    for &id in ids {
        if let Some(Token::NoteOn(p) | Token::NoteOff(p)) = vocab.token(id as u16) {
            lo = lo.min(i32::from(p));
            hi = hi.max(i32::from(p));
        }
    }
    if lo > hi {
        return (0, 0);
    }
    ((-max).max(-lo), max.min(127 - hi))
}

/// Summed masked cross-entropy in nats, and the mean as a loss tensor.
fn loss(model: &PhraseWaveNet, batch: &Batch) -> candle_core::Result<(Tensor, f64)> {
    let logits = model.forward(&batch.inputs, &batch.positions)?;
    let logp = candle_nn::ops::log_softmax(&logits, 2)?;
    let picked = logp.gather(&batch.targets.unsqueeze(2)?, 2)?.squeeze(2)?;
    let nll = (picked * &batch.mask)?.sum_all()?.neg()?;
    let total = f64::from(nll.to_scalar::<f32>()?);
    let mean = (nll / batch.real.max(1) as f64)?;
    Ok((mean, total))
}

/// Teacher-forced bits per event over whole tunes (batched by length).
fn validation_bits(
    model: &PhraseWaveNet,
    tunes: &[Sequence],
    batch: usize,
    vocab: &Vocabulary,
    device: &Device,
) -> candle_core::Result<f64> {
    let mut order: Vec<&Sequence> = tunes.iter().collect();
    order.sort_by_key(|s| s.targets());
    let (mut nats, mut events) = (0.0, 0usize);
    // Keep each padded batch under ~64k positions.
    let mut i = 0;
    while i < order.len() {
        let longest = order[(i + batch).min(order.len()) - 1].targets();
        let n = batch
            .min((65_536 / longest.max(1)).max(1))
            .min(order.len() - i);
        let t = order[i + n - 1].targets();
        let mut builder = BatchBuilder::new(t, u32::from(vocab.end_id()));
        for seq in &order[i..i + n] {
            builder.push(seq, 0, seq.targets(), 0, vocab);
        }
        let b = builder.build(device)?;
        nats += loss(model, &b)?.1;
        events += b.real;
        i += n;
    }
    Ok(nats / events.max(1) as f64 / std::f64::consts::LN_2)
}

fn load_sequences(
    dir: &Path,
    opts: &TrainOptions,
    vocab: &Vocabulary,
) -> Result<Vec<Sequence>, String> {
    let corpus = load_folder(dir, vocab).map_err(|e| e.to_string())?;
    if opts.progress {
        // Said, not only left out: a corrupt file is the user's to fix.
        for skipped in &corpus.skipped {
            eprintln!("skipped {}: {}", skipped.path.display(), skipped.reason);
        }
    }
    let tunes: Vec<Sequence> = corpus
        .tunes
        .iter()
        .filter(|t| t.notes > 0 && (opts.all || t.is_monophonic(vocab)))
        .map(|t| Sequence::new(&t.tokens, vocab, &opts.config, &t.meter))
        .collect();
    if tunes.is_empty() {
        return Err(format!("no usable tunes under {}", dir.display()));
    }
    Ok(tunes)
}

pub(crate) fn io_err(path: &Path) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("cannot write {}: {e}", path.display())
}

pub(crate) fn candle_err(e: candle_core::Error) -> String {
    e.to_string()
}

/// Sets every variable of `varmap` from a model file's bytes (f32 or f16).
pub(crate) fn load_weights(varmap: &VarMap, bytes: &[u8]) -> Result<(), String> {
    let tensors = candle_core::safetensors::load_buffer(bytes, &Device::Cpu).map_err(candle_err)?;
    let vars = varmap.data().lock().map_err(|e| e.to_string())?;
    for (name, var) in vars.iter() {
        let t = tensors
            .get(name)
            .ok_or_else(|| format!("checkpoint lacks {name}"))?;
        // NOTE: a half-precision model file's tensors are widened to the variable's type.
        var.set(&t.to_dtype(var.dtype()).map_err(candle_err)?)
            .map_err(candle_err)?;
    }
    Ok(())
}

/// Steps of linear learning-rate warm-up at the start of training.
const WARMUP_STEPS: usize = 50;
/// The learning rate at the end of the cosine decay, as a fraction of the peak.
const FINAL_LR_FRACTION: f64 = 0.05;

/// The learning rate of optimizer step `step` (0-based) of `total`: a linear warm-up over
/// [`WARMUP_STEPS`] (a tenth of a shorter run) to `peak`, then a cosine decay to
/// `peak · FINAL_LR_FRACTION` at `total`. Depends only on the step, so a resumed run continues
/// the same schedule.
pub(crate) fn learning_rate(step: usize, total: usize, peak: f64) -> f64 {
    let warmup = WARMUP_STEPS.min(total / 10).max(1);
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let span = total.saturating_sub(warmup).max(1) as f64;
    let progress = ((step - warmup) as f64 / span).min(1.0);
    let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
    peak * (FINAL_LR_FRACTION + (1.0 - FINAL_LR_FRACTION) * cosine)
}

/// Checks a run's settings before any work: `--resume` needs the checkpoint at `resume_path`;
/// a new run does not write over an earlier run's model at `out` or its checkpoint unless
/// `overwrite` (a forgotten `--resume` would lose them after one epoch); the learning rate is a
/// positive number and the time limit one of minutes.
pub(crate) fn check_run(
    out: &Path,
    resume_path: &Path,
    (resume, overwrite): (bool, bool),
    lr: f64,
    max_minutes: Option<f64>,
) -> Result<(), String> {
    if !(lr.is_finite() && lr > 0.0) {
        return Err(format!("--lr {lr} is not a positive learning rate"));
    }
    if let Some(minutes) = max_minutes.filter(|m| !(m.is_finite() && *m > 0.0)) {
        return Err(format!(
            "--max-minutes {minutes} is not a positive number of minutes"
        ));
    }
    if resume && !resume_path.exists() {
        return Err(format!(
            "--resume: there is no checkpoint {} to go on from (a run writes it after each epoch)",
            resume_path.display()
        ));
    }
    if !resume && !overwrite {
        if let Some(earlier) = [out, resume_path].into_iter().find(|p| p.exists()) {
            return Err(format!(
                "{} is an earlier run's: pass --resume to go on with that run, or --overwrite to \
                 start a new one over it",
                earlier.display()
            ));
        }
    }
    Ok(())
}

/// The error of a training whose validation loss went to `loss` (not finite) in `epoch`:
/// nothing of that epoch is written (a checkpoint stays the last good epoch's), and the best
/// model so far stays at `out` if one was written (`best` finite).
pub(crate) fn diverged(epoch: usize, loss: f64, out: &Path, best: f64) -> String {
    let kept = if best.is_finite() {
        format!(
            "the best model so far stays in {}, and --resume goes on from the last good epoch",
            out.display()
        )
    } else {
        "no model was written".into()
    };
    format!(
        "training diverged in epoch {epoch} (validation loss {loss}); {kept} (try a smaller --lr)"
    )
}

/// Draws an item in proportion to its count, and a place in it: a training window's tune (or
/// recording) and its start.
pub(crate) struct Proportional {
    /// Running totals of the counts.
    cumulative: Vec<usize>,
}

impl Proportional {
    pub(crate) fn new(counts: impl IntoIterator<Item = usize>) -> Self {
        let cumulative = counts
            .into_iter()
            .scan(0, |total, count| {
                *total += count;
                Some(*total)
            })
            .collect();
        Self { cumulative }
    }

    /// `(item, place in it)`: item `i` with probability `count_i / total`, then a place uniform
    /// in `0..count_i`. Items with a count of 0 are never drawn; with no counts at all, `(0, 0)`.
    pub(crate) fn draw(&self, rng: &mut ChaCha8Rng) -> (usize, usize) {
        let total = self.cumulative.last().copied().unwrap_or(0);
        if total == 0 {
            return (0, 0);
        }
        let draw = rng.random_range(0..total);
        let item = self.cumulative.partition_point(|&c| c <= draw);
        let before = if item == 0 {
            0
        } else {
            self.cumulative[item - 1]
        };
        (item, draw - before)
    }
}

/// The data RNG of epoch `epoch` (0-based): resuming at an epoch boundary draws the same windows.
pub(crate) fn epoch_rng(seed: u64, epoch: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Trains as `opts` says; see the module docs for the files written.
///
/// # Errors
/// Unreadable data, a bad checkpoint, candle failures, unwritable outputs.
pub fn train(opts: &TrainOptions) -> Result<TrainReport, String> {
    let run_start = Instant::now();
    let device = Device::Cpu;
    let vocab = Vocabulary::default();
    if opts.config.vocab_size != vocab.len() {
        return Err(format!(
            "config vocab_size {} is not the vocabulary's {}",
            opts.config.vocab_size,
            vocab.len()
        ));
    }
    let resume_path = opts.resume_path();
    check_run(
        &opts.out,
        &resume_path,
        (opts.resume, opts.overwrite),
        opts.lr,
        opts.max_minutes,
    )?;
    let (batch, seq_len) = (opts.batch.max(1), opts.seq_len.max(1));
    let train_set = load_sequences(&opts.data.join("train"), opts, &vocab)?;
    let val_set = load_sequences(&opts.data.join("validation"), opts, &vocab)?;
    let train_events: usize = train_set.iter().map(Sequence::targets).sum();
    let validation_events: usize = val_set.iter().map(Sequence::targets).sum();
    // A window's tune is drawn in proportion to its length.
    let tunes = Proportional::new(train_set.iter().map(Sequence::targets));
    let steps_per_epoch = opts
        .steps_per_epoch
        .unwrap_or(train_events / (batch * seq_len))
        .max(1);

    let total_steps = steps_per_epoch * opts.epochs;
    let shape = RunShape {
        batch,
        window: seq_len,
        steps_per_epoch,
        lr: opts.lr,
        seed: opts.seed,
        data: format!(
            "{} / {} tunes, {train_events} / {validation_events} events",
            train_set.len(),
            val_set.len()
        ),
    };
    let (varmap, model) = new_model(&opts.config, &device).map_err(candle_err)?;
    let mut state = if opts.resume {
        let bytes = std::fs::read(&resume_path)
            .map_err(|e| format!("cannot read {}: {e}", resume_path.display()))?;
        let file = ModelFile::parse(&bytes).map_err(|e| e.to_string())?;
        if file.config != opts.config {
            return Err(format!("{} has a different config", resume_path.display()));
        }
        let meta: ResumeMetadata = serde_json::from_str(file.training.as_deref().unwrap_or(""))
            .map_err(|e| format!("{}: no resume state ({e})", resume_path.display()))?;
        check_shape(&resume_path, meta.resume.shape.as_ref(), &shape)?;
        load_weights(&varmap, &bytes)?;
        meta.resume
    } else {
        init_seeded(&varmap, opts.seed, 1.0).map_err(candle_err)?;
        let initial =
            validation_bits(&model, &val_set, batch, &vocab, &device).map_err(candle_err)?;
        ResumeState {
            shape: Some(shape.clone()),
            step: 0,
            epochs_done: 0,
            seed: opts.seed,
            best_validation_bits: f64::INFINITY,
            initial_validation_bits: initial,
            seconds: 0.0,
            history: Vec::new(),
            curve: Vec::new(),
        }
    };
    let start_step = state.step;
    let prior_seconds = state.seconds;
    let vars: Vec<Var> = varmap.all_vars();
    let mut optimizer = AdamW::new(
        vars,
        ParamsAdamW {
            lr: opts.lr,
            weight_decay: opts.weight_decay,
            ..ParamsAdamW::default()
        },
    )
    .map_err(candle_err)?;

    let deadline = opts.max_minutes.map(|m| m * 60.0);
    let mut stopped_by_time = false;
    let mut run_tokens = 0usize;
    let train_clock = Instant::now();
    // The report as of `state` (also written into the model file's metadata).
    let report = |state: &ResumeState, run_tokens: usize, stopped_by_time: bool| TrainReport {
        start_step,
        steps: state.step,
        epochs_done: state.epochs_done,
        initial_validation_bits: state.initial_validation_bits,
        best_validation_bits: state.best_validation_bits,
        history: state.history.clone(),
        train_tunes: train_set.len(),
        validation_tunes: val_set.len(),
        train_events,
        validation_events,
        seconds: state.seconds,
        tokens_per_second: run_tokens as f64 / train_clock.elapsed().as_secs_f64().max(1e-9),
        stopped_by_time,
    };
    let max_shift = i32::from(opts.max_transpose);
    while state.epochs_done < opts.epochs && !stopped_by_time {
        let epoch = state.epochs_done;
        let mut rng = epoch_rng(state.seed, epoch);
        let bar = epoch_bar(opts.progress, steps_per_epoch, epoch, opts.epochs)?;
        let (mut epoch_nats, mut epoch_tokens) = (0.0, 0usize);
        for _ in 0..steps_per_epoch {
            let mut builder = BatchBuilder::new(seq_len, u32::from(vocab.end_id()));
            for _ in 0..batch {
                let (tune, _) = tunes.draw(&mut rng);
                let seq = &train_set[tune];
                let len = seq.targets().min(seq_len);
                let start = rng.random_range(0..=seq.targets() - len);
                let (lo, hi) = shift_range(&seq.ids[start..=start + len], max_shift, &vocab);
                let shift = rng.random_range(lo..=hi);
                builder.push(seq, start, len, shift, &vocab);
            }
            let b = builder.build(&device).map_err(candle_err)?;
            let (mean, nats) = loss(&model, &b).map_err(candle_err)?;
            optimizer.set_learning_rate(learning_rate(state.step, total_steps, opts.lr));
            optimizer.backward_step(&mean).map_err(candle_err)?;
            state.step += 1;
            epoch_nats += nats;
            epoch_tokens += b.real;
            run_tokens += b.real;
            let bits = nats / b.real.max(1) as f64 / std::f64::consts::LN_2;
            state.curve.push((state.step, bits as f32));
            let rate = run_tokens as f64 / train_clock.elapsed().as_secs_f64().max(1e-9);
            bar.set_message(format!("loss {bits:.3} bits/ev, {rate:.0} tok/s"));
            bar.inc(1);
            if deadline.is_some_and(|d| run_start.elapsed().as_secs_f64() >= d) {
                stopped_by_time = true;
                break;
            }
        }
        bar.finish_and_clear();
        let val = validation_bits(&model, &val_set, batch, &vocab, &device).map_err(candle_err)?;
        if !val.is_finite() {
            return Err(diverged(
                state.epochs_done + 1,
                val,
                &opts.out,
                state.best_validation_bits,
            ));
        }
        state.epochs_done += 1;
        state.seconds = prior_seconds + run_start.elapsed().as_secs_f64();
        let record = EpochRecord {
            epoch: state.epochs_done,
            step: state.step,
            train_bits: epoch_nats / epoch_tokens.max(1) as f64 / std::f64::consts::LN_2,
            validation_bits: val,
            seconds: state.seconds,
        };
        if opts.progress {
            eprintln!(
                "epoch {} step {}: train {:.4} bits/event, validation {:.4} bits/event{}",
                record.epoch,
                record.step,
                record.train_bits,
                val,
                if val < state.best_validation_bits {
                    " (best)"
                } else {
                    ""
                }
            );
        }
        state.history.push(record);
        if val < state.best_validation_bits {
            state.best_validation_bits = val;
            let summary = summary_json(&report(&state, run_tokens, stopped_by_time), opts)?;
            let bytes = to_safetensors(
                &varmap,
                &opts.config,
                &vocab,
                Some(&summary),
                Precision::Half,
            )
            .map_err(candle_err)?;
            write_whole(&opts.out, &bytes)?;
        }
        let meta = serde_json::to_string(&ResumeMetadata {
            resume: state.clone(),
        })
        .map_err(|e| e.to_string())?;
        // NOTE: the checkpoint training resumes from keeps the weights exactly.
        let bytes = to_safetensors(
            &varmap,
            &opts.config,
            &vocab,
            Some(&meta),
            Precision::Single,
        )
        .map_err(candle_err)?;
        write_whole(&resume_path, &bytes)?;
        let svg_path = opts.svg_path();
        let validation: Vec<(usize, f64)> = state
            .history
            .iter()
            .map(|r| (r.step, r.validation_bits))
            .collect();
        std::fs::write(&svg_path, loss_svg(&state.curve, &validation, "bits/event"))
            .map_err(io_err(&svg_path))?;
    }
    state.seconds = prior_seconds + run_start.elapsed().as_secs_f64();
    Ok(report(&state, run_tokens, stopped_by_time))
}

/// The progress bar of epoch `epoch` (0-based) of `epochs`, `steps` long; hidden unless `show`.
pub(crate) fn epoch_bar(
    show: bool,
    steps: usize,
    epoch: usize,
    epochs: usize,
) -> Result<ProgressBar, String> {
    let bar = if show {
        ProgressBar::new(steps as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "epoch {prefix} [{bar:30}] {pos}/{len} {elapsed_precise}<{eta_precise} {msg}",
        )
        .map_err(|e| e.to_string())?
        .progress_chars("=> "),
    );
    bar.set_prefix(format!("{}/{}", epoch + 1, epochs));
    Ok(bar)
}

/// The model file's `training` metadata: a JSON summary.
fn summary_json(report: &TrainReport, opts: &TrainOptions) -> Result<String, String> {
    serde_json::to_string(&serde_json::json!({
        "epochs": report.epochs_done,
        "steps": report.steps,
        "best_validation_bits_per_event": report.best_validation_bits,
        "initial_validation_bits_per_event": report.initial_validation_bits,
        "train_tunes": report.train_tunes,
        "validation_tunes": report.validation_tunes,
        "train_events": report.train_events,
        "validation_events": report.validation_events,
        "seconds": report.seconds,
        "batch": opts.batch,
        "seq_len": opts.seq_len,
        "lr": opts.lr,
        "lr_schedule": format!(
            "linear warm-up over {WARMUP_STEPS} steps, cosine decay to {FINAL_LR_FRACTION} x lr at epochs x steps per epoch"
        ),
        "seed": opts.seed,
        "monophonic_only": !opts.all,
        "max_transpose": opts.max_transpose,
        "bar_positions": "time signatures",
        "history": report.history,
        "command_line": opts.command_line,
    }))
    .map_err(|e| e.to_string())
}

/// A plain SVG: the training loss per step (averaged into at most 600 points) as a polyline,
/// the validation loss at each epoch end (`(step, loss)`) as dots, `unit` naming the loss.
pub fn loss_svg(curve: &[(usize, f32)], validation: &[(usize, f64)], unit: &str) -> String {
    let (w, h, m) = (800.0f64, 400.0f64, 50.0f64);
    let bucket = curve.len().div_ceil(600).max(1);
    let points: Vec<(f64, f64)> = curve
        .chunks(bucket)
        .map(|c| {
            let step = c.iter().map(|p| p.0 as f64).sum::<f64>() / c.len() as f64;
            let bits = c.iter().map(|p| f64::from(p.1)).sum::<f64>() / c.len() as f64;
            (step, bits)
        })
        .collect();
    let vals: Vec<(f64, f64)> = validation.iter().map(|&(s, v)| (s as f64, v)).collect();
    let all = points.iter().chain(&vals);
    let max_x = all.clone().map(|p| p.0).fold(1.0, f64::max);
    let max_y = all.clone().map(|p| p.1).fold(0.0, f64::max).max(1e-3);
    let min_y = all.map(|p| p.1).fold(max_y, f64::min).min(max_y) * 0.9;
    let span_y = (max_y - min_y).max(1e-3);
    let x = |s: f64| m + s / max_x * (w - 2.0 * m);
    let y = |b: f64| h - m - (b - min_y) / span_y * (h - 2.0 * m);
    let polyline: Vec<String> = points
        .iter()
        .map(|&(s, b)| format!("{:.1},{:.1}", x(s), y(b)))
        .collect();
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <line x1=\"{m}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"black\"/>\n\
         <line x1=\"{m}\" y1=\"{m}\" x2=\"{m}\" y2=\"{b}\" stroke=\"black\"/>\n\
         <text x=\"{m}\" y=\"20\" font-family=\"sans-serif\" font-size=\"14\">{unit}: training (blue), validation (red dots)</text>\n\
         <text x=\"5\" y=\"{top}\" font-family=\"sans-serif\" font-size=\"11\">{max_y:.2}</text>\n\
         <text x=\"5\" y=\"{b}\" font-family=\"sans-serif\" font-size=\"11\">{min_y:.2}</text>\n\
         <text x=\"{r}\" y=\"{lbl}\" font-family=\"sans-serif\" font-size=\"11\" text-anchor=\"end\">step {max_x:.0}</text>\n\
         <polyline fill=\"none\" stroke=\"steelblue\" stroke-width=\"1.5\" points=\"{}\"/>\n",
        polyline.join(" "),
        b = h - m,
        r = w - m,
        top = m + 4.0,
        lbl = h - m + 20.0,
    );
    for &(s, b) in &vals {
        svg.push_str(&format!(
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"crimson\"><title>step {s:.0}: {b:.4}</title></circle>\n",
            x(s),
            y(b)
        ));
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::wavenet::WaveNetKernel;
    use crate::music::midi_file::to_smf_bytes;
    use crate::music::Note;
    use crate::test_kit::TempDir;

    #[test]
    fn items_are_drawn_in_proportion_to_their_counts() {
        let items = Proportional::new([0, 3, 1]);
        let mut rng = epoch_rng(7, 0);
        let mut seen = [[0usize; 3]; 3];
        for _ in 0..4_000 {
            let (item, place) = items.draw(&mut rng);
            seen[item][place] += 1;
        }
        assert_eq!(seen[0], [0, 0, 0], "a count of 0 is never drawn");
        assert!(
            seen[2][1..].iter().all(|&n| n == 0),
            "places stay inside the item"
        );
        for &n in &seen[1] {
            assert!(
                (900..1_100).contains(&n),
                "each place ~1000 times: {seen:?}"
            );
        }
        assert!((900..1_100).contains(&seen[2][0]), "{seen:?}");
        assert_eq!(Proportional::new([]).draw(&mut rng), (0, 0));
    }

    fn tiny_config() -> WaveNetConfig {
        WaveNetConfig {
            vocab_size: 353,
            bar_positions: 96,
            residual_channels: 16,
            gate_channels: 16,
            skip_channels: 32,
            head_channels: 32,
            layers_per_stack: 4,
            stacks: 1,
        }
    }

    /// A repetitive melody: a five-note figure in eighths, repeated, from `root`.
    fn tune(root: u8, bars: usize) -> Vec<Note> {
        let figure = [0u8, 2, 4, 5, 7, 5, 4, 2];
        (0..bars * 8)
            .map(|i| Note {
                pitch: root + figure[i % 8],
                velocity: 80,
                onset_beats: i as f64 * 0.5,
                duration_beats: 0.5,
            })
            .collect()
    }

    fn write_corpus(dir: &Path) {
        for (split, roots) in [
            ("train", &[60u8, 62, 64, 65, 67, 55][..]),
            ("validation", &[57, 69][..]),
        ] {
            let folder = dir.join(split);
            std::fs::create_dir_all(&folder).unwrap();
            for &root in roots {
                let bytes = to_smf_bytes(&tune(root, 6), 120.0, 0, &[]);
                std::fs::write(folder.join(format!("t{root}.mid")), bytes).unwrap();
            }
        }
    }

    #[test]
    fn train_learns_saves_and_resumes() {
        let dir = std::env::temp_dir().join(format!("wavejam-train-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        write_corpus(&dir);
        let mut opts = TrainOptions::new(&dir, dir.join("model.safetensors"));
        opts.config = tiny_config();
        opts.epochs = 3;
        opts.batch = 4;
        opts.seq_len = 48;
        opts.lr = 2e-2;
        opts.steps_per_epoch = Some(10);
        let report = train(&opts).unwrap();
        println!("{report:?}");
        assert_eq!(report.steps, 30);
        assert_eq!(report.start_step, 0);
        assert!(report.initial_validation_bits > 6.0, "{report:?}");
        assert!(
            report.best_validation_bits < 0.45 * report.initial_validation_bits,
            "{report:?}"
        );
        let bytes = std::fs::read(&opts.out).unwrap();
        let file = ModelFile::parse(&bytes).unwrap();
        assert_eq!(file.config, tiny_config());
        let summary: serde_json::Value =
            serde_json::from_str(file.training.as_deref().unwrap()).unwrap();
        assert_eq!(summary["train_tunes"], 6);
        assert!(WaveNetKernel::load(&bytes).is_ok());
        assert!(ModelFile::parse(&std::fs::read(opts.resume_path()).unwrap()).is_ok());
        assert!(std::fs::read_to_string(opts.svg_path())
            .unwrap()
            .contains("<polyline"));

        // Resume: continues from step 30 for the remaining epochs.
        opts.resume = true;
        opts.epochs = 4;
        let resumed = train(&opts).unwrap();
        assert_eq!(resumed.start_step, 30);
        assert_eq!(resumed.steps, 40);
        assert_eq!(resumed.history.len(), 4);
        assert_eq!(
            resumed.initial_validation_bits,
            report.initial_validation_bits
        );
        assert!(resumed.best_validation_bits <= report.best_validation_bits);

        // Resumed with another batch, or on other data, it would not be that run.
        opts.batch = 8;
        let err = train(&opts).unwrap_err();
        assert!(err.contains("is a run of"), "{err}");
        opts.batch = 4;
        opts.all = true;
        std::fs::copy(dir.join("train/t60.mid"), dir.join("train/again.mid")).unwrap();
        let err = train(&opts).unwrap_err();
        assert!(err.contains("is a run of"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A learning rate that blows the weights up ends the run with an error that says so, and
    /// writes no model.
    #[test]
    fn a_diverging_training_fails_and_writes_no_model() {
        let dir = TempDir::new("wavejam-train-diverges");
        write_corpus(&dir.0);
        let mut opts = TrainOptions::new(&dir.0, dir.0.join("model.safetensors"));
        opts.config = tiny_config();
        opts.epochs = 2;
        opts.batch = 4;
        opts.seq_len = 48;
        opts.lr = 1e300;
        opts.steps_per_epoch = Some(3);
        let err = train(&opts).unwrap_err();
        assert!(err.contains("diverged in epoch 1"), "{err}");
        assert!(err.contains("no model was written"), "{err}");
        assert!(!opts.out.exists());
    }

    /// Two copies of one window give the gradients of one (the mean loss is the same), for every
    /// variable: the batched backward is right (candle 0.11's CPU conv1d backward was not, which
    /// is why the network uses no conv1d).
    #[test]
    fn batched_gradients_match_a_batch_of_one() {
        let config = tiny_config();
        let (varmap, model) = new_model(&config, &Device::Cpu).unwrap();
        init_seeded(&varmap, 2, 1.0).unwrap();
        let vocab = Vocabulary::default();
        let seq = Sequence {
            ids: (0..25).map(|i| 60 + (i % 5) as u32).collect(),
            positions: (0..25).map(|i| (i * 7) % 96).collect(),
        };
        let grads = |rows: usize| {
            let mut b = BatchBuilder::new(24, 256);
            for _ in 0..rows {
                b.push(&seq, 0, 24, 0, &vocab);
            }
            let (mean, _) = loss(&model, &b.build(&Device::Cpu).unwrap()).unwrap();
            let store = mean.backward().unwrap();
            let vars = varmap.data().lock().unwrap();
            let mut names: Vec<&String> = vars.keys().collect();
            names.sort();
            names
                .into_iter()
                .map(|name| {
                    let grad = store.get(&vars[name]).unwrap();
                    (
                        name.clone(),
                        grad.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                    )
                })
                .collect::<Vec<_>>()
        };
        let (one, two) = (grads(1), grads(2));
        for ((name, one), (_, two)) in one.iter().zip(&two) {
            let worst = one
                .iter()
                .zip(two)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            let scale = one.iter().fold(0.0f32, |m, a| m.max(a.abs()));
            assert!(
                scale > 0.0 && worst <= 1e-4 * scale,
                "{name}: {worst} vs {scale}"
            );
        }
    }

    /// `--resume` without a checkpoint, or a new run over an earlier one's files without
    /// `--overwrite`, stops before any work; so do a learning rate or time limit that is not one.
    #[test]
    fn a_run_that_would_lose_an_earlier_one_is_refused() {
        let dir = std::env::temp_dir().join(format!("wavejam-check-run-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (out, checkpoint) = (dir.join("m.safetensors"), dir.join("m.resume.safetensors"));
        let check =
            |resume, overwrite| check_run(&out, &checkpoint, (resume, overwrite), 1e-3, None);
        assert!(check(false, false).is_ok(), "a first run");
        let err = check(true, false).unwrap_err();
        assert!(err.contains("no checkpoint"), "{err}");
        std::fs::write(&out, b"model").unwrap();
        let err = check(false, false).unwrap_err();
        assert!(err.contains("--overwrite"), "{err}");
        assert!(check(false, true).is_ok());
        std::fs::write(&checkpoint, b"checkpoint").unwrap();
        assert!(check(true, false).is_ok());
        for (lr, minutes) in [
            (f64::NAN, None),
            (0.0, None),
            (1e-3, Some(f64::NAN)),
            (1e-3, Some(-1.0)),
        ] {
            assert!(check_run(&out, &checkpoint, (true, false), lr, minutes).is_err());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn learning_rate_warms_up_then_decays_to_the_floor() {
        let peak = 1e-3;
        assert!(learning_rate(0, 1000, peak) < learning_rate(WARMUP_STEPS / 2, 1000, peak));
        assert!((learning_rate(WARMUP_STEPS - 1, 1000, peak) - peak).abs() < 1e-12);
        assert!((learning_rate(WARMUP_STEPS, 1000, peak) - peak).abs() < 1e-12);
        let rates: Vec<f64> = (WARMUP_STEPS..=1000)
            .map(|s| learning_rate(s, 1000, peak))
            .collect();
        assert!(rates.windows(2).all(|w| w[1] <= w[0]));
        let floor = peak * FINAL_LR_FRACTION;
        assert!((learning_rate(1000, 1000, peak) - floor).abs() < 1e-12);
        // A short run warms up over a tenth of it, and decays too.
        assert!((learning_rate(5, 60, peak) - peak).abs() < 1e-12);
        assert!((learning_rate(60, 60, peak) - floor).abs() < 1e-12);
        assert!((learning_rate(5000, 1000, peak) - floor).abs() < 1e-12);
    }

    #[test]
    fn transposition_keeps_pitches_in_range() {
        let vocab = Vocabulary::default();
        assert_eq!(shift_range(&[125, 128 + 125, 256], 5, &vocab), (-5, 2));
        assert_eq!(shift_range(&[3, 260], 5, &vocab), (-3, 5));
        assert_eq!(shift_range(&[256, 300], 5, &vocab), (0, 0));
        assert_eq!(transpose(128 + 60, 3, &vocab), 128 + 63);
        assert_eq!(transpose(260, 3, &vocab), 260);
    }
}
