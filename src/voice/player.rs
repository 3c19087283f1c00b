//! A neural voice ready to play a line of notes: the [`Line`] turns note-ons and note-offs into
//! targets, the [`Excitation`] into controls, the [`VoiceKernel`] into audio at the voice's rate,
//! a DC blocker takes out what offset the network's bias leaves (the STFT loss it is trained
//! with barely sees 0 Hz), and a soft ceiling keeps the loudest peaks below full scale.
//!
//! A note let go rings on while the next one starts, as a pipe or a string in a room does (and
//! as a sampler's looped release does): when a note is struck after the one before was
//! released but before it has faded, the last few periods of that note's sound (before its
//! amplitude) are looped, fading over [`TAIL_RELEASE`] of the voice's release, and the new note
//! starts from silence, with its whole attack. A loop costs a multiply-add a sample, not a
//! second network. Legato notes (struck while one is held) connect on the network without a
//! new attack.

use crate::voice::controls::{amplitude, Excitation, Line, SILENCE_DB};
use crate::voice::kernel::BLOCK;
use crate::voice::{VoiceFile, VoiceKernel, CONTROLS};

/// One neural voice playing one line. Everything is sized at construction: nothing it does
/// after that allocates.
#[derive(Debug, Clone)]
pub struct VoicePlayer {
    kernel: VoiceKernel,
    line: Line,
    excitation: Excitation,
    /// The block of controls being rendered, `[CONTROLS][BLOCK]`.
    controls: Box<[[f32; BLOCK]; CONTROLS]>,
    amplitude: [f32; BLOCK],
    /// The amplitude of the last sample rendered.
    last_amplitude: f32,
    /// The network's last [`LOOP_MAX`] samples before their amplitude: a ring, next write at
    /// `recent_at`.
    recent: Box<[f32; LOOP_MAX]>,
    recent_at: usize,
    /// Released notes ringing on.
    tails: Box<[Tail; TAILS]>,
    /// A tail's gain after one more sample: 60 dB down over [`TAIL_RELEASE`] of the voice's
    /// release.
    tail_decay: f32,
    dc: DcBlocker,
}

/// Longest and shortest stretch of a note's sound a tail loops, voice samples (43 ms and 11 ms
/// at 24 kHz): whole periods of the note, several of them (one period looped sounds static).
const LOOP_MAX: usize = 1024;
const LOOP_MIN: usize = 256;
/// A tail's release, as a share of the voice's: two notes sounding at once can be heard as one
/// an octave lower (their common period), and a tail as long as the release had the pitch
/// tracker of `wavejam voice-checks` hear 1.0–1.1 % of frames an octave off, against 0.5 % at
/// half (50 validation melodies; 0 without tails).
const TAIL_RELEASE: f32 = 0.5;
/// Tails ringing at once: a third note released while two still ring takes the quieter one's
/// place (by then it is two notes down its release).
const TAILS: usize = 2;

/// A released note ringing on: `audio[..len]` looped, at `gain`, fading.
#[derive(Debug, Clone)]
struct Tail {
    audio: [f32; LOOP_MAX],
    len: usize,
    at: usize,
    /// 0 when silent.
    gain: f32,
}

impl Tail {
    const SILENT: Tail = Tail {
        audio: [0.0; LOOP_MAX],
        len: 1,
        at: 0,
        gain: 0.0,
    };

    /// Adds the next `out.len()` samples onto `out`, fading by `decay` a sample; silent from
    /// where the gain falls below the voice's silence.
    fn add_onto(&mut self, out: &mut [f32], decay: f32) {
        let floor = amplitude(SILENCE_DB + 1.0);
        for x in out {
            if self.gain < floor {
                self.gain = 0.0;
                return;
            }
            *x += self.audio[self.at] * self.gain;
            self.gain *= decay;
            self.at += 1;
            if self.at == self.len {
                self.at = 0;
            }
        }
    }
}

/// How many samples to loop of a note whose period is `period` samples: whole periods, at least
/// [`LOOP_MIN`] and at most [`LOOP_MAX`] samples, the count of periods whose length is closest
/// to a whole number of samples (the loop's seam then keeps the waveform's phase).
fn loop_len(period: f32) -> usize {
    let period = period.clamp(2.0, LOOP_MAX as f32);
    let fewest = (LOOP_MIN as f32 / period).ceil().max(1.0) as usize;
    let most = ((LOOP_MAX as f32 / period).floor() as usize).max(fewest);
    let seam = |periods: usize| {
        let len = periods as f32 * period;
        (len - len.round()).abs()
    };
    let best = (fewest..=most)
        .min_by(|&a, &b| seam(a).total_cmp(&seam(b)))
        .unwrap_or(fewest);
    ((best as f32 * period).round() as usize).clamp(1, LOOP_MAX)
}

/// Level from which the soft ceiling bends peaks down (below it the audio passes untouched).
const CEILING_KNEE: f32 = 0.9;

/// Bends a peak above [`CEILING_KNEE`] smoothly towards 1 (never above it): the voices' loudest
/// notes can peak above full scale (the Fiddle's reached 1.12 at velocities up to 126), and a
/// host's output must not clip. Continuous, with a continuous slope, at the knee.
fn soft_ceiling(x: f32) -> f32 {
    let over = x.abs() - CEILING_KNEE;
    if over <= 0.0 {
        return x;
    }
    let room = 1.0 - CEILING_KNEE;
    (CEILING_KNEE + room * (over / room).tanh()).copysign(x)
}

/// Cut-off of the DC blocker, Hz: far below any instrument's lowest note.
const DC_CUTOFF_HZ: f32 = 10.0;

/// A one-pole high-pass: `y[n] = x[n] − x[n−1] + r · y[n−1]`.
#[derive(Debug, Clone, Copy)]
struct DcBlocker {
    r: f32,
    last_in: f32,
    last_out: f32,
}

impl DcBlocker {
    fn new(sample_rate: u32) -> Self {
        Self {
            r: 1.0 - std::f32::consts::TAU * DC_CUTOFF_HZ / sample_rate as f32,
            last_in: 0.0,
            last_out: 0.0,
        }
    }

    fn process(&mut self, samples: &mut [f32]) {
        for x in samples {
            let y = *x - self.last_in + self.r * self.last_out;
            self.last_in = *x;
            self.last_out = y;
            *x = y;
        }
    }
}

impl VoicePlayer {
    /// A silent player of a validated voice.
    pub fn new(file: &VoiceFile) -> Self {
        Self::with_kernel(VoiceKernel::new(file), file)
    }

    /// A silent player running `kernel` (prepared from `file`, for a chosen SIMD path).
    pub fn with_kernel(kernel: VoiceKernel, file: &VoiceFile) -> Self {
        let rate = file.config.sample_rate;
        Self {
            kernel,
            line: Line::new(&file.dynamics, rate),
            excitation: Excitation::new(rate),
            controls: Box::new([[0.0; BLOCK]; CONTROLS]),
            amplitude: [0.0; BLOCK],
            last_amplitude: 0.0,
            recent: Box::new([0.0; LOOP_MAX]),
            recent_at: 0,
            tails: Box::new([Tail::SILENT; TAILS]),
            tail_decay: 10f32.powf(-3.0 / (TAIL_RELEASE * file.dynamics.release_s * rate as f32)),
            dc: DcBlocker::new(rate),
        }
    }

    /// The rate [`render`](Self::render) produces, Hz.
    pub fn sample_rate(&self) -> u32 {
        self.kernel.config().sample_rate
    }

    /// Strikes `pitch` at `velocity` (1–127): legato onto a note held (see [`Line`]); after a
    /// released note that still sounds, that note rings on as a tail and this one starts from
    /// silence — or, after a note too short to ring on, from where its release has got to (cut
    /// to silence, it would click).
    pub fn note_on(&mut self, pitch: u8, velocity: u8) {
        if self.line.held().is_none() && self.line.sounding() && self.ring_on() {
            self.line.silence();
        }
        self.line.note_on(pitch, velocity);
    }

    /// Loops the last periods of the sound so far into the quietest tail, from the level the
    /// sound has got to; whether it did. A note shorter than the loop does not ring on (a loop
    /// of it would hold the silence before it).
    fn ring_on(&mut self) -> bool {
        let len = loop_len(self.sample_rate() as f32 / self.line.pitch_hz());
        if self.line.since_onset_s() * (self.sample_rate() as f32) < len as f32 {
            return false;
        }
        let Some(tail) = self
            .tails
            .iter_mut()
            .min_by(|a, b| a.gain.total_cmp(&b.gain))
        else {
            return false;
        };
        let start = (self.recent_at + LOOP_MAX - len) % LOOP_MAX;
        for (i, sample) in tail.audio[..len].iter_mut().enumerate() {
            *sample = self.recent[(start + i) % LOOP_MAX];
        }
        tail.len = len;
        tail.at = 0;
        tail.gain = self.last_amplitude * self.tail_decay;
        true
    }

    /// Releases `pitch` if it is the note held.
    pub fn note_off(&mut self, pitch: u8) {
        self.line.note_off(pitch);
    }

    /// Releases whatever note is held; it fades over the voice's release.
    pub fn release(&mut self) {
        self.line.release();
    }

    /// The key held and its velocity, if any.
    pub fn held(&self) -> Option<(u8, u8)> {
        self.line.held()
    }

    /// Whether the voice makes any sound (a note held, fading or ringing on).
    pub fn sounding(&self) -> bool {
        self.line.sounding() || self.tails.iter().any(|tail| tail.gain > 0.0)
    }

    /// Silence and a fresh start: what a new render starts from. The same notes at the same
    /// samples after a reset give the same audio, to the bit.
    pub fn reset(&mut self) {
        self.line.silence();
        self.excitation.reset();
        self.kernel.reset();
        self.recent.fill(0.0);
        self.last_amplitude = 0.0;
        self.tails.iter_mut().for_each(|tail| tail.gain = 0.0);
        self.dc = DcBlocker::new(self.sample_rate());
    }

    /// Renders the next `out.len()` samples at [`sample_rate`](Self::sample_rate).
    pub fn render(&mut self, out: &mut [f32]) {
        for chunk in out.chunks_mut(BLOCK) {
            for t in 0..chunk.len() {
                let (controls, amplitude) = self.excitation.next(&self.line.step());
                for (row, value) in self.controls.iter_mut().zip(controls) {
                    row[t] = value;
                }
                self.amplitude[t] = amplitude;
            }
            self.kernel
                .render_block(&self.controls, &self.amplitude, chunk);
            for (x, &a) in chunk.iter().zip(&self.amplitude) {
                self.recent[self.recent_at] = if a > 0.0 { x / a } else { 0.0 };
                self.recent_at = (self.recent_at + 1) % LOOP_MAX;
            }
            self.last_amplitude = self.amplitude[chunk.len() - 1];
            for tail in self.tails.iter_mut() {
                tail.add_onto(chunk, self.tail_decay);
            }
            self.dc.process(chunk);
            for x in chunk.iter_mut() {
                *x = soft_ceiling(*x);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::container::Precision;
    use crate::simd::SimdPath;
    use crate::test_kit::random_values;
    use crate::voice::file::{expected_tensors, to_safetensors};
    use crate::voice::{Dynamics, VoiceConfig};

    fn random_voice() -> VoiceFile {
        let config = VoiceConfig {
            residual_channels: 8,
            gate_channels: 8,
            skip_channels: 8,
            head_channels: 8,
            layers_per_stack: 6,
            ..VoiceConfig::default()
        };
        let dynamics = Dynamics {
            quiet_db: -40.0,
            loud_db: -12.0,
            attack_s: 0.02,
            release_s: 0.1,
            key_offsets_db: Vec::new(),
        };
        let tensors = random_values(expected_tensors(&config), 5);
        let bytes = to_safetensors(&config, &dynamics, None, Precision::Single, &tensors).unwrap();
        VoiceFile::parse(&bytes).unwrap()
    }

    /// A legato pair, then a note struck while the second still fades (it rings on as a tail),
    /// rendered in host-like blocks of `block` samples.
    fn play(player: &mut VoicePlayer, block: usize) -> Vec<f32> {
        let mut out = vec![0.0; 14_400];
        let events = [
            (240, 69, true),
            (2_400, 72, true),
            (2_500, 69, false),
            (4_800, 72, false),
            (5_400, 76, true),
            (7_200, 76, false),
        ];
        let mut t = 0;
        for (at, pitch, on) in events.into_iter().chain([(14_400, 0, false)]) {
            for chunk in out[t..at].chunks_mut(block) {
                player.render(chunk);
            }
            t = at;
            if on {
                player.note_on(pitch, 100);
            } else if at < out.len() {
                player.note_off(pitch);
            }
        }
        out
    }

    #[test]
    fn a_voice_renders_the_same_in_any_block_size_and_after_a_reset() {
        let file = random_voice();
        let mut player = VoicePlayer::new(&file);
        let whole = play(&mut player, 14_400);
        assert!(
            whole[..10].iter().all(|&v| v == 0.0),
            "silent before the first note"
        );
        assert!(whole.iter().any(|v| v.abs() > 1e-3));
        assert!(whole.iter().all(|v| v.is_finite()));
        assert!(!player.sounding(), "the last note and the tail have faded");
        player.reset();
        assert_eq!(play(&mut player, 100), whole);
        player.reset();
        assert_eq!(play(&mut player, 1), whole);
    }

    /// The loudest sample of `audio` at `hz` (a tone's amplitude, from one DFT bin over whole
    /// periods).
    fn tone(audio: &[f32], hz: f32, rate: f32) -> f32 {
        let periods = (audio.len() as f32 * hz / rate).floor();
        let n = (periods * rate / hz).round() as usize;
        let w = std::f32::consts::TAU * hz / rate;
        let (re, im) = audio[..n]
            .iter()
            .enumerate()
            .fold((0.0, 0.0), |(re, im), (i, x)| {
                (re + x * (w * i as f32).cos(), im + x * (w * i as f32).sin())
            });
        2.0 * (re * re + im * im).sqrt() / n as f32
    }

    /// A note let go rings on under the next one, without a jump, and fades; a legato note has
    /// no tail.
    #[test]
    fn a_released_note_rings_on_under_the_next_and_fades() {
        let file = random_voice();
        let rate = file.config.sample_rate as f32;
        let (a4, e5) = (440.0, 659.255);
        let mut player = VoicePlayer::new(&file);
        let mut before = vec![0.0; 4_800];
        player.note_on(69, 100);
        player.render(&mut before);
        player.note_off(69);
        player.note_on(76, 100);
        let gain = |player: &VoicePlayer| {
            player
                .tails
                .iter()
                .map(|tail| tail.gain)
                .fold(0.0, f32::max)
        };
        let rung = gain(&player);
        assert!(rung > 0.0);
        let mut after = vec![0.0; 480];
        player.render(&mut after);
        // The A4 goes on at about its level as the E5 attacks from silence.
        let held = tone(&before[2_400..], a4, rate);
        let ringing = tone(&after, a4, rate);
        assert!(ringing > 0.3 * held, "A4 at {held} held, {ringing} after");
        let step = |w: &[f32]| {
            w.windows(2)
                .map(|p| (p[1] - p[0]).abs())
                .fold(0.0, f32::max)
        };
        assert!(step(&[before[4_799], after[0]]) <= 2.0 * step(&before[4_320..]));
        // Half the release (0.05 s) after it rang on, the tail is 60 dB down; soon after, gone.
        let mut later = vec![0.0; 720];
        player.render(&mut later);
        assert!(
            gain(&player) <= 1.001e-3 * rung,
            "{} of {rung}",
            gain(&player)
        );
        player.render(&mut later);
        assert_eq!(gain(&player), 0.0);
        assert!(tone(&later, e5, rate) > 0.3 * held, "the E5 sounds on");

        let mut legato = VoicePlayer::new(&file);
        legato.note_on(69, 100);
        legato.render(&mut before);
        legato.note_on(76, 100);
        assert_eq!(gain(&legato), 0.0);

        // A note shorter than a loop has nothing to loop but the silence before it: the next
        // note takes its release over where it has got to, without a jump to silence.
        let mut short = VoicePlayer::new(&file);
        short.note_on(69, 127);
        let mut struck = vec![0.0; LOOP_MIN - 1];
        short.render(&mut struck);
        short.note_off(69);
        let mut releasing = vec![0.0; 48];
        short.render(&mut releasing);
        short.note_on(76, 127);
        assert_eq!(gain(&short), 0.0);
        let mut next = vec![0.0; 48];
        short.render(&mut next);
        let steady = step(&releasing);
        assert!(steady > 0.0);
        let crossing = step(&[releasing[47], next[0]]);
        assert!(
            crossing <= 2.0 * steady,
            "{crossing} at the new note, {steady} before"
        );
    }

    #[test]
    fn a_tail_loops_whole_periods_of_the_note() {
        for period in [2.0f32, 18.3, 45.9, 54.5, 109.1, 300.7, 1_000.0] {
            let len = loop_len(period);
            assert!((LOOP_MIN..=LOOP_MAX).contains(&len), "{period}: {len}");
            let periods = (len as f32 / period).round();
            assert!(
                (len as f32 - periods * period).abs() <= 0.5,
                "{period}: {len} samples is not whole periods"
            );
        }
        // Among the whole numbers of periods that fit, the one that ends nearest a sample.
        assert_eq!(loop_len(45.9), 459);
    }

    #[test]
    fn the_dc_blocker_removes_an_offset_and_keeps_a_tone() {
        let mut dc = DcBlocker::new(24_000);
        let mut signal: Vec<f32> = (0..24_000)
            .map(|n| 0.1 + 0.5 * (std::f32::consts::TAU * 196.0 * n as f32 / 24_000.0).sin())
            .collect();
        dc.process(&mut signal);
        let tail = &signal[12_000..];
        let mean = tail.iter().sum::<f32>() / tail.len() as f32;
        let peak = tail.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(mean.abs() < 1e-3, "offset left: {mean}");
        assert!((peak - 0.5).abs() < 0.01, "G3 kept at {peak}");
    }

    #[test]
    fn the_ceiling_keeps_peaks_below_full_scale_and_quiet_audio_untouched() {
        assert_eq!(soft_ceiling(0.5), 0.5);
        assert_eq!(soft_ceiling(-0.9), -0.9);
        for x in [0.95f32, 1.0, 1.12, 3.0, 1e6] {
            let y = soft_ceiling(x);
            assert!(y > 0.9 && y <= 1.0, "{x} → {y}");
            assert_eq!(soft_ceiling(-x), -y);
        }
        // Monotonic and without a step at the knee.
        let ys: Vec<f32> = (0..2000).map(|i| soft_ceiling(i as f32 * 1e-3)).collect();
        assert!(ys
            .windows(2)
            .all(|w| w[1] >= w[0] && w[1] - w[0] <= 1.001e-3));
    }

    #[test]
    fn rendering_never_allocates_on_any_simd_path() {
        let file = random_voice();
        for path in SimdPath::ALL {
            let Some(kernel) = VoiceKernel::with_simd_path(&file, path) else {
                continue;
            };
            let mut player = VoicePlayer::with_kernel(kernel, &file);
            let mut out = [0.0f32; 700];
            // NOTE: the global allocator aborts on an allocation inside this closure in debug
            // builds.
            nice_assert_no_alloc::assert_no_alloc(|| {
                player.note_on(60, 90);
                player.render(&mut out[..333]);
                player.note_on(62, 90);
                player.note_off(60);
                player.note_off(62);
                player.note_on(64, 90);
                player.render(&mut out[333..]);
                player.note_off(64);
                player.reset();
            });
            assert!(out.iter().any(|v| v.abs() > 0.0), "{}", path.name());
        }
    }
}
