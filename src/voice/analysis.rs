//! Analysis of a monophonic recording into the neural voice's control signals: f0 (YIN),
//! periodicity and loudness per frame, and the frames where notes start.
//!
//! It serves two ends: deriving a voice's training data from a recording of the musician's own
//! instrument, and measuring the pitch accuracy of rendered audio in checks. Offline code: it
//! allocates freely.

use std::ops::Range;

/// The loudness floor, dB relative to full scale: what silence reports.
pub const SILENCE_DB: f32 = -100.0;

/// Frames quieter than this (dB relative to full scale) are unvoiced whatever YIN finds: a
/// reverb tail or hiss is not a note.
const VOICING_FLOOR_DB: f32 = -60.0;

/// A pitch change that starts a new note, semitones: above vibrato's ±0.3, below a semitone.
const NOTE_CHANGE_SEMITONES: f32 = 0.5;

/// The shortest note, seconds: a new pitch must last this long to start a note, a voiced run
/// this long to count as one, and two onsets are at least this far apart.
const MIN_NOTE_S: f32 = 0.05;

/// How far back a note's reference pitch looks, seconds: a whole cycle of a 5 Hz vibrato, so
/// the reference sits at the vibrato's centre.
const REFERENCE_S: f32 = 0.2;

/// A rise in loudness, dB, within `RISE_S` seconds that re-articulates a voiced note.
const RISE_DB: f32 = 6.0;
/// The time a re-articulating rise in loudness happens within, seconds.
const RISE_S: f32 = 0.02;

/// Half the power, dB: a level step at time t reaches half its final power in a symmetric
/// window centred on t, so an attack is dated where the loudness gets within this of its peak.
const HALF_POWER_DB: f32 = 3.010_3;

/// Settings of an analysis.
#[derive(Clone, Debug, PartialEq)]
pub struct AnalysisSettings {
    /// Sample rate of the recording, Hz.
    pub sample_rate: u32,
    /// Samples between frames.
    pub hop: usize,
    /// Lowest f0 searched, Hz; it sets the window length (two of its periods).
    pub min_f0: f32,
    /// Highest f0 searched, Hz.
    pub max_f0: f32,
    /// YIN's absolute threshold on the cumulative-mean-normalised difference (0.1–0.2
    /// typical): the first dip below it is the period; lower is stricter about voicing.
    pub threshold: f32,
}

impl AnalysisSettings {
    /// Frames every 5 ms (hop rounded to whole samples), f0 searched over 50–2000 Hz, threshold
    /// 0.15.
    pub fn new(sample_rate: u32) -> Self {
        Self {
            sample_rate,
            hop: (sample_rate as f32 * 0.005).round() as usize,
            min_f0: 50.0,
            max_f0: 2000.0,
            threshold: 0.15,
        }
    }

    /// The window the difference function and the loudness sum over, samples: two periods of
    /// the lowest f0, so even the longest period is seen twice.
    fn window_len(&self) -> usize {
        (2.0 * self.sample_rate as f32 / self.min_f0).ceil() as usize
    }

    /// The samples a frame's analysis reaches over: a window plus the longest lag, centred on
    /// the frame.
    fn span_len(&self) -> usize {
        self.window_len() + self.lags().end
    }

    /// The lags searched for a period, samples: the periods of `max_f0` down to `min_f0`.
    fn lags(&self) -> Range<usize> {
        let sample_rate = self.sample_rate as f32;
        let shortest = ((sample_rate / self.max_f0).floor() as usize).max(1);
        let longest = (sample_rate / self.min_f0).ceil() as usize;
        shortest..longest + 1
    }

    /// The nearest whole number of frames to `seconds`, at least one.
    fn frames_in(&self, seconds: f32) -> usize {
        ((seconds * self.sample_rate as f32 / self.hop as f32).round() as usize).max(1)
    }
}

/// One frame, centred on sample `index * hop`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Frame {
    /// Fundamental frequency, Hz; `None` where unvoiced (no dip below the threshold, or quieter
    /// than −60 dBFS).
    pub f0: Option<f32>,
    /// How periodic the frame is, 0–1: 1 − YIN's cumulative-mean-normalised difference at the
    /// chosen lag (at its lowest in the searched range where unvoiced).
    pub periodicity: f32,
    /// RMS level, Hann-weighted over the window (two periods of `min_f0`: 40 ms at the
    /// defaults), dB relative to full scale: a full-scale sine is −3.01 dB. Floored at
    /// `SILENCE_DB`.
    pub loudness_db: f32,
}

/// A recording's frames, with the settings that made them.
#[derive(Clone, Debug)]
pub struct Analysis {
    /// The settings the frames were made with.
    pub settings: AnalysisSettings,
    /// One frame every `settings.hop` samples, the first centred on sample 0, the last on or
    /// before the last sample.
    pub frames: Vec<Frame>,
}

/// Analyses a monophonic recording, samples in −1–1 at `settings.sample_rate`. Around the
/// recording's edges the frames see zeros.
///
/// # Panics
/// If the hop is zero, or the f0 range is not 0 < `min_f0` < `max_f0`.
pub fn analyse(samples: &[f32], settings: &AnalysisSettings) -> Analysis {
    assert!(settings.hop > 0, "the analysis hop is zero");
    assert!(
        0.0 < settings.min_f0 && settings.min_f0 < settings.max_f0,
        "the f0 range {}–{} Hz is empty",
        settings.min_f0,
        settings.max_f0
    );
    let window = settings.window_len();
    let lags = settings.lags();
    // A frame reaches half its span either side of its centre; the pad is wider than that.
    let pad = settings.span_len();
    let mut padded = vec![0.0; pad + samples.len() + pad];
    padded[pad..pad + samples.len()].copy_from_slice(samples);
    let hann: Vec<f32> = (0..window)
        .map(|n| {
            (std::f32::consts::PI * (n as f32 + 0.5) / window as f32)
                .sin()
                .powi(2)
        })
        .collect();
    let hann_sum: f32 = hann.iter().sum();
    // One lag past the longest, so the walk to a local minimum and the parabola have a
    // neighbour on the right.
    let mut normalised = vec![0.0; lags.end + 1];
    let sample_rate = settings.sample_rate as f32;
    let frames = (0..samples.len().div_ceil(settings.hop))
        .map(|index| {
            let centre = pad + index * settings.hop;
            let around = &padded[centre - window / 2..][..window];
            let power = around
                .iter()
                .zip(&hann)
                .map(|(x, w)| w * x * x)
                .sum::<f32>()
                / hann_sum;
            let loudness_db = (10.0 * power.log10()).max(SILENCE_DB);
            difference_function(&padded, centre, window, &mut normalised);
            cumulative_mean_normalise(&mut normalised);
            let (period, dip) = yin_period(&normalised, &lags, settings.threshold);
            Frame {
                f0: period
                    .filter(|_| loudness_db >= VOICING_FLOOR_DB)
                    .map(|period| sample_rate / period),
                periodicity: (1.0 - dip).clamp(0.0, 1.0),
                loudness_db,
            }
        })
        .collect();
    Analysis {
        settings: settings.clone(),
        frames,
    }
}

/// YIN's difference function d(τ) = Σ (x_j − x_{j+τ})² over `window` pairs, for every lag
/// τ < `difference.len()`. Each lag's pairs are centred on `centre` (an index into `padded`),
/// so short and long lags measure the same moment and a note change is dated alike by all.
fn difference_function(padded: &[f32], centre: usize, window: usize, difference: &mut [f32]) {
    for (lag, d) in difference.iter_mut().enumerate() {
        let start = centre - window / 2 - lag / 2;
        *d = squared_distance(
            &padded[start..start + window],
            &padded[start + lag..start + lag + window],
        );
    }
}

/// Σ (a_i − b_i)² over equal-length slices. Eight running sums let the compiler vectorise
/// (a single float sum is a serial dependency it may not reorder).
fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 8;
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    let mut sums = [0.0; LANES];
    for (a, b) in a_chunks.zip(b_chunks) {
        for ((sum, x), y) in sums.iter_mut().zip(a).zip(b) {
            *sum += (x - y) * (x - y);
        }
    }
    sums.iter().sum::<f32>() + tail
}

/// Turns d(τ) into YIN's cumulative-mean-normalised d'(τ) = d(τ) / ((1/τ) Σ_{j=1..τ} d(j)),
/// in place; d'(0) = 1, and 1 where everything so far is zero (silence).
fn cumulative_mean_normalise(difference: &mut [f32]) {
    let mut sum = 0.0_f64;
    for (lag, d) in difference.iter_mut().enumerate() {
        sum += f64::from(*d);
        *d = if lag == 0 || sum <= 0.0 {
            1.0
        } else {
            (f64::from(*d) * lag as f64 / sum) as f32
        };
    }
}

/// The period YIN picks in d' (`normalised`), samples with sub-sample precision, and the dip
/// there: the first lag in `lags` below `threshold`, walked down to its local minimum. `None`
/// where nothing goes below the threshold; the dip is then the lowest d' in `lags`.
fn yin_period(normalised: &[f32], lags: &Range<usize>, threshold: f32) -> (Option<f32>, f32) {
    match lags.clone().find(|&lag| normalised[lag] < threshold) {
        Some(mut lag) => {
            while lag + 1 < lags.end && normalised[lag + 1] < normalised[lag] {
                lag += 1;
            }
            let (offset, dip) =
                parabola_minimum(normalised[lag - 1], normalised[lag], normalised[lag + 1]);
            (Some(lag as f32 + offset), dip)
        }
        None => (
            None,
            normalised[lags.clone()]
                .iter()
                .copied()
                .fold(f32::INFINITY, f32::min),
        ),
    }
}

/// The vertex of the parabola through (−1, `left`), (0, `centre`), (1, `right`): its offset
/// (within ±0.5) and its value. The centre itself where the three do not bend upwards.
fn parabola_minimum(left: f32, centre: f32, right: f32) -> (f32, f32) {
    let curvature = left - 2.0 * centre + right;
    if curvature <= 0.0 {
        return (0.0, centre);
    }
    let offset = (0.5 * (left - right) / curvature).clamp(-0.5, 0.5);
    (offset, centre - 0.25 * (left - right) * offset)
}

impl Analysis {
    /// The sample index of frame `frame`'s centre.
    pub fn frame_sample(&self, frame: usize) -> usize {
        frame * self.settings.hop
    }

    /// Frames where a note starts: voiced after unvoiced, a pitch change of more than half a
    /// semitone that lasts at least 50 ms (vibrato, ±0.3 semitone at 5–7 Hz, does not), or a
    /// rise in loudness of more than 6 dB within 20 ms while voiced (a re-articulated same
    /// note). Voiced runs shorter than 50 ms are not notes; an onset follows the last by at
    /// least 50 ms. A legato change the frames straddle unvoiced is dated at the middle of that
    /// stretch; an attack where the loudness gets within 3 dB of its peak.
    pub fn note_onsets(&self) -> Vec<usize> {
        let min_note = self.settings.frames_in(MIN_NOTE_S);
        let span = self.settings.span_len().div_ceil(self.settings.hop);
        let mut candidates = Vec::new();
        let mut previous_end = None;
        for run in self.voiced_runs() {
            let gap_start = previous_end.replace(run.end);
            if run.len() < min_note {
                continue;
            }
            // A gap shorter than a frame's span, between voiced frames, is the stretch where
            // the frames straddle a note change and see two pitches: the change is its middle.
            candidates.push(match gap_start {
                Some(gap_start) if run.start - gap_start <= span => (gap_start + run.start) / 2,
                _ => run.start,
            });
            candidates.extend(self.pitch_changes(run.clone(), min_note));
            candidates.extend(self.loudness_rises(run));
        }
        let mut attacks: Vec<usize> = candidates.into_iter().map(|f| self.attack(f)).collect();
        attacks.sort_unstable();
        let mut onsets: Vec<usize> = Vec::new();
        for attack in attacks {
            if onsets.last().is_none_or(|&last| attack >= last + min_note) {
                onsets.push(attack);
            }
        }
        onsets
    }

    /// The runs of consecutive voiced frames, in order.
    fn voiced_runs(&self) -> Vec<Range<usize>> {
        let mut runs = Vec::new();
        let mut start = None;
        for (index, frame) in self.frames.iter().enumerate() {
            match (frame.f0.is_some(), start) {
                (true, None) => start = Some(index),
                (false, Some(from)) => {
                    runs.push(from..index);
                    start = None;
                }
                _ => {}
            }
        }
        runs.extend(start.map(|from| from..self.frames.len()));
        runs
    }

    /// Frames in the voiced `run` where a new pitch starts: the next `min_note` frames all lie
    /// more than half a semitone to one side of the note's reference pitch (the median of its
    /// last `REFERENCE_S`) and within half a semitone of their own median (a settled pitch, not
    /// a glide passing through).
    fn pitch_changes(&self, run: Range<usize>, min_note: usize) -> Vec<usize> {
        let pitches: Vec<f32> = self.frames[run.clone()]
            .iter()
            .filter_map(|frame| frame.f0.map(midi_of_hz))
            .collect();
        let reference_len = self.settings.frames_in(REFERENCE_S);
        let mut note_start = 0;
        let mut changes = Vec::new();
        for index in 1..pitches.len().saturating_sub(min_note - 1) {
            let reference =
                median(&pitches[note_start.max(index.saturating_sub(reference_len))..index]);
            let ahead = &pitches[index..index + min_note];
            let settled = median(ahead);
            let side = (settled - reference).signum();
            let is_new_note = ahead.iter().all(|&pitch| {
                (pitch - reference) * side > NOTE_CHANGE_SEMITONES
                    && (pitch - settled).abs() <= NOTE_CHANGE_SEMITONES
            });
            if is_new_note {
                changes.push(run.start + index);
                note_start = index;
            }
        }
        changes
    }

    /// Frames in the voiced `run` where the loudness starts a rise of more than `RISE_DB`
    /// within `RISE_S` (the trough may lie before the run).
    fn loudness_rises(&self, run: Range<usize>) -> Vec<usize> {
        let rise_len = self.settings.frames_in(RISE_S);
        run.filter_map(|index| {
            let trough = (index.saturating_sub(rise_len)..index).min_by(|&a, &b| {
                self.frames[a]
                    .loudness_db
                    .total_cmp(&self.frames[b].loudness_db)
            })?;
            let rise = self.frames[index].loudness_db - self.frames[trough].loudness_db;
            (rise > RISE_DB).then_some(trough)
        })
        .collect()
    }

    /// The attack at or after `frame`: the first frame within a window's length whose loudness
    /// is within 3 dB of the peak there. A frame's window sees a note before it starts, and the
    /// half-power point of the window's rise is where the note starts.
    fn attack(&self, frame: usize) -> usize {
        let settle = self.settings.window_len().div_ceil(self.settings.hop);
        let ahead = &self.frames[frame..(frame + settle + 1).min(self.frames.len())];
        let peak_db = ahead
            .iter()
            .map(|f| f.loudness_db)
            .fold(f32::NEG_INFINITY, f32::max);
        frame
            + ahead
                .iter()
                .position(|f| f.loudness_db >= peak_db - HALF_POWER_DB)
                .unwrap_or(0)
    }
}

/// The median (upper median for an even count) of a non-empty slice.
fn median(values: &[f32]) -> f32 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable_by(f32::total_cmp);
    sorted[sorted.len() / 2]
}

/// The MIDI pitch of a frequency in Hz (69 = A440), fractional: 12 per octave.
pub fn midi_of_hz(hz: f32) -> f32 {
    69.0 + 12.0 * (hz / 440.0).log2()
}

/// The frequency in Hz of a MIDI pitch (69 = A440), fractional: [`midi_of_hz`] undone.
pub fn hz_of_midi(midi: f32) -> f32 {
    440.0 * 2f32.powf((midi - 69.0) / 12.0)
}

#[cfg(test)]
mod tests {
    use std::f32::consts::TAU;

    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// The tests' sample rate, Hz: the neural voice's.
    const SAMPLE_RATE: u32 = 24_000;

    /// Renders `seconds` of a phase-continuous tone whose frequency (Hz) and amplitude (0–1)
    /// `voice` gives at each time (seconds): a sine for `partials` = 1, a band-limited
    /// sawtooth (1/k partials below Nyquist) for `usize::MAX`.
    fn render(seconds: f32, partials: usize, voice: impl Fn(f32) -> (f32, f32)) -> Vec<f32> {
        let nyquist = SAMPLE_RATE as f32 / 2.0;
        let mut phase = 0.0_f64;
        (0..(seconds * SAMPLE_RATE as f32) as usize)
            .map(|n| {
                let (hz, amplitude) = voice(n as f32 / SAMPLE_RATE as f32);
                let wave: f32 = if partials == 1 {
                    (TAU * phase as f32).sin()
                } else {
                    let partials = ((nyquist / hz) as usize).min(partials);
                    (1..=partials)
                        .map(|k| (TAU * (k as f64 * phase).fract() as f32).sin() / k as f32)
                        .sum::<f32>()
                        * (2.0 / std::f32::consts::PI)
                };
                phase = (phase + f64::from(hz) / f64::from(SAMPLE_RATE)).fract();
                amplitude * wave
            })
            .collect()
    }

    /// A note's amplitude envelope at time `t`: 1 on [`start`, `end`) seconds with 5 ms linear
    /// ramps inside both ends, 0 outside.
    fn envelope(t: f32, start: f32, end: f32) -> f32 {
        let ramp = 0.005;
        ((t - start) / ramp).min((end - t) / ramp).clamp(0.0, 1.0)
    }

    fn analyse_24k(samples: &[f32]) -> Analysis {
        analyse(samples, &AnalysisSettings::new(SAMPLE_RATE))
    }

    /// The frames whose whole analysis span (30 ms either side of the centre at the defaults)
    /// lies within [`start`, `end`) seconds.
    fn frames_within(analysis: &Analysis, start: f32, end: f32) -> Range<usize> {
        let settings = &analysis.settings;
        let margin = (settings.span_len() / 2) as f32;
        let frame_of = |seconds: f32| seconds * settings.sample_rate as f32 / settings.hop as f32;
        let margin_frames = margin / settings.hop as f32;
        (frame_of(start) + margin_frames).ceil() as usize
            ..(frame_of(end) - margin_frames).floor() as usize
    }

    /// The largest error of the f0 of `frames` from `hz`, cents; infinite if one is unvoiced.
    fn worst_cents(analysis: &Analysis, frames: Range<usize>, hz: f32) -> f32 {
        assert!(!frames.is_empty(), "no frames to measure");
        analysis.frames[frames]
            .iter()
            .map(|frame| {
                frame
                    .f0
                    .map_or(f32::INFINITY, |f0| 1200.0 * (f0 / hz).log2().abs())
            })
            .fold(0.0, f32::max)
    }

    /// Asserts that `onsets` are `expected_s` (seconds), each within two frames.
    fn assert_onsets(analysis: &Analysis, onsets: &[usize], expected_s: &[f32]) {
        let expected: Vec<f32> = expected_s
            .iter()
            .map(|s| s * SAMPLE_RATE as f32 / analysis.settings.hop as f32)
            .collect();
        assert_eq!(
            onsets.len(),
            expected.len(),
            "onsets {onsets:?}, expected frames {expected:?}"
        );
        for (&onset, &frame) in onsets.iter().zip(&expected) {
            assert!(
                (onset as f32 - frame).abs() <= 2.0,
                "onsets {onsets:?}, expected frames {expected:?}"
            );
        }
    }

    #[test]
    fn a_sine_is_tracked_within_5_cents() {
        let samples = render(1.0, 1, |_| (440.0, 0.5));
        let analysis = analyse_24k(&samples);
        assert_eq!(analysis.frames.len(), 200);
        let frames = frames_within(&analysis, 0.0, 1.0);
        let cents = worst_cents(&analysis, frames.clone(), 440.0);
        assert!(cents < 5.0, "worst error {cents} cents");
        assert!(analysis.frames[frames].iter().all(|f| f.periodicity > 0.95));
    }

    #[test]
    fn a_sawtooth_is_tracked_within_5_cents_without_octave_errors() {
        let samples = render(1.0, usize::MAX, |_| (196.0, 0.5));
        let analysis = analyse_24k(&samples);
        // Every frame that sees the tone at all is voiced, at the fundamental.
        let frames = frames_within(&analysis, 0.0, 1.0);
        let cents = worst_cents(&analysis, frames, 196.0);
        assert!(cents < 5.0, "worst error {cents} cents");
    }

    #[test]
    fn legato_note_sequences_give_their_onsets_and_pitches() {
        // Silence, then three notes of 0.4 s each, legato, then silence: leaps, and steps of a
        // tone and a semitone.
        for pitches in [[60.0, 67.0, 72.0], [60.0, 62.0, 61.0]] {
            let starts = [0.1, 0.5, 0.9];
            let pitch_at = |t: f32| pitches[starts.iter().rposition(|&s| t >= s).unwrap_or(0)];
            let samples = render(1.4, usize::MAX, |t| {
                (hz_of_midi(pitch_at(t)), 0.5 * envelope(t, 0.1, 1.3))
            });
            let analysis = analyse_24k(&samples);
            assert_onsets(&analysis, &analysis.note_onsets(), &starts);
            for (pitch, start) in pitches.into_iter().zip(starts) {
                let frames = frames_within(&analysis, start, start + 0.4);
                let cents = worst_cents(&analysis, frames, hz_of_midi(pitch));
                assert!(cents < 5.0, "note {pitch}: worst error {cents} cents");
            }
        }
    }

    #[test]
    fn a_repeated_note_after_a_30_ms_gap_gives_two_onsets() {
        let samples = render(0.83, 1, |t| {
            (
                hz_of_midi(64.0),
                0.5 * (envelope(t, 0.1, 0.4) + envelope(t, 0.43, 0.73)),
            )
        });
        let analysis = analyse_24k(&samples);
        assert_onsets(&analysis, &analysis.note_onsets(), &[0.1, 0.43]);
    }

    #[test]
    fn vibrato_gives_no_extra_onsets() {
        for vibrato_hz in [5.0, 6.0, 7.0] {
            let samples = render(1.6, usize::MAX, |t| {
                let cents = 30.0 * (TAU * vibrato_hz * t).sin();
                (440.0 * (cents / 1200.0).exp2(), 0.5 * envelope(t, 0.1, 1.5))
            });
            let analysis = analyse_24k(&samples);
            assert_onsets(&analysis, &analysis.note_onsets(), &[0.1]);
        }
    }

    #[test]
    fn silence_is_unvoiced_at_the_floor() {
        let analysis = analyse_24k(&vec![0.0; SAMPLE_RATE as usize]);
        assert!(analysis
            .frames
            .iter()
            .all(|f| f.f0.is_none() && f.loudness_db == SILENCE_DB && f.periodicity == 0.0));
        assert!(analysis.note_onsets().is_empty());
    }

    #[test]
    fn white_noise_is_mostly_unvoiced() {
        let mut rng = ChaCha8Rng::seed_from_u64(13);
        let samples: Vec<f32> = (0..SAMPLE_RATE)
            .map(|_| rng.random_range(-0.5..0.5))
            .collect();
        let analysis = analyse_24k(&samples);
        let voiced = analysis.frames.iter().filter(|f| f.f0.is_some()).count();
        assert!(
            voiced * 20 < analysis.frames.len(),
            "{voiced} of {} voiced",
            analysis.frames.len()
        );
        let periodicity = analysis.frames.iter().map(|f| f.periodicity).sum::<f32>()
            / analysis.frames.len() as f32;
        assert!(periodicity < 0.5, "mean periodicity {periodicity}");
    }

    #[test]
    fn a_full_scale_sine_is_minus_3_db_and_half_of_it_6_db_lower() {
        for (amplitude, expected_db) in [(1.0, -3.0103), (0.5, -3.0103 - 6.0206)] {
            let analysis = analyse_24k(&render(0.5, 1, |_| (440.0, amplitude)));
            for frame in &analysis.frames[frames_within(&analysis, 0.0, 0.5)] {
                assert!(
                    (frame.loudness_db - expected_db).abs() < 0.1,
                    "amplitude {amplitude}: {} dB",
                    frame.loudness_db
                );
            }
        }
    }

    #[test]
    fn midi_pitch_of_a_frequency() {
        assert_eq!(midi_of_hz(440.0), 69.0);
        assert!((midi_of_hz(880.0) - 81.0).abs() < 1e-5);
        assert!((midi_of_hz(261.625_58) - 60.0).abs() < 1e-4);
    }

    #[test]
    fn frames_fall_every_5_ms() {
        assert_eq!(AnalysisSettings::new(24_000).hop, 120);
        assert_eq!(AnalysisSettings::new(48_000).hop, 240);
        let analysis = analyse_24k(&vec![0.0; 1000]);
        assert_eq!(analysis.frames.len(), 9);
        assert_eq!(analysis.frame_sample(8), 960);
    }
}
