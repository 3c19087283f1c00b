//! A folder of monophonic recordings made into training material for a voice: each WAV file,
//! mixed to mono and resampled to the voice's rate, with the control signals its own audio
//! implies (pitch by YIN, loudness in dB, onsets; [`crate::voice::analysis`]), so a voice can
//! be trained on any instrument without a score.

use std::path::{Path, PathBuf};

use crate::voice::analysis::{analyse, midi_of_hz, Analysis, AnalysisSettings};
use crate::voice::controls::{Excitation, Target, SILENCE_DB};
use crate::voice::resample::resample;
use crate::voice::{Dynamics, CONTROLS};

/// Lowest and highest pitch the analysis looks for, Hz (a cello's C2 to a piccolo's top).
const F0_RANGE: (f32, f32) = (60.0, 2_600.0);
/// Attack and release times given to a trained voice's dynamics, seconds (the analysis does not
/// measure them; these suit bowed and blown instruments).
const ATTACK_S: f32 = 0.03;
const RELEASE_S: f32 = 0.2;
/// Sample rates read, Hz: a header outside them is broken (and the resampler's cost grows with
/// the rate's ratio to the voice's).
const FILE_RATES: std::ops::RangeInclusive<u32> = 8_000..=384_000;

/// One recording at the voice's rate, with its controls.
#[derive(Debug, Clone)]
pub struct Recording {
    pub path: PathBuf,
    /// The audio, mono.
    pub audio: Vec<f32>,
    /// Per sample: the controls (see [`crate::voice::controls`]).
    pub controls: Vec<[f32; CONTROLS]>,
    /// Per sample: the amplitude of the measured loudness.
    pub amplitude: Vec<f32>,
    /// Each voiced analysis frame's (pitch as a MIDI key, loudness in dB), for the voice's
    /// dynamics.
    pub voiced: Vec<(f32, f32)>,
}

impl Recording {
    /// Reads, resamples to `rate` and analyses one WAV file.
    pub fn read(path: &Path, rate: u32) -> Result<Self, String> {
        let (samples, file_rate) = read_mono(path)?;
        let audio = resample(&samples, file_rate, rate)?;
        let settings = AnalysisSettings {
            min_f0: F0_RANGE.0,
            max_f0: F0_RANGE.1,
            ..AnalysisSettings::new(rate)
        };
        let analysis = analyse(&audio, &settings);
        let targets = targets(&analysis, audio.len(), rate);
        let mut excitation = Excitation::new(rate);
        let (controls, amplitude) = targets.iter().map(|t| excitation.next(t)).unzip();
        let voiced = analysis
            .frames
            .iter()
            .filter_map(|f| Some((midi_of_hz(f.f0?), f.loudness_db)))
            .collect();
        Ok(Self {
            path: path.to_path_buf(),
            audio,
            controls,
            amplitude,
            voiced,
        })
    }

    /// Samples.
    pub fn len(&self) -> usize {
        self.audio.len()
    }

    /// Whether it has no samples.
    pub fn is_empty(&self) -> bool {
        self.audio.is_empty()
    }
}

/// The WAV files under `dir` (recursively), sorted by path.
pub fn wav_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries =
            std::fs::read_dir(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("wav"))
            {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The samples of a WAV file mixed to mono (as f32 in ±1) and its rate; an error for a rate
/// outside [`FILE_RATES`] or a sample that is not a number (one would make the whole training
/// run NaN).
fn read_mono(path: &Path) -> Result<(Vec<f32>, u32), String> {
    let fail = |e: hound::Error| format!("cannot read {}: {e}", path.display());
    let mut reader = hound::WavReader::open(path).map_err(fail)?;
    let spec = reader.spec();
    if !FILE_RATES.contains(&spec.sample_rate) || !(1..=32).contains(&spec.bits_per_sample) {
        return Err(format!(
            "{}: {} Hz, {} bits a sample (read: {} to {} Hz, up to 32 bits)",
            path.display(),
            spec.sample_rate,
            spec.bits_per_sample,
            FILE_RATES.start(),
            FILE_RATES.end()
        ));
    }
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader.samples::<f32>().collect::<Result<_, _>>(),
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            reader
                .samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale))
                .collect::<Result<_, _>>()
        }
    }
    .map_err(fail)?;
    if let Some(at) = interleaved.iter().position(|x| !x.is_finite()) {
        return Err(format!("{}: sample {at} is not a number", path.display()));
    }
    let channels = usize::from(spec.channels.max(1));
    let mono = interleaved
        .chunks_exact(channels)
        .map(|frame| frame.iter().sum::<f32>() / channels as f32)
        .collect();
    Ok((mono, spec.sample_rate))
}

/// What the line does at each of `samples` samples, from the analysis of its audio: pitch and
/// loudness interpolated between frames (an unvoiced frame keeps the pitch of the nearest voiced
/// one before it, or after it at the start), time since the last onset.
pub fn targets(analysis: &Analysis, samples: usize, rate: u32) -> Vec<Target> {
    let frames = &analysis.frames;
    if frames.is_empty() {
        return vec![Target::SILENT; samples];
    }
    let first_voiced = frames.iter().find_map(|f| f.f0).unwrap_or(440.0);
    let mut held = first_voiced;
    let pitch: Vec<f32> = frames
        .iter()
        .map(|f| {
            held = f.f0.unwrap_or(held);
            held
        })
        .collect();
    let mut onsets = analysis
        .note_onsets()
        .into_iter()
        .map(|f| analysis.frame_sample(f))
        .peekable();
    let mut last_onset: Option<usize> = None;
    let hop = analysis.frame_sample(1).max(1);
    (0..samples)
        .map(|t| {
            while onsets.peek().is_some_and(|&s| s <= t) {
                last_onset = onsets.next();
            }
            let position = t as f32 / hop as f32;
            let i = (position.floor() as usize).min(frames.len() - 1);
            let j = (i + 1).min(frames.len() - 1);
            let w = (position - i as f32).clamp(0.0, 1.0);
            let lerp = |a: f32, b: f32| a + w * (b - a);
            Target {
                f0_hz: lerp(pitch[i], pitch[j]),
                loudness_db: lerp(frames[i].loudness_db, frames[j].loudness_db).max(SILENCE_DB),
                since_onset_s: last_onset.map_or(Target::SILENT.since_onset_s, |s| {
                    (t - s) as f32 / rate as f32
                }),
            }
        })
        .collect()
}

/// Voiced frames a key needs for its own loudness offset (0.25 s at a 5 ms hop).
const FRAMES_PER_KEY: usize = 50;

/// The dynamics of a voice trained on `recordings`: each key's offset is the median loudness of
/// its voiced frames less the median of all keys' medians; velocity 1 plays at the 2nd
/// percentile of the frames' loudness less their key's offset, velocity 127 at the 98th.
///
/// # Errors
/// No voiced frame at all (nothing to learn a pitch from).
pub fn dynamics(recordings: &[Recording]) -> Result<Dynamics, String> {
    let frames: Vec<(u8, f32)> = recordings
        .iter()
        .flat_map(|r| r.voiced.iter())
        .map(|&(midi, db)| (midi.round().clamp(0.0, 127.0) as u8, db))
        .collect();
    if frames.is_empty() {
        return Err("the recordings have no pitched sound in them".into());
    }
    // NOTE: empty only where no key has enough frames: then there are no offsets to centre.
    let median = |mut v: Vec<f32>| {
        v.sort_by(f32::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let key_medians: Vec<(u8, f32)> = (0..128u8)
        .filter_map(|key| {
            let levels: Vec<f32> = frames.iter().filter(|f| f.0 == key).map(|f| f.1).collect();
            (levels.len() >= FRAMES_PER_KEY).then(|| (key, median(levels)))
        })
        .collect();
    let centre = median(key_medians.iter().map(|k| k.1).collect());
    let key_offsets_db: Vec<(u8, f32)> = key_medians
        .iter()
        .map(|&(key, db)| (key, (db - centre).clamp(-40.0, 40.0)))
        .collect();
    let flat = Dynamics {
        quiet_db: 0.0,
        loud_db: 0.0,
        attack_s: ATTACK_S,
        release_s: RELEASE_S,
        key_offsets_db,
    };
    let mut levels: Vec<f32> = frames
        .iter()
        .map(|&(key, db)| db - flat.key_offset_db(key))
        .collect();
    levels.sort_by(f32::total_cmp);
    let at = |q: f32| levels[((levels.len() - 1) as f32 * q).round() as usize];
    let dynamics = Dynamics {
        quiet_db: at(0.02).max(-80.0),
        loud_db: at(0.98).clamp(-80.0, 0.0),
        ..flat
    };
    dynamics.validate()?;
    Ok(dynamics)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_kit::TempDir;

    fn write_wav(path: &Path, rate: u32, samples: &[f32]) {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: rate,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let mut writer = hound::WavWriter::create(path, spec).unwrap();
        for &x in samples {
            writer.write_sample(x).unwrap();
        }
        writer.finalize().unwrap();
    }

    /// A recording with a sample that is not a number, or at a rate no recorder makes, is
    /// refused with its name and the reason; a good one reads.
    #[test]
    fn a_nan_sample_or_a_broken_rate_is_refused_by_name() {
        let dir = TempDir::new("recordings");
        let tone: Vec<f32> = (0..4800)
            .map(|i| 0.3 * (i as f32 * 440.0 * std::f32::consts::TAU / 48_000.0).sin())
            .collect();
        let good = dir.0.join("good.wav");
        write_wav(&good, 48_000, &tone);
        assert!(Recording::read(&good, 24_000).is_ok());
        let mut broken = tone.clone();
        broken[100] = f32::NAN;
        let nan = dir.0.join("nan.wav");
        write_wav(&nan, 48_000, &broken);
        let err = Recording::read(&nan, 24_000).unwrap_err();
        assert!(
            err.contains("nan.wav") && err.contains("not a number"),
            "{err}"
        );
        let slow = dir.0.join("slow.wav");
        write_wav(&slow, 1_000, &tone);
        let err = Recording::read(&slow, 24_000).unwrap_err();
        assert!(err.contains("slow.wav") && err.contains("1000 Hz"), "{err}");
    }
}
