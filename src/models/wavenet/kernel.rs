//! The phrase WaveNet, one event at a time (fast WaveNet): each dilated layer keeps a ring of its
//! last `dilation` inputs, so a step costs a few matrix-vector products per layer, whatever the
//! receptive field.
//!
//! # Speed
//! A step of the default model is 0.9 MFLOP and reads every weight once, so it is bound by cache
//! bandwidth: in f32 that is 1.8 MB, more than a core's L2, ~30 µs a step from the ~60 GB/s
//! of a Zen 3 core's L3 (benchmark: `cargo bench --bench kernel`). These keep it fast:
//! - A half-precision model file ([`Precision::Half`], what `wavejam train` writes) keeps its
//!   weights in half precision on the AVX paths, which widen them in registers (F16C): a step
//!   streams half the bytes. The arithmetic is f32 either way, on the file's own weights.
//! - Weights are packed at load into output tiles (`Packed`): a tile of up to `TILE`
//!   chunks of `y` stays in registers for the whole product while its weights stream
//!   past in order, one load per multiply-add.
//! - The same loops are compiled for SSE2 / NEON, AVX2 + FMA and AVX-512 (const lane widths
//!   4, 8, 16) and [`SimdPath::detect`] picks one at load, so a plain `x86-64` build runs the
//!   AVX2 code where the CPU has it (no `-C target-cpu=native` needed).
//! - The gate's `tanh` and `sigmoid` use one vectorisable `exp` instead of libm's.
//! - Products prefetch their weights `PREFETCH_BYTES` ahead.
//!
//! Priming with a phrase ([`WaveNetKernel::feed`]) need not be bound by bandwidth: it takes the
//! events through each layer in blocks, reusing the layer's weights from cache, and computes the
//! skip sum and the head only for the last event.
//!
//! Every buffer is sized at load: [`WaveNetKernel::step`] and [`WaveNetKernel::feed`] never
//! allocate.

use crate::models::stack::DilatedStack;
use crate::models::wavenet::weights::{ModelFile, Precision};
use crate::models::wavenet::{ModelError, WaveNetConfig};
use crate::music::encoding::Vocabulary;
pub use crate::simd::SimdPath;
use crate::simd::{gated_activation, madd};

/// Chunks of `y` per output tile (accumulators held in registers): 8 keeps both FMA units busy
/// through the 4-cycle FMA latency and fits the 16 vector registers of SSE2 and AVX2.
const TILE: usize = 8;
/// Events that [`WaveNetKernel::feed`] takes through a layer together: a block's residual
/// streams (6 KiB for 48 channels) stay in the L1 cache while the layer's weights are reused.
pub const FEED_BLOCK: usize = 32;
/// How far ahead of its reads a product asks for its weights: a step streams 0.9 MB of them
/// (1.8 MB in f32), more than the L2 cache, and the hardware prefetcher alone leaves it waiting
/// (measured in f32: 34 → 31 µs per step of the default model with this on an AMD EPYC).
const PREFETCH_BYTES: usize = 2048;

/// A weight matrix `W` (`outputs × inputs`) packed for [`matvec_acc`] with chunks of `lanes`
/// floats. The outputs, padded with zero rows to whole chunks, split into tiles of [`TILE`]
/// chunks (the last one narrower); each tile is stored input-major, so the product reads `data`
/// front to back: tile 0 `[inputs][width][lanes]`, then tile 1, and so on.
#[derive(Debug, Clone)]
struct Packed {
    inputs: usize,
    /// Output rows including the padding: a multiple of the lane width.
    padded_outputs: usize,
    data: Storage,
}

/// The values of a [`Packed`] matrix, in the order the product reads them.
#[derive(Debug, Clone)]
enum Storage {
    Single(Vec<f32>),
    /// IEEE half floats' bits: only on the paths that widen them with F16C
    /// ([`SimdPath::streams_half`]).
    Half(Vec<u16>),
}

impl Packed {
    /// Packs the matrix whose entry (output `o`, input `i`) is `entry(o, i)`, stored in half
    /// precision if `half` (each entry must then be exact in it: a half file's weights are).
    fn new(
        outputs: usize,
        inputs: usize,
        lanes: usize,
        half: bool,
        entry: impl Fn(usize, usize) -> f32,
    ) -> Self {
        let chunks = outputs.div_ceil(lanes);
        let mut data = Vec::with_capacity(chunks * lanes * inputs);
        let mut first = 0;
        while first < chunks {
            let width = (chunks - first).min(TILE);
            for i in 0..inputs {
                for o in first * lanes..(first + width) * lanes {
                    data.push(if o < outputs { entry(o, i) } else { 0.0 });
                }
            }
            first += width;
        }
        let data = if half {
            debug_assert!(data.iter().all(|&v| Precision::Half.round(v) == v));
            Storage::Half(
                data.into_iter()
                    .map(|v| half::f16::from_f32(v).to_bits())
                    .collect(),
            )
        } else {
            Storage::Single(data)
        };
        Self {
            inputs,
            padded_outputs: chunks * lanes,
            data,
        }
    }

    /// Packs a 1×1 conv weight (`[outputs][inputs][1]`, row-major).
    fn conv1x1(w: &[f32], outputs: usize, inputs: usize, lanes: usize, half: bool) -> Self {
        debug_assert_eq!(w.len(), outputs * inputs);
        Self::new(outputs, inputs, lanes, half, |o, i| w[o * inputs + i])
    }

    /// Bytes of weights a product reads (padding included).
    fn bytes(&self) -> usize {
        match &self.data {
            Storage::Single(data) => 4 * data.len(),
            Storage::Half(data) => 2 * data.len(),
        }
    }
}

/// One gated dilated layer: packed weights and its input history.
#[derive(Debug, Clone)]
struct Layer {
    /// Distance in steps to the past tap.
    dilation: usize,
    /// `2C → 2G`: inputs `..C` are the input `dilation` steps back, inputs `C..` the present.
    dilated: Packed,
    /// `[2G]`, zero-padded like the product's output.
    dilated_bias: Vec<f32>,
    /// `G → S`.
    skip: Packed,
    /// `G → C`, with its bias (zero-padded); `None` in the last layer.
    residual: Option<(Packed, Vec<f32>)>,
    /// `[dilation][C]`: the layer's last `dilation` inputs; slot `cursor` is the oldest.
    history: Vec<f32>,
    /// The history slot holding the input `dilation` steps back.
    cursor: usize,
}

/// The incremental phrase WaveNet: [`step`](Self::step) one event, get the next event's logits.
///
/// Buffers that a product writes are zero-padded to whole SIMD chunks; the padding stays zero
/// (zero weight rows, zero bias) and is never read as an input.
#[derive(Debug, Clone)]
pub struct WaveNetKernel {
    config: WaveNetConfig,
    vocabulary: Vocabulary,
    /// The instruction set [`step`](Self::step) runs with; the packing follows its lane width.
    simd: SimdPath,
    /// `[V][C]`.
    token_embedding: Vec<f32>,
    /// `[P][C]`.
    position_embedding: Vec<f32>,
    layers: Vec<Layer>,
    /// `[S]`: the sum of every layer's skip bias (the skip sum starts here).
    skip_bias: Vec<f32>,
    /// `S → H`.
    head_hidden: Packed,
    /// `[H]`.
    head_hidden_bias: Vec<f32>,
    /// `H → V`.
    head_output: Packed,
    /// `[V]`.
    head_output_bias: Vec<f32>,
    /// Scratch, `[2C]`: the dilated conv's input (the input `dilation` steps back, then this one).
    taps: Vec<f32>,
    /// Scratch, `[FEED_BLOCK][C]` (each zero-padded): the residual streams of a block of events.
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

    /// Packs the weights of a validated model file for the fastest [`SimdPath`] of this CPU.
    pub fn new(file: &ModelFile) -> Self {
        Self::pack(file, SimdPath::detect())
    }

    /// Packs the weights for a chosen [`SimdPath`] (to compare paths); `None` where this CPU
    /// does not support it.
    pub fn with_simd_path(file: &ModelFile, simd: SimdPath) -> Option<Self> {
        simd.is_supported().then(|| Self::pack(file, simd))
    }

    /// NOTE: only for a supported `simd`: [`step`](Self::step) relies on it.
    fn pack(file: &ModelFile, simd: SimdPath) -> Self {
        let config = file.config;
        let (v, c, g, s, h) = config.sizes();
        let lanes = simd.lanes();
        let half = file.precision == Precision::Half && simd.streams_half();
        let t = |name: &str| file.tensor(name).to_vec();
        let bias = |name: &str| padded(file.tensor(name), lanes);
        let mut skip_bias = vec![0.0; s];
        let layers = (0..config.layers())
            .map(|l| {
                let name = |part: &str| format!("layers.{l}.{part}");
                // [2G][C][2]: tap 0 of input i (the past) is conv input i, tap 1 input C + i.
                let w = file.tensor(&name("dilated.weight"));
                let dilated = Packed::new(2 * g, 2 * c, lanes, half, |o, j| {
                    let (tap, i) = if j < c { (0, j) } else { (1, j - c) };
                    w[(o * c + i) * 2 + tap]
                });
                for (sum, b) in skip_bias.iter_mut().zip(file.tensor(&name("skip.bias"))) {
                    *sum += b;
                }
                let residual = config.has_residual(l).then(|| {
                    let w = file.tensor(&name("residual.weight"));
                    (
                        Packed::conv1x1(w, c, g, lanes, half),
                        bias(&name("residual.bias")),
                    )
                });
                Layer {
                    dilation: config.dilation(l),
                    dilated,
                    dilated_bias: bias(&name("dilated.bias")),
                    skip: Packed::conv1x1(file.tensor(&name("skip.weight")), s, g, lanes, half),
                    residual,
                    history: vec![0.0; config.dilation(l) * c],
                    cursor: 0,
                }
            })
            .collect();
        Self {
            config,
            vocabulary: file.vocabulary,
            simd,
            token_embedding: t("token_embedding.weight"),
            position_embedding: t("position_embedding.weight"),
            layers,
            skip_bias: padded(&skip_bias, lanes),
            head_hidden: Packed::conv1x1(file.tensor("head.hidden.weight"), h, s, lanes, half),
            head_hidden_bias: bias("head.hidden.bias"),
            head_output: Packed::conv1x1(file.tensor("head.output.weight"), v, h, lanes, half),
            head_output_bias: bias("head.output.bias"),
            taps: vec![0.0; 2 * c],
            residual: vec![0.0; FEED_BLOCK * c.next_multiple_of(lanes)],
            gate: vec![0.0; (2 * g).next_multiple_of(lanes)],
            activation: vec![0.0; g],
            skip: vec![0.0; s.next_multiple_of(lanes)],
            hidden: vec![0.0; h.next_multiple_of(lanes)],
            logits: vec![0.0; v.next_multiple_of(lanes)],
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

    /// The instruction set [`step`](Self::step) runs with (chosen at load).
    pub fn simd_path(&self) -> SimdPath {
        self.simd
    }

    /// Bytes of weights a [`step`](Self::step) reads (the matrices; a step also reads one row of
    /// each embedding): what bounds its speed.
    pub fn step_weight_bytes(&self) -> usize {
        let layers: usize = self
            .layers
            .iter()
            .map(|l| {
                l.dilated.bytes() + l.skip.bytes() + l.residual.as_ref().map_or(0, |r| r.0.bytes())
            })
            .sum();
        layers + self.head_hidden.bytes() + self.head_output.bytes()
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
    /// [`WaveNetConfig::position_index`]; see [`crate::models::wavenet::input_positions`]). An id past the
    /// vocabulary counts as its last id (a debug build panics). Never allocates.
    pub fn step(&mut self, token: u16, position: u32) -> &[f32] {
        self.feed(&[(token, position)]);
        self.logits()
    }

    /// Feeds `events` (`(token, position)` pairs, as [`step`](Self::step) takes them) in order;
    /// [`logits`](Self::logits) are then those after the last one (unchanged if there is none).
    ///
    /// The same as stepping each event, to the bit, but faster for many events (priming with a
    /// phrase): the events go through each layer in blocks of [`FEED_BLOCK`], so a layer's
    /// weights are read from memory once per block rather than once per event, and only the
    /// last event computes its skip sum and the head. Never allocates.
    pub fn feed(&mut self, events: &[(u16, u32)]) {
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        match self.simd {
            // SAFETY: `simd` is Avx512 only where `SimdPath::is_supported` detected avx512f,
            // avx2, fma and f16c at load (`pack` is only called with a supported path).
            SimdPath::Avx512 => unsafe { self.feed_avx512(events) },
            // SAFETY: `simd` is Avx2Fma only where `SimdPath::is_supported` detected avx2, fma
            // and f16c at load (`pack` is only called with a supported path).
            SimdPath::Avx2Fma => unsafe { self.feed_avx2(events) },
            SimdPath::Portable => self.feed_with::<4, false>(events),
        }
        // NOTE: elsewhere only the portable path is ever supported.
        #[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
        self.feed_with::<4, false>(events);
    }

    /// The logits of the last step (zeros after a reset).
    pub fn logits(&self) -> &[f32] {
        &self.logits[..self.config.vocab_size]
    }

    /// [`feed_with`](Self::feed_with) compiled for AVX-512.
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    #[target_feature(enable = "avx512f,avx2,fma,f16c")]
    fn feed_avx512(&mut self, events: &[(u16, u32)]) {
        self.feed_with::<16, true>(events);
    }

    /// [`feed_with`](Self::feed_with) compiled for AVX2 + FMA.
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn feed_avx2(&mut self, events: &[(u16, u32)]) {
        self.feed_with::<8, true>(events);
    }

    /// [`feed`](Self::feed) with chunks of `L` floats (the packing's lane width) and fused
    /// multiply-adds if `FMA`; inlined into each `feed_*` so it compiles with that path's
    /// instruction set.
    #[inline(always)]
    fn feed_with<const L: usize, const FMA: bool>(&mut self, events: &[(u16, u32)]) {
        debug_assert_eq!(L, self.simd.lanes());
        let Some(last_block) = events.len().checked_sub(1).map(|i| i / FEED_BLOCK) else {
            return;
        };
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
            taps,
            residual,
            gate,
            activation,
            skip,
            hidden,
            logits,
            ..
        } = self;
        let (c, g) = (config.residual_channels, config.gate_channels);
        let (s, h) = (config.skip_channels, config.head_channels);
        let stride = residual.len() / FEED_BLOCK;
        for (b, block) in events.chunks(FEED_BLOCK).enumerate() {
            // The residual stream of each event of the block, `[event][stride]`.
            for (&(token, position), stream) in block.iter().zip(residual.chunks_exact_mut(stride))
            {
                debug_assert!(usize::from(token) < config.vocab_size, "token {token}");
                let token = usize::from(token).min(config.vocab_size - 1);
                let position = config.position_index(position) as usize;
                let stream = &mut stream[..c];
                stream.copy_from_slice(&token_embedding[token * c..(token + 1) * c]);
                add(
                    stream,
                    &position_embedding[position * c..(position + 1) * c],
                );
            }
            // Only the very last event needs the skip sum (and the head).
            let last = (b == last_block).then_some(block.len() - 1);
            if last.is_some() {
                skip.copy_from_slice(skip_bias);
            }
            for layer in layers.iter_mut() {
                for (t, stream) in residual
                    .chunks_exact_mut(stride)
                    .take(block.len())
                    .enumerate()
                {
                    let slot = &mut layer.history[layer.cursor * c..(layer.cursor + 1) * c];
                    let (past, present) = taps.split_at_mut(c);
                    past.copy_from_slice(slot);
                    present.copy_from_slice(&stream[..c]);
                    slot.copy_from_slice(present);
                    layer.cursor += 1;
                    if layer.cursor == layer.dilation {
                        layer.cursor = 0;
                    }

                    gate.copy_from_slice(&layer.dilated_bias);
                    matvec_acc::<L, FMA>(gate, &layer.dilated, taps);
                    let (filter, rest) = gate.split_at(g);
                    gated_activation::<FMA>(activation, filter, &rest[..g]);
                    if last == Some(t) {
                        matvec_acc::<L, FMA>(skip, &layer.skip, activation);
                    }
                    if let Some((weight, bias)) = &layer.residual {
                        add(stream, bias);
                        matvec_acc::<L, FMA>(stream, weight, activation);
                    }
                }
            }
        }

        relu(skip);
        hidden.copy_from_slice(head_hidden_bias);
        matvec_acc::<L, FMA>(hidden, head_hidden, &skip[..s]);
        relu(hidden);
        logits.copy_from_slice(head_output_bias);
        matvec_acc::<L, FMA>(logits, head_output, &hidden[..h]);
    }
}

/// `y += W x` for `w` packed by [`Packed::new`] with `L` lanes (`y` padded to
/// `w.padded_outputs`), in whichever precision `w` stores.
#[inline(always)]
fn matvec_acc<const L: usize, const FMA: bool>(y: &mut [f32], w: &Packed, x: &[f32]) {
    debug_assert_eq!(y.len(), w.padded_outputs);
    debug_assert_eq!(x.len(), w.inputs);
    match &w.data {
        Storage::Single(data) => matvec_tiles::<L, FMA, [f32; L]>(y, data.as_chunks().0, x),
        Storage::Half(data) => matvec_tiles::<L, FMA, [u16; L]>(y, data.as_chunks().0, x),
    }
}

/// A chunk of `L` stored weights, widened to f32 as a product reads it.
trait Chunk<const L: usize>: Copy {
    fn widen(&self) -> [f32; L];
}

impl<const L: usize> Chunk<L> for [f32; L] {
    #[inline(always)]
    fn widen(&self) -> [f32; L] {
        *self
    }
}

/// Half floats' bits, widened with F16C's `vcvtph2ps`.
impl<const L: usize> Chunk<L> for [u16; L] {
    #[inline(always)]
    fn widen(&self) -> [f32; L] {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm256_cvtph_ps, _mm512_cvtph_ps};
            // SAFETY: half-precision storage exists only on paths with F16C (and, for 16
            // lanes, AVX-512F) (`SimdPath::streams_half`); the reads are unaligned-safe and
            // within the chunk; `__m256` / `__m512` are `[f32; 8]` / `[f32; 16]` in layout.
            unsafe {
                if L == 8 {
                    let wide = _mm256_cvtph_ps(std::ptr::read_unaligned(self.as_ptr().cast()));
                    return std::mem::transmute_copy(&wide);
                }
                if L == 16 {
                    let wide = _mm512_cvtph_ps(std::ptr::read_unaligned(self.as_ptr().cast()));
                    return std::mem::transmute_copy(&wide);
                }
            }
        }
        self.map(|bits| half::f16::from_bits(bits).to_f32())
    }
}

/// `y += W x` over `w`'s chunks: whole tiles of [`TILE`] chunks, then the narrower last one.
#[inline(always)]
fn matvec_tiles<const L: usize, const FMA: bool, C: Chunk<L>>(y: &mut [f32], w: &[C], x: &[f32]) {
    let inputs = x.len();
    let (y, _) = y.as_chunks_mut::<L>();
    let (y_tiles, y_last) = y.as_chunks_mut::<TILE>();
    let (w_tiles, w_last) = w.split_at(y_tiles.len() * TILE * inputs);
    for (y_tile, w_tile) in y_tiles.iter_mut().zip(w_tiles.chunks_exact(TILE * inputs)) {
        tile::<L, TILE, FMA, C>(y_tile, w_tile, x);
    }
    macro_rules! last_tile {
        ($($width:literal)*) => {
            match y_last.len() {
                $($width => tile::<L, $width, FMA, C>(
                    y_last.try_into().expect("tile width"),
                    w_last,
                    x,
                ),)*
                _ => {}
            }
        };
    }
    last_tile!(1 2 3 4 5 6 7);
}

/// `y += W x` for one output tile of `T` chunks, `w` its `[inputs][T]` chunks of weights: the
/// tile is accumulated in registers, each weight loaded once.
#[inline(always)]
fn tile<const L: usize, const T: usize, const FMA: bool, C: Chunk<L>>(
    y: &mut [[f32; L]; T],
    w: &[C],
    x: &[f32],
) {
    let (rows, _) = w.as_chunks::<T>();
    let mut acc = *y;
    for (&xi, row) in x.iter().zip(rows) {
        // NOTE: `row` is `T` chunks; prefetch every cache line of the row `PREFETCH_BYTES`
        // ahead (past the end it is harmless: a prefetch never faults).
        #[cfg(target_arch = "x86_64")]
        {
            let ahead = row.as_ptr().cast::<u8>().wrapping_add(PREFETCH_BYTES);
            let mut offset = 0;
            while offset < std::mem::size_of::<[C; T]>() {
                // SAFETY: a prefetch never faults and changes no program state.
                unsafe {
                    std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                        ahead.wrapping_add(offset).cast(),
                    );
                }
                offset += 64;
            }
        }
        for t in 0..T {
            let weights = row[t].widen();
            for k in 0..L {
                acc[t][k] = madd::<FMA>(xi, weights[k], acc[t][k]);
            }
        }
    }
    *y = acc;
}

/// `y += x`, elementwise.
#[inline(always)]
fn add(y: &mut [f32], x: &[f32]) {
    for (yv, &xv) in y.iter_mut().zip(x) {
        *yv += xv;
    }
}

#[inline(always)]
fn relu(y: &mut [f32]) {
    for v in y {
        *v = v.max(0.0);
    }
}

/// `v` with zeros appended to a whole number of `lanes`.
fn padded(v: &[f32], lanes: usize) -> Vec<f32> {
    let mut out = v.to_vec();
    out.resize(v.len().next_multiple_of(lanes), 0.0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::wavenet::weights::expected_tensors;
    use crate::test_kit::{random_model_bytes, relative_error, small_config, test_sequence};

    /// The whole sequence at once, straight from the file's tensors with plain loops over time
    /// (no history rings, no packing): the reference the kernel must match.
    fn reference_forward(file: &ModelFile, tokens: &[u16], positions: &[u32]) -> Vec<Vec<f32>> {
        let cfg = file.config;
        let (v, c, g, s, h) = cfg.sizes();
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

    const PRECISIONS: [Precision; 2] = [Precision::Single, Precision::Half];

    /// The kernel packed for every SIMD path this CPU runs (portable first).
    fn every_path(file: &ModelFile) -> Vec<WaveNetKernel> {
        SimdPath::ALL
            .into_iter()
            .filter_map(|path| WaveNetKernel::with_simd_path(file, path))
            .collect()
    }

    #[test]
    fn steps_match_the_plain_full_sequence_forward() {
        let config = small_config();
        for precision in PRECISIONS {
            let file = ModelFile::parse(&random_model_bytes(&config, 7, precision)).unwrap();
            assert_eq!(file.precision, precision);
            // 40 steps: longer than the receptive field (31), so every ring wraps.
            let (tokens, positions) = test_sequence(40, 3, 353, 96);
            let reference = reference_forward(&file, &tokens, &positions);
            for mut kernel in every_path(&file) {
                let path = kernel.simd_path().name();
                for run in 0..2 {
                    kernel.reset();
                    for (t, (&token, &position)) in tokens.iter().zip(&positions).enumerate() {
                        let err = relative_error(kernel.step(token, position), &reference[t]);
                        assert!(
                            err < 1e-5,
                            "{precision:?} {path} run {run} step {t}: relative error {err}"
                        );
                    }
                }
            }
        }
    }

    /// A half file's weights stay half on the AVX paths: a step reads half the bytes.
    #[test]
    fn half_files_are_streamed_in_half_precision() {
        let config = WaveNetConfig::default();
        let kernels = |precision| {
            every_path(&ModelFile::parse(&random_model_bytes(&config, 3, precision)).unwrap())
        };
        for (single, half) in kernels(Precision::Single)
            .iter()
            .zip(kernels(Precision::Half))
        {
            let path = half.simd_path();
            let expected = if path.streams_half() {
                single.step_weight_bytes() / 2
            } else {
                single.step_weight_bytes()
            };
            assert_eq!(half.step_weight_bytes(), expected, "{}", path.name());
        }
        // Every matrix weight once, padded to the lane width: 1.8 MB in f32.
        let portable = &kernels(Precision::Single)[0];
        let weights: usize = expected_tensors(&config)
            .iter()
            .filter(|t| t.name.ends_with(".weight") && !t.name.contains("embedding"))
            .map(|t| t.shape.iter().product::<usize>())
            .sum();
        let padding = portable.step_weight_bytes() - 4 * weights;
        assert!(padding < 4 * weights / 100, "{padding} bytes of padding");
    }

    /// The default model fills whole output tiles and its last narrower one on every path.
    #[test]
    fn every_simd_path_matches_the_portable_one_on_the_default_model() {
        let config = WaveNetConfig::default();
        for precision in PRECISIONS {
            let file = ModelFile::parse(&random_model_bytes(&config, 4, precision)).unwrap();
            let mut kernels = every_path(&file);
            assert_eq!(kernels[0].simd_path(), SimdPath::Portable);
            let (tokens, positions) = test_sequence(150, 8, 353, 192);
            for (t, (&token, &position)) in tokens.iter().zip(&positions).enumerate() {
                let (portable, others) = kernels.split_first_mut().unwrap();
                let expected = portable.step(token, position).to_vec();
                for kernel in others {
                    let err = relative_error(kernel.step(token, position), &expected);
                    let path = kernel.simd_path().name();
                    assert!(
                        err < 1e-5,
                        "{precision:?} {path} step {t}: relative error {err}"
                    );
                }
            }
        }
    }

    #[test]
    fn feeding_a_phrase_equals_stepping_it_to_the_bit() {
        let config = small_config();
        let (tokens, positions) = test_sequence(2 * FEED_BLOCK + 7, 9, 353, 96);
        let events: Vec<(u16, u32)> = tokens.into_iter().zip(positions).collect();
        let kernels = |precision| {
            let file = ModelFile::parse(&random_model_bytes(&config, 5, precision)).unwrap();
            every_path(&file).into_iter().zip(every_path(&file))
        };
        for (mut fed, mut stepped) in PRECISIONS.into_iter().flat_map(kernels) {
            let path = fed.simd_path().name();
            for len in [
                0,
                1,
                FEED_BLOCK - 1,
                FEED_BLOCK,
                FEED_BLOCK + 1,
                events.len(),
            ] {
                fed.reset();
                stepped.reset();
                fed.feed(&events[..len]);
                for &(token, position) in &events[..len] {
                    stepped.step(token, position);
                }
                assert_eq!(fed.logits(), stepped.logits(), "{path}, {len} events");
                // The layers' histories agree too: the next steps are the same.
                for &(token, position) in &events[..5] {
                    let next = fed.step(token, position).to_vec();
                    assert_eq!(next, stepped.step(token, position), "{path}, after {len}");
                }
            }
        }
    }

    #[test]
    fn the_detected_path_is_supported_and_chosen_at_load() {
        let detected = SimdPath::detect();
        assert!(detected.is_supported());
        let bytes = random_model_bytes(&small_config(), 1, Precision::Half);
        let kernel = WaveNetKernel::load(&bytes).unwrap();
        assert_eq!(kernel.simd_path(), detected);
        assert!(SimdPath::Portable.is_supported());
        let file = ModelFile::parse(&bytes).unwrap();
        for path in SimdPath::ALL {
            let packed = WaveNetKernel::with_simd_path(&file, path);
            assert_eq!(packed.is_some(), path.is_supported(), "{}", path.name());
        }
    }

    #[test]
    fn steps_and_feeds_do_not_allocate() {
        let config = small_config();
        let kernels = |precision| {
            every_path(&ModelFile::parse(&random_model_bytes(&config, 1, precision)).unwrap())
        };
        for mut kernel in PRECISIONS.into_iter().flat_map(kernels) {
            let mut checksum = 0.0;
            // NOTE: the global allocator aborts on an allocation inside this closure in debug
            // builds.
            nice_assert_no_alloc::assert_no_alloc(|| {
                for t in 0..100u16 {
                    checksum += kernel.step(t, u32::from(t) * 5)[0];
                }
                kernel.feed(&[(60, 0); 3 * FEED_BLOCK]);
                checksum += kernel.logits()[0];
                kernel.reset();
            });
            assert!(checksum.is_finite());
            assert!(kernel.logits().iter().all(|&v| v == 0.0));
        }
    }

    #[test]
    fn positions_fold_and_bad_ids_clamp_in_release() {
        let config = small_config();
        let bytes = random_model_bytes(&config, 2, Precision::Half);
        let mut kernel = WaveNetKernel::load(&bytes).unwrap();
        let folded = kernel.step(60, 96 + 24).to_vec();
        kernel.reset();
        assert_eq!(kernel.step(60, 24), folded.as_slice());
        assert_eq!(kernel.config(), &config);
        assert_eq!(kernel.vocabulary().len(), 353);
    }

    /// The figure a model file's sizes are checked against is what the kernel allocates.
    #[test]
    fn the_configs_state_size_is_what_the_kernel_keeps() {
        let kernel = WaveNetKernel::load(crate::assets::DEFAULT_WAVENET).unwrap();
        let kept: usize = kernel.layers.iter().map(|l| l.history.len()).sum();
        assert_eq!(kept, kernel.config.state_floats());
    }
}
