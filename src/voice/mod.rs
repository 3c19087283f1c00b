//! The neural voice: a WaveNet that sings a line of notes as audio, in the sound of the
//! instrument it was trained on (a fiddle, a flute, or the player's own).
//!
//! # The voice WaveNet
//! It runs at [`VoiceConfig::sample_rate`] (24 kHz for the default voices) and turns per-sample
//! control signals into audio samples; it is not autoregressive, so a voice is deterministic
//! and cheap. The controls of sample `t` ([`controls`]) are [`CONTROLS`] numbers made from the
//! line's pitch `f0(t)` (Hz), loudness `L(t)` (dB relative to full scale, RMS) and the time
//! since the note's onset:
//! ```text
//! u_t      = the controls of sample t                                        (CONTROLS)
//! r_t      = I · u_t + i_b                                       input 1×1, CONTROLS → C
//! layer l, dilation d = 2^(l mod layers_per_stack):
//!   h      = W_l · [r_{t−d} ; r_t] + b_l           kernel-2 dilated causal conv, C → 2G
//!   z      = tanh(h[..G]) ⊙ sigmoid(h[G..])                                 gate, G
//!   s     += S_l · z + c_l                                                  skip 1×1, G → S
//!   r      = r + R_l · z + a_l                      residual 1×1, G → C (not in the last layer)
//! y_t      = a(t) · (O · relu(H · relu(s) + h_b) + o_b)              head, S → H → 1
//! ```
//! with `a(t) = 10^(L(t)/20)` the loudness as an RMS amplitude (0 in silence): the network
//! shapes a waveform of unit level, the loudness scales it, so silence is exact silence and the
//! level follows the control whatever the weights. `r_{t−d}` is zero before the first sample.
//!
//! The pitch enters as a phase-locked excitation (a band-limited pulse train and the first
//! three harmonics at `f0`), so the output's pitch is the control's by construction and the
//! network only has to learn the timbre: the spectrum envelope, the attack, the noise of a
//! bow or a breath (a seeded noise control gives it something to shape).
//!
//! # Parts
//! - [`analysis`]: pitch (YIN), loudness and onsets of a recording: a voice's controls learned
//!   from its own audio, and the pitch check of rendered audio.
//! - [`controls`]: the control signals, from a line of notes (the plugin, the renderer) or from
//!   a recording's pitch and loudness (training).
//! - [`file`]: the voice file format (safetensors), validated on load.
//! - [`kernel`]: the hand-written block kernel that renders it, allocation-free.
//! - [`player`]: a voice playing one line at its own rate; [`stream`]: at the host's.

pub mod analysis;
pub mod controls;
pub mod delay;
pub mod file;
pub mod kernel;
pub mod player;
pub mod resample;
pub mod slot;
pub mod stream;

pub use crate::models::stack::DilatedStack;
pub use controls::CONTROLS;
pub use file::VoiceFile;
pub use kernel::VoiceKernel;

/// Where a voice's spectra stop counting, as a fraction of a full-scale sine's STFT bin
/// (−100 dB): magnitudes below it count as it, in the loss a voice trains on and in the checks
/// that compare it with its instrument alike, so training spends nothing on what the checks (and
/// a listener) cannot hear — a render's dither, the last of a release.
pub const SPECTRUM_FLOOR: f32 = 1e-5;

/// Hyperparameters of a voice WaveNet; recorded in every voice file's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct VoiceConfig {
    /// The rate the voice renders at, Hz (the host's rate is reached by resampling).
    pub sample_rate: u32,
    /// Width of the residual stream (C).
    pub residual_channels: usize,
    /// Width of each half (tanh, sigmoid) of the gate (G).
    pub gate_channels: usize,
    /// Width of the summed skip connections (S).
    pub skip_channels: usize,
    /// Width of the head's hidden layer (H).
    pub head_channels: usize,
    /// Layers per stack; their dilations are `1, 2, 4, …, 2^(layers_per_stack − 1)` samples.
    pub layers_per_stack: usize,
    /// Number of stacks (the dilation pattern repeats this many times).
    pub stacks: usize,
}

impl Default for VoiceConfig {
    /// The default voices: 24 kHz, C = G = S = H = 16, dilations 1…512 (a receptive field of
    /// 1,024 samples, 43 ms: long enough for a body resonance or a bow's attack).
    fn default() -> Self {
        Self {
            sample_rate: 24_000,
            residual_channels: 16,
            gate_channels: 16,
            skip_channels: 16,
            head_channels: 16,
            layers_per_stack: 10,
            stacks: 1,
        }
    }
}

impl DilatedStack for VoiceConfig {
    fn layers_per_stack(&self) -> usize {
        self.layers_per_stack
    }

    fn stacks(&self) -> usize {
        self.stacks
    }
}

impl VoiceConfig {
    /// Multiply-adds per rendered sample (gates and activations left out).
    pub fn macs_per_sample(&self) -> usize {
        let (c, g, s, h) = (
            self.residual_channels,
            self.gate_channels,
            self.skip_channels,
            self.head_channels,
        );
        let layers: usize = (0..self.layers())
            .map(|l| 2 * c * 2 * g + g * s + if self.has_residual(l) { g * c } else { 0 })
            .sum();
        CONTROLS * c + layers + s * h + h
    }

    /// Checks that the network is buildable and its rate usable.
    pub fn validate(&self) -> Result<(), String> {
        let sizes = [
            ("residual_channels", self.residual_channels),
            ("gate_channels", self.gate_channels),
            ("skip_channels", self.skip_channels),
            ("head_channels", self.head_channels),
            ("layers_per_stack", self.layers_per_stack),
            ("stacks", self.stacks),
        ];
        if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{name} is 0"));
        }
        if let Some((name, v)) = sizes.iter().find(|(_, v)| *v > 256) {
            return Err(format!("{name} is {v}, at most 256"));
        }
        if self.layers_per_stack > 14 {
            return Err(format!(
                "layers_per_stack is {}, at most 14 (dilations up to 8192 samples)",
                self.layers_per_stack
            ));
        }
        if !(8_000..=192_000).contains(&self.sample_rate) {
            return Err(format!(
                "sample_rate {} Hz is outside 8–192 kHz",
                self.sample_rate
            ));
        }
        crate::models::stack::check_state_size(self.state_floats())
    }

    /// Floats of the kernel's running state: each layer keeps C channels of twice its dilation
    /// plus two blocks of past signal (see `kernel::Layer`).
    pub fn state_floats(&self) -> usize {
        let per_channel = 2 * (self.receptive_field() - 1) + 2 * kernel::BLOCK * self.layers();
        per_channel.saturating_mul(self.residual_channels)
    }
}

/// How a voice turns a note's velocity and pitch into loudness, and how its notes start and
/// end: fitted to the training audio and kept in the voice file, so the plugin plays the
/// instrument at the levels it was recorded at — across its range too (a violin's top string is
/// quieter than its G string).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Dynamics {
    /// Loudness of velocity 1 at a key without an offset, dB relative to full scale (RMS).
    pub quiet_db: f32,
    /// Loudness of velocity 127 at a key without an offset, dB relative to full scale (RMS).
    pub loud_db: f32,
    /// Time a note takes to rise from silence to its loudness, seconds.
    pub attack_s: f32,
    /// Time a released note takes to fall by 60 dB, seconds.
    pub release_s: f32,
    /// `(MIDI key, dB)`: how much louder than the others the instrument plays those keys, in
    /// key order; between them the offset is interpolated, beyond them it is the nearest one's.
    /// Empty: the same level on every key.
    #[serde(default)]
    pub key_offsets_db: Vec<(u8, f32)>,
}

impl Dynamics {
    /// The loudness of a note struck at `velocity` (1–127) on `key`, dB: linear in dB between
    /// `quiet_db` and `loud_db`, plus the key's offset.
    pub fn loudness_db(&self, velocity: u8, key: u8) -> f32 {
        let v = f32::from(velocity.clamp(1, 127) - 1) / 126.0;
        self.quiet_db + v * (self.loud_db - self.quiet_db) + self.key_offset_db(key)
    }

    /// The offset of `key`, dB (see [`key_offsets_db`](Self::key_offsets_db)).
    pub fn key_offset_db(&self, key: u8) -> f32 {
        let offsets = &self.key_offsets_db;
        let after = offsets.partition_point(|&(k, _)| k < key);
        match (after.checked_sub(1).map(|i| offsets[i]), offsets.get(after)) {
            (_, Some(&(k, db))) if k == key => db,
            (Some((k0, db0)), Some(&(k1, db1))) => {
                db0 + (db1 - db0) * f32::from(key - k0) / f32::from(k1 - k0)
            }
            (Some((_, db)), None) | (None, Some(&(_, db))) => db,
            (None, None) => 0.0,
        }
    }

    /// Checks that the levels and times are usable.
    pub fn validate(&self) -> Result<(), String> {
        let finite = [self.quiet_db, self.loud_db, self.attack_s, self.release_s]
            .iter()
            .chain(self.key_offsets_db.iter().map(|(_, db)| db))
            .all(|v| v.is_finite());
        if !finite {
            return Err("dynamics has a non-finite value".into());
        }
        if !(-90.0..=0.0).contains(&self.quiet_db)
            || !(-90.0..=0.0).contains(&self.loud_db)
            || self.quiet_db > self.loud_db
        {
            return Err(format!(
                "loudness {} to {} dB is not a range within −90…0 dB",
                self.quiet_db, self.loud_db
            ));
        }
        if !(0.0..=2.0).contains(&self.attack_s) || !(0.001..=10.0).contains(&self.release_s) {
            return Err(format!(
                "attack {} s / release {} s out of range",
                self.attack_s, self.release_s
            ));
        }
        let ordered = self.key_offsets_db.windows(2).all(|w| w[0].0 < w[1].0);
        let bounded = self
            .key_offsets_db
            .iter()
            .all(|&(k, db)| k < 128 && db.abs() <= 40.0);
        if !ordered || !bounded {
            return Err("key offsets must be in key order, keys below 128, within ±40 dB".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loudness_follows_velocity_and_the_key_offsets_between_and_beyond_them() {
        let dynamics = Dynamics {
            quiet_db: -40.0,
            loud_db: -14.8,
            attack_s: 0.03,
            release_s: 0.2,
            key_offsets_db: vec![(60, 2.0), (72, -4.0)],
        };
        assert_eq!(dynamics.loudness_db(1, 60), -38.0);
        assert!((dynamics.loudness_db(127, 72) - -18.8).abs() < 1e-5);
        assert_eq!(dynamics.key_offset_db(66), -1.0);
        assert_eq!(dynamics.key_offset_db(40), 2.0);
        assert_eq!(dynamics.key_offset_db(100), -4.0);
        assert!(dynamics.validate().is_ok());
        let unordered = Dynamics {
            key_offsets_db: vec![(72, 0.0), (60, 0.0)],
            ..dynamics.clone()
        };
        assert!(unordered.validate().is_err());
        let flat = Dynamics {
            key_offsets_db: Vec::new(),
            ..dynamics
        };
        assert_eq!(flat.loudness_db(64, 90), flat.loudness_db(64, 30));
    }

    /// A voice of a few MB of weights can ask for gigabytes of signal history through many
    /// long-dilation layers: refused before anything is built.
    #[test]
    fn a_config_whose_state_would_take_gigabytes_is_refused() {
        let long = VoiceConfig {
            residual_channels: 256,
            gate_channels: 1,
            skip_channels: 1,
            head_channels: 1,
            layers_per_stack: 14,
            stacks: 256,
            ..VoiceConfig::default()
        };
        let error = long.validate().unwrap_err();
        assert!(error.contains("MiB"), "{error}");
        assert!(VoiceConfig::default().validate().is_ok());
    }
}
