//! `wavejam`: WaveJam's command-line tool.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use wavejam::midi_file;
use wavejam::render::{render, write_wav, RenderSetup};
use wavejam::symbolic::eval::eval_folder;

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
    },
    /// Bits per note of every engine on a folder of MIDI files (type 0 or 1, any PPQ), each
    /// file predicted event by event from its own earlier events.
    Eval {
        /// Folder of MIDI files to score (searched recursively).
        #[arg(long)]
        data: PathBuf,
        /// Folder of MIDI files to train the long-term memories on (e.g. corpus/train).
        #[arg(long)]
        train: Option<PathBuf>,
        /// Only melodies (tunes without overlapping notes), in training and scoring.
        #[arg(long)]
        monophonic: bool,
        /// Also write the table as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
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

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Corpus { out, extra } => extract_corpus(&out, &extra),
        Command::Eval {
            data,
            train,
            monophonic,
            json,
        } => {
            let report =
                eval_folder(train.as_deref(), &data, monophonic).map_err(|e| e.to_string())?;
            print!("{}", report.table());
            if let Some(path) = json {
                std::fs::write(&path, report.to_json())
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            }
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
        } => {
            let mut setup = RenderSetup {
                seed,
                temperature: temperature.clamp(0.0, 2.0),
                answer_bars: bars.clamp(1, 8),
                tempo_bpm: tempo.clamp(20.0, 400.0),
                sample_rate_hz: sample_rate as f32,
                ..RenderSetup::default()
            };
            if let Some(path) = prompt {
                let bytes = std::fs::read(&path)
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
            let rendered = render(&setup);
            std::fs::create_dir_all(&out_dir)
                .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
            let mid = out_dir.join("answer.mid");
            let wav = out_dir.join("answer.wav");
            std::fs::write(
                &mid,
                midi_file::to_smf_bytes(&rendered.answer, setup.tempo_bpm, 0),
            )
            .map_err(|e| format!("cannot write {}: {e}", mid.display()))?;
            write_wav(&wav, &rendered.audio, rendered.sample_rate_hz)
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
