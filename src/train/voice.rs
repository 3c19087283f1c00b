//! The voice WaveNet in candle (see [`crate::voice`] for the equations and
//! [`crate::voice::file`] for the tensor names), and the multi-resolution STFT loss it is
//! trained with.
//!
//! Activations are `[batch, time, channels]`, the layers are the phrase WaveNet's
//! ([`GatedLayer`], convolutions as matrix products).

use candle_core::{DType, Device, Error, Result, Tensor, D};
use candle_nn::{VarBuilder, VarMap};

use super::wavenet::{varmap_tensors, GatedStack, Taps};
use crate::models::container::Precision;
use crate::voice::{file, Dynamics, VoiceConfig, CONTROLS, SPECTRUM_FLOOR};

/// The voice WaveNet: input 1×1, gated dilated causal layers, a two-layer head to one sample,
/// scaled by the loudness's amplitude.
#[derive(Debug, Clone)]
pub struct VoiceWaveNet {
    config: VoiceConfig,
    /// `input`, 1×1, CONTROLS → C.
    input: Taps,
    stack: GatedStack,
    /// `head.output`, 1×1, H → 1.
    head_output: Taps,
}

impl VoiceWaveNet {
    /// The network of `config`, its weights from `vb` (names as in [`crate::voice::file`]).
    pub fn new(config: &VoiceConfig, vb: VarBuilder) -> Result<Self> {
        config.validate().map_err(Error::Msg)?;
        let (c, g, s, h) = (
            config.residual_channels,
            config.gate_channels,
            config.skip_channels,
            config.head_channels,
        );
        Ok(Self {
            config: *config,
            input: Taps::pointwise(CONTROLS, c, vb.pp("input"))?,
            stack: GatedStack::new(config, (c, g, s, h), &vb)?,
            head_output: Taps::pointwise(h, 1, vb.pp("head").pp("output"))?,
        })
    }

    /// The hyperparameters.
    pub fn config(&self) -> &VoiceConfig {
        &self.config
    }

    /// Audio `[batch, time]` from controls `[batch, time, CONTROLS]` and amplitudes
    /// `[batch, time]` (see [`crate::voice::controls`]). Sample `t` depends only on the inputs
    /// of `t − receptive_field + 1 ..= t` (zeros before the start).
    pub fn forward(&self, controls: &Tensor, amplitude: &Tensor) -> Result<Tensor> {
        let hidden = self.stack.forward(self.input.forward(controls)?)?;
        self.head_output.forward(&hidden)?.squeeze(D::Minus1)? * amplitude
    }
}

/// A fresh voice of `config` on `device` with its `VarMap` (candle's default initialisation).
pub fn new_voice(config: &VoiceConfig, device: &Device) -> Result<(VarMap, VoiceWaveNet)> {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
    let model = VoiceWaveNet::new(config, vb)?;
    Ok((varmap, model))
}

/// A voice file of `varmap`'s weights, stored in `precision`.
pub fn to_voice_file(
    varmap: &VarMap,
    config: &VoiceConfig,
    dynamics: &Dynamics,
    training: Option<&str>,
    precision: Precision,
) -> Result<Vec<u8>> {
    let tensors = varmap_tensors(varmap)?;
    file::to_safetensors(config, dynamics, training, precision, &tensors).map_err(Error::Msg)
}

/// One resolution of the STFT loss: frames of `size` samples every `size / 4`, Hann-windowed,
/// transformed by a product with a DFT basis (candle has no FFT; at these sizes a product is
/// fast enough and its gradient is exact).
#[derive(Debug, Clone)]
pub struct Stft {
    size: usize,
    /// `[size, 2 · bins]`: the windowed cosines, then the windowed sines, of bins `0..=size/2`.
    basis: Tensor,
}

impl Stft {
    /// The STFT of `size` samples (a multiple of 4) on `device`.
    pub fn new(size: usize, device: &Device) -> Result<Self> {
        let bins = size / 2 + 1;
        let mut basis = vec![0f32; size * 2 * bins];
        for n in 0..size {
            let window = 0.5 - 0.5 * (std::f64::consts::TAU * n as f64 / size as f64).cos();
            for k in 0..bins {
                let angle = std::f64::consts::TAU * (k * n % size) as f64 / size as f64;
                basis[n * 2 * bins + k] = (window * angle.cos()) as f32;
                basis[n * 2 * bins + bins + k] = (-window * angle.sin()) as f32;
            }
        }
        Ok(Self {
            size,
            basis: Tensor::from_vec(basis, (size, 2 * bins), device)?,
        })
    }

    /// Magnitudes `[batch, frames, bins]` of `x` `[batch, time]`: frames start every `size / 4`
    /// samples, the last one ending at or before the end (`time` a multiple of `size / 4`).
    pub fn magnitudes(&self, x: &Tensor) -> Result<Tensor> {
        let (batch, time) = x.dims2()?;
        let hop = self.size / 4;
        if time % hop != 0 || time < self.size {
            return Err(Error::Msg(format!(
                "STFT of {time} samples: need a multiple of {hop}, at least {}",
                self.size
            )));
        }
        let hops = x.reshape((batch, time / hop, hop))?;
        let frames = time / hop - 3;
        let quarters = (0..4)
            .map(|k| hops.narrow(1, k, frames))
            .collect::<Result<Vec<_>>>()?;
        let framed = Tensor::cat(&quarters, 2)?.reshape((batch * frames, self.size))?;
        let spectrum = framed.matmul(&self.basis)?;
        let bins = self.size / 2 + 1;
        let re = spectrum.narrow(1, 0, bins)?;
        let im = spectrum.narrow(1, bins, bins)?;
        let power = (re.sqr()? + im.sqr()?)?;
        // Added in quadrature before the log: [`SPECTRUM_FLOOR`] of a full-scale sine's bin,
        // which is `size / 4` (a Hann window's coherent gain is ½).
        let floor = f64::from(SPECTRUM_FLOOR) * self.size as f64 / 4.0;
        (power + floor * floor)?
            .sqrt()?
            .reshape((batch, frames, bins))
    }
}

/// The multi-resolution STFT loss over `resolutions`: for each, the mean absolute difference of
/// log magnitudes plus the spectral convergence (`‖|Y| − |Ŷ|‖ / ‖|Y|‖`), averaged over the
/// resolutions. `predicted` and `target` are `[batch, time]`. Phase-blind, as it must be: a
/// voice trained on a recording cannot know the phase the instrument's pitch wandered to.
pub fn stft_loss(resolutions: &[Stft], predicted: &Tensor, target: &Tensor) -> Result<Tensor> {
    let mut total: Option<Tensor> = None;
    for stft in resolutions {
        let p = stft.magnitudes(predicted)?;
        let t = stft.magnitudes(target)?;
        let log_distance = (p.log()? - t.log()?)?.abs()?.mean_all()?;
        let convergence = ((&t - &p)?.sqr()?.sum_all()?.sqrt()?
            / t.sqr()?.sum_all()?.sqrt()?.affine(1.0, 1e-6)?)?;
        let loss = (log_distance + convergence)?;
        total = Some(match total {
            Some(sum) => (sum + loss)?,
            None => loss,
        });
    }
    let total = total.ok_or_else(|| Error::Msg("no STFT resolution".into()))?;
    total.affine(1.0 / resolutions.len() as f64, 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::SimdPath;
    use crate::test_kit::relative_error;
    use crate::train::trainer::load_weights;
    use crate::train::wavenet::init_seeded;
    use crate::voice::controls::{Excitation, Line};
    use crate::voice::kernel::BLOCK;
    use crate::voice::{VoiceFile, VoiceKernel};

    fn small_config() -> VoiceConfig {
        VoiceConfig {
            sample_rate: 24_000,
            residual_channels: 6,
            gate_channels: 5,
            skip_channels: 7,
            head_channels: 9,
            layers_per_stack: 7,
            stacks: 2,
        }
    }

    fn dynamics() -> Dynamics {
        Dynamics {
            quiet_db: -40.0,
            loud_db: -10.0,
            attack_s: 0.01,
            release_s: 0.05,
            key_offsets_db: Vec::new(),
        }
    }

    /// Controls `[t][CONTROLS]` and amplitudes of `samples` samples of a little legato and
    /// detached tune.
    fn performance(samples: usize) -> (Vec<[f32; CONTROLS]>, Vec<f32>) {
        let mut line = Line::new(&dynamics(), 24_000);
        let mut excitation = Excitation::new(24_000);
        let events = [
            (0, 60, true),
            (700, 64, true),
            (900, 60, false),
            (1300, 67, true),
        ];
        (0..samples)
            .map(|t| {
                for &(at, pitch, on) in &events {
                    if at == t {
                        if on {
                            line.note_on(pitch, 100);
                        } else {
                            line.note_off(pitch);
                        }
                    }
                }
                excitation.next(&line.step())
            })
            .unzip()
    }

    /// The kernel's render of `controls` and `amplitude` in uneven blocks (the block edges, the
    /// layers' refills and partial blocks all show).
    fn render_unevenly(
        kernel: &mut VoiceKernel,
        controls: &[[f32; CONTROLS]],
        amplitude: &[f32],
    ) -> Vec<f32> {
        let mut rendered = Vec::new();
        for size in [1, 64, 17, 63, 64, 5].iter().cycle() {
            let t = rendered.len();
            if t >= controls.len() {
                break;
            }
            let n = (*size).min(controls.len() - t);
            let mut block = [[0.0; BLOCK]; CONTROLS];
            let mut amp = [0.0; BLOCK];
            for i in 0..n {
                for (row, v) in block.iter_mut().zip(controls[t + i]) {
                    row[i] = v;
                }
                amp[i] = amplitude[t + i];
            }
            let mut out = [0.0; BLOCK];
            kernel.render_block(&block, &amp, &mut out[..n]);
            rendered.extend_from_slice(&out[..n]);
        }
        rendered
    }

    /// Checks every SIMD path's kernel against candle's forward pass of `model` (whose weights
    /// `file` holds) on a little tune.
    fn kernel_matches_candle(model: &VoiceWaveNet, file: &VoiceFile) {
        let device = Device::Cpu;
        let samples = 2_000;
        let (controls, amplitude) = performance(samples);
        let flat: Vec<f32> = controls.iter().flatten().copied().collect();
        let expected = model
            .forward(
                &Tensor::from_vec(flat, (1, samples, CONTROLS), &device).unwrap(),
                &Tensor::from_vec(amplitude.clone(), (1, samples), &device).unwrap(),
            )
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert!(
            expected.iter().any(|v| v.abs() > 1e-3),
            "a silent reference"
        );
        for path in SimdPath::ALL {
            let Some(mut kernel) = VoiceKernel::with_simd_path(file, path) else {
                continue;
            };
            let rendered = render_unevenly(&mut kernel, &controls, &amplitude);
            let error = relative_error(&rendered, &expected);
            assert!(error < 1e-4, "{}: relative error {error:e}", path.name());
        }
    }

    #[test]
    fn the_kernel_renders_what_candle_computes_on_every_simd_path() {
        let config = small_config();
        let (varmap, model) = new_voice(&config, &Device::Cpu).unwrap();
        init_seeded(&varmap, 3, 1.5).unwrap();
        let bytes = to_voice_file(&varmap, &config, &dynamics(), None, Precision::Single).unwrap();
        kernel_matches_candle(&model, &VoiceFile::parse(&bytes).unwrap());
    }

    #[test]
    fn the_kernel_renders_the_trained_voices_as_candle_does() {
        for bytes in [crate::assets::FIDDLE_VOICE, crate::assets::FLUTE_VOICE] {
            let file = VoiceFile::parse(bytes).unwrap();
            let (varmap, model) = new_voice(&file.config, &Device::Cpu).unwrap();
            load_weights(&varmap, bytes).unwrap();
            kernel_matches_candle(&model, &file);
        }
    }

    #[test]
    fn the_stft_of_a_sine_peaks_at_its_bin_and_the_loss_sees_only_magnitudes() {
        let device = Device::Cpu;
        let stft = Stft::new(512, &device).unwrap();
        let rate = 24_000.0;
        // Bin 32 of 512 at 24 kHz is 1,500 Hz.
        let sine = |phase: f64| -> Vec<f32> {
            (0..2048)
                .map(|n| (std::f64::consts::TAU * 1500.0 * n as f64 / rate + phase).sin() as f32)
                .collect()
        };
        let x = Tensor::from_vec(sine(0.0), (1, 2048), &device).unwrap();
        let m = stft.magnitudes(&x).unwrap();
        assert_eq!(m.dims(), &[1, 13, 257]);
        let frame: Vec<f32> = m.get(0).unwrap().get(5).unwrap().to_vec1().unwrap();
        let peak = frame
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap();
        assert_eq!(peak.0, 32);
        // A Hann window's coherent gain is 1/2: a unit sine's bin is size / 4.
        assert!((peak.1 - 128.0).abs() < 0.5, "peak {}", peak.1);
        let resolutions = [stft, Stft::new(1024, &device).unwrap()];
        let shifted = Tensor::from_vec(sine(1.0), (1, 2048), &device).unwrap();
        let same = stft_loss(&resolutions, &shifted, &x)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let quieter = (&x * 0.5).unwrap();
        let off = stft_loss(&resolutions, &quieter, &x)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(same < 0.01, "phase shift costs {same}");
        assert!(off > 0.5, "half the level costs only {off}");
    }

    #[test]
    fn the_loss_does_not_hear_what_lies_100_db_below_full_scale() {
        let device = Device::Cpu;
        let resolutions = [
            Stft::new(512, &device).unwrap(),
            Stft::new(2048, &device).unwrap(),
        ];
        // A full-scale 1,500 Hz sine (a whole number of cycles in every frame, 24 kHz), with
        // white noise under it at `level` (peak) or without.
        let mut state = 0x2545_F491u32;
        let noise: Vec<f32> = (0..4096)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 8) as f32 / (1u32 << 23) as f32 - 1.0
            })
            .collect();
        let sine = |n: usize| (std::f32::consts::TAU * 1500.0 * n as f32 / 24_000.0).sin();
        let signal = |level: f32| {
            let samples = (0..4096).map(|n| sine(n) + level * noise[n]).collect();
            Tensor::from_vec(samples, (1, 4096), &device).unwrap()
        };
        let loss = |level: f32| {
            stft_loss(&resolutions, &signal(level), &signal(0.0))
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
        };
        let (inaudible, audible) = (loss(1e-6), loss(1e-2));
        // 120 dB down, the noise's bins stay under the floor; 40 dB down, they are heard.
        assert!(inaudible < 0.01, "noise 120 dB down costs {inaudible}");
        assert!(audible > 1.0, "noise 40 dB down costs only {audible}");
    }
}
