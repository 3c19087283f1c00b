//! The phrase WaveNet, one event at a time (fast WaveNet): each dilated layer keeps a ring of its
//! last `dilation` inputs, so a step costs a few matrix-vector products per layer, whatever the
//! receptive field.
//!
//! Weights are packed at load, transposed to `[input][output]` so every product is a run of
//! `y += x_i · row_i` over contiguous rows in fixed 8-wide chunks, which the compiler vectorises.
//! Every buffer is sized at load: [`WaveNetKernel::step`] never allocates.

use super::weights::ModelFile;
use super::{ModelError, WaveNetConfig};
use crate::symbolic::encoding::Vocabulary;

/// Lanes of the explicit accumulation chunks.
const LANES: usize = 8;

/// One gated dilated layer: packed weights and its input history.
#[derive(Debug, Clone)]
struct Layer {
    /// Distance in steps to the past tap.
    dilation: usize,
    /// `[2C][2G]`: rows `..C` multiply the input `dilation` steps back, rows `C..` the present.
    dilated: Vec<f32>,
    /// `[2G]`.
    dilated_bias: Vec<f32>,
    /// `[G][S]`.
    skip: Vec<f32>,
    /// `[G][C]`, empty in the last layer.
    residual: Vec<f32>,
    /// `[C]`, empty in the last layer.
    residual_bias: Vec<f32>,
    /// `[dilation][C]`: the layer's last `dilation` inputs; slot `cursor` is the oldest.
    history: Vec<f32>,
    /// The history slot holding the input `dilation` steps back.
    cursor: usize,
}

/// The incremental phrase WaveNet: [`step`](Self::step) one event, get the next event's logits.
#[derive(Debug, Clone)]
pub struct WaveNetKernel {
    config: WaveNetConfig,
    vocabulary: Vocabulary,
    /// `[V][C]`.
    token_embedding: Vec<f32>,
    /// `[P][C]`.
    position_embedding: Vec<f32>,
    layers: Vec<Layer>,
    /// `[S]`: the sum of every layer's skip bias (the skip sum starts here).
    skip_bias: Vec<f32>,
    /// `[S][H]`.
    head_hidden: Vec<f32>,
    /// `[H]`.
    head_hidden_bias: Vec<f32>,
    /// `[H][V]`.
    head_output: Vec<f32>,
    /// `[V]`.
    head_output_bias: Vec<f32>,
    /// Scratch, `[C]`: the residual stream of the current step.
    residual: Vec<f32>,
    /// Scratch, `[2G]`: the dilated conv's output (tanh half, then sigmoid half).
    gate: Vec<f32>,
    /// Scratch, `[G]`: the gated activation.
    activation: Vec<f32>,
    /// Scratch, `[S]`: the skip sum.
    skip: Vec<f32>,
    /// Scratch, `[H]`: the head's hidden layer.
    hidden: Vec<f32>,
    /// `[V]`: the logits of the last step.
    logits: Vec<f32>,
}

impl WaveNetKernel {
    /// Parses, validates and packs a model file (see [`ModelFile::parse`]).
    pub fn load(bytes: &[u8]) -> Result<Self, ModelError> {
        Ok(Self::new(&ModelFile::parse(bytes)?))
    }

    /// Packs the weights of a validated model file.
    pub fn new(file: &ModelFile) -> Self {
        let config = file.config;
        let (v, c, g, s, h) = (
            config.vocab_size,
            config.residual_channels,
            config.gate_channels,
            config.skip_channels,
            config.head_channels,
        );
        let t = |name: &str| file.tensor(name).to_vec();
        let mut skip_bias = vec![0.0; s];
        let layers = (0..config.layers())
            .map(|l| {
                let name = |part: &str| format!("layers.{l}.{part}");
                // [2G][C][2] → [2][C][2G]: tap k of input i to output o.
                let w = file.tensor(&name("dilated.weight"));
                let mut dilated = vec![0.0; 2 * c * 2 * g];
                for o in 0..2 * g {
                    for i in 0..c {
                        for k in 0..2 {
                            dilated[(k * c + i) * 2 * g + o] = w[(o * c + i) * 2 + k];
                        }
                    }
                }
                for (sum, b) in skip_bias.iter_mut().zip(file.tensor(&name("skip.bias"))) {
                    *sum += b;
                }
                let (residual, residual_bias) = if config.has_residual(l) {
                    (
                        transpose(file.tensor(&name("residual.weight")), c, g),
                        t(&name("residual.bias")),
                    )
                } else {
                    (Vec::new(), Vec::new())
                };
                Layer {
                    dilation: config.dilation(l),
                    dilated,
                    dilated_bias: t(&name("dilated.bias")),
                    skip: transpose(file.tensor(&name("skip.weight")), s, g),
                    residual,
                    residual_bias,
                    history: vec![0.0; config.dilation(l) * c],
                    cursor: 0,
                }
            })
            .collect();
        Self {
            config,
            vocabulary: file.vocabulary,
            token_embedding: t("token_embedding.weight"),
            position_embedding: t("position_embedding.weight"),
            layers,
            skip_bias,
            head_hidden: transpose(file.tensor("head.hidden.weight"), h, s),
            head_hidden_bias: t("head.hidden.bias"),
            head_output: transpose(file.tensor("head.output.weight"), v, h),
            head_output_bias: t("head.output.bias"),
            residual: vec![0.0; c],
            gate: vec![0.0; 2 * g],
            activation: vec![0.0; g],
            skip: vec![0.0; s],
            hidden: vec![0.0; h],
            logits: vec![0.0; v],
        }
    }

    /// The model's hyperparameters.
    pub fn config(&self) -> &WaveNetConfig {
        &self.config
    }

    /// The vocabulary the model was trained on.
    pub fn vocabulary(&self) -> &Vocabulary {
        &self.vocabulary
    }

    /// Forget every past input (as at the start of a sequence); allocation-free.
    pub fn reset(&mut self) {
        for layer in &mut self.layers {
            layer.history.fill(0.0);
            layer.cursor = 0;
        }
        self.logits.fill(0.0);
    }

    /// Feeds one event and returns the logits (one per token id) of the event after it.
    ///
    /// `position` is the bar position to feed with `token` (ticks into the bar, mapped by
    /// [`WaveNetConfig::position_index`]; see [`super::input_positions`]). An id past the
    /// vocabulary counts as its last id (a debug build panics). Never allocates.
    pub fn step(&mut self, token: u16, position: u32) -> &[f32] {
        debug_assert!(usize::from(token) < self.config.vocab_size, "token {token}");
        let Self {
            config,
            token_embedding,
            position_embedding,
            layers,
            skip_bias,
            head_hidden,
            head_hidden_bias,
            head_output,
            head_output_bias,
            residual,
            gate,
            activation,
            skip,
            hidden,
            logits,
            ..
        } = self;
        let c = config.residual_channels;
        let g = config.gate_channels;
        let token = usize::from(token).min(config.vocab_size - 1);
        let position = config.position_index(position) as usize;
        residual.copy_from_slice(&token_embedding[token * c..(token + 1) * c]);
        add(
            residual,
            &position_embedding[position * c..(position + 1) * c],
        );
        skip.copy_from_slice(skip_bias);

        for layer in layers.iter_mut() {
            let (past, present) = layer.dilated.split_at(c * 2 * g);
            let slot = &mut layer.history[layer.cursor * c..(layer.cursor + 1) * c];
            gate.copy_from_slice(&layer.dilated_bias);
            matvec_acc(gate, past, slot);
            matvec_acc(gate, present, residual);
            slot.copy_from_slice(residual);
            layer.cursor += 1;
            if layer.cursor == layer.dilation {
                layer.cursor = 0;
            }

            let (filter, gate_half) = gate.split_at(g);
            for ((z, &f), &s) in activation.iter_mut().zip(filter).zip(gate_half) {
                *z = f.tanh() * sigmoid(s);
            }
            matvec_acc(skip, &layer.skip, activation);
            if !layer.residual.is_empty() {
                add(residual, &layer.residual_bias);
                matvec_acc(residual, &layer.residual, activation);
            }
        }

        relu(skip);
        hidden.copy_from_slice(head_hidden_bias);
        matvec_acc(hidden, head_hidden, skip);
        relu(hidden);
        logits.copy_from_slice(head_output_bias);
        matvec_acc(logits, head_output, hidden);
        logits
    }

    /// The logits of the last step (zeros after a reset).
    pub fn logits(&self) -> &[f32] {
        &self.logits
    }
}

/// `y += Wᵀ x` for `wt` packed `[x.len()][y.len()]` (input-major): fixed 8-wide chunks
/// (`[f32; 8]`, so the compiler vectorises without bounds checks), four input rows at a time
/// so each chunk of `y` is loaded and stored once per four rows.
#[inline]
fn matvec_acc(y: &mut [f32], wt: &[f32], x: &[f32]) {
    let n = y.len();
    debug_assert_eq!(wt.len(), n * x.len());
    let mut x_quads = x.chunks_exact(4);
    let mut w_quads = wt.chunks_exact(4 * n);
    for (xq, wq) in (&mut x_quads).zip(&mut w_quads) {
        let (x0, x1, x2, x3) = (xq[0], xq[1], xq[2], xq[3]);
        let (r0, rest) = wq.split_at(n);
        let (r1, rest) = rest.split_at(n);
        let (r2, r3) = rest.split_at(n);
        let (y_chunks, y_tail) = y.as_chunks_mut::<LANES>();
        let (c0, t0) = r0.as_chunks::<LANES>();
        let (c1, t1) = r1.as_chunks::<LANES>();
        let (c2, t2) = r2.as_chunks::<LANES>();
        let (c3, t3) = r3.as_chunks::<LANES>();
        for (i, yc) in y_chunks.iter_mut().enumerate() {
            let (a, b, c, d) = (&c0[i], &c1[i], &c2[i], &c3[i]);
            for k in 0..LANES {
                yc[k] += x0 * a[k] + x1 * b[k] + x2 * c[k] + x3 * d[k];
            }
        }
        for (j, yv) in y_tail.iter_mut().enumerate() {
            *yv += x0 * t0[j] + x1 * t1[j] + x2 * t2[j] + x3 * t3[j];
        }
    }
    for (&xi, row) in x_quads
        .remainder()
        .iter()
        .zip(w_quads.remainder().chunks_exact(n))
    {
        let (y_chunks, y_tail) = y.as_chunks_mut::<LANES>();
        let (r_chunks, r_tail) = row.as_chunks::<LANES>();
        for (yc, rc) in y_chunks.iter_mut().zip(r_chunks) {
            for k in 0..LANES {
                yc[k] += xi * rc[k];
            }
        }
        for (yv, &r) in y_tail.iter_mut().zip(r_tail) {
            *yv += xi * r;
        }
    }
}

/// `y += x`, elementwise.
#[inline]
fn add(y: &mut [f32], x: &[f32]) {
    for (yv, &xv) in y.iter_mut().zip(x) {
        *yv += xv;
    }
}

#[inline]
fn relu(y: &mut [f32]) {
    for v in y {
        *v = v.max(0.0);
    }
}

#[inline]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// A row-major `[rows][cols]` matrix (a 1×1 conv weight `[out][in][1]`) as `[cols][rows]`.
fn transpose(w: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = w[r * cols + c];
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::weights::{expected_tensors, to_safetensors};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Seeded random weights for `config`, uniform in ±`scale / sqrt(fan_in)` (embeddings ±1).
    pub(crate) fn random_tensors(
        config: &WaveNetConfig,
        seed: u64,
    ) -> Vec<(String, Vec<usize>, Vec<f32>)> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        expected_tensors(config)
            .into_iter()
            .map(|spec| {
                let n: usize = spec.shape.iter().product();
                let bound = if spec.name.contains("embedding") {
                    1.0
                } else {
                    let fan_in = spec.shape.get(1..).map_or(1, |s| s.iter().product());
                    1.5 / (fan_in.max(1) as f32).sqrt()
                };
                let values = (0..n).map(|_| rng.random_range(-bound..bound)).collect();
                (spec.name, spec.shape, values)
            })
            .collect()
    }

    pub(crate) fn small_config() -> WaveNetConfig {
        WaveNetConfig {
            vocab_size: 353,
            bar_positions: 96,
            residual_channels: 20,
            gate_channels: 12,
            skip_channels: 28,
            head_channels: 36,
            layers_per_stack: 4,
            stacks: 2,
        }
    }

    fn model_bytes(config: &WaveNetConfig, seed: u64) -> Vec<u8> {
        to_safetensors(
            config,
            &Vocabulary::default(),
            None,
            &random_tensors(config, seed),
        )
        .unwrap()
    }

    /// The whole sequence at once, straight from the file's tensors with plain loops over time
    /// (no history rings, no packing): the reference the kernel must match.
    fn reference_forward(file: &ModelFile, tokens: &[u16], positions: &[u32]) -> Vec<Vec<f32>> {
        let cfg = file.config;
        let (v, c, g, s, h) = (
            cfg.vocab_size,
            cfg.residual_channels,
            cfg.gate_channels,
            cfg.skip_channels,
            cfg.head_channels,
        );
        let t_len = tokens.len();
        let te = file.tensor("token_embedding.weight");
        let pe = file.tensor("position_embedding.weight");
        let mut x: Vec<Vec<f32>> = (0..t_len)
            .map(|t| {
                let (tok, pos) = (usize::from(tokens[t]), positions[t] as usize);
                (0..c).map(|i| te[tok * c + i] + pe[pos * c + i]).collect()
            })
            .collect();
        let mut skip = vec![vec![0.0f32; s]; t_len];
        let conv1x1 = |w: &[f32], b: &[f32], input: &[f32], out: &mut [f32]| {
            for (o, y) in out.iter_mut().enumerate() {
                *y += b[o]
                    + (0..input.len())
                        .map(|i| w[o * input.len() + i] * input[i])
                        .sum::<f32>();
            }
        };
        for l in 0..cfg.layers() {
            let d = cfg.dilation(l);
            let name = |part: &str| format!("layers.{l}.{part}");
            let (w, b) = (
                file.tensor(&name("dilated.weight")),
                file.tensor(&name("dilated.bias")),
            );
            let mut next = x.clone();
            for t in 0..t_len {
                let zero = vec![0.0; c];
                let past = if t >= d { &x[t - d] } else { &zero };
                let pre: Vec<f32> = (0..2 * g)
                    .map(|o| {
                        b[o] + (0..c)
                            .map(|i| {
                                w[(o * c + i) * 2] * past[i] + w[(o * c + i) * 2 + 1] * x[t][i]
                            })
                            .sum::<f32>()
                    })
                    .collect();
                let z: Vec<f32> = (0..g)
                    .map(|k| pre[k].tanh() / (1.0 + (-pre[g + k]).exp()))
                    .collect();
                conv1x1(
                    file.tensor(&name("skip.weight")),
                    file.tensor(&name("skip.bias")),
                    &z,
                    &mut skip[t],
                );
                if cfg.has_residual(l) {
                    conv1x1(
                        file.tensor(&name("residual.weight")),
                        file.tensor(&name("residual.bias")),
                        &z,
                        &mut next[t],
                    );
                }
            }
            x = next;
        }
        skip.iter()
            .map(|sk| {
                let a: Vec<f32> = sk.iter().map(|v| v.max(0.0)).collect();
                let mut hid = vec![0.0; h];
                conv1x1(
                    file.tensor("head.hidden.weight"),
                    file.tensor("head.hidden.bias"),
                    &a,
                    &mut hid,
                );
                hid.iter_mut().for_each(|v| *v = v.max(0.0));
                let mut out = vec![0.0; v];
                conv1x1(
                    file.tensor("head.output.weight"),
                    file.tensor("head.output.bias"),
                    &hid,
                    &mut out,
                );
                out
            })
            .collect()
    }

    /// `max |a − b| / max(1, max |b|)`.
    pub(crate) fn relative_error(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        let diff = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        let scale = b.iter().map(|y| y.abs()).fold(1.0, f32::max);
        diff / scale
    }

    pub(crate) fn test_sequence(
        len: usize,
        seed: u64,
        vocab: u16,
        positions: u32,
    ) -> (Vec<u16>, Vec<u32>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let tokens = (0..len).map(|_| rng.random_range(0..vocab)).collect();
        let positions = (0..len).map(|_| rng.random_range(0..positions)).collect();
        (tokens, positions)
    }

    #[test]
    fn steps_match_the_plain_full_sequence_forward() {
        let config = small_config();
        let bytes = model_bytes(&config, 7);
        let file = ModelFile::parse(&bytes).unwrap();
        let mut kernel = WaveNetKernel::new(&file);
        // 40 steps: longer than the receptive field (31), so every ring wraps.
        let (tokens, positions) = test_sequence(40, 3, 353, 96);
        let reference = reference_forward(&file, &tokens, &positions);
        for run in 0..2 {
            kernel.reset();
            for (t, (&token, &position)) in tokens.iter().zip(&positions).enumerate() {
                let err = relative_error(kernel.step(token, position), &reference[t]);
                assert!(err < 1e-5, "run {run} step {t}: relative error {err}");
            }
        }
    }

    #[test]
    fn a_step_does_not_allocate() {
        let config = small_config();
        let mut kernel = WaveNetKernel::load(&model_bytes(&config, 1)).unwrap();
        let mut checksum = 0.0;
        // NOTE: the global allocator aborts on an allocation inside this closure in debug builds.
        nice_assert_no_alloc::assert_no_alloc(|| {
            for t in 0..100u16 {
                checksum += kernel.step(t, u32::from(t) * 5)[0];
            }
            kernel.reset();
        });
        assert!(checksum.is_finite());
        assert!(kernel.logits().iter().all(|&v| v == 0.0));
    }

    #[test]
    fn positions_fold_and_bad_ids_clamp_in_release() {
        let config = small_config();
        let mut kernel = WaveNetKernel::load(&model_bytes(&config, 2)).unwrap();
        let folded = kernel.step(60, 96 + 24).to_vec();
        kernel.reset();
        assert_eq!(kernel.step(60, 24), folded.as_slice());
        assert_eq!(kernel.config(), &config);
        assert_eq!(kernel.vocabulary().len(), 353);
    }

    /// µs per step of the default (~0.5 M parameter) model; run in release:
    /// `cargo test --release --lib model::kernel -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn step_time_of_the_default_model() {
        let config = WaveNetConfig::default();
        let mut kernel = WaveNetKernel::load(&model_bytes(&config, 5)).unwrap();
        let (tokens, positions) = test_sequence(4000, 9, 353, 96);
        let mut checksum = 0.0f32;
        for (&token, &position) in tokens.iter().zip(&positions).take(500) {
            checksum += kernel.step(token, position)[0];
        }
        let start = std::time::Instant::now();
        for (&token, &position) in tokens.iter().zip(&positions) {
            checksum += kernel.step(token, position)[0];
        }
        let us = start.elapsed().as_secs_f64() * 1e6 / tokens.len() as f64;
        let flops = config.flops_per_step() as f64;
        println!(
            "default model: {} params, {:.0} kFLOP/step, {us:.1} µs/step, {:.2} GFLOP/s (checksum {checksum})",
            config.param_count(),
            flops / 1e3,
            flops / us / 1e3,
        );
    }
}
