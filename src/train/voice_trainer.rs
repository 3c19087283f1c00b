//! Training a voice ([`VoiceWaveNet`]) on a folder of monophonic recordings: random windows,
//! AdamW on the multi-resolution STFT loss, validation loss after every epoch, the best voice
//! kept in half precision, a resumable checkpoint and a loss curve — as `wavejam train` does for
//! the phrase model.
//!
//! # Files (for `--out voice.safetensors`)
//! - `voice.safetensors`: the best voice so far (written when validation improves), with a JSON
//!   summary (command, data, epochs, losses) in its `training` metadata.
//! - `voice.resume.safetensors`: the latest weights in f32 with the step count, epochs done and
//!   history (`{"resume": …}`); AdamW's moments are not kept (a resumed run restarts them).
//! - `voice.loss.svg`: training loss per step and validation loss per epoch.
//!
//! # Data
//! Every tenth recording (sorted by path: the 10th, 20th …, at least one) is held out for
//! validation. A training window is [`VoiceTrainOptions::window`] samples scored by the loss,
//! after a warm-up of one receptive field that fills the layers' past (not scored); windows
//! that are mostly silence are drawn again.

use std::path::PathBuf;
use std::time::Instant;

use candle_core::{Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand_chacha::ChaCha8Rng;

use super::recordings::{dynamics, wav_files, Recording};
use super::trainer::{
    candle_err, check_run, check_shape, diverged, epoch_bar, epoch_rng, io_err, learning_rate,
    load_weights, loss_svg, Proportional, RunShape,
};
use super::voice::{new_voice, stft_loss, to_voice_file, Stft, VoiceWaveNet};
use super::wavenet::init_seeded;
use crate::models::container::{write_whole, Precision};
use crate::models::stack::DilatedStack;
use crate::voice::{Dynamics, VoiceConfig, VoiceFile, CONTROLS};

/// FFT sizes of the training loss, samples: the three the timbre check measures, and 256 for
/// the attacks' timing.
const LOSS_SIZES: [usize; 4] = [2048, 1024, 512, 256];
/// A window whose mean amplitude is below this is silence (−60 dB).
const SILENT_WINDOW: f32 = 1e-3;
/// Validation windows at most (spread over the held-out recordings).
const VALIDATION_WINDOWS: usize = 48;

/// What [`train_voice`] does.
#[derive(Debug, Clone)]
pub struct VoiceTrainOptions {
    /// Folder of WAV recordings (searched recursively).
    pub audio: PathBuf,
    /// Best voice file; the checkpoint and loss curve go next to it.
    pub out: PathBuf,
    pub config: VoiceConfig,
    /// Total epochs (a resumed run continues up to this many).
    pub epochs: usize,
    pub batch: usize,
    /// Samples per window scored by the loss (a multiple of 512, at least 2,048).
    pub window: usize,
    pub lr: f64,
    pub seed: u64,
    /// Continue from the `.resume.safetensors` checkpoint (which must exist).
    pub resume: bool,
    /// Start a new run over an earlier run's voice and checkpoint at `out`.
    pub overwrite: bool,
    /// Stop (validate and save) once this much wall time has passed in this run.
    pub max_minutes: Option<f64>,
    /// Steps per epoch; by default the training audio over `batch · window`.
    pub steps_per_epoch: Option<usize>,
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// The command line, for the training summary.
    pub command_line: String,
}

impl VoiceTrainOptions {
    /// Defaults for `audio` → `out`: the default config, 20 epochs of batch 8 × 8,192 samples,
    /// lr 3e-3, seed 1.
    pub fn new(audio: impl Into<PathBuf>, out: impl Into<PathBuf>) -> Self {
        Self {
            audio: audio.into(),
            out: out.into(),
            config: VoiceConfig::default(),
            epochs: 20,
            batch: 8,
            window: 8_192,
            lr: 3e-3,
            seed: 1,
            resume: false,
            overwrite: false,
            max_minutes: None,
            steps_per_epoch: None,
            progress: false,
            command_line: String::new(),
        }
    }
}

/// One epoch's result.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VoiceEpoch {
    /// 1-based.
    pub epoch: usize,
    /// Optimizer steps done at its end.
    pub step: usize,
    /// Mean training loss over the epoch.
    pub train_loss: f64,
    pub validation_loss: f64,
    /// Wall seconds (all runs) at its end.
    pub seconds: f64,
}

/// The training state a checkpoint keeps.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct ResumeState {
    /// The run's shape (`None` in a checkpoint from before it was kept).
    #[serde(default)]
    shape: Option<RunShape>,
    step: usize,
    epochs_done: usize,
    best_validation_loss: f64,
    initial_validation_loss: f64,
    seconds: f64,
    history: Vec<VoiceEpoch>,
    curve: Vec<(usize, f32)>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ResumeMetadata {
    resume: ResumeState,
}

/// What a run did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VoiceTrainReport {
    pub epochs_done: usize,
    pub steps: usize,
    pub initial_validation_loss: f64,
    pub best_validation_loss: f64,
    pub history: Vec<VoiceEpoch>,
    pub train_files: usize,
    pub validation_files: usize,
    /// Seconds of training and validation audio.
    pub train_seconds_of_audio: f64,
    pub validation_seconds_of_audio: f64,
    pub dynamics: Dynamics,
    /// Wall seconds of training, all runs.
    pub seconds: f64,
    pub stopped_by_time: bool,
}

/// A batch: controls `[B, T, CONTROLS]`, amplitudes `[B, T]` and the target audio of the
/// scored part `[B, window]` (`T` = warm-up + window).
struct Batch {
    controls: Tensor,
    amplitude: Tensor,
    target: Tensor,
}

/// Windows `(recording, first sample)` made into a batch.
fn batch(
    recordings: &[Recording],
    windows: &[(usize, usize)],
    warmup: usize,
    window: usize,
    device: &Device,
) -> candle_core::Result<Batch> {
    let span = warmup + window;
    let mut controls: Vec<f32> = Vec::with_capacity(windows.len() * span * CONTROLS);
    let mut amplitude = Vec::with_capacity(windows.len() * span);
    let mut target = Vec::with_capacity(windows.len() * window);
    for &(r, start) in windows {
        let rec = &recordings[r];
        controls.extend(rec.controls[start..start + span].iter().flatten());
        amplitude.extend_from_slice(&rec.amplitude[start..start + span]);
        target.extend_from_slice(&rec.audio[start + warmup..start + span]);
    }
    let b = windows.len();
    Ok(Batch {
        controls: Tensor::from_vec(controls, (b, span, CONTROLS), device)?,
        amplitude: Tensor::from_vec(amplitude, (b, span), device)?,
        target: Tensor::from_vec(target, (b, window), device)?,
    })
}

/// The loss of `model` on a batch.
fn batch_loss(
    model: &VoiceWaveNet,
    resolutions: &[Stft],
    batch: &Batch,
    warmup: usize,
) -> candle_core::Result<Tensor> {
    let audio = model.forward(&batch.controls, &batch.amplitude)?;
    let window = batch.target.dim(1)?;
    stft_loss(
        resolutions,
        &audio.narrow(1, warmup, window)?,
        &batch.target,
    )
}

/// Whether the scored part of a window is mostly sound.
fn audible(rec: &Recording, start: usize, warmup: usize, window: usize) -> bool {
    let part = &rec.amplitude[start + warmup..start + warmup + window];
    part.iter().sum::<f32>() / window as f32 >= SILENT_WINDOW
}

/// Trains as `opts` says; see the module docs for the files written.
///
/// # Errors
/// No usable recordings, a bad checkpoint, candle failures, unwritable outputs.
pub fn train_voice(opts: &VoiceTrainOptions) -> Result<VoiceTrainReport, String> {
    let run_start = Instant::now();
    let device = Device::Cpu;
    let config = opts.config;
    config.validate()?;
    if opts.window < LOSS_SIZES[0] || !opts.window.is_multiple_of(512) {
        return Err(format!(
            "window {} is not a multiple of 512 of at least {}",
            opts.window, LOSS_SIZES[0]
        ));
    }
    let resume_path = opts.out.with_extension("resume.safetensors");
    check_run(
        &opts.out,
        &resume_path,
        (opts.resume, opts.overwrite),
        opts.lr,
        opts.max_minutes,
    )?;
    let (batch_size, window) = (opts.batch.max(1), opts.window);
    let warmup = (config.receptive_field() - 1).next_multiple_of(512);
    let files = wav_files(&opts.audio)?;
    if files.is_empty() {
        return Err(format!("no .wav files in {}", opts.audio.display()));
    }
    // Recordings too short for one window are left out before the split, so the held-out
    // ones are usable.
    let mut usable = Vec::new();
    for path in &files {
        let rec = Recording::read(path, config.sample_rate)?;
        if rec.len() >= warmup + window {
            usable.push(rec);
        }
    }
    let count = usable.len();
    let (mut train_set, mut val_set) = (Vec::new(), Vec::new());
    for (i, rec) in usable.into_iter().enumerate() {
        let held_out = i % 10 == 9 || (count < 10 && i + 1 == count && i > 0);
        if held_out {
            val_set.push(rec);
        } else {
            train_set.push(rec);
        }
    }
    if train_set.is_empty() || val_set.is_empty() {
        return Err(format!(
            "need at least two recordings of {:.2} s or more (found {} usable)",
            (warmup + window) as f64 / f64::from(config.sample_rate),
            train_set.len() + val_set.len()
        ));
    }
    let dynamics = dynamics(&train_set)?;
    let seconds_of = |set: &[Recording]| {
        set.iter().map(Recording::len).sum::<usize>() as f64 / f64::from(config.sample_rate)
    };
    let train_samples: usize = train_set.iter().map(Recording::len).sum();
    let starts = Proportional::new(train_set.iter().map(|r| r.len() - warmup - window + 1));
    // Validation: consecutive audible windows of each held-out recording, evenly thinned.
    let mut val_windows: Vec<(usize, usize)> = val_set
        .iter()
        .enumerate()
        .flat_map(|(r, rec)| {
            (0..=rec.len() - warmup - window)
                .step_by(window)
                .filter(|&s| audible(rec, s, warmup, window))
                .map(move |s| (r, s))
        })
        .collect();
    let keep = val_windows.len().div_ceil(VALIDATION_WINDOWS).max(1);
    val_windows = val_windows.into_iter().step_by(keep).collect();
    if val_windows.is_empty() {
        return Err("the validation recordings are silent".into());
    }
    let resolutions = LOSS_SIZES
        .iter()
        .map(|&n| Stft::new(n, &device))
        .collect::<candle_core::Result<Vec<_>>>()
        .map_err(candle_err)?;
    let validate = |model: &VoiceWaveNet| -> Result<f64, String> {
        let mut sum = 0.0;
        for chunk in val_windows.chunks(batch_size) {
            let b = batch(&val_set, chunk, warmup, window, &device).map_err(candle_err)?;
            let loss = batch_loss(model, &resolutions, &b, warmup)
                .and_then(|l| l.to_scalar::<f32>())
                .map_err(candle_err)?;
            sum += f64::from(loss) * chunk.len() as f64;
        }
        Ok(sum / val_windows.len() as f64)
    };

    let steps_per_epoch = opts
        .steps_per_epoch
        .unwrap_or(train_samples / (batch_size * window))
        .max(1);
    let total_steps = steps_per_epoch * opts.epochs;
    let shape = RunShape {
        batch: batch_size,
        window,
        steps_per_epoch,
        lr: opts.lr,
        seed: opts.seed,
        data: format!(
            "{} / {} recordings, {train_samples} / {} samples",
            train_set.len(),
            val_set.len(),
            val_set.iter().map(Recording::len).sum::<usize>()
        ),
    };
    let (varmap, model) = new_voice(&config, &device).map_err(candle_err)?;
    let mut state = if opts.resume {
        let bytes = std::fs::read(&resume_path)
            .map_err(|e| format!("cannot read {}: {e}", resume_path.display()))?;
        let file = VoiceFile::parse(&bytes).map_err(|e| e.to_string())?;
        if file.config != config {
            return Err(format!("{} has a different config", resume_path.display()));
        }
        let meta: ResumeMetadata = serde_json::from_str(file.training.as_deref().unwrap_or(""))
            .map_err(|e| format!("{}: no resume state ({e})", resume_path.display()))?;
        check_shape(&resume_path, meta.resume.shape.as_ref(), &shape)?;
        load_weights(&varmap, &bytes)?;
        meta.resume
    } else {
        init_seeded(&varmap, opts.seed, 1.0).map_err(candle_err)?;
        ResumeState {
            shape: Some(shape.clone()),
            step: 0,
            epochs_done: 0,
            best_validation_loss: f64::INFINITY,
            initial_validation_loss: validate(&model)?,
            seconds: 0.0,
            history: Vec::new(),
            curve: Vec::new(),
        }
    };
    let prior_seconds = state.seconds;
    let vars: Vec<Var> = varmap.all_vars();
    let mut optimizer = AdamW::new(
        vars,
        ParamsAdamW {
            lr: opts.lr,
            weight_decay: 0.0,
            ..ParamsAdamW::default()
        },
    )
    .map_err(candle_err)?;
    let report = |state: &ResumeState, stopped_by_time: bool| VoiceTrainReport {
        epochs_done: state.epochs_done,
        steps: state.step,
        initial_validation_loss: state.initial_validation_loss,
        best_validation_loss: state.best_validation_loss,
        history: state.history.clone(),
        train_files: train_set.len(),
        validation_files: val_set.len(),
        train_seconds_of_audio: seconds_of(&train_set),
        validation_seconds_of_audio: seconds_of(&val_set),
        dynamics: dynamics.clone(),
        seconds: state.seconds,
        stopped_by_time,
    };
    let summary = |report: &VoiceTrainReport| {
        serde_json::to_string(&serde_json::json!({
            "report": report,
            "batch": batch_size,
            "window": window,
            "lr": opts.lr,
            "loss": format!("multi-resolution STFT (sizes {LOSS_SIZES:?}): log-magnitude L1 + spectral convergence"),
            "seed": opts.seed,
            "command_line": opts.command_line,
        }))
        .map_err(|e| e.to_string())
    };
    let deadline = opts.max_minutes.map(|m| m * 60.0);
    let mut stopped_by_time = false;
    while state.epochs_done < opts.epochs && !stopped_by_time {
        let epoch = state.epochs_done;
        let mut rng: ChaCha8Rng = epoch_rng(opts.seed, epoch);
        let bar = epoch_bar(opts.progress, steps_per_epoch, epoch, opts.epochs)?;
        let (mut epoch_loss, mut epoch_steps) = (0.0, 0usize);
        for _ in 0..steps_per_epoch {
            let windows: Vec<(usize, usize)> = (0..batch_size)
                .map(|_| draw_window(&mut rng, &train_set, &starts, warmup, window))
                .collect();
            let b = batch(&train_set, &windows, warmup, window, &device).map_err(candle_err)?;
            let loss = batch_loss(&model, &resolutions, &b, warmup).map_err(candle_err)?;
            optimizer.set_learning_rate(learning_rate(state.step, total_steps, opts.lr));
            optimizer.backward_step(&loss).map_err(candle_err)?;
            let value = loss.to_scalar::<f32>().map_err(candle_err)?;
            state.step += 1;
            state.curve.push((state.step, value));
            epoch_loss += f64::from(value);
            epoch_steps += 1;
            bar.set_message(format!("loss {value:.4}"));
            bar.inc(1);
            if deadline.is_some_and(|d| run_start.elapsed().as_secs_f64() >= d) {
                stopped_by_time = true;
                break;
            }
        }
        bar.finish_and_clear();
        let validation_loss = validate(&model)?;
        if !validation_loss.is_finite() {
            return Err(diverged(
                state.epochs_done + 1,
                validation_loss,
                &opts.out,
                state.best_validation_loss,
            ));
        }
        state.epochs_done += 1;
        state.seconds = prior_seconds + run_start.elapsed().as_secs_f64();
        let record = VoiceEpoch {
            epoch: state.epochs_done,
            step: state.step,
            train_loss: epoch_loss / epoch_steps.max(1) as f64,
            validation_loss,
            seconds: state.seconds,
        };
        let best = validation_loss < state.best_validation_loss;
        if opts.progress {
            eprintln!(
                "epoch {} step {}: train {:.4}, validation {validation_loss:.4}{}",
                record.epoch,
                record.step,
                record.train_loss,
                if best { " (best)" } else { "" }
            );
        }
        state.history.push(record);
        if best {
            state.best_validation_loss = validation_loss;
            let text = summary(&report(&state, stopped_by_time))?;
            let bytes = to_voice_file(&varmap, &config, &dynamics, Some(&text), Precision::Half)
                .map_err(candle_err)?;
            write_whole(&opts.out, &bytes)?;
        }
        let meta = serde_json::to_string(&ResumeMetadata {
            resume: state.clone(),
        })
        .map_err(|e| e.to_string())?;
        let bytes = to_voice_file(&varmap, &config, &dynamics, Some(&meta), Precision::Single)
            .map_err(candle_err)?;
        write_whole(&resume_path, &bytes)?;
        let svg_path = opts.out.with_extension("loss.svg");
        let validation: Vec<(usize, f64)> = state
            .history
            .iter()
            .map(|r| (r.step, r.validation_loss))
            .collect();
        std::fs::write(&svg_path, loss_svg(&state.curve, &validation, "STFT loss"))
            .map_err(io_err(&svg_path))?;
    }
    state.seconds = prior_seconds + run_start.elapsed().as_secs_f64();
    Ok(report(&state, stopped_by_time))
}

/// A training window `(recording, first sample)`: a recording drawn in proportion to its
/// length, a start uniform in it; drawn again (up to 20 times) while mostly silent.
fn draw_window(
    rng: &mut ChaCha8Rng,
    recordings: &[Recording],
    starts: &Proportional,
    warmup: usize,
    window: usize,
) -> (usize, usize) {
    let mut window_at = starts.draw(rng);
    for _ in 0..20 {
        if audible(&recordings[window_at.0], window_at.1, warmup, window) {
            break;
        }
        window_at = starts.draw(rng);
    }
    window_at
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::render::{write_wav, WavFormat};
    use crate::test_kit::TempDir;

    /// Notes of a band-limited sawtooth, 0.5 s each at 24 kHz: (Hz, amplitude).
    fn tones(notes: &[(f32, f32)]) -> Vec<f32> {
        notes
            .iter()
            .flat_map(|&(hz, amplitude)| {
                (0..12_000).map(move |n| {
                    let t = n as f32 / 24_000.0;
                    (1..=10)
                        .map(|k| (std::f32::consts::TAU * hz * k as f32 * t).sin() / k as f32)
                        .sum::<f32>()
                        * amplitude
                })
            })
            .collect()
    }

    /// A voice small enough to train in a test.
    fn tiny_config() -> VoiceConfig {
        VoiceConfig {
            residual_channels: 4,
            gate_channels: 4,
            skip_channels: 4,
            head_channels: 4,
            layers_per_stack: 3,
            ..VoiceConfig::default()
        }
    }

    #[test]
    fn a_voice_trains_on_recordings_saves_its_best_and_resumes() {
        let dir = std::env::temp_dir().join(format!("wavejam-voice-train-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("audio")).unwrap();
        // A4 is played 6 dB quieter than A3 and E4 in every recording.
        for (i, root) in [1.0f32, 1.0, 0.95].iter().enumerate() {
            let audio = tones(&[
                (220.0 * root, 0.2),
                (330.0 * root, 0.2),
                (440.0 * root, 0.1),
            ]);
            let path = dir.join("audio").join(format!("{i}.wav"));
            write_wav(&path, &[&audio], 24_000.0, WavFormat::Float32).unwrap();
        }
        // A take too short for a window, last in order: left out, and not as the held-out one.
        let short = &tones(&[(220.0, 0.2)])[..1_000];
        write_wav(
            &dir.join("audio").join("3.wav"),
            &[short],
            24_000.0,
            WavFormat::Float32,
        )
        .unwrap();
        let mut opts = VoiceTrainOptions::new(dir.join("audio"), dir.join("voice.safetensors"));
        opts.config = tiny_config();
        opts.epochs = 1;
        opts.batch = 2;
        opts.window = 2048;
        opts.steps_per_epoch = Some(2);
        let report = train_voice(&opts).unwrap();
        assert_eq!((report.train_files, report.validation_files), (2, 1));
        assert_eq!((report.epochs_done, report.steps), (1, 2));
        assert!(report.history.iter().all(|e| e.validation_loss.is_finite()));
        let best = VoiceFile::parse(&std::fs::read(&opts.out).unwrap()).unwrap();
        assert_eq!(best.precision, Precision::Half);
        assert!(best.training.unwrap().contains("multi-resolution STFT"));
        let offset = |key| best.dynamics.key_offset_db(key);
        assert!(
            offset(57).abs() < 0.5 && (offset(69) + 6.0).abs() < 0.5,
            "{:?}",
            best.dynamics
        );
        assert!(dir.join("voice.loss.svg").exists());
        opts.resume = true;
        opts.epochs = 2;
        let resumed = train_voice(&opts).unwrap();
        assert_eq!((resumed.epochs_done, resumed.steps), (2, 4));
        let first = &resumed.history[0];
        assert_eq!(
            (first.step, first.validation_loss),
            (2, report.history[0].validation_loss)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A learning rate that blows the weights up ends the run with an error, no voice written.
    #[test]
    fn a_diverging_voice_training_fails_and_writes_no_voice() {
        let dir = TempDir::new("wavejam-voice-diverges");
        std::fs::create_dir_all(dir.0.join("audio")).unwrap();
        for i in 0..2 {
            let audio = tones(&[(220.0, 0.2), (330.0, 0.2)]);
            let path = dir.0.join("audio").join(format!("{i}.wav"));
            write_wav(&path, &[&audio], 24_000.0, WavFormat::Float32).unwrap();
        }
        let mut opts = VoiceTrainOptions::new(dir.0.join("audio"), dir.0.join("v.safetensors"));
        opts.config = tiny_config();
        opts.epochs = 1;
        opts.batch = 2;
        opts.window = 2048;
        opts.lr = 1e300;
        opts.steps_per_epoch = Some(2);
        let err = train_voice(&opts).unwrap_err();
        assert!(err.contains("diverged in epoch 1"), "{err}");
        assert!(!opts.out.exists());
    }
}
