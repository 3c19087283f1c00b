//! The voice WaveNet's control signals: what the line does at each sample ([`Target`]: pitch,
//! loudness, time since the onset), from a line of notes ([`Line`]) or from a recording's
//! analysis (training), and the network inputs made from it ([`Excitation`]).
//!
//! The controls of one sample, in this order (the voice file format fixes it):
//! | row | control | range |
//! |---|---|---|
//! | 0 | band-limited pulse train at `f0`: `Σ_{k=1..K} cos(kφ) / K`, every harmonic below 0.45 × the rate | −0.2…1 |
//! | 1–3 | `sin(kφ)`, k = 1, 2, 3 (0 where `k · f0` is above 0.45 × the rate) | ±1 |
//! | 4 | seeded white noise | ±1 |
//! | 5 | loudness, `(L + 40) / 20` with `L` in dB (RMS, full scale 0 dB) | about −2.5…2 |
//! | 6 | pitch, `log2(f0 / 440 Hz) / 2` (±1 is two octaves) | about −1…1 |
//! | 7 | onset, `exp(−time since the onset / 0.1 s)` (0 before the first note) | 0…1 |
//!
//! `φ` is the phase, advanced by `2π f0 / rate` each sample (so a pitch change never jumps
//! the waveform). The noise restarts with [`Excitation::reset`], so the same line gives the same
//! audio.

use crate::voice::analysis::hz_of_midi;
use crate::voice::Dynamics;

/// Number of control signals per sample.
pub const CONTROLS: usize = 8;
/// Loudness at or below which the voice is silent (its amplitude is 0), dB.
pub const SILENCE_DB: f32 = -90.0;
/// Highest harmonic frequency the excitation holds, as a fraction of the sample rate (below the
/// Nyquist frequency, 0.5, with room for the network's own nonlinearity).
const HARMONIC_CEILING: f32 = 0.45;
/// Time constant of the onset control, seconds.
const ONSET_DECAY_S: f32 = 0.1;
/// Time constant of a legato glide from one pitch to the next, seconds: fast enough to sound as
/// a change of finger, slow enough not to click.
const GLIDE_S: f32 = 0.012;

/// What the line does at one sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    /// Pitch, Hz (held through silence: the phase keeps running).
    pub f0_hz: f32,
    /// Loudness, dB relative to full scale (RMS); [`SILENCE_DB`] or below is silence.
    pub loudness_db: f32,
    /// Time since the sounding note's onset, seconds (large in silence before any note).
    pub since_onset_s: f32,
}

impl Target {
    /// Silence, with the pitch parked at A440.
    pub const SILENT: Target = Target {
        f0_hz: 440.0,
        loudness_db: SILENCE_DB,
        since_onset_s: 1e3,
    };
}

/// The RMS amplitude of a loudness in dB: `10^(dB / 20)`, 0 at [`SILENCE_DB`] and below.
pub fn amplitude(loudness_db: f32) -> f32 {
    if loudness_db <= SILENCE_DB {
        0.0
    } else {
        10f32.powf(loudness_db / 20.0)
    }
}

/// Turns targets into control rows, keeping the excitation's phase and the noise's state from
/// one sample to the next.
#[derive(Debug, Clone)]
pub struct Excitation {
    sample_rate: f32,
    /// Phase in cycles, `[0, 1)` (f64: a long note's phase does not drift).
    phase: f64,
    /// xorshift32 state of the noise control.
    noise: u32,
    /// The last loudness (dB) and its amplitude, and the last pitch (Hz) and its control: held
    /// notes repeat them, so the `powf` and `log2` run only when they change.
    last_db: (f32, f32),
    last_hz: (f32, f32),
}

/// The noise control's seed (any non-zero value: xorshift32 never leaves 0).
const NOISE_SEED: u32 = 0x9E37_79B9;

impl Excitation {
    /// A fresh excitation for a voice running at `sample_rate` Hz.
    pub fn new(sample_rate: u32) -> Self {
        Self {
            sample_rate: sample_rate as f32,
            phase: 0.0,
            noise: NOISE_SEED,
            last_db: (SILENCE_DB, 0.0),
            last_hz: (440.0, 0.0),
        }
    }

    /// Back to phase 0 and the noise's first value (as at the start of a render).
    pub fn reset(&mut self) {
        self.phase = 0.0;
        self.noise = NOISE_SEED;
    }

    /// The controls of the next sample and its amplitude ([`amplitude`] of the loudness), then
    /// advances the phase by the target's pitch. Never allocates.
    pub fn next(&mut self, target: &Target) -> ([f32; CONTROLS], f32) {
        let f0 = target.f0_hz.clamp(1.0, self.sample_rate * HARMONIC_CEILING);
        let ceiling = self.sample_rate * HARMONIC_CEILING;
        let harmonics = (ceiling / f0).floor().max(1.0);
        let phi = std::f32::consts::TAU * self.phase as f32;
        let (sin1, cos1) = phi.sin_cos();
        let below = |k: f32| if k * f0 <= ceiling { 1.0 } else { 0.0 };
        let sin2 = 2.0 * sin1 * cos1 * below(2.0);
        let sin3 = sin1 * (3.0 - 4.0 * sin1 * sin1) * below(3.0);
        // Σ_{k=1..K} cos(kφ) = sin((K + ½)φ) / (2 sin(φ/2)) − ½, which is K at φ = 0.
        let half = (0.5 * phi).sin();
        let sum = if half.abs() < 1e-4 {
            harmonics
        } else {
            ((harmonics + 0.5) * phi).sin() / (2.0 * half) - 0.5
        };
        self.noise ^= self.noise << 13;
        self.noise ^= self.noise >> 17;
        self.noise ^= self.noise << 5;
        let noise = (self.noise >> 8) as f32 / (1u32 << 23) as f32 - 1.0;
        let loudness = target.loudness_db.max(SILENCE_DB);
        if loudness != self.last_db.0 {
            self.last_db = (loudness, amplitude(loudness));
        }
        if f0 != self.last_hz.0 {
            self.last_hz = (f0, (f0 / 440.0).log2() / 2.0);
        }
        let controls = [
            sum / harmonics,
            sin1,
            sin2,
            sin3,
            noise,
            (loudness + 40.0) / 20.0,
            self.last_hz.1,
            (-target.since_onset_s.max(0.0) / ONSET_DECAY_S).exp(),
        ];
        self.phase = (self.phase + f64::from(f0 / self.sample_rate)).fract();
        (controls, self.last_db.1)
    }
}

/// One line of notes played the way a fiddler or a flautist plays it: one note at a time, a new
/// note takes over the one sounding, a note struck while another is held connects to it
/// (legato: the pitch glides over in about [`GLIDE_S`], no new attack), a released note fades
/// over its voice's release time. Produces a [`Target`] per sample; never allocates.
#[derive(Debug, Clone)]
pub struct Line {
    levels: Levels,
    sample_rate: f32,
    /// The share of the way to the goal pitch (in log frequency) a glide goes each sample.
    glide: f32,
    /// The key held and its velocity, if any.
    held: Option<(u8, u8)>,
    /// The pitch the line glides to, Hz.
    goal_hz: f32,
    /// The loudness of the note held, dB.
    goal_db: f32,
    target: Target,
    /// The attack's amplitude so far, as a fraction of the note's (1 when it is done).
    attack: f32,
}

/// A voice's [`Dynamics`] as a line reads them: every key's loudness at velocity 1 and 127 in
/// a table (no allocation after construction, and copied as it is).
#[derive(Debug, Clone, Copy)]
struct Levels {
    quiet_db: [f32; 128],
    loud_db: [f32; 128],
    attack_s: f32,
    release_s: f32,
}

impl Levels {
    fn new(dynamics: &Dynamics) -> Self {
        let table = |velocity: u8| std::array::from_fn(|k| dynamics.loudness_db(velocity, k as u8));
        Self {
            quiet_db: table(1),
            loud_db: table(127),
            attack_s: dynamics.attack_s,
            release_s: dynamics.release_s,
        }
    }

    /// [`Dynamics::loudness_db`] from the table.
    fn loudness_db(&self, velocity: u8, key: u8) -> f32 {
        let key = usize::from(key.min(127));
        let v = f32::from(velocity.clamp(1, 127) - 1) / 126.0;
        self.quiet_db[key] + v * (self.loud_db[key] - self.quiet_db[key])
    }
}

impl Line {
    /// A silent line for a voice of `dynamics` at `sample_rate` Hz.
    pub fn new(dynamics: &Dynamics, sample_rate: u32) -> Self {
        Self::with_levels(Levels::new(dynamics), sample_rate as f32)
    }

    fn with_levels(levels: Levels, sample_rate: f32) -> Self {
        Self {
            levels,
            sample_rate,
            glide: 1.0 - (-1.0 / (sample_rate * GLIDE_S)).exp(),
            held: None,
            goal_hz: Target::SILENT.f0_hz,
            goal_db: SILENCE_DB,
            target: Target::SILENT,
            attack: 1.0,
        }
    }

    /// Silence at once, nothing held (a reset; the caller fades the audio if it must).
    pub fn silence(&mut self) {
        *self = Self::with_levels(self.levels, self.sample_rate);
    }

    /// The key sounding or fading, if the line is not silent.
    pub fn sounding(&self) -> bool {
        self.target.loudness_db > SILENCE_DB
    }

    /// Strikes `pitch` (MIDI key) at `velocity` (1–127).
    pub fn note_on(&mut self, pitch: u8, velocity: u8) {
        let legato = self.held.is_some();
        self.held = Some((pitch, velocity));
        self.goal_hz = hz_of_midi(f32::from(pitch));
        self.goal_db = self.levels.loudness_db(velocity, pitch);
        if !legato {
            self.target.since_onset_s = 0.0;
            if !self.sounding() {
                // From silence: no glide from wherever the pitch was parked.
                self.target.f0_hz = self.goal_hz;
            }
            let now = amplitude(self.target.loudness_db) / amplitude(self.goal_db);
            self.attack = now.min(1.0);
        }
    }

    /// Releases `pitch`, if it is the key held (a key already taken over by another is not).
    pub fn note_off(&mut self, pitch: u8) {
        if self.held.is_some_and(|(held, _)| held == pitch) {
            self.held = None;
        }
    }

    /// Releases whatever key is held (transport stop, panic).
    pub fn release(&mut self) {
        self.held = None;
    }

    /// The key held and its velocity, if any.
    pub fn held(&self) -> Option<(u8, u8)> {
        self.held
    }

    /// The pitch sounding (or parked, in silence), Hz.
    pub fn pitch_hz(&self) -> f32 {
        self.target.f0_hz
    }

    /// Seconds since the sounding note was struck (a legato note continues the one before).
    pub fn since_onset_s(&self) -> f32 {
        self.target.since_onset_s
    }

    /// Advances one sample and says what the line does there.
    pub fn step(&mut self) -> Target {
        let dt = 1.0 / self.sample_rate;
        let t = &mut self.target;
        if t.f0_hz != self.goal_hz {
            let ratio = self.goal_hz / t.f0_hz;
            // Within 0.002 cents the glide is over.
            t.f0_hz = if (ratio - 1.0).abs() < 1e-6 {
                self.goal_hz
            } else {
                t.f0_hz * ratio.powf(self.glide)
            };
        }
        t.since_onset_s += dt;
        if self.held.is_some() {
            if self.attack < 1.0 {
                self.attack = (self.attack + dt / self.levels.attack_s.max(dt)).min(1.0);
            }
            // The attack rises in amplitude, from where the last note's fade had got to.
            t.loudness_db = self.goal_db + 20.0 * self.attack.max(1e-6).log10();
        } else if t.loudness_db > SILENCE_DB {
            t.loudness_db -= 60.0 * dt / self.levels.release_s;
            if t.loudness_db <= SILENCE_DB {
                t.loudness_db = SILENCE_DB;
            }
        }
        *t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dynamics() -> Dynamics {
        Dynamics {
            quiet_db: -40.0,
            loud_db: -12.0,
            attack_s: 0.02,
            release_s: 0.1,
            key_offsets_db: Vec::new(),
        }
    }

    /// The dominant frequency of `x` (Hz) by a plain DFT scan over 50–3000 Hz in 1 Hz steps.
    fn dominant_hz(x: &[f32], rate: f32) -> f32 {
        (50..3000)
            .map(|hz| {
                let w = std::f32::consts::TAU * hz as f32 / rate;
                let (re, im) = x.iter().enumerate().fold((0.0, 0.0), |(re, im), (n, v)| {
                    (re + v * (w * n as f32).cos(), im + v * (w * n as f32).sin())
                });
                (hz, re * re + im * im)
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(0.0, |(hz, _)| hz as f32)
    }

    #[test]
    fn the_excitation_is_phase_locked_to_the_pitch_and_band_limited() {
        let rate = 24_000;
        let mut excitation = Excitation::new(rate);
        let target = Target {
            f0_hz: 440.0,
            loudness_db: -20.0,
            since_onset_s: 0.0,
        };
        let rows: Vec<([f32; CONTROLS], f32)> =
            (0..4800).map(|_| excitation.next(&target)).collect();
        let pulse: Vec<f32> = rows.iter().map(|(c, _)| c[0]).collect();
        let fundamental: Vec<f32> = rows.iter().map(|(c, _)| c[1]).collect();
        assert_eq!(dominant_hz(&fundamental, rate as f32), 440.0);
        // The pulse peaks once a period (at 1 between samples, above 0.6 at the nearest one).
        assert!(pulse.iter().all(|v| (-0.5..=1.0 + 1e-3).contains(v)));
        let peaks = pulse
            .windows(3)
            .filter(|w| w[1] > 0.6 && w[1] >= w[0] && w[1] > w[2]);
        // 88 periods in 0.2 s at 440 Hz: the first peak is sample 0, 87 more follow.
        assert!((pulse[0] - 1.0).abs() < 1e-6);
        assert_eq!(peaks.count(), 87);
        // Amplitude: −20 dB is 0.1; loudness and pitch rows as documented.
        assert!((rows[0].1 - 0.1).abs() < 1e-6);
        assert!((rows[0].0[5] - 1.0).abs() < 1e-6 && rows[0].0[6].abs() < 1e-6);
        assert!((rows[0].0[7] - 1.0).abs() < 1e-6);
        // 3 × 2,640 Hz is above 0.45 × 24 kHz: the third harmonic row falls silent.
        let high = Target {
            f0_hz: 3_700.0,
            ..target
        };
        assert!((0..100).all(|_| excitation.next(&high).0[3] == 0.0));
    }

    #[test]
    fn the_noise_restarts_with_a_reset_and_silence_has_no_amplitude() {
        let mut excitation = Excitation::new(24_000);
        let first: Vec<f32> = (0..64)
            .map(|_| excitation.next(&Target::SILENT).0[4])
            .collect();
        excitation.reset();
        let again: Vec<f32> = (0..64)
            .map(|_| excitation.next(&Target::SILENT).0[4])
            .collect();
        assert_eq!(first, again);
        assert!(first.iter().all(|v| (-1.0..1.0).contains(v)));
        let mean = first.iter().sum::<f32>() / 64.0;
        assert!(mean.abs() < 0.25, "noise mean {mean}");
        assert_eq!(excitation.next(&Target::SILENT).1, 0.0);
    }

    /// `n` samples of `line`.
    fn run(line: &mut Line, n: usize) -> Vec<Target> {
        (0..n).map(|_| line.step()).collect()
    }

    #[test]
    fn a_line_attacks_holds_glides_legato_and_releases() {
        let rate = 24_000;
        let mut line = Line::new(&dynamics(), rate);
        assert!(run(&mut line, 10)
            .iter()
            .all(|t| t.loudness_db == SILENCE_DB));
        line.note_on(69, 127);
        let attack = run(&mut line, 480);
        assert!(attack
            .windows(2)
            .all(|w| w[1].loudness_db >= w[0].loudness_db));
        assert!(
            (attack[479].loudness_db - -12.0).abs() < 1e-3,
            "attack done in 20 ms"
        );
        assert!(
            (attack[0].f0_hz - 440.0).abs() < 1e-3,
            "no glide from silence"
        );
        // Legato: a note struck with A held glides to E without a new onset.
        line.note_on(76, 127);
        let legato = run(&mut line, 2400);
        assert!(legato.iter().all(|t| (t.loudness_db - -12.0).abs() < 1e-3));
        assert!(legato[0].since_onset_s > 0.02, "no new onset");
        assert!((legato[2399].f0_hz - 659.26).abs() < 0.1, "glided to E5");
        assert!(
            legato[24].f0_hz > 440.0 && legato[24].f0_hz < 600.0,
            "gradually"
        );
        // Releasing the note taken over does nothing; releasing E fades 60 dB in 0.1 s.
        line.note_off(69);
        assert_eq!(line.step().loudness_db, -12.0);
        line.note_off(76);
        let release = run(&mut line, 3600);
        assert!((release[1199].loudness_db - -42.0).abs() < 0.1);
        assert!(
            release[3000].loudness_db > SILENCE_DB,
            "−90 dB after 0.13 s"
        );
        assert_eq!(release[3599].loudness_db, SILENCE_DB);
        assert!(!line.sounding());
        // Detached: a note after a release starts a new onset at its own pitch.
        line.note_on(60, 1);
        let next = line.step();
        assert!(next.since_onset_s < 1e-3 && (next.f0_hz - 261.63).abs() < 0.01);
        assert!(run(&mut line, 1000)[999].loudness_db == -40.0);
    }

    #[test]
    fn a_note_struck_while_the_last_one_fades_rises_from_where_it_is() {
        let mut line = Line::new(&dynamics(), 24_000);
        line.note_on(69, 127);
        run(&mut line, 1000);
        line.note_off(69);
        let fading = run(&mut line, 240);
        let level = fading[239].loudness_db;
        line.note_on(71, 127);
        let next = run(&mut line, 480);
        assert!(next[0].loudness_db >= level - 0.1, "no drop to silence");
        assert!(next
            .windows(2)
            .all(|w| w[1].loudness_db >= w[0].loudness_db));
        assert!((next[479].loudness_db - -12.0).abs() < 1e-3);
    }
}
