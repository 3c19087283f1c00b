//! Notes rendered by fluidsynth with the FluidR3 GM soundfont, offline: the instrument sound the
//! neural voices learn from (`wavejam voice-data`) and are compared with.
//!
//! Each render runs the `fluidsynth` program (Debian `fluidsynth`) on a temporary MIDI file, dry:
//! reverb and chorus off, so the audio is the instrument alone.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::music::midi_file::to_smf_bytes_with_program;
use crate::music::Note;

/// The FluidR3 GM soundfont (MIT licence) where Debian's `fluid-soundfont-gm` installs it.
pub const SOUNDFONT: &str = "/usr/share/sounds/sf2/FluidR3_GM.sf2";

/// fluidsynth's master gain (`-g`; its default, 0.2, leaves a solo instrument peaking below 0.1).
///
/// Peaks measured at velocity 127, mono (the channels' mean), 24 kHz (48 kHz: the same within
/// 1%): a 1 s note peaks at 0.74 on the violin's (program 40) G3 (55) and 0.35 on its A6 (93),
/// at 0.60 on the flute's (program 73) C4 (60) and 0.61 on its C7 (96); the loudest key of either
/// range is the violin's A4 (69), 0.79; runs of 16ths at 140 BPM peak lower, but for the flute's
/// top three keys (0.76). The 20 minutes a voice of `wavejam voice-data` writes by default (seed
/// 1, velocities up to 126) peak at 0.78 (fiddle) and 0.80 (flute). Peaks scale with the gain
/// (the float output is not clipped).
pub const GAIN: f32 = 1.8;

/// Audio kept after the last note's release, in seconds: at velocity 127 (the longest release)
/// the violin and the flute fall below 1e-4 (-80 dBFS) within 0.48 s of the note-off.
pub const RELEASE_TAIL_S: f64 = 0.5;

/// What to install when fluidsynth or the soundfont is missing.
const INSTALL_HINT: &str = "install fluidsynth: apt install fluidsynth fluid-soundfont-gm";

/// The MIDI file [`render`] plays: `notes` (beats from 0) at `tempo_bpm` on channel 0, after a
/// program change to the General MIDI instrument `program` (0-based: 40 violin, 73 flute).
pub fn midi_bytes(notes: &[Note], tempo_bpm: f64, program: u8) -> Vec<u8> {
    to_smf_bytes_with_program(notes, tempo_bpm, 0, Some(program), &[])
}

/// `notes` (beats from 0) played at `tempo_bpm` (10–1000, as MIDI files keep it) by the General
/// MIDI instrument `program` of [`SOUNDFONT`], dry, as mono samples at `sample_rate` Hz
/// (fluidsynth accepts 8000–96000), from beat 0 to [`RELEASE_TAIL_S`] after the last note ends.
///
/// Runs the `fluidsynth` program; for offline tools only, never the audio thread.
///
/// # Errors
/// fluidsynth or the soundfont missing, fluidsynth failing (with what it printed), or a WAV
/// file that is not what was asked for.
pub fn render(
    notes: &[Note],
    tempo_bpm: f64,
    program: u8,
    sample_rate: u32,
) -> Result<Vec<f32>, String> {
    if !Path::new(SOUNDFONT).is_file() {
        return Err(format!("soundfont {SOUNDFONT} not found: {INSTALL_HINT}"));
    }
    let scratch = Scratch::new();
    std::fs::write(&scratch.midi, midi_bytes(notes, tempo_bpm, program))
        .map_err(|e| format!("cannot write {}: {e}", scratch.midi.display()))?;
    // -n -i: no MIDI input, no shell; -q: quiet; -R 0 -C 0: reverb and chorus off; -O float:
    // 32-bit float samples (no clipping, no dither); -F: render the file as fast as possible.
    let output = Command::new("fluidsynth")
        .args([
            "-n", "-i", "-q", "-R", "0", "-C", "0", "-O", "float", "-T", "wav",
        ])
        .arg("-g")
        .arg(GAIN.to_string())
        .arg("-r")
        .arg(sample_rate.to_string())
        .arg("-F")
        .arg(&scratch.wav)
        .arg(SOUNDFONT)
        .arg(&scratch.midi)
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => format!("fluidsynth not found: {INSTALL_HINT}"),
            _ => format!("cannot run fluidsynth: {e}"),
        })?;
    let messages = String::from_utf8_lossy(&output.stderr);
    let messages = messages.trim();
    if !output.status.success() {
        return Err(format!("fluidsynth failed ({}): {messages}", output.status));
    }
    let mut samples = read_mono(&scratch.wav, sample_rate)
        .map_err(|e| format!("fluidsynth's audio: {e} (fluidsynth said: {messages:?})"))?;
    let end_beats = notes.iter().map(Note::end_beats).fold(0.0, f64::max);
    let end_s = end_beats * 60.0 / tempo_bpm + RELEASE_TAIL_S;
    samples.truncate((end_s * f64::from(sample_rate)).ceil() as usize);
    Ok(samples)
}

/// The 32-bit float WAV at `path` (fluidsynth's output), its channels averaged.
fn read_mono(path: &Path, sample_rate: u32) -> Result<Vec<f32>, String> {
    let mut reader = hound::WavReader::open(path).map_err(|e| e.to_string())?;
    let spec = reader.spec();
    if spec.sample_format != hound::SampleFormat::Float || spec.bits_per_sample != 32 {
        return Err(format!(
            "{}-bit {:?} samples, not 32-bit float",
            spec.bits_per_sample, spec.sample_format
        ));
    }
    if spec.sample_rate != sample_rate {
        return Err(format!(
            "{} Hz, not the {sample_rate} Hz asked for",
            spec.sample_rate
        ));
    }
    let channels = usize::from(spec.channels.max(1));
    let interleaved = reader
        .samples::<f32>()
        .collect::<Result<Vec<f32>, _>>()
        .map_err(|e| e.to_string())?;
    // NOTE: FluidR3's violin and flute are stereo recordings (left and right samples panned
    // hard apart); their mean is the instrument heard from the middle.
    Ok(interleaved
        .chunks_exact(channels)
        .map(|frame| frame.iter().sum::<f32>() / channels as f32)
        .collect())
}

/// A render's temporary MIDI and WAV files, unique in the process and across processes, removed
/// when dropped (whether the render worked or not).
struct Scratch {
    midi: PathBuf,
    wav: PathBuf,
}

impl Scratch {
    fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let stem = format!("wavejam-fluidsynth-{}-{n}", std::process::id());
        let dir = std::env::temp_dir();
        Self {
            midi: dir.join(format!("{stem}.mid")),
            wav: dir.join(format!("{stem}.wav")),
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.midi);
        let _ = std::fs::remove_file(&self.wav);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_kit::note;

    /// The frequency in `[low_hz, high_hz]` whose DFT magnitude over `samples` is largest, on a
    /// grid of 1 Hz.
    fn dominant_hz(samples: &[f32], sample_rate: u32, low_hz: u32, high_hz: u32) -> u32 {
        let magnitude = |hz: u32| {
            let w = std::f64::consts::TAU * f64::from(hz) / f64::from(sample_rate);
            let (re, im) = samples
                .iter()
                .enumerate()
                .fold((0.0, 0.0), |(re, im), (i, &x)| {
                    let phase = w * i as f64;
                    (
                        re + f64::from(x) * phase.cos(),
                        im - f64::from(x) * phase.sin(),
                    )
                });
            re * re + im * im
        };
        (low_hz..=high_hz)
            .max_by(|&a, &b| magnitude(a).total_cmp(&magnitude(b)))
            .expect("a non-empty band")
    }

    /// Two violin notes, A4 then E5, a beat each at 120 BPM: audible, finite, not clipped, a
    /// second of notes and the release tail long, and each note at its own pitch.
    #[test]
    fn a_violin_phrase_sounds_at_its_written_pitches() {
        const RATE: u32 = 16_000;
        let notes = [note(69, 0.0, 1.0), note(76, 1.0, 1.0)];
        let audio = render(&notes, 120.0, 40, RATE).unwrap();
        let seconds = audio.len() as f64 / f64::from(RATE);
        assert!(
            (seconds - (1.0 + RELEASE_TAIL_S)).abs() < 0.01,
            "{seconds} s"
        );
        assert!(audio.iter().all(|x| x.is_finite()));
        let peak = audio.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert!(peak > 0.05 && peak < 1.0, "peak {peak}");
        // The middle 0.25 s of each note (its attack and release left out), from 100 Hz to
        // 2 kHz: an octave below either note and its harmonics up to the third are in the band
        // (FluidR3's violin is strongest at the fundamental here).
        let middle = |start_s: f64| {
            let start = (start_s * f64::from(RATE)) as usize;
            &audio[start..start + RATE as usize / 4]
        };
        for (start_s, hz) in [(0.125, 440.0), (0.625, 659.26)] {
            let found = dominant_hz(middle(start_s), RATE, 100, 2000);
            let cents = 1200.0 * (f64::from(found) / hz).log2();
            assert!(
                cents.abs() < 30.0,
                "{found} Hz for {hz} Hz ({cents:.0} cents)"
            );
        }
    }
}
