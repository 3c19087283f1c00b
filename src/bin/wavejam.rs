//! `wavejam`: WaveJam's command-line tool.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use wavejam::assets;
use wavejam::lab::continuations::{checks_table, continuation_checks};
use wavejam::lab::eval::{eval_folder, load_folder, EvalError, Training, Tune};
use wavejam::lab::listening::{
    key_from_the_start, listening_checks, listening_table, melodies, prompts, tempo_misses_table,
    Playing, PROMPT_BARS,
};
use wavejam::lab::offline::continue_tune;
use wavejam::lab::render::{render, write_wav, RenderSetup, WavFormat};
use wavejam::lab::voice_checks::{in_range, voice_checks, FrameShare, BREAKDOWN_SIZE};
use wavejam::lab::voice_data::{voice_data, Instrument, FIDDLE, FLUTE, INSTRUMENTS};
use wavejam::lab::voice_render::{render_notes, RenderVoice};
use wavejam::listen::bar::{find_bar_phase, BarPrior};
use wavejam::models::container::write_whole;
use wavejam::models::engines::{train_long_term, Brains, EngineKind};
use wavejam::models::melodies::write_tunes;
use wavejam::models::wavenet::{ModelFile, Precision, WaveNetKernel};
use wavejam::music::encoding::Vocabulary;
use wavejam::music::midi_file;
use wavejam::voice::VoiceFile;

/// WaveJam: hear a phrase, answer it in time.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Play a phrase into WaveJam (no DAW needed) and write its answer as MIDI and the whole duet
    /// (phrase + answer through WaveJam's voice) as WAV.
    Render {
        /// Phrase to answer (a .mid file); the built-in two-bar demo phrase if omitted.
        #[arg(long)]
        prompt: Option<PathBuf>,
        /// Folder for answer.mid and answer.wav.
        #[arg(long, default_value = "demo")]
        out_dir: PathBuf,
        /// Random seed (same seed + same phrase ⇒ same answer).
        #[arg(long, default_value_t = 1)]
        seed: u32,
        /// Sampling temperature, 0–2 (0 = most likely continuation).
        #[arg(long, default_value_t = 1.0)]
        temperature: f32,
        /// Answer length in bars.
        #[arg(long, default_value_t = 2)]
        bars: u32,
        /// Tempo in BPM.
        #[arg(long, default_value_t = 120.0)]
        tempo: f64,
        /// Sample rate in Hz.
        #[arg(long, default_value_t = 48_000)]
        sample_rate: u32,
        /// The instrument the phrase and the answer sound on: synth, fiddle or flute.
        #[arg(long, default_value = "synth")]
        voice: String,
        /// Write answer.wav as 16-bit mono, ending a quarter second after the last audible
        /// sample (a small file), instead of float stereo.
        #[arg(long)]
        small: bool,
    },
    /// Bits per note of every engine on a folder of MIDI files (type 0 or 1, any PPQ), each
    /// file predicted event by event from its own earlier events.
    Eval {
        /// Folder of MIDI files to score (searched recursively).
        #[arg(long)]
        data: PathBuf,
        /// Folder of MIDI files to train the long-term memories on (e.g. corpus/train); the
        /// embedded default melodies if omitted.
        #[arg(long)]
        train: Option<PathBuf>,
        /// Phrase WaveNet model file for the wavenet and hybrid rows; the embedded default if
        /// omitted.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Only melodies (tunes without overlapping notes), in training and scoring.
        #[arg(long)]
        monophonic: bool,
        /// Also write the table as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Also continue each tune's first 4 bars with every engine at temperatures 0.5, 1 and
        /// 1.5 and report key, grid, range and density checks.
        #[arg(long)]
        checks: bool,
    },
    /// Play the first 4 bars of each melody in a folder of held-out tunes into the plugin as
    /// written, live, over chords, swung and at free tempos, and report what its answers do
    /// (the README's listening table).
    ListenChecks {
        /// Folder of MIDI files (searched recursively; melodies only), e.g. corpus/validation.
        #[arg(long)]
        data: PathBuf,
        /// Use this many of them, spread evenly through the folder's sorted list.
        #[arg(long, default_value_t = 60)]
        tunes: usize,
        /// Play each prompt this many times (takes): each take another seeded performance,
        /// answered with the plugin's seed at 1, 2, …; the figures are over every take.
        #[arg(long, default_value_t = 4)]
        takes: u32,
        /// Also write the rows as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Continue a MIDI phrase offline with the generator the plugin uses, and write the phrase
    /// followed by its continuation (from the first bar line after the phrase) as MIDI, with the
    /// phrase's time signatures.
    Continue {
        /// Phrase to continue (a .mid file; its beat 0 is a bar line, its bars those of its time
        /// signatures, 4/4 if it has none).
        #[arg(long)]
        prompt: PathBuf,
        /// Continuation length in bars.
        #[arg(long, default_value_t = 4)]
        bars: u32,
        /// Sampling temperature, 0–2 (0 = most likely continuation).
        #[arg(long, default_value_t = 1.0)]
        temperature: f32,
        /// Random seed (same seed + same phrase ⇒ same continuation).
        #[arg(long, default_value_t = 1)]
        seed: u32,
        /// Engine: hybrid, wavenet or markov.
        #[arg(long, default_value = "hybrid")]
        engine: String,
        /// Phrase WaveNet model file; the embedded default if omitted.
        #[arg(long)]
        model: Option<PathBuf>,
        /// MIDI file to write.
        #[arg(long)]
        out: PathBuf,
        /// Tempo of the written file, in BPM.
        #[arg(long, default_value_t = 120.0)]
        tempo: f64,
        /// The file's bar lines are wrong (a pickup not padded to its bar): find where its first
        /// beat falls in the bar from the notes (the phase the engine finds most likely) and
        /// write the phrase there.
        #[arg(long)]
        infer_bars: bool,
    },
    /// Train the phrase WaveNet on a corpus folder (its train/ and validation/ folders); writes
    /// the best model to --out, a resumable checkpoint (.resume.safetensors) and a loss curve
    /// (.loss.svg) next to it.
    #[cfg(feature = "train")]
    Train {
        /// Corpus folder with train/ and validation/ subfolders of MIDI files.
        #[arg(long)]
        data: PathBuf,
        /// Model file to write (the best validation checkpoint).
        #[arg(long)]
        out: PathBuf,
        /// Total epochs (a resumed run continues up to this many).
        #[arg(long, default_value_t = 10)]
        epochs: usize,
        /// Windows per step.
        #[arg(long, default_value_t = 16)]
        batch: usize,
        /// Window length in events.
        #[arg(long, default_value_t = 256)]
        seq_len: usize,
        /// Peak AdamW learning rate (linear warm-up, then cosine decay over epochs × steps per epoch).
        #[arg(long, default_value_t = 2e-3)]
        lr: f64,
        /// Seed of the initial weights and of the window sampling.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Continue from the .resume.safetensors checkpoint next to --out (AdamW moments restart).
        #[arg(long, conflicts_with = "overwrite")]
        resume: bool,
        /// Start a new run over an earlier run's --out and checkpoint (without it, a new run
        /// refuses to write over them).
        #[arg(long)]
        overwrite: bool,
        /// Stop, validate and save after this many minutes.
        #[arg(long)]
        max_minutes: Option<f64>,
        /// Include polyphonic tunes (default: melodies only).
        #[arg(long)]
        all: bool,
        /// Steps per epoch (default: training events / (batch × seq-len)).
        #[arg(long)]
        steps_per_epoch: Option<usize>,
    },
    /// Train a neural voice on a folder of monophonic WAV recordings (any rate, any channels):
    /// its pitch, loudness and onsets come from the audio itself. Writes the best voice to
    /// --out, a resumable checkpoint (.resume.safetensors) and a loss curve (.loss.svg).
    #[cfg(feature = "train")]
    TrainVoice {
        /// Folder of WAV files (searched recursively); every tenth is held out for validation.
        #[arg(long)]
        audio: PathBuf,
        /// Voice file to write (the best validation checkpoint).
        #[arg(long)]
        out: PathBuf,
        /// Total epochs (a resumed run continues up to this many).
        #[arg(long, default_value_t = 20)]
        epochs: usize,
        /// Windows per step.
        #[arg(long, default_value_t = 8)]
        batch: usize,
        /// Samples of each window scored by the loss (a multiple of 512, at least 2048).
        #[arg(long, default_value_t = 8192)]
        window: usize,
        /// Peak AdamW learning rate (linear warm-up, then cosine decay).
        #[arg(long, default_value_t = 3e-3)]
        lr: f64,
        /// Seed of the initial weights and of the window sampling.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Continue from the .resume.safetensors checkpoint next to --out (AdamW moments restart).
        #[arg(long, conflicts_with = "overwrite")]
        resume: bool,
        /// Start a new run over an earlier run's --out and checkpoint (without it, a new run
        /// refuses to write over them).
        #[arg(long)]
        overwrite: bool,
        /// Stop, validate and save after this many minutes.
        #[arg(long)]
        max_minutes: Option<f64>,
        /// Steps per epoch (default: training samples / (batch × window)).
        #[arg(long)]
        steps_per_epoch: Option<usize>,
    },
    /// Store a phrase WaveNet model file's weights in half precision, as `wavejam train` writes
    /// them: half the size, and a faster kernel step (it streams half the bytes). Models
    /// trained before WaveJam wrote half precision load either way.
    Convert {
        /// Model file to read.
        #[arg(long)]
        model: PathBuf,
        /// Model file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Write the melodies the Markov engine's long-term memory learns as a tunes file (how the
    /// default memory ships: assets/melodies.wjtunes).
    Tunes {
        /// Folder of MIDI files (e.g. corpus/train).
        #[arg(long)]
        data: PathBuf,
        /// Tunes file to write.
        #[arg(long)]
        out: PathBuf,
        /// Include polyphonic tunes (default: melodies only).
        #[arg(long)]
        all: bool,
    },
    /// Render training audio for the neural voices with fluidsynth and the FluidR3 GM soundfont
    /// (Debian: apt install fluidsynth fluid-soundfont-gm): phrases of the embedded training
    /// melodies over each instrument's whole range at several velocities and tempos, as numbered
    /// mono 32-bit float WAV files, each with its MIDI file, and a summary.json, in OUT/fiddle
    /// and OUT/flute.
    VoiceData {
        /// Folder to write into (one subfolder per instrument; its numbered files are replaced).
        #[arg(long)]
        out: PathBuf,
        /// Which voice's audio.
        #[arg(long, value_enum, default_value_t = VoiceChoice::Both)]
        instrument: VoiceChoice,
        /// Minutes of audio per instrument.
        #[arg(long, default_value_t = 20.0)]
        minutes: f64,
        /// Sample rate in Hz (8000–96000).
        #[arg(long, default_value_t = 24_000)]
        sample_rate: u32,
        /// Random seed (same seed ⇒ same files).
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Render a MIDI file's notes through one of WaveJam's voices, at velocity and timing as
    /// written (the file's first tempo), from the file's time 0, as a mono 32-bit float WAV.
    Voice {
        /// MIDI file to play (all tracks and channels, as one line for a neural voice).
        #[arg(long)]
        midi: PathBuf,
        /// `synth`, `fiddle`, `flute`, or a voice file (.safetensors, from `wavejam train-voice`).
        #[arg(long)]
        voice: String,
        /// WAV file to write.
        #[arg(long)]
        out: PathBuf,
        /// Sample rate in Hz.
        #[arg(long, default_value_t = 48_000)]
        sample_rate: u32,
    },
    /// Compare voices with fluidsynth's instrument on validation melodies (the README's Voices
    /// table): STFT distance to fluidsynth's rendering, pitch heard by a tracker, peak and DC.
    VoiceChecks {
        /// Folder of MIDI files (searched recursively; melodies only), e.g. corpus/validation.
        #[arg(long)]
        data: PathBuf,
        /// Use this many of them (their first 32 beats, moved by octaves into the range).
        #[arg(long, default_value_t = 50)]
        tunes: usize,
        /// The instrument to compare with (fiddle: program 40, flute: program 73).
        #[arg(long, value_enum)]
        instrument: VoiceChoice,
        /// Voices to check: `synth`, `fiddle`, `flute` or voice files.
        #[arg(long, num_args = 1.., default_values_t = ["synth".to_string()])]
        voice: Vec<String>,
        /// Play every note at this velocity (1–127; 127 checks the loudest peaks) instead of
        /// the file's.
        #[arg(long)]
        velocity: Option<u8>,
    },
    /// Extract the training corpus (O'Neill's 1850, Ryan's Mammoth, miscFolk and the Bach
    /// chorales from music21's bundled corpus) as MIDI files split into train / validation /
    /// test by content hash. Creates a pinned Python venv (.venv-corpus) the first time.
    Corpus {
        /// Output folder (its train/, validation/ and test/ folders are replaced).
        #[arg(long, default_value = "corpus")]
        out: PathBuf,
        /// Options passed on to tools/corpus/extract.py (e.g. `-- --limit 5`).
        #[arg(last = true)]
        extra: Vec<String>,
    },
}

/// Which voice's training audio `voice-data` renders.
#[derive(Clone, Copy, ValueEnum)]
enum VoiceChoice {
    Fiddle,
    Flute,
    Both,
}

impl VoiceChoice {
    fn instruments(self) -> &'static [Instrument] {
        match self {
            Self::Fiddle => &[FIDDLE],
            Self::Flute => &[FLUTE],
            Self::Both => &INSTRUMENTS,
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("wavejam: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Run the corpus extractor that ships with the source tree.
fn extract_corpus(out: &std::path::Path, extra: &[String]) -> Result<(), String> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/corpus/run.sh");
    let out = std::path::absolute(out).map_err(|e| format!("bad output folder: {e}"))?;
    let status = std::process::Command::new("bash")
        .arg(&script)
        .arg("--out")
        .arg(&out)
        .args(extra)
        .status()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    match status.code() {
        Some(0) => Ok(()),
        Some(3) => Err("python3 with venv is needed (Debian: apt-get install python3-venv)".into()),
        _ => Err(format!("corpus extraction failed ({status})")),
    }
}

/// The embedded default melodies as tunes for an evaluation.
fn embedded_tunes() -> Result<Vec<Tune>, String> {
    let tunes = assets::default_tunes().map_err(|e| format!("embedded tunes: {e}"))?;
    Ok(tunes
        .into_iter()
        .enumerate()
        .map(|(i, tokens)| Tune::from_ids(format!("default/{i}"), tokens))
        .collect())
}

/// The WaveNet of `path`, or the embedded default; a bad file is an error naming the problem.
fn load_wavenet(path: Option<&std::path::Path>) -> Result<WaveNetKernel, String> {
    match path {
        Some(path) => {
            let bytes =
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            WaveNetKernel::load(&bytes).map_err(|e| format!("{}: {e}", path.display()))
        }
        None => assets::default_wavenet().map_err(|e| format!("embedded model: {e}")),
    }
}

/// An error if `out` is one of `inputs`, under any name: the command would overwrite what it
/// reads (`--out tune.mid` for `--midi tune.mid`).
fn not_an_input(out: &std::path::Path, inputs: &[&std::path::Path]) -> Result<(), String> {
    // NOTE: a file not there yet is no input.
    let Ok(out_file) = out.canonicalize() else {
        return Ok(());
    };
    match inputs
        .iter()
        .find(|input| input.canonicalize().is_ok_and(|file| file == out_file))
    {
        Some(input) => Err(format!(
            "the output {} is the input {}: it would be overwritten; write elsewhere",
            out.display(),
            input.display()
        )),
        None => Ok(()),
    }
}

/// The voice `name` names: `synth`, `fiddle`, `flute` (the embedded voices), or a voice file's
/// path.
fn render_voice_choice(name: &str) -> Result<RenderVoice, String> {
    if name == "synth" {
        return Ok(RenderVoice::Synth);
    }
    if let Some(file) = assets::default_voice(name) {
        let file = file.map_err(|e| format!("embedded voice {name}: {e}"))?;
        return Ok(RenderVoice::Neural(Box::new(file)));
    }
    let bytes = std::fs::read(name).map_err(|e| format!("cannot read voice {name}: {e}"))?;
    let file = VoiceFile::parse(&bytes).map_err(|e| format!("{name}: {e}"))?;
    Ok(RenderVoice::Neural(Box::new(file)))
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        #[cfg(feature = "train")]
        Command::Train {
            data,
            out,
            epochs,
            batch,
            seq_len,
            lr,
            seed,
            resume,
            overwrite,
            max_minutes,
            all,
            steps_per_epoch,
        } => {
            let mut opts = wavejam::train::TrainOptions::new(data, out);
            opts.epochs = epochs;
            opts.batch = batch;
            opts.seq_len = seq_len;
            opts.lr = lr;
            opts.seed = seed;
            opts.resume = resume;
            opts.overwrite = overwrite;
            opts.max_minutes = max_minutes;
            opts.all = all;
            opts.steps_per_epoch = steps_per_epoch;
            opts.progress = true;
            opts.command_line = std::env::args().collect::<Vec<_>>().join(" ");
            let report = wavejam::train::train(&opts)?;
            println!(
                "{} train / {} validation tunes ({} / {} events); untrained validation {:.4} bits/event",
                report.train_tunes,
                report.validation_tunes,
                report.train_events,
                report.validation_events,
                report.initial_validation_bits
            );
            for r in &report.history {
                println!(
                    "epoch {:>3} step {:>6}: train {:.4}, validation {:.4} bits/event ({:.0} s)",
                    r.epoch, r.step, r.train_bits, r.validation_bits, r.seconds
                );
            }
            println!(
                "steps {}..{}, best validation {:.4} bits/event, {:.0} events/s, {:.0} s{}",
                report.start_step,
                report.steps,
                report.best_validation_bits,
                report.tokens_per_second,
                report.seconds,
                if report.stopped_by_time {
                    " (stopped by --max-minutes)"
                } else {
                    ""
                }
            );
            println!(
                "best model: {}; checkpoint: {}; loss curve: {}",
                opts.out.display(),
                opts.resume_path().display(),
                opts.svg_path().display()
            );
            Ok(())
        }
        #[cfg(feature = "train")]
        Command::TrainVoice {
            audio,
            out,
            epochs,
            batch,
            window,
            lr,
            seed,
            resume,
            overwrite,
            max_minutes,
            steps_per_epoch,
        } => {
            let mut opts = wavejam::train::VoiceTrainOptions::new(audio, out);
            opts.epochs = epochs;
            opts.batch = batch;
            opts.window = window;
            opts.lr = lr;
            opts.seed = seed;
            opts.resume = resume;
            opts.overwrite = overwrite;
            opts.max_minutes = max_minutes;
            opts.steps_per_epoch = steps_per_epoch;
            opts.progress = true;
            opts.command_line = std::env::args().collect::<Vec<_>>().join(" ");
            let report = wavejam::train::train_voice(&opts)?;
            println!(
                "{} train / {} validation recordings ({:.0} s / {:.0} s of audio); loudness {:.1} to {:.1} dB; untrained validation loss {:.4}",
                report.train_files,
                report.validation_files,
                report.train_seconds_of_audio,
                report.validation_seconds_of_audio,
                report.dynamics.quiet_db,
                report.dynamics.loud_db,
                report.initial_validation_loss
            );
            for r in &report.history {
                println!(
                    "epoch {:>3} step {:>6}: train {:.4}, validation {:.4} ({:.0} s)",
                    r.epoch, r.step, r.train_loss, r.validation_loss, r.seconds
                );
            }
            println!(
                "best validation loss {:.4} after {} steps, {:.0} s{}; best voice: {}",
                report.best_validation_loss,
                report.steps,
                report.seconds,
                if report.stopped_by_time {
                    " (stopped by --max-minutes)"
                } else {
                    ""
                },
                opts.out.display()
            );
            Ok(())
        }
        Command::Corpus { out, extra } => extract_corpus(&out, &extra),
        Command::Voice {
            midi,
            voice,
            out,
            sample_rate,
        } => {
            not_an_input(&out, &[&midi, std::path::Path::new(&voice)])?;
            let bytes =
                std::fs::read(&midi).map_err(|e| format!("cannot read {}: {e}", midi.display()))?;
            let tune = midi_file::read_tune(&bytes)
                .map_err(|e| format!("{} is not a MIDI file: {e}", midi.display()))?;
            let choice = render_voice_choice(&voice)?;
            let audio = render_notes(&tune.notes, tune.tempo_bpm, &choice, sample_rate)?;
            write_wav(&out, &[&audio], sample_rate as f32, WavFormat::Float32)
                .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
            println!(
                "{}: {} notes at {:.1} BPM → {} ({:.2} s at {sample_rate} Hz, peak {:.3})",
                midi.display(),
                tune.notes.len(),
                tune.tempo_bpm,
                out.display(),
                audio.len() as f64 / f64::from(sample_rate),
                audio.iter().fold(0.0f32, |m, v| m.max(v.abs()))
            );
            Ok(())
        }
        Command::VoiceChecks {
            data,
            tunes,
            instrument,
            voice,
            velocity,
        } => {
            let [instrument] = instrument.instruments() else {
                return Err("voice-checks compares with one instrument: fiddle or flute".into());
            };
            let melodies: Vec<Vec<wavejam::music::Note>> = melodies(&data, tunes)
                .map_err(|e| e.to_string())?
                .iter()
                .map(|(_, notes, _)| {
                    let mut notes = in_range(notes, instrument);
                    if let Some(velocity) = velocity {
                        notes
                            .iter_mut()
                            .for_each(|n| n.velocity = velocity.clamp(1, 127));
                    }
                    notes
                })
                .collect();
            let voices = voice
                .iter()
                .map(|name| Ok((name.clone(), render_voice_choice(name)?)))
                .collect::<Result<Vec<_>, String>>()?;
            let started = std::time::Instant::now();
            let rows = voice_checks(&melodies, 120.0, instrument, &voices)?;
            println!(
                "{} melodies, program {} ({}), at {} Hz:",
                melodies.len(),
                instrument.program,
                instrument.name,
                wavejam::lab::voice_checks::CHECK_RATE
            );
            println!("| voice | STFT distance | pitch within 25 cents | octave errors | clicks at note boundaries | peak | DC offset |");
            println!("|---|---|---|---|---|---|---|");
            for r in &rows {
                println!(
                    "| {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.1e} |{}",
                    r.voice,
                    r.stft_distance,
                    r.pitch_within_25_cents,
                    r.octave_errors,
                    r.clicks,
                    r.peak,
                    r.dc_offset,
                    if r.finite { "" } else { " NOT FINITE" }
                );
            }
            println!(
                "\nWhere the distance lies ({}-sample frames: share of frames × their distance; in held notes, the distance at the harmonics and between them, and the voice's level there less the instrument's, natural log):",
                BREAKDOWN_SIZE
            );
            println!("| voice | held notes | note changes | no note written | at harmonics | between harmonics | voice − instrument between |");
            println!("|---|---|---|---|---|---|---|");
            for r in rows.iter().skip(1) {
                let b = &r.breakdown;
                let kind = |k: &FrameShare| format!("{:.2} × {:.3}", k.share, k.distance);
                println!(
                    "| {} | {} | {} | {} | {:.3} | {:.3} | {:+.3} |",
                    r.voice,
                    kind(&b.held),
                    kind(&b.changes),
                    kind(&b.unwritten),
                    b.at_harmonics,
                    b.between_harmonics,
                    b.between_bias
                );
            }
            println!("({:.0} s)", started.elapsed().as_secs_f64());
            Ok(())
        }
        Command::VoiceData {
            out,
            instrument,
            minutes,
            sample_rate,
            seed,
        } => {
            for instrument in instrument.instruments() {
                let started = std::time::Instant::now();
                let folder = out.join(instrument.name);
                let summary = voice_data(instrument, &folder, minutes, sample_rate, seed)?;
                println!(
                    "{summary}; {} in {:.1} s",
                    folder.display(),
                    started.elapsed().as_secs_f64()
                );
            }
            Ok(())
        }
        Command::Convert { model, out } => {
            not_an_input(&out, &[&model])?;
            let bytes = std::fs::read(&model)
                .map_err(|e| format!("cannot read {}: {e}", model.display()))?;
            let file = ModelFile::parse(&bytes).map_err(|e| format!("{}: {e}", model.display()))?;
            let half = file
                .to_bytes(Precision::Half)
                .map_err(|e| format!("{}: {e}", model.display()))?;
            // Whole or not at all: it may be the embedded model.
            write_whole(&out, &half)?;
            println!(
                "{} ({} bytes, {:?} precision) → {} ({} bytes, half precision)",
                model.display(),
                bytes.len(),
                file.precision,
                out.display(),
                half.len()
            );
            Ok(())
        }
        Command::Tunes { data, out, all } => {
            let vocabulary = Vocabulary::default();
            let corpus = load_folder(&data, &vocabulary).map_err(|e| e.to_string())?;
            let tunes: Vec<Vec<u16>> = corpus
                .tunes
                .into_iter()
                .filter(|t| all || t.is_monophonic(&vocabulary))
                .map(|t| t.tokens)
                .collect();
            if tunes.is_empty() {
                return Err(EvalError::NoTunes {
                    dir: data,
                    skipped: corpus.skipped.len(),
                }
                .to_string());
            }
            let bytes = write_tunes(&tunes, &vocabulary);
            std::fs::write(&out, &bytes)
                .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
            println!(
                "{} tunes, {} events ({} files skipped: unreadable or without notes): {} bytes to {}",
                tunes.len(),
                tunes.iter().map(Vec::len).sum::<usize>(),
                corpus.skipped.len(),
                bytes.len(),
                out.display()
            );
            Ok(())
        }
        Command::ListenChecks {
            data,
            tunes,
            takes,
            json,
        } => {
            let chosen = melodies(&data, tunes).map_err(|e| e.to_string())?;
            let prompts = prompts(&chosen);
            eprintln!(
                "{} melodies, {} prompts of {PROMPT_BARS} bars",
                chosen.len(),
                prompts.len()
            );
            let rows = listening_checks(&prompts, &Playing::all(), takes);
            print!("{}", listening_table(&rows));
            println!("\nFree-tempo takes heard more than 3 % off the player's tempo:\n");
            print!("{}", tempo_misses_table(&rows));
            // The key check is cheap: every melody of the folder.
            let every = melodies(&data, usize::MAX).map_err(|e| e.to_string())?;
            println!(
                "Auto key: the first {PROMPT_BARS} bars' key is the whole tune's in {:.3} of the \
                 {} prompts chosen, {:.3} of all {} melodies",
                key_from_the_start(&chosen),
                chosen.len(),
                key_from_the_start(&every),
                every.len()
            );
            if let Some(path) = json {
                let text = serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?;
                std::fs::write(&path, text)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            }
            Ok(())
        }
        Command::Eval {
            data,
            train,
            model,
            monophonic,
            json,
            checks,
        } => {
            let training = match &train {
                Some(dir) => Training::Folder(dir),
                None => Training::Tunes(embedded_tunes()?),
            };
            let kernel = load_wavenet(model.as_deref())?;
            let train_tunes = match &training {
                Training::Tunes(tunes) => tunes.clone(),
                _ => Vec::new(),
            };
            let report = eval_folder(training, &data, monophonic, Some(&kernel))
                .map_err(|e| e.to_string())?;
            print!("{}", report.table());
            let mut out = report.to_json_value();
            if checks {
                let vocabulary = Vocabulary::default();
                let keep = |t: &Tune| !monophonic || t.is_monophonic(&vocabulary);
                let train_tunes = match &train {
                    Some(dir) => {
                        load_folder(dir, &vocabulary)
                            .map_err(|e| e.to_string())?
                            .tunes
                    }
                    None => train_tunes,
                };
                let train_tunes: Vec<Tune> = train_tunes.into_iter().filter(keep).collect();
                let mut tunes = load_folder(&data, &vocabulary)
                    .map_err(|e| e.to_string())?
                    .tunes;
                tunes.retain(keep);
                let brains = Brains {
                    wavenet: kernel,
                    long_term: Some(train_long_term(
                        vocabulary,
                        train_tunes.iter().map(|t| &t.tokens[..]),
                    )),
                };
                let rows = continuation_checks(&brains, &tunes, 1);
                print!("\n{}", checks_table(&rows));
                out["checks"] = serde_json::to_value(&rows).map_err(|e| e.to_string())?;
            }
            if let Some(path) = json {
                std::fs::write(&path, out.to_string())
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            }
            Ok(())
        }
        Command::Continue {
            prompt,
            bars,
            temperature,
            seed,
            engine,
            model,
            out,
            tempo,
            infer_bars,
        } => {
            not_an_input(&out, &[&prompt, model.as_deref().unwrap_or(&prompt)])?;
            let kind = EngineKind::ALL
                .into_iter()
                .find(|k| k.name() == engine)
                .ok_or(format!(
                    "unknown engine {engine:?} (hybrid, wavenet or markov)"
                ))?;
            let bytes = std::fs::read(&prompt)
                .map_err(|e| format!("cannot read {}: {e}", prompt.display()))?;
            let midi_file::MidiTune {
                notes: phrase,
                signatures,
                meter,
                ..
            } = midi_file::read_tune(&bytes)
                .map_err(|e| format!("{} is not a MIDI file: {e}", prompt.display()))?;
            if phrase.is_empty() {
                return Err(format!("{} has no notes", prompt.display()));
            }
            let brains = Brains {
                wavenet: load_wavenet(model.as_deref())?,
                long_term: Some(assets::default_long_term()),
            };
            let phrase = if infer_bars {
                let vocabulary = *brains.wavenet.vocabulary();
                let phase = find_bar_phase(
                    brains.engine(kind).as_mut(),
                    &vocabulary,
                    &phrase,
                    &meter,
                    BarPrior::Opening,
                );
                println!("bar phase: the phrase's beat 0 is {phase} beats into its bar");
                phrase
                    .iter()
                    .map(|n| wavejam::music::Note {
                        onset_beats: n.onset_beats + phase,
                        ..*n
                    })
                    .collect()
            } else {
                phrase
            };
            let continued = continue_tune(
                &brains,
                kind,
                &phrase,
                &meter,
                bars.clamp(1, 64),
                temperature,
                seed,
            );
            let answer_start = continued.start_beats;
            let mut notes = phrase.clone();
            notes.extend(continued.notes.iter().map(|n| wavejam::music::Note {
                onset_beats: n.onset_beats + answer_start,
                ..*n
            }));
            std::fs::write(
                &out,
                midi_file::to_smf_bytes(&notes, tempo.clamp(20.0, 400.0), 0, &signatures),
            )
            .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
            println!(
                "{}: {} phrase notes, {} answer notes from beat {answer_start:.2} ({bars} bars, {engine}, seed {seed}, temperature {temperature:.2}) to {}",
                prompt.display(),
                phrase.len(),
                continued.notes.len(),
                out.display()
            );
            Ok(())
        }
        Command::Render {
            prompt,
            out_dir,
            seed,
            temperature,
            bars,
            tempo,
            sample_rate,
            voice,
            small,
        } => {
            let voice = match voice.as_str() {
                "synth" => wavejam::params::VoiceChoice::Synth,
                "fiddle" => wavejam::params::VoiceChoice::Fiddle,
                "flute" => wavejam::params::VoiceChoice::Flute,
                other => return Err(format!("--voice {other}: synth, fiddle or flute")),
            };
            let mut setup = RenderSetup {
                voice,
                seed,
                temperature: temperature.clamp(0.0, 2.0),
                answer_bars: bars.clamp(1, 8),
                tempo_bpm: tempo.clamp(20.0, 400.0),
                sample_rate_hz: sample_rate as f32,
                ..RenderSetup::default()
            };
            if let Some(path) = &prompt {
                let bytes = std::fs::read(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let notes = midi_file::read_notes(&bytes)
                    .map_err(|e| format!("{} is not a MIDI file: {e}", path.display()))?;
                let first = notes
                    .first()
                    .ok_or(format!("{} has no notes", path.display()))?;
                let shift = first.onset_beats;
                setup.phrase = notes
                    .iter()
                    .map(|n| wavejam::music::Note {
                        onset_beats: n.onset_beats - shift,
                        ..*n
                    })
                    .collect();
            }
            setup.check()?;
            let mid = out_dir.join("answer.mid");
            let wav = out_dir.join("answer.wav");
            if let Some(path) = &prompt {
                not_an_input(&mid, &[path])?;
                not_an_input(&wav, &[path])?;
            }
            let rendered = render(&setup);
            std::fs::create_dir_all(&out_dir)
                .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
            std::fs::write(
                &mid,
                midi_file::to_smf_bytes(&rendered.answer, setup.tempo_bpm, 0, &[]),
            )
            .map_err(|e| format!("cannot write {}: {e}", mid.display()))?;
            let [left, right] = &rendered.audio;
            let mut mono: Vec<f32> = left.iter().zip(right).map(|(l, r)| 0.5 * (l + r)).collect();
            // Small files end a quarter second after the last audible sample (-80 dBFS).
            let heard = mono
                .iter()
                .rposition(|x| x.abs() > 1e-4)
                .map_or(0, |i| i + 1);
            mono.truncate(heard + rendered.sample_rate_hz as usize / 4);
            let (channels, format): (&[&[f32]], _) = if small {
                (&[&mono], WavFormat::Pcm16)
            } else {
                (&[left, right], WavFormat::Float32)
            };
            write_wav(&wav, channels, rendered.sample_rate_hz, format)
                .map_err(|e| format!("cannot write {}: {e}", wav.display()))?;
            println!(
                "phrase: {} notes; answer: {} notes from beat {:.2} ({} bars, seed {seed}, temperature {:.2})",
                setup.phrase.len(),
                rendered.answer.len(),
                rendered.answer_start_beat,
                setup.answer_bars,
                setup.temperature
            );
            println!("wrote {} and {}", mid.display(), wav.display());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writing over an input is refused under any name it goes by; a new file or another one is
    /// fine.
    #[test]
    fn an_output_that_is_an_input_is_refused() {
        let dir = std::env::temp_dir().join(format!("wavejam-cli-out-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let tune = dir.join("tune.mid");
        std::fs::write(&tune, b"MThd").unwrap();
        let other = dir.join("other.wav");
        std::fs::write(&other, b"RIFF").unwrap();
        let same = dir.join("sub/../tune.mid");
        let err = not_an_input(&same, &[&other, &tune]).unwrap_err();
        assert!(err.contains("would be overwritten"), "{err}");
        assert!(not_an_input(&other, &[&tune]).is_ok());
        assert!(not_an_input(&dir.join("new.wav"), &[&tune]).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
