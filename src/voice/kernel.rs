//! The voice WaveNet, a block of samples at a time (see [`crate::voice`] for the equations).
//!
//! # Speed
//! A sample of the default voice is 15.5 k multiply-adds, so a block is a chain of small matrix
//! products: `[rows × inputs] · [inputs × BLOCK]`. They run with time in the SIMD lanes: each
//! weight is broadcast and multiplied into [`TIME_CHUNKS`] chunks of consecutive samples, a tile
//! of output rows × chunks accumulating in registers, so a narrow layer (16 channels) fills the
//! lanes as well as a wide one would. The same loops are compiled for the [`SimdPath`]s of the
//! phrase kernel (SSE2/NEON, AVX2 + FMA, AVX-512) and the fastest one this CPU has is picked at
//! load, by the same rule. Weights are kept in f32 (a voice is ~10 k of them: they live in L1).
//! The layers' skip 1×1s are one product over all their gated activations, after the last
//! layer: one long product keeps the tiles busier than ten short ones. A product starts its sums from its
//! bias (or from the rows it adds to), and its input rows' bounds are checked once, not per
//! read: `cargo bench --bench voice` has the figures.
//!
//! Each dilated layer keeps its input signal in a buffer per channel, the block being rendered
//! preceded by the `dilation` samples before it, so the past tap of every sample of the block is
//! one contiguous read. When a buffer fills up, its last `dilation` samples move to its front
//! (less than one copied float per channel and sample).
//!
//! Every buffer is sized at load: [`VoiceKernel::render_block`] never allocates.

use crate::models::container::ModelError;
use crate::models::stack::DilatedStack;
use crate::simd::{gated_activation, madd, SimdPath};
use crate::voice::{VoiceConfig, VoiceFile, CONTROLS};

/// Samples rendered together (at most) by [`VoiceKernel::render_block`].
pub const BLOCK: usize = 64;
/// Chunks of consecutive samples one tile of a product holds per output row.
const TIME_CHUNKS: usize = 4;

/// A 1×1 conv or a kernel-2 conv (its taps side by side): `outputs × inputs`, row-major.
#[derive(Debug, Clone)]
struct Matrix {
    outputs: usize,
    inputs: usize,
    weights: Vec<f32>,
    bias: Vec<f32>,
}

impl Matrix {
    /// The 1×1 conv `name` of `file` (`[outputs][inputs][1]`, and its bias).
    fn pointwise(file: &VoiceFile, name: &str, outputs: usize, inputs: usize) -> Self {
        Self {
            outputs,
            inputs,
            weights: file.tensor(&format!("{name}.weight")).to_vec(),
            bias: file.tensor(&format!("{name}.bias")).to_vec(),
        }
    }

    /// `parts` side by side (`outputs × Σ inputs`, all with the same outputs), their biases
    /// summed: the product of their inputs stacked in order.
    fn side_by_side(parts: &[Matrix]) -> Self {
        let outputs = parts[0].outputs;
        Self {
            outputs,
            inputs: parts.iter().map(|m| m.inputs).sum(),
            weights: (0..outputs)
                .flat_map(|o| {
                    parts
                        .iter()
                        .flat_map(move |m| &m.weights[o * m.inputs..][..m.inputs])
                })
                .copied()
                .collect(),
            bias: (0..outputs)
                .map(|o| parts.iter().map(|m| m.bias[o]).sum())
                .collect(),
        }
    }

    /// The kernel-2 conv `name` of `file` (`[outputs][inputs][2]`) as `outputs × 2·inputs`:
    /// inputs `..inputs` are tap 0 (the past), `inputs..` tap 1 (the present).
    fn dilated(file: &VoiceFile, name: &str, outputs: usize, inputs: usize) -> Self {
        let w = file.tensor(&format!("{name}.weight"));
        let weights = (0..outputs)
            .flat_map(|o| {
                (0..2 * inputs).map(move |j| {
                    let (tap, i) = if j < inputs { (0, j) } else { (1, j - inputs) };
                    w[(o * inputs + i) * 2 + tap]
                })
            })
            .collect();
        Self {
            outputs,
            inputs: 2 * inputs,
            weights,
            bias: file.tensor(&format!("{name}.bias")).to_vec(),
        }
    }
}

/// Where a product's input rows are: row `i` of source `k`, sample `t` of the block, is
/// `data[i · stride + starts[k] + t]`, and a matrix's inputs are the sources' rows in order.
#[derive(Clone, Copy)]
struct Rows<'a, const N: usize> {
    data: &'a [f32],
    stride: usize,
    starts: [usize; N],
}

impl<'a> Rows<'a, 1> {
    /// One source of rows laid out one block after another (`[rows][BLOCK]`, a scratch's).
    fn block(data: &'a [f32]) -> Self {
        Self {
            data,
            stride: BLOCK,
            starts: [0],
        }
    }
}

/// One gated dilated layer: its weights and its input signal.
#[derive(Debug, Clone)]
struct Layer {
    /// Distance in samples to the past tap.
    dilation: usize,
    /// `2C → 2G` over `[past ; present]`.
    dilated: Matrix,
    /// `G → C`; `None` in the last layer.
    residual: Option<Matrix>,
    /// `[C][capacity]`: the layer's input signal, the block being rendered starting at `at`.
    signal: Vec<f32>,
    capacity: usize,
    at: usize,
}

impl Layer {
    /// Makes room for a block: moves the last `dilation` samples to the front when the block
    /// would not fit after them.
    fn make_room(&mut self) {
        if self.at + BLOCK <= self.capacity {
            return;
        }
        let d = self.dilation;
        for row in self.signal.chunks_exact_mut(self.capacity) {
            row.copy_within(self.at - d..self.at, 0);
        }
        self.at = d;
    }
}

/// The voice WaveNet's renderer: [`render_block`](Self::render_block) turns a block of control
/// columns into audio, remembering its layers' past from block to block.
#[derive(Debug, Clone)]
pub struct VoiceKernel {
    config: VoiceConfig,
    simd: SimdPath,
    /// `CONTROLS → C`.
    input: Matrix,
    layers: Vec<Layer>,
    /// Every layer's skip 1×1 side by side, `layers·G → S`, over every layer's activation (one
    /// product of many inputs instead of a small one a layer); its bias is their biases' sum.
    skip: Matrix,
    /// `S → H`.
    head_hidden: Matrix,
    /// `H → 1`.
    head_output: Matrix,
    /// Scratch `[2G][BLOCK]`, `[layers·G][BLOCK]` (every layer's activation), `[S][BLOCK]`,
    /// `[H][BLOCK]`.
    gate: Vec<f32>,
    activation: Vec<f32>,
    skip_sum: Vec<f32>,
    hidden: Vec<f32>,
    /// Scratch `[BLOCK]`: the head's output before the amplitude.
    shape: Vec<f32>,
}

impl VoiceKernel {
    /// Parses, validates and prepares a voice file (see [`VoiceFile::parse`]).
    pub fn load(bytes: &[u8]) -> Result<Self, ModelError> {
        Ok(Self::new(&VoiceFile::parse(bytes)?))
    }

    /// Prepares a validated voice for the fastest [`SimdPath`] of this CPU.
    pub fn new(file: &VoiceFile) -> Self {
        Self::prepare(file, SimdPath::detect())
    }

    /// Prepares a voice for a chosen [`SimdPath`] (to compare paths); `None` where this CPU does
    /// not support it.
    pub fn with_simd_path(file: &VoiceFile, simd: SimdPath) -> Option<Self> {
        simd.is_supported().then(|| Self::prepare(file, simd))
    }

    /// NOTE: only for a supported `simd`: [`render_block`](Self::render_block) relies on it.
    fn prepare(file: &VoiceFile, simd: SimdPath) -> Self {
        let config = file.config;
        let (c, g, s, h) = (
            config.residual_channels,
            config.gate_channels,
            config.skip_channels,
            config.head_channels,
        );
        let layers = (0..config.layers())
            .map(|l| {
                let name = |part: &str| format!("layers.{l}.{part}");
                let d = config.dilation(l);
                let capacity = 2 * d + 2 * BLOCK;
                Layer {
                    dilation: d,
                    dilated: Matrix::dilated(file, &name("dilated"), 2 * g, c),
                    residual: config
                        .has_residual(l)
                        .then(|| Matrix::pointwise(file, &name("residual"), c, g)),
                    signal: vec![0.0; c * capacity],
                    capacity,
                    at: d,
                }
            })
            .collect();
        Self {
            config,
            simd,
            input: Matrix::pointwise(file, "input", c, CONTROLS),
            layers,
            skip: Matrix::side_by_side(
                &(0..config.layers())
                    .map(|l| Matrix::pointwise(file, &format!("layers.{l}.skip"), s, g))
                    .collect::<Vec<_>>(),
            ),
            head_hidden: Matrix::pointwise(file, "head.hidden", h, s),
            head_output: Matrix::pointwise(file, "head.output", 1, h),
            gate: vec![0.0; 2 * g * BLOCK],
            activation: vec![0.0; config.layers() * g * BLOCK],
            skip_sum: vec![0.0; s * BLOCK],
            hidden: vec![0.0; h * BLOCK],
            shape: vec![0.0; BLOCK],
        }
    }

    /// The voice's hyperparameters.
    pub fn config(&self) -> &VoiceConfig {
        &self.config
    }

    /// The instruction set [`render_block`](Self::render_block) runs with (chosen at load).
    pub fn simd_path(&self) -> SimdPath {
        self.simd
    }

    /// Forgets the past (as at the start of a render); allocation-free.
    pub fn reset(&mut self) {
        for layer in &mut self.layers {
            layer.signal.fill(0.0);
            layer.at = layer.dilation;
        }
    }

    /// Renders `out.len()` samples (at most [`BLOCK`]): sample `t` from the controls in column
    /// `t` of `controls` and the amplitude `amplitude[t]` (see [`crate::voice::controls`]).
    /// Columns from `out.len()` on are ignored. Never allocates.
    pub fn render_block(
        &mut self,
        controls: &[[f32; BLOCK]; CONTROLS],
        amplitude: &[f32; BLOCK],
        out: &mut [f32],
    ) {
        assert!(out.len() <= BLOCK, "a block is at most {BLOCK} samples");
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        match self.simd {
            // SAFETY: `simd` is Avx512 only where `SimdPath::is_supported` detected avx512f,
            // avx2, fma and f16c at load (`prepare` is only called with a supported path).
            SimdPath::Avx512 => unsafe { self.render_avx512(controls, amplitude, out) },
            // SAFETY: as above, for avx2, fma and f16c.
            SimdPath::Avx2Fma => unsafe { self.render_avx2(controls, amplitude, out) },
            SimdPath::Portable => self.render_with::<4, false, 2>(controls, amplitude, out),
        }
        // NOTE: elsewhere only the portable path is ever supported.
        #[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
        self.render_with::<4, false, 2>(controls, amplitude, out);
    }

    /// [`render_with`](Self::render_with) compiled for AVX-512.
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    #[target_feature(enable = "avx512f,avx2,fma,f16c")]
    fn render_avx512(
        &mut self,
        controls: &[[f32; BLOCK]; CONTROLS],
        amplitude: &[f32; BLOCK],
        out: &mut [f32],
    ) {
        self.render_with::<16, true, 4>(controls, amplitude, out);
    }

    /// [`render_with`](Self::render_with) compiled for AVX2 + FMA.
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn render_avx2(
        &mut self,
        controls: &[[f32; BLOCK]; CONTROLS],
        amplitude: &[f32; BLOCK],
        out: &mut [f32],
    ) {
        self.render_with::<8, true, 2>(controls, amplitude, out);
    }

    /// [`render_block`](Self::render_block) with chunks of `L` samples, fused multiply-adds if
    /// `FMA`, tiles of `OT` output rows; inlined into each `render_*` so it compiles with that
    /// path's instruction set. Computes the columns of `out` rounded up to a chunk (those past
    /// `out.len()` see whatever the signals hold there and are never kept) and advances by
    /// `out.len()`: a short call (a host splitting its block at every automation point) costs
    /// its length, not a whole block's.
    #[inline(always)]
    fn render_with<const L: usize, const FMA: bool, const OT: usize>(
        &mut self,
        controls: &[[f32; BLOCK]; CONTROLS],
        amplitude: &[f32; BLOCK],
        out: &mut [f32],
    ) {
        let Self {
            config,
            input,
            layers,
            skip,
            head_hidden,
            head_output,
            gate,
            activation,
            skip_sum,
            hidden,
            shape,
            ..
        } = self;
        let g = config.gate_channels;
        let cols = out.len().next_multiple_of(L).clamp(L, BLOCK);
        for layer in layers.iter_mut() {
            layer.make_room();
        }
        // The input 1×1 writes the first layer's signal.
        let first = &mut layers[0];
        let controls_rows = Rows::block(controls.as_flattened());
        product::<L, FMA, OT, 1>(
            &mut first.signal,
            first.capacity,
            first.at,
            input,
            controls_rows,
            Onto::Bias,
            cols,
        );
        for l in 0..layers.len() {
            let (done, rest) = layers.split_at_mut(l + 1);
            let layer = &done[l];
            let signal = Rows {
                data: &layer.signal,
                stride: layer.capacity,
                starts: [layer.at - layer.dilation, layer.at],
            };
            product::<L, FMA, OT, 2>(gate, BLOCK, 0, &layer.dilated, signal, Onto::Bias, cols);
            let (filter, sigmoid) = gate.split_at(g * BLOCK);
            let activation = &mut activation[l * g * BLOCK..][..g * BLOCK];
            for ((z, f), s) in activation
                .chunks_exact_mut(BLOCK)
                .zip(filter.chunks_exact(BLOCK))
                .zip(sigmoid.chunks_exact(BLOCK))
            {
                gated_activation::<FMA>(&mut z[..cols], &f[..cols], &s[..cols]);
            }
            let activation_rows = Rows::block(activation);
            if let (Some(residual), Some(next)) = (&layer.residual, rest.first_mut()) {
                // next = this layer's input + bias + R · z
                for ((to, from), bias) in next
                    .signal
                    .chunks_exact_mut(next.capacity)
                    .zip(layer.signal.chunks_exact(layer.capacity))
                    .zip(&residual.bias)
                {
                    for (y, x) in to[next.at..next.at + cols]
                        .iter_mut()
                        .zip(&from[layer.at..layer.at + cols])
                    {
                        *y = x + bias;
                    }
                }
                product::<L, FMA, OT, 1>(
                    &mut next.signal,
                    next.capacity,
                    next.at,
                    residual,
                    activation_rows,
                    Onto::Rows,
                    cols,
                );
            }
        }
        let all_activations = Rows::block(activation);
        product::<L, FMA, OT, 1>(skip_sum, BLOCK, 0, skip, all_activations, Onto::Bias, cols);
        relu(skip_sum);
        let skip_rows = Rows::block(skip_sum);
        product::<L, FMA, OT, 1>(hidden, BLOCK, 0, head_hidden, skip_rows, Onto::Bias, cols);
        relu(hidden);
        let hidden_rows = Rows::block(hidden);
        product::<L, FMA, OT, 1>(shape, BLOCK, 0, head_output, hidden_rows, Onto::Bias, cols);
        for ((y, v), a) in out.iter_mut().zip(shape.iter()).zip(amplitude) {
            *y = v * a;
        }
        for layer in layers.iter_mut() {
            layer.at += out.len();
        }
    }
}

/// What a [`product`] adds its sums to.
#[derive(Clone, Copy)]
enum Onto {
    /// The matrix's bias: the output rows' block is overwritten.
    Bias,
    /// The output rows' block as it is.
    Rows,
}

/// `out = onto + M · x` over the block: row `o` of `out` is `out[o · stride + at ..][..BLOCK]`, the
/// inputs are `x`'s rows (see [`Rows`]), for the block's first `cols` samples (a multiple of
/// `L`). Tiles of `OT` rows × [`TIME_CHUNKS`] chunks of `L` samples, then of `OT` rows × one
/// chunk for the samples left over; the rows left over go one by one. Every lane sums its
/// products in the same order whatever the tile, so a sample is the same to the bit however
/// many are computed with it.
#[inline(always)]
fn product<const L: usize, const FMA: bool, const OT: usize, const N: usize>(
    out: &mut [f32],
    stride: usize,
    at: usize,
    m: &Matrix,
    x: Rows<'_, N>,
    onto: Onto,
    cols: usize,
) {
    debug_assert_eq!(m.inputs % N, 0);
    // Every tile reads its input rows unchecked (see `tile`): its chunks must end within the
    // block, and the rows within `x.data`.
    assert!(cols <= BLOCK && cols.is_multiple_of(L));
    let per_source = m.inputs / N;
    for start in x.starts {
        assert!(start + per_source.saturating_sub(1) * x.stride + BLOCK <= x.data.len());
    }
    let wide = L * TIME_CHUNKS;
    let mut t0 = 0;
    while t0 < cols {
        let x = Rows {
            starts: x.starts.map(|start| start + t0),
            ..x
        };
        if t0 + wide <= cols {
            tiles::<L, FMA, OT, N, TIME_CHUNKS>(out, stride, at + t0, m, x, onto);
            t0 += wide;
        } else {
            tiles::<L, FMA, OT, N, 1>(out, stride, at + t0, m, x, onto);
            t0 += L;
        }
    }
}

/// The tiles of [`product`] at one place in the block: every output row, `TC` chunks of `L`
/// samples from `out_at`.
#[inline(always)]
fn tiles<const L: usize, const FMA: bool, const OT: usize, const N: usize, const TC: usize>(
    out: &mut [f32],
    stride: usize,
    out_at: usize,
    m: &Matrix,
    x: Rows<'_, N>,
    onto: Onto,
) {
    let full = m.outputs - m.outputs % OT;
    for first in (0..full).step_by(OT) {
        tile::<L, FMA, OT, N, TC>(out, stride, out_at, m, first, x, onto);
    }
    for row in full..m.outputs {
        tile::<L, FMA, 1, N, TC>(out, stride, out_at, m, row, x, onto);
    }
}

/// `L` floats of `data` from `start` (any alignment).
#[inline(always)]
fn chunk<const L: usize>(data: &[f32], start: usize) -> [f32; L] {
    let mut v = [0.0; L];
    v.copy_from_slice(&data[start..start + L]);
    v
}

/// One tile of [`product`]: rows `first..first + OT` of `out`, `TC` chunks of `L` samples from
/// `out_at` (the tile's first sample), from the inputs at `x`'s starts (moved to the tile's
/// first sample), accumulated in registers.
#[inline(always)]
fn tile<const L: usize, const FMA: bool, const OT: usize, const N: usize, const TC: usize>(
    out: &mut [f32],
    stride: usize,
    out_at: usize,
    m: &Matrix,
    first: usize,
    x: Rows<'_, N>,
    onto: Onto,
) {
    let mut acc = [[[0.0f32; L]; TC]; OT];
    for (o, rows) in acc.iter_mut().enumerate() {
        for (c, v) in rows.iter_mut().enumerate() {
            *v = match onto {
                Onto::Bias => [m.bias[first + o]; L],
                Onto::Rows => chunk(out, (first + o) * stride + out_at + c * L),
            };
        }
    }
    let per_source = m.inputs / N;
    for (k, &start) in x.starts.iter().enumerate() {
        // NOTE: bounds are checked once a product (the input rows) and tile (the weights), not
        // per row, weight and chunk: those checks were more instructions than the AVX2 tile's
        // eight multiply-adds a row (25 multiply-adds a ns there against 35 without them, in a
        // scratch benchmark of one layer).
        let weights: [&[f32]; OT] = std::array::from_fn(|o| {
            &m.weights[(first + o) * m.inputs + k * per_source..][..per_source]
        });
        let source = &x.data[start..];
        for i in 0..per_source {
            // SAFETY: `i < per_source`, so the row ends at `i · stride + TC · L`, within
            // `source`: `product` asserted that its rows lie within `x.data` for a whole block,
            // and moves them by at most `BLOCK − TC · L` to the tile's first sample.
            let row = unsafe { source.get_unchecked(i * x.stride..i * x.stride + TC * L) };
            let mut xs = [[0.0f32; L]; TC];
            for (v, chunk) in xs.iter_mut().zip(row.chunks_exact(L)) {
                v.copy_from_slice(chunk);
            }
            for (rows, w) in acc.iter_mut().zip(&weights) {
                // SAFETY: `i < per_source`, the length of every `weights` slice.
                let w = unsafe { *w.get_unchecked(i) };
                for (v, xv) in rows.iter_mut().zip(&xs) {
                    for lane in 0..L {
                        v[lane] = madd::<FMA>(w, xv[lane], v[lane]);
                    }
                }
            }
        }
    }
    for (o, rows) in acc.iter().enumerate() {
        for (c, v) in rows.iter().enumerate() {
            let start = (first + o) * stride + out_at + c * L;
            out[start..start + L].copy_from_slice(v);
        }
    }
}

#[inline(always)]
fn relu(y: &mut [f32]) {
    for v in y {
        *v = v.max(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The figure a voice file's sizes are checked against is what the kernel allocates.
    #[test]
    fn the_configs_state_size_is_what_the_kernel_keeps() {
        let file = VoiceFile::parse(crate::assets::FLUTE_VOICE).unwrap();
        let kernel = VoiceKernel::new(&file);
        let kept: usize = kernel.layers.iter().map(|l| l.signal.len()).sum();
        assert_eq!(kept, file.config.state_floats());
        assert_eq!(kernel.layers.len(), file.config.layers());
    }
}
