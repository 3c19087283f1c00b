//! How close a voice sounds to the instrument it imitates (`wavejam voice-checks`, the README's
//! Voices table): validation melodies rendered by a voice and by fluidsynth's instrument, compared
//! by their spectra (multi-resolution STFT distance) and by the pitch a tracker hears in them.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

use crate::lab::fluidsynth;
use crate::lab::voice_data::Instrument;
use crate::lab::voice_render::{render_notes, RenderVoice};
use crate::music::Note;
use crate::voice::analysis::{analyse, hz_of_midi, midi_of_hz, AnalysisSettings};
use crate::voice::SPECTRUM_FLOOR;

/// The rate both signals are compared at, Hz.
pub const CHECK_RATE: u32 = 24_000;
/// FFT sizes of the STFT distance (hop a quarter of each).
pub const STFT_SIZES: [usize; 3] = [512, 1024, 2048];
/// Beats of each melody played (at its file's tempo, 120 BPM in the corpus: 16 s).
const MELODY_BEATS: f64 = 32.0;
/// A frame is heard at the written pitch within this many cents.
const PITCH_CENTS: f32 = 25.0;

/// The natural-log magnitude spectra of one FFT size, as [`stft_distance`] compares them:
/// Hann-windowed frames, magnitudes scaled so that a full-scale sine's bin is 1, floored at
/// [`SPECTRUM_FLOOR`] (silence in both signals is no difference, and the log stays finite).
struct LogSpectra {
    size: usize,
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    scale: f32,
    input: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
}

impl LogSpectra {
    fn new(planner: &mut RealFftPlanner<f32>, size: usize) -> Self {
        let fft = planner.plan_fft_forward(size);
        let window: Vec<f32> = (0..size)
            .map(|n| 0.5 - 0.5 * (std::f32::consts::TAU * n as f32 / size as f32).cos())
            .collect();
        let scale = 2.0 / window.iter().sum::<f32>();
        Self {
            size,
            input: fft.make_input_vec(),
            spectrum: fft.make_output_vec(),
            fft,
            window,
            scale,
        }
    }

    /// The first sample of every frame over `len` samples (one every quarter size).
    fn starts(&self, len: usize) -> std::iter::StepBy<std::ops::Range<usize>> {
        (0..len.saturating_sub(self.size - 1)).step_by(self.size / 4)
    }

    /// The log magnitudes of the frame of `signal` from `start` into `out` (one per bin).
    fn frame(&mut self, signal: &[f32], start: usize, out: &mut Vec<f32>) {
        for ((x, s), w) in self
            .input
            .iter_mut()
            .zip(&signal[start..])
            .zip(&self.window)
        {
            *x = s * w;
        }
        // NOTE: the buffers are the plan's own sizes, so the transform cannot fail.
        let _ = self.fft.process(&mut self.input, &mut self.spectrum);
        out.clear();
        out.extend(
            self.spectrum
                .iter()
                .map(|c| (c.norm() * self.scale).max(SPECTRUM_FLOOR).ln()),
        );
    }
}

/// The mean absolute difference of two frames' log magnitudes, over their bins.
fn frame_distance(x: &[f32], y: &[f32]) -> f64 {
    x.iter()
        .zip(y)
        .map(|(p, q)| f64::from((p - q).abs()))
        .sum::<f64>()
        / x.len().max(1) as f64
}

/// The mean absolute difference of the natural-log STFT magnitudes of `a` and `b` (at the same
/// rate, compared over the shorter one's length), averaged over [`STFT_SIZES`]: frames every
/// quarter size, as [`LogSpectra`] takes them.
pub fn stft_distance(a: &[f32], b: &[f32]) -> f64 {
    let len = a.len().min(b.len());
    let mut planner = RealFftPlanner::<f32>::new();
    let (mut x, mut y) = (Vec::new(), Vec::new());
    let mut total = 0.0;
    for size in STFT_SIZES {
        let mut spectra = LogSpectra::new(&mut planner, size);
        let (mut sum, mut frames) = (0.0f64, 0usize);
        for start in spectra.starts(len) {
            spectra.frame(a, start, &mut x);
            spectra.frame(b, start, &mut y);
            sum += frame_distance(&x, &y);
            frames += 1;
        }
        total += sum / frames.max(1) as f64;
    }
    total / STFT_SIZES.len() as f64
}

/// The FFT size [`distance_breakdown`] looks at (the middle one of [`STFT_SIZES`]).
pub const BREAKDOWN_SIZE: usize = 1024;
/// A frame is in a held note from this long after the note's onset (an instrument's attack is
/// over by then), seconds.
const SETTLED_S: f64 = 0.08;
/// A bin is at a harmonic when it is within this many bins of a multiple of the note's pitch.
const HARMONIC_BINS: f64 = 1.5;

/// Frames of one kind: their share of all frames and their mean distance.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct FrameShare {
    /// Share of all frames.
    pub share: f64,
    /// Their mean distance (mean absolute natural-log difference over the bins).
    pub distance: f64,
}

/// Where a voice's STFT distance to its instrument lies, in frames of [`BREAKDOWN_SIZE`]
/// samples: each frame's distance is what [`stft_distance`] averages, so the three kinds' shares
/// times their distances add up to that size's distance.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct DistanceBreakdown {
    /// Frames wholly inside one written note, from [`SETTLED_S`] after its onset.
    pub held: FrameShare,
    /// Frames with a note change in them: an onset (or its first [`SETTLED_S`]), a note's end,
    /// two notes.
    pub changes: FrameShare,
    /// Frames where no note is written (rests, the releases after a phrase, the end).
    pub unwritten: FrameShare,
    /// In held frames: the mean absolute log difference in the bins at the note's harmonics
    /// (within [`HARMONIC_BINS`] of a multiple of its pitch)…
    pub at_harmonics: f64,
    /// …in the bins between them…
    pub between_harmonics: f64,
    /// …and there the mean of voice − instrument (below 0: the voice is quieter between its
    /// harmonics).
    pub between_bias: f64,
}

/// The [`DistanceBreakdown`] of `renders` against `references`, the renderings of `melodies`
/// (notes in beats at `tempo_bpm`, audio at [`CHECK_RATE`]), over all their frames together.
pub fn distance_breakdown(
    renders: &[Vec<f32>],
    references: &[Vec<f32>],
    melodies: &[Vec<Note>],
    tempo_bpm: f64,
) -> DistanceBreakdown {
    let mut spectra = LogSpectra::new(&mut RealFftPlanner::<f32>::new(), BREAKDOWN_SIZE);
    let bin_hz = f64::from(CHECK_RATE) / BREAKDOWN_SIZE as f64;
    let seconds = |beats: f64| beats * 60.0 / tempo_bpm;
    let (mut x, mut y) = (Vec::new(), Vec::new());
    // Indices of the kinds of frame in `frames` and `sums`.
    const HELD: usize = 0;
    const CHANGES: usize = 1;
    const UNWRITTEN: usize = 2;
    // Frames and summed distances of held, changing and unwritten frames; bins and summed
    // differences at and between harmonics.
    let (mut frames, mut sums) = ([0usize; 3], [0.0f64; 3]);
    let (mut harmonic, mut between, mut between_signed) = ((0usize, 0.0f64), (0usize, 0.0f64), 0.0);
    for ((render, reference), notes) in renders.iter().zip(references).zip(melodies) {
        let len = render.len().min(reference.len());
        for start in spectra.starts(len) {
            spectra.frame(render, start, &mut x);
            spectra.frame(reference, start, &mut y);
            let distance = frame_distance(&x, &y);
            let from = start as f64 / f64::from(CHECK_RATE);
            let to = (start + BREAKDOWN_SIZE) as f64 / f64::from(CHECK_RATE);
            let mut sounding = notes
                .iter()
                .filter(|n| seconds(n.onset_beats) < to && from < seconds(n.end_beats()));
            let kind = match (sounding.next(), sounding.next()) {
                (None, _) => UNWRITTEN,
                (Some(n), None)
                    if from >= seconds(n.onset_beats) + SETTLED_S
                        && to <= seconds(n.end_beats()) =>
                {
                    let f0_bins = f64::from(hz_of_midi(f32::from(n.pitch))) / bin_hz;
                    for (bin, (p, q)) in x.iter().zip(&y).enumerate() {
                        let k = (bin as f64 / f0_bins).round();
                        let difference = f64::from(p - q);
                        if k >= 1.0 && (bin as f64 - k * f0_bins).abs() <= HARMONIC_BINS {
                            harmonic = (harmonic.0 + 1, harmonic.1 + difference.abs());
                        } else {
                            between = (between.0 + 1, between.1 + difference.abs());
                            between_signed += difference;
                        }
                    }
                    HELD
                }
                _ => CHANGES,
            };
            frames[kind] += 1;
            sums[kind] += distance;
        }
    }
    let all = frames.iter().sum::<usize>().max(1) as f64;
    let share = |kind: usize| FrameShare {
        share: frames[kind] as f64 / all,
        distance: sums[kind] / frames[kind].max(1) as f64,
    };
    DistanceBreakdown {
        held: share(HELD),
        changes: share(CHANGES),
        unwritten: share(UNWRITTEN),
        at_harmonics: harmonic.1 / harmonic.0.max(1) as f64,
        between_harmonics: between.1 / between.0.max(1) as f64,
        between_bias: between_signed / between.0.max(1) as f64,
    }
}

/// What a pitch tracker hears in a rendering of `notes` (beats at `tempo_bpm`, `audio` at
/// `rate`): (share of the voiced frames where a written note sounds that are within
/// [`PITCH_CENTS`] of it, share of them an octave or more off).
pub fn pitch_accuracy(audio: &[f32], rate: u32, notes: &[Note], tempo_bpm: f64) -> (f64, f64) {
    let settings = AnalysisSettings {
        min_f0: 100.0,
        max_f0: 2_800.0,
        ..AnalysisSettings::new(rate)
    };
    let analysis = analyse(audio, &settings);
    let (mut voiced, mut right, mut octave) = (0usize, 0usize, 0usize);
    for (i, frame) in analysis.frames.iter().enumerate() {
        let Some(f0) = frame.f0 else { continue };
        let beats = analysis.frame_sample(i) as f64 / f64::from(rate) * tempo_bpm / 60.0;
        let Some(note) = notes
            .iter()
            .find(|n| n.onset_beats <= beats && beats < n.onset_beats + n.duration_beats)
        else {
            continue;
        };
        voiced += 1;
        let cents = (midi_of_hz(f0) - f32::from(note.pitch)) * 100.0;
        if cents.abs() <= PITCH_CENTS {
            right += 1;
        } else if cents.abs() >= 1_150.0
            && (cents.abs() - (cents.abs() / 1_200.0).round() * 1_200.0).abs() <= 50.0
        {
            octave += 1;
        }
    }
    let share = |n: usize| n as f64 / voiced.max(1) as f64;
    (share(right), share(octave))
}

/// Around a note boundary, the window a click would be in: from this long before it…
const CLICK_BEFORE_S: f64 = 0.002;
/// …to this long after it.
const CLICK_AFTER_S: f64 = 0.005;
/// The sound around the window it is compared with, on each side, seconds.
const CLICK_CONTEXT_S: f64 = 0.05;
/// A step this many times the largest around it is a click.
const CLICK_RATIO: f32 = 2.0;

/// The share of note boundaries (onsets and ends of `notes`, beats at `tempo_bpm`, in `audio`
/// at `rate`) where the sound jumps: the largest step from one sample to the next within
/// [`CLICK_BEFORE_S`] before to [`CLICK_AFTER_S`] after the boundary is over [`CLICK_RATIO`]
/// times the largest in the [`CLICK_CONTEXT_S`] on either side of that window. A note that
/// starts or stops without a ramp does; one that rises or fades over a few milliseconds does
/// not.
pub fn clicks(audio: &[f32], rate: u32, notes: &[Note], tempo_bpm: f64) -> f64 {
    let sample = |seconds: f64| (seconds * f64::from(rate)).round().max(0.0) as usize;
    let step = |range: std::ops::Range<usize>| {
        let range = range.start.min(audio.len())..range.end.min(audio.len());
        audio[range]
            .windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .fold(0.0f32, f32::max)
    };
    let boundaries: Vec<f64> = notes
        .iter()
        .flat_map(|n| [n.onset_beats, n.end_beats()])
        .map(|beats| beats * 60.0 / tempo_bpm)
        .collect();
    let jumps = boundaries
        .iter()
        .filter(|&&t| {
            let (from, to) = (sample(t - CLICK_BEFORE_S), sample(t + CLICK_AFTER_S));
            let context = sample(CLICK_CONTEXT_S);
            let around = step(from.saturating_sub(context)..from).max(step(to..to + context));
            step(from..to) > CLICK_RATIO * around
        })
        .count();
    jumps as f64 / boundaries.len().max(1) as f64
}

/// The first [`MELODY_BEATS`] beats of `notes`, moved by octaves into `instrument`'s range
/// (as far as the melody's span allows).
pub fn in_range(notes: &[Note], instrument: &Instrument) -> Vec<Note> {
    let head: Vec<Note> = notes
        .iter()
        .filter(|n| n.onset_beats < MELODY_BEATS)
        .copied()
        .collect();
    let low = head
        .iter()
        .map(|n| n.pitch)
        .min()
        .unwrap_or(instrument.lowest);
    let high = head
        .iter()
        .map(|n| n.pitch)
        .max()
        .unwrap_or(instrument.highest);
    let mut shift = 0i32;
    while i32::from(low) + shift < i32::from(instrument.lowest) {
        shift += 12;
    }
    while i32::from(high) + shift > i32::from(instrument.highest)
        && i32::from(low) + shift - 12 >= i32::from(instrument.lowest)
    {
        shift -= 12;
    }
    head.iter()
        .map(|n| Note {
            pitch: (i32::from(n.pitch) + shift).clamp(0, 127) as u8,
            ..*n
        })
        .collect()
}

/// One voice's figures against an instrument's rendering, over the melodies.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct VoiceCheck {
    pub voice: String,
    /// Mean [`stft_distance`] to fluidsynth's rendering.
    pub stft_distance: f64,
    /// Where that distance lies.
    pub breakdown: DistanceBreakdown,
    /// [`pitch_accuracy`]'s shares over all frames of all melodies.
    pub pitch_within_25_cents: f64,
    pub octave_errors: f64,
    /// [`clicks`] over all note boundaries.
    pub clicks: f64,
    /// Over the renders: largest |sample|, largest |mean| (DC offset), all samples finite.
    pub peak: f32,
    pub dc_offset: f64,
    pub finite: bool,
}

/// Checks `voices` (name, voice) against fluidsynth's `instrument` on `melodies` (notes in
/// beats, at `tempo_bpm`), and fluidsynth's rendering itself as the first row (its distance to
/// itself is 0; its pitch figures are what a voice is held to).
///
/// # Errors
/// fluidsynth failing, or a render that cannot be resampled.
pub fn voice_checks(
    melodies: &[Vec<Note>],
    tempo_bpm: f64,
    instrument: &Instrument,
    voices: &[(String, RenderVoice)],
) -> Result<Vec<VoiceCheck>, String> {
    let references = melodies
        .iter()
        .map(|m| fluidsynth::render(m, tempo_bpm, instrument.program, CHECK_RATE))
        .collect::<Result<Vec<_>, _>>()?;
    let mut rows = vec![check(
        &format!("fluidsynth program {}", instrument.program),
        &references,
        &references,
        melodies,
        tempo_bpm,
    )];
    for (name, voice) in voices {
        let renders = melodies
            .iter()
            .map(|m| render_notes(m, tempo_bpm, voice, CHECK_RATE))
            .collect::<Result<Vec<_>, _>>()?;
        rows.push(check(name, &renders, &references, melodies, tempo_bpm));
    }
    Ok(rows)
}

/// The figures of `renders` against `references`.
fn check(
    name: &str,
    renders: &[Vec<f32>],
    references: &[Vec<f32>],
    melodies: &[Vec<Note>],
    tempo_bpm: f64,
) -> VoiceCheck {
    let n = renders.len().max(1) as f64;
    let distance = renders
        .iter()
        .zip(references)
        .map(|(r, f)| stft_distance(r, f))
        .sum::<f64>()
        / n;
    let pitches: Vec<(f64, f64)> = renders
        .iter()
        .zip(melodies)
        .map(|(r, m)| pitch_accuracy(r, CHECK_RATE, m, tempo_bpm))
        .collect();
    VoiceCheck {
        voice: name.to_string(),
        stft_distance: distance,
        breakdown: distance_breakdown(renders, references, melodies, tempo_bpm),
        pitch_within_25_cents: pitches.iter().map(|p| p.0).sum::<f64>() / n,
        octave_errors: pitches.iter().map(|p| p.1).sum::<f64>() / n,
        clicks: renders
            .iter()
            .zip(melodies)
            .map(|(r, m)| clicks(r, CHECK_RATE, m, tempo_bpm))
            .sum::<f64>()
            / n,
        peak: renders.iter().flatten().fold(0.0f32, |m, v| m.max(v.abs())),
        dc_offset: renders
            .iter()
            .map(|r| (r.iter().map(|&v| f64::from(v)).sum::<f64>() / r.len().max(1) as f64).abs())
            .fold(0.0, f64::max),
        finite: renders.iter().flatten().all(|v| v.is_finite()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(hz: f32, amplitude: f32, samples: usize) -> Vec<f32> {
        (0..samples)
            .map(|n| amplitude * (std::f32::consts::TAU * hz * n as f32 / 24_000.0).sin())
            .collect()
    }

    #[test]
    fn the_stft_distance_is_zero_for_the_same_sound_and_grows_with_the_difference() {
        let a = sine(440.0, 0.5, 24_000);
        assert_eq!(stft_distance(&a, &a), 0.0);
        // Noise fills every bin: half its level is ln 2 apart in each.
        let mut seed = 1u32;
        let noise: Vec<f32> = (0..24_000)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                seed as f32 / u32::MAX as f32 - 0.5
            })
            .collect();
        let half: Vec<f32> = noise.iter().map(|v| v * 0.5).collect();
        let level = stft_distance(&noise, &half);
        assert!((level - std::f64::consts::LN_2).abs() < 1e-3, "{level}");
        // A fifth away is further than half as loud.
        let quieter = sine(440.0, 0.25, 24_000);
        let other = sine(660.0, 0.5, 24_000);
        assert!(stft_distance(&a, &other) > 2.0 * stft_distance(&a, &quieter));
    }

    /// Two noises of one level but not the same noise are ln 2 apart: in every bin the ratio of
    /// two independent exponential powers has a standard logistic log, whose mean absolute
    /// value is 2 ln 2, and a magnitude is the square root of a power. A voice that breathes
    /// as much as its instrument, but not the very breath of its recording, pays that between
    /// the harmonics.
    #[test]
    fn independent_noises_of_one_level_are_ln_2_apart() {
        let distance = stft_distance(&white_noise(1, 48_000), &white_noise(2, 48_000));
        assert!(
            (distance - std::f64::consts::LN_2).abs() < 0.01,
            "{distance}"
        );
    }

    /// `samples` of seeded white noise (xorshift), uniform in ±0.5.
    fn white_noise(mut seed: u32, samples: usize) -> Vec<f32> {
        (0..samples)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                seed as f32 / u32::MAX as f32 - 0.5
            })
            .collect()
    }

    /// One note of A440 (0.25–0.75 s at 120 BPM) with all its harmonics below 12 kHz at 0.02
    /// each, and white noise of `noise` peak to peak under it, in 1 s of audio.
    fn tone_with_noise(noise: f32) -> Vec<f32> {
        let harmonics: Vec<Vec<f32>> = (1..=27)
            .map(|k| sine(440.0 * k as f32, 0.02, 24_000))
            .collect();
        white_noise(7, 24_000)
            .iter()
            .enumerate()
            .map(|(i, white)| {
                if (6_000..18_000).contains(&i) {
                    harmonics.iter().map(|h| h[i]).sum::<f32>() + noise * white
                } else {
                    0.0
                }
            })
            .collect()
    }

    #[test]
    fn the_breakdown_adds_up_to_the_distance_and_tells_harmonics_from_what_lies_between() {
        let note = Note {
            pitch: 69,
            velocity: 100,
            onset_beats: 0.5,
            duration_beats: 1.0,
        };
        let reference = tone_with_noise(0.1);
        // The same tone over the same noise at half its level: up to ln 2 quieter between the
        // harmonics (less where a harmonic's skirt reaches), nearly the same at them.
        let render: Vec<f32> = reference
            .iter()
            .zip(tone_with_noise(0.0))
            .map(|(r, t)| t + 0.5 * (r - t))
            .collect();
        let b = distance_breakdown(
            std::slice::from_ref(&render),
            std::slice::from_ref(&reference),
            &[vec![note]],
            120.0,
        );
        let kinds = [b.held, b.changes, b.unwritten];
        assert!(kinds.iter().all(|k| k.share > 0.0), "{b:?}");
        assert!((kinds.iter().map(|k| k.share).sum::<f64>() - 1.0).abs() < 1e-12);
        // The same frames as the distance at this size.
        let mut spectra = LogSpectra::new(&mut RealFftPlanner::new(), BREAKDOWN_SIZE);
        let (mut x, mut y, mut sum, mut frames) = (Vec::new(), Vec::new(), 0.0, 0);
        for start in spectra.starts(render.len()) {
            spectra.frame(&render, start, &mut x);
            spectra.frame(&reference, start, &mut y);
            sum += frame_distance(&x, &y);
            frames += 1;
        }
        let total: f64 = kinds.iter().map(|k| k.share * k.distance).sum();
        assert!((total - sum / f64::from(frames)).abs() < 1e-9, "{total}");
        assert_eq!(b.unwritten.distance, 0.0, "silence in both");
        let ln2 = std::f64::consts::LN_2;
        assert!(b.at_harmonics < 0.5 * b.between_harmonics, "{b:?}");
        assert!(
            b.between_bias > -ln2 - 0.01 && b.between_bias < -0.45,
            "{b:?}"
        );
        // The voice louder between its harmonics reads the other way.
        let louder = distance_breakdown(&[reference], &[render], &[vec![note]], 120.0);
        assert!(
            (louder.between_bias + b.between_bias).abs() < 1e-9,
            "{louder:?}"
        );
    }

    /// A note cut off mid-wave clicks; the same note faded over 5 ms does not.
    #[test]
    fn a_note_cut_off_clicks_and_a_faded_one_does_not() {
        let note = Note {
            pitch: 69,
            velocity: 100,
            onset_beats: 0.5,
            duration_beats: 1.0,
        };
        // 0.25 s to 0.75 s at 120 BPM, starting and ending near a peak.
        let mut cut = vec![0.0; 24_000];
        cut[6_000..18_000].copy_from_slice(&sine(440.0, 0.3, 12_014)[14..]);
        assert_eq!(
            clicks(&cut, 24_000, &[note], 120.0),
            1.0,
            "a start and end mid-wave"
        );
        let mut faded = cut.clone();
        for i in 0..120 {
            let ramp = i as f32 / 120.0;
            faded[6_000 + i] *= ramp;
            faded[18_000 - 1 - i] *= ramp;
        }
        assert_eq!(clicks(&faded, 24_000, &[note], 120.0), 0.0);
    }

    #[test]
    fn the_pitch_check_hears_right_notes_and_octave_errors() {
        let note = Note {
            pitch: 69,
            velocity: 100,
            onset_beats: 0.0,
            duration_beats: 2.0,
        };
        let right = pitch_accuracy(&sine(440.0, 0.3, 24_000), 24_000, &[note], 120.0);
        assert!(right.0 > 0.95 && right.1 == 0.0, "{right:?}");
        let octave = pitch_accuracy(&sine(880.0, 0.3, 24_000), 24_000, &[note], 120.0);
        assert!(octave.0 == 0.0 && octave.1 > 0.95, "{octave:?}");
        let flat = pitch_accuracy(&sine(427.0, 0.3, 24_000), 24_000, &[note], 120.0);
        assert!(
            flat.0 == 0.0 && flat.1 == 0.0,
            "half a semitone flat: {flat:?}"
        );
    }
}
