//! A neural voice ready to play a line of notes: the [`Line`] turns note-ons and note-offs into
//! targets, the [`Excitation`] into controls, the [`VoiceKernel`] into audio at the voice's rate,
//! a DC blocker takes out what offset the network's bias leaves (the STFT loss it is trained
//! with barely sees 0 Hz), and a soft ceiling keeps the loudest peaks below full scale.

use crate::voice::controls::{Excitation, Line};
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
    dc: DcBlocker,
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
            dc: DcBlocker::new(rate),
        }
    }

    /// The rate [`render`](Self::render) produces, Hz.
    pub fn sample_rate(&self) -> u32 {
        self.kernel.config().sample_rate
    }

    /// Strikes `pitch` at `velocity` (1–127); see [`Line`] for how it joins the note before.
    pub fn note_on(&mut self, pitch: u8, velocity: u8) {
        self.line.note_on(pitch, velocity);
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

    /// Whether the voice makes any sound (a note held or fading).
    pub fn sounding(&self) -> bool {
        self.line.sounding()
    }

    /// Silence and a fresh start: what a new render starts from. The same notes at the same
    /// samples after a reset give the same audio, to the bit.
    pub fn reset(&mut self) {
        self.line.silence();
        self.excitation.reset();
        self.kernel.reset();
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

    /// A legato pair and a detached note, rendered in host-like blocks of `block` samples.
    fn play(player: &mut VoicePlayer, block: usize) -> Vec<f32> {
        let mut out = vec![0.0; 9_600];
        let events = [
            (240, 69, true),
            (2_400, 72, true),
            (2_500, 69, false),
            (4_800, 72, false),
        ];
        let mut t = 0;
        for (at, pitch, on) in events.into_iter().chain([(9_600, 0, false)]) {
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
        let whole = play(&mut player, 9_600);
        assert!(
            whole[..10].iter().all(|&v| v == 0.0),
            "silent before the first note"
        );
        assert!(whole.iter().any(|v| v.abs() > 1e-3));
        assert!(whole.iter().all(|v| v.is_finite()));
        assert!(!player.sounding(), "the last note has faded");
        player.reset();
        assert_eq!(play(&mut player, 100), whole);
        player.reset();
        assert_eq!(play(&mut player, 1), whole);
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
                player.render(&mut out[333..]);
                player.note_off(62);
                player.reset();
            });
            assert!(out.iter().any(|v| v.abs() > 0.0), "{}", path.name());
        }
    }
}
