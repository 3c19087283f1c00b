//! The phrase WaveNet in candle: full-sequence forward for training, the same network
//! [`crate::models::wavenet::WaveNetKernel`] runs step by step (see [`crate::models::wavenet`] for the equations and
//! [`crate::models::wavenet::weights`] for the tensor names).
//!
//! Activations are kept as `[batch, time, channels]` and every convolution is written as matrix
//! products: a 1×1 conv is one product, the kernel-2 dilated conv is two (one on the input shifted
//! by the dilation). Besides skipping transposes, this sidesteps candle 0.11's CPU `conv1d`
//! backward, which gives wrong kernel gradients for batches of more than one sequence.

use candle_core::{DType, Device, Error, Module, Result, Tensor};
use candle_nn::{embedding, init, Embedding, VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::models::container::NamedTensor;
use crate::models::stack::DilatedStack;
use crate::models::wavenet::Precision;
pub use crate::models::wavenet::WaveNetConfig;
use crate::music::encoding::Vocabulary;

/// A convolution stored as `weight` `[out, in, taps]` and `bias` `[out]` (the names and shapes
/// of a conv1d, which the model files use), applied as matrix products over `[B, T, in]`.
#[derive(Debug, Clone)]
pub(crate) struct Taps {
    /// One `[in, out]` matrix per tap; tap `k` of `taps` reads the input `(taps − 1 − k) · dilation`
    /// steps back.
    matrices: Vec<Tensor>,
    bias: Tensor,
    dilation: usize,
}

impl Taps {
    fn new(
        inputs: usize,
        outputs: usize,
        taps: usize,
        dilation: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let weight = vb.get_with_hints(
            (outputs, inputs, taps),
            "weight",
            init::DEFAULT_KAIMING_UNIFORM,
        )?;
        let bias = vb.get_with_hints(outputs, "bias", init::ZERO)?;
        let matrices = (0..taps)
            .map(|k| weight.narrow(2, k, 1)?.squeeze(2)?.t())
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            matrices,
            bias,
            dilation,
        })
    }

    /// A 1×1 convolution.
    pub(crate) fn pointwise(inputs: usize, outputs: usize, vb: VarBuilder) -> Result<Self> {
        Self::new(inputs, outputs, 1, 1, vb)
    }

    /// `[B, T, in]` → `[B, T, out]`, causal: zeros before the start.
    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, c) = x.dims3()?;
        let taps = self.matrices.len();
        let mut sum: Option<Tensor> = None;
        for (k, matrix) in self.matrices.iter().enumerate() {
            let back = (taps - 1 - k) * self.dilation;
            let input = if back == 0 {
                x.clone()
            } else if back >= t {
                continue;
            } else {
                x.pad_with_zeros(1, back, 0)?.narrow(1, 0, t)?
            };
            let product = input.reshape((b * t, c))?.matmul(matrix)?;
            sum = Some(match sum {
                Some(s) => (s + product)?,
                None => product,
            });
        }
        let out = self.bias.dim(0)?;
        match sum {
            Some(s) => s.broadcast_add(&self.bias)?.reshape((b, t, out)),
            None => self
                .bias
                .reshape((1, 1, out))?
                .broadcast_as((b, t, out))?
                .contiguous(),
        }
    }
}

/// One gated dilated causal layer: `layers.{l}.dilated`, `.skip` and (all but the last layer)
/// `.residual`.
#[derive(Debug, Clone)]
pub(crate) struct GatedLayer {
    gate_channels: usize,
    /// Kernel 2, dilation `dilation`, C → 2G (tanh half, then sigmoid half).
    dilated: Taps,
    /// 1×1, G → S.
    skip: Taps,
    /// 1×1, G → C; `None` in the last layer, whose residual output would feed nothing.
    residual: Option<Taps>,
}

impl GatedLayer {
    /// A layer of `(C, G, S)` channels with its dilation, and a residual 1×1 if `residual`.
    fn with_sizes(
        (c, g, s): (usize, usize, usize),
        dilation: usize,
        residual: bool,
        vb: VarBuilder,
    ) -> Result<Self> {
        let residual = if residual {
            Some(Taps::pointwise(g, c, vb.pp("residual"))?)
        } else {
            None
        };
        Ok(Self {
            gate_channels: g,
            dilated: Taps::new(c, 2 * g, 2, dilation, vb.pp("dilated"))?,
            skip: Taps::pointwise(g, s, vb.pp("skip"))?,
            residual,
        })
    }

    /// `[B, T, C]` → (the next layer's input `[B, T, C]`, this layer's skip `[B, T, S]`).
    fn forward(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let h = self.dilated.forward(x)?;
        let g = self.gate_channels;
        let filter = h.narrow(2, 0, g)?.tanh()?;
        let gate = candle_nn::ops::sigmoid(&h.narrow(2, g, g)?)?;
        let z = (filter * gate)?;
        let skip = self.skip.forward(&z)?;
        let next = match &self.residual {
            Some(residual) => (x + residual.forward(&z)?)?,
            None => x.clone(),
        };
        Ok((next, skip))
    }
}

/// What both WaveNets share between their input and their output 1×1: the gated layers
/// (weights under `layers.{l}`) and the head's hidden layer (`head.hidden`), summing the layers'
/// skips: `relu(H · relu(Σ skips) + h_b)`.
#[derive(Debug, Clone)]
pub(crate) struct GatedStack {
    layers: Vec<GatedLayer>,
    /// `head.hidden`, 1×1, S → H.
    head_hidden: Taps,
}

impl GatedStack {
    /// The layers of `stack` with `(C, G, S, H)` channels, weights from `vb` (the model's root).
    pub(crate) fn new(
        stack: &impl DilatedStack,
        (c, g, s, h): (usize, usize, usize, usize),
        vb: &VarBuilder,
    ) -> Result<Self> {
        let layers = (0..stack.layers())
            .map(|l| {
                GatedLayer::with_sizes(
                    (c, g, s),
                    stack.dilation(l),
                    stack.has_residual(l),
                    vb.pp("layers").pp(l),
                )
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            layers,
            head_hidden: Taps::pointwise(s, h, vb.pp("head").pp("hidden"))?,
        })
    }

    /// `[B, T, C]` → the head's hidden activations `[B, T, H]`.
    pub(crate) fn forward(&self, mut x: Tensor) -> Result<Tensor> {
        let mut skip: Option<Tensor> = None;
        for layer in &self.layers {
            let (next, layer_skip) = layer.forward(&x)?;
            skip = Some(match skip {
                Some(sum) => (sum + layer_skip)?,
                None => layer_skip,
            });
            x = next;
        }
        // NOTE: `validate` guarantees at least one layer.
        let skip = skip.ok_or_else(|| Error::Msg("no layers".into()))?;
        self.head_hidden.forward(&skip.relu()?)?.relu()
    }
}

/// The phrase WaveNet: event and bar-position embeddings, gated dilated causal layers with
/// residual and skip 1×1s, and a two-layer head to one logit per event id.
#[derive(Debug, Clone)]
pub struct PhraseWaveNet {
    config: WaveNetConfig,
    /// `token_embedding`, V → C.
    token_embedding: Embedding,
    /// `position_embedding`, P → C.
    position_embedding: Embedding,
    stack: GatedStack,
    /// `head.output`, 1×1, H → V.
    head_output: Taps,
}

impl PhraseWaveNet {
    /// The network of `config`, its weights from `vb` (names as in [`crate::models::wavenet::weights`]).
    pub fn new(config: &WaveNetConfig, vb: VarBuilder) -> Result<Self> {
        config.validate().map_err(Error::Msg)?;
        let (v, c, g, s, h) = config.sizes();
        Ok(Self {
            config: *config,
            token_embedding: embedding(v, c, vb.pp("token_embedding"))?,
            position_embedding: embedding(config.bar_positions, c, vb.pp("position_embedding"))?,
            stack: GatedStack::new(config, (c, g, s, h), &vb)?,
            head_output: Taps::pointwise(h, v, vb.pp("head").pp("output"))?,
        })
    }

    /// The hyperparameters.
    pub fn config(&self) -> &WaveNetConfig {
        &self.config
    }

    /// Logits `[batch, time, V]` for event ids `tokens` `[batch, time]` (u32) and position
    /// indices `positions` `[batch, time]` (u32, each mapped by
    /// [`WaveNetConfig::position_index`]). The logits at time `t` depend only on inputs
    /// `t − receptive_field + 1 ..= t` (zeros before the start).
    pub fn forward(&self, tokens: &Tensor, positions: &Tensor) -> Result<Tensor> {
        let x = (self.token_embedding.forward(tokens)?
            + self.position_embedding.forward(positions)?)?;
        self.head_output.forward(&self.stack.forward(x)?)
    }
}

/// Replaces every variable of `varmap` with seeded uniform values (candle's CPU device cannot
/// be seeded): conv weights and biases in ±`gain / sqrt(fan_in)` (`gain` 1 is PyTorch's
/// default), embeddings with unit variance times `gain`. Variables are drawn in name order, so
/// the same seed gives the same weights.
pub fn init_seeded(varmap: &VarMap, seed: u64, gain: f64) -> Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let vars = varmap
        .data()
        .lock()
        .map_err(|e| Error::Msg(e.to_string()))?;
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    for name in names {
        let var = &vars[name];
        let dims = var.dims().to_vec();
        let bound = if name.contains("embedding") {
            3f64.sqrt() * gain
        } else {
            // Weights `[out, in, k]`: fan-in `in · k`; a bias shares its weight's fan-in, which
            // is not in its own shape: use the layer's weight.
            let weight = name.replace(".bias", ".weight");
            let fan_in: usize = vars
                .get(&weight)
                .map_or(1, |w| w.dims()[1..].iter().product());
            gain / (fan_in.max(1) as f64).sqrt()
        } as f32;
        let values: Vec<f32> = (0..var.elem_count())
            .map(|_| rng.random_range(-bound..=bound))
            .collect();
        var.set(&Tensor::from_vec(values, dims, var.device())?)?;
    }
    Ok(())
}

/// A model file of `varmap`'s weights (see [`crate::models::wavenet::weights`]), every variable stored
/// in `precision`.
pub fn to_safetensors(
    varmap: &VarMap,
    config: &WaveNetConfig,
    vocabulary: &Vocabulary,
    training: Option<&str>,
    precision: Precision,
) -> Result<Vec<u8>> {
    let tensors = varmap_tensors(varmap)?;
    crate::models::wavenet::weights::to_safetensors(
        config, vocabulary, training, precision, &tensors,
    )
    .map_err(Error::Msg)
}

/// Every variable of `varmap` as (name, shape, row-major f32 values), what a model file stores.
pub(crate) fn varmap_tensors(varmap: &VarMap) -> Result<Vec<NamedTensor>> {
    let vars = varmap
        .data()
        .lock()
        .map_err(|e| Error::Msg(e.to_string()))?;
    let mut tensors = Vec::with_capacity(vars.len());
    for (name, var) in vars.iter() {
        let values = var
            .as_tensor()
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        tensors.push((name.clone(), var.dims().to_vec(), values));
    }
    Ok(tensors)
}

/// A fresh model of `config` on `device` with its `VarMap` (candle's default initialisation).
pub fn new_model(config: &WaveNetConfig, device: &Device) -> Result<(VarMap, PhraseWaveNet)> {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
    let model = PhraseWaveNet::new(config, vb)?;
    Ok((varmap, model))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::wavenet::weights::expected_tensors;
    use crate::models::wavenet::WaveNetKernel;
    use crate::test_kit::{relative_error, small_config, test_sequence};

    /// Dilations 1…64 × 2 (receptive field 255), sizes unlike the small config's.
    fn deep_config() -> WaveNetConfig {
        WaveNetConfig {
            vocab_size: 353,
            bar_positions: 192,
            residual_channels: 24,
            gate_channels: 16,
            skip_channels: 32,
            head_channels: 48,
            layers_per_stack: 7,
            stacks: 2,
        }
    }

    /// A seeded model and its file's bytes in `precision`.
    fn seeded_model(
        config: &WaveNetConfig,
        seed: u64,
        precision: Precision,
    ) -> (PhraseWaveNet, Vec<u8>) {
        let (varmap, model) = new_model(config, &Device::Cpu).unwrap();
        init_seeded(&varmap, seed, 2.0).unwrap();
        let bytes = to_safetensors(
            &varmap,
            config,
            &Vocabulary::default(),
            Some("seeded"),
            precision,
        )
        .unwrap();
        (model, bytes)
    }

    /// The network candle reads from a model file's bytes (as resuming training does).
    fn from_file(config: &WaveNetConfig, bytes: &[u8]) -> PhraseWaveNet {
        let tensors = candle_core::safetensors::load_buffer(bytes, &Device::Cpu).unwrap();
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
        PhraseWaveNet::new(config, vb).unwrap()
    }

    fn candle_logits(model: &PhraseWaveNet, tokens: &[u16], positions: &[u32]) -> Vec<Vec<f32>> {
        let t = tokens.len();
        let tokens: Vec<u32> = tokens.iter().map(|&x| u32::from(x)).collect();
        let tokens = Tensor::from_vec(tokens, (1, t), &Device::Cpu).unwrap();
        let positions = Tensor::from_vec(positions.to_vec(), (1, t), &Device::Cpu).unwrap();
        let logits = model.forward(&tokens, &positions).unwrap();
        assert_eq!(logits.dims(), [1, t, 353]);
        logits.squeeze(0).unwrap().to_vec2::<f32>().unwrap()
    }

    #[test]
    fn variable_names_are_the_weight_contract() {
        for config in [small_config(), deep_config(), WaveNetConfig::default()] {
            let (varmap, _) = new_model(&config, &Device::Cpu).unwrap();
            let vars = varmap.data().lock().unwrap();
            let mut found: Vec<(String, Vec<usize>)> = vars
                .iter()
                .map(|(name, var)| (name.clone(), var.dims().to_vec()))
                .collect();
            found.sort();
            let mut expected: Vec<(String, Vec<usize>)> = expected_tensors(&config)
                .into_iter()
                .map(|spec| (spec.name, spec.shape))
                .collect();
            expected.sort();
            assert_eq!(found, expected);
            let params: usize = vars.values().map(|v| v.elem_count()).sum();
            assert_eq!(params, config.param_count());
        }
    }

    #[test]
    fn seeded_init_is_reproducible() {
        let config = small_config();
        let single = |seed| seeded_model(&config, seed, Precision::Single).1;
        // Byte for byte: the file is canonical, so its hash identifies the model.
        assert!(single(4) == single(4));
        assert!(single(4) != single(5));
        // candle reads a single-precision file back to the same network (resuming training).
        let (model, bytes) = seeded_model(&config, 4, Precision::Single);
        let (tokens, positions) = test_sequence(20, 1, 353, 96);
        let logits = candle_logits(&model, &tokens, &positions);
        assert_eq!(
            logits,
            candle_logits(&from_file(&config, &bytes), &tokens, &positions)
        );
        // A half-precision file is half the size and rounds the weights only slightly.
        let (_, half) = seeded_model(&config, 4, Precision::Half);
        assert!(
            half.len() < bytes.len() / 2 + 4096,
            "{} vs {}",
            half.len(),
            bytes.len()
        );
        let rounded = candle_logits(&from_file(&config, &half), &tokens, &positions);
        for (a, b) in rounded.iter().zip(&logits) {
            let err = relative_error(a, b);
            assert!(err > 0.0 && err < 1e-2, "{err}");
        }
    }

    /// The kernel, step by step, gives candle's full forward at every time index, on the same
    /// weights in either precision.
    #[test]
    fn kernel_steps_equal_the_candle_forward() {
        let cases = [
            (small_config(), 11, Precision::Single),
            (small_config(), 11, Precision::Half),
            (deep_config(), 12, Precision::Half),
        ];
        for (config, seed, precision) in cases {
            let (_, bytes) = seeded_model(&config, seed, precision);
            let model = from_file(&config, &bytes);
            let mut kernel = WaveNetKernel::load(&bytes).unwrap();
            for len in [1, 7, 100, 300] {
                let (tokens, positions) =
                    test_sequence(len, seed + len as u64, 353, config.bar_positions as u32);
                let expected = candle_logits(&model, &tokens, &positions);
                kernel.reset();
                let mut worst = 0.0f32;
                let mut scale = 0.0f32;
                for (t, (&token, &position)) in tokens.iter().zip(&positions).enumerate() {
                    let logits = kernel.step(token, position);
                    let err = relative_error(logits, &expected[t]);
                    assert!(
                        err < 1e-4,
                        "{precision:?} {config:?} len {len} step {t}: {err}"
                    );
                    worst = worst.max(err);
                    scale = expected[t].iter().fold(scale, |m, v| m.max(v.abs()));
                }
                println!(
                    "{precision:?} layers {} rf {} len {len}: max rel error {worst:.2e} (max |logit| {scale:.1})",
                    config.layers(),
                    config.receptive_field()
                );
            }
        }
    }

    /// Sequences in one batch do not see each other, and the output at `t` sees no later input.
    #[test]
    fn forward_is_causal_and_batch_independent() {
        let config = small_config();
        let (model, _) = seeded_model(&config, 3, Precision::Single);
        let (a, pa) = test_sequence(50, 1, 353, 96);
        let (mut b, pb) = test_sequence(50, 2, 353, 96);
        let tokens: Vec<u32> = a.iter().chain(&b).map(|&x| u32::from(x)).collect();
        let positions: Vec<u32> = pa.iter().chain(&pb).copied().collect();
        let batch = model
            .forward(
                &Tensor::from_vec(tokens, (2, 50), &Device::Cpu).unwrap(),
                &Tensor::from_vec(positions, (2, 50), &Device::Cpu).unwrap(),
            )
            .unwrap()
            .to_vec3::<f32>()
            .unwrap();
        let alone = candle_logits(&model, &a, &pa);
        for t in 0..50 {
            assert!(relative_error(&batch[0][t], &alone[t]) < 1e-5);
        }
        // Changing the last half of `b` leaves its first half's logits as they were.
        let before = candle_logits(&model, &b, &pb);
        b[25..].fill(256);
        let after = candle_logits(&model, &b, &pb);
        assert_eq!(before[..25], after[..25]);
        assert_ne!(before[25], after[25]);
    }
}
