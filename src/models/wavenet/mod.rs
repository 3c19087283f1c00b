//! Model files and incremental inference: the phrase WaveNet's hyperparameters and weight
//! contract ([`WaveNetConfig`], [`weights`]), and its hand-written step-by-step kernel
//! ([`kernel::WaveNetKernel`]) that needs no ML framework.
//!
//! # The phrase WaveNet
//! Input at step `t` is one event id `x_t` and one bar position `p_t`:
//! ```text
//! e_t      = token_embedding[x_t] + position_embedding[p_t]                 (C channels)
//! layer l, dilation d = 2^(l mod layers_per_stack):
//!   h      = W_l · [r_{t−d} ; r_t] + b_l           kernel-2 dilated causal conv, C → 2G
//!   z      = tanh(h[..G]) ⊙ sigmoid(h[G..])                                 gate, G
//!   s     += S_l · z + c_l                                                  skip 1×1, G → S
//!   r      = r + R_l · z + a_l                      residual 1×1, G → C (not in the last layer)
//! logits   = O · relu(H · relu(s) + h_b) + o_b                          head, S → H → V
//! ```
//! where `r` is the residual stream (starting at `e`) and `r_{t−d}` is the layer's input `d`
//! steps back, zero before the first step (the training model's left zero padding). The logits
//! at step `t` give the distribution of event `t + 1`.
//!
//! # What the caller feeds
//! - A tune starts with `END` at position 0 as its start-of-tune marker, so the first real event
//!   is predicted from it and a training sequence `[END, e_0, …, e_n]` has targets
//!   `[e_0, …, e_n, END]`.
//! - The position of input `t` is the bar position of the event to predict, i.e. the time after
//!   token `t` (see [`input_positions`]): the model always knows where in the bar it is.
//! - Positions are ticks into the bar ([`crate::music::encoding::TICKS_PER_BEAT`] per beat),
//!   mapped by [`WaveNetConfig::position_index`]: bars up to `bar_positions` ticks (8 beats of
//!   24 ticks with the default 192: 2/4 to 8/4, 6/8, 9/8, 12/8, 5/4, 7/4) have one embedding per
//!   tick, so each meter's beats are exact; longer bars fold modulo `bar_positions`.

pub mod event_model;
pub mod kernel;
pub mod weights;

pub use kernel::WaveNetKernel;
pub use weights::{ModelError, ModelFile, Precision};

use crate::models::stack::DilatedStack;
use crate::music::encoding::Token;
use crate::music::meter::Meter;

/// Hyperparameters of the phrase WaveNet; recorded in every model file's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct WaveNetConfig {
    /// Number of event ids (the vocabulary's `len()`, 353 for the default vocabulary).
    pub vocab_size: usize,
    /// Number of bar-position embeddings (ticks; see [`WaveNetConfig::position_index`]).
    pub bar_positions: usize,
    /// Width of the residual stream, and of the embeddings (C).
    pub residual_channels: usize,
    /// Width of each half (tanh, sigmoid) of the gate (G); the dilated conv has 2G outputs.
    pub gate_channels: usize,
    /// Width of the summed skip connections (S).
    pub skip_channels: usize,
    /// Width of the head's hidden layer (H).
    pub head_channels: usize,
    /// Layers per stack; their dilations are `1, 2, 4, …, 2^(layers_per_stack − 1)`.
    pub layers_per_stack: usize,
    /// Number of stacks (the dilation pattern repeats this many times).
    pub stacks: usize,
}

impl Default for WaveNetConfig {
    /// The default phrase model: dilations 1…64 × 3 stacks (receptive field 382 events, about
    /// 16 bars of a folk melody at ~3 events a note), C = G = 48, S = 96, H = 256: 483,089
    /// parameters, about 0.90 MFLOP a step.
    fn default() -> Self {
        Self {
            vocab_size: 353,
            bar_positions: 192,
            residual_channels: 48,
            gate_channels: 48,
            skip_channels: 96,
            head_channels: 256,
            layers_per_stack: 7,
            stacks: 3,
        }
    }
}

impl DilatedStack for WaveNetConfig {
    fn layers_per_stack(&self) -> usize {
        self.layers_per_stack
    }

    fn stacks(&self) -> usize {
        self.stacks
    }
}

impl WaveNetConfig {
    /// The sizes the layers are built from: (vocabulary `V`, residual `C`, gate `G`, skip `S`,
    /// head `H` channels).
    pub fn sizes(&self) -> (usize, usize, usize, usize, usize) {
        (
            self.vocab_size,
            self.residual_channels,
            self.gate_channels,
            self.skip_channels,
            self.head_channels,
        )
    }

    /// The embedding index of a position `ticks_in_bar` ticks after the bar line: the tick
    /// itself, folded modulo `bar_positions` for bars longer than the table.
    pub fn position_index(&self, ticks_in_bar: u32) -> u32 {
        // NOTE: `bar_positions` ≥ 1 is checked by `validate`; max(1) keeps this total anyway.
        (ticks_in_bar as usize % self.bar_positions.max(1)) as u32
    }

    /// Number of weights (all tensors of the weight contract).
    pub fn param_count(&self) -> usize {
        weights::expected_tensors(self)
            .iter()
            .map(|t| t.shape.iter().product::<usize>())
            .sum()
    }

    /// Floating-point operations of one incremental step (a multiply-add counts 2; gates,
    /// embeddings and activations are left out, a few percent).
    pub fn flops_per_step(&self) -> usize {
        let (c, g, s) = (
            self.residual_channels,
            self.gate_channels,
            self.skip_channels,
        );
        let layers: usize = (0..self.layers())
            .map(|l| {
                let residual = if self.has_residual(l) { g * c } else { 0 };
                2 * c * 2 * g + g * s + residual
            })
            .sum();
        2 * (layers + s * self.head_channels + self.head_channels * self.vocab_size)
    }

    /// Checks that every size is usable (non-zero, and not absurdly large).
    pub fn validate(&self) -> Result<(), String> {
        let sizes = [
            ("vocab_size", self.vocab_size),
            ("bar_positions", self.bar_positions),
            ("residual_channels", self.residual_channels),
            ("gate_channels", self.gate_channels),
            ("skip_channels", self.skip_channels),
            ("head_channels", self.head_channels),
            ("layers_per_stack", self.layers_per_stack),
            ("stacks", self.stacks),
        ];
        for (name, value) in sizes {
            if value == 0 {
                return Err(format!("{name} is 0"));
            }
            if value > 65_536 {
                return Err(format!("{name} is {value}, more than 65536"));
            }
        }
        if self.layers_per_stack > 16 {
            return Err(format!(
                "layers_per_stack is {}: dilations above 2^15 are not supported",
                self.layers_per_stack
            ));
        }
        if self.layers() > 256 {
            return Err(format!("{} layers, more than 256", self.layers()));
        }
        crate::models::stack::check_state_size(self.state_floats())
    }

    /// Floats of the kernel's running state: each layer keeps its dilation's worth of past
    /// residual inputs (C each).
    pub fn state_floats(&self) -> usize {
        (self.receptive_field() - 1).saturating_mul(self.residual_channels)
    }
}

/// The bar position (ticks after the bar line of `meter`) to feed with each token: the time
/// after it, where the event it predicts happens (a time shift moves it on, other events keep
/// it).
pub fn input_positions(tokens: &[Token], meter: &Meter) -> Vec<u32> {
    let mut now = 0u64;
    tokens
        .iter()
        .map(|&token| {
            if let Token::TimeShift(d) = token {
                now += u64::from(d);
            }
            meter.position(now)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::music::encoding::{position_in_bar, Token, Vocabulary};

    #[test]
    fn default_config_sizes() {
        let config = WaveNetConfig::default();
        assert_eq!(config.vocab_size, Vocabulary::default().len());
        assert_eq!(config.receptive_field(), 1 + 3 * 127);
        assert_eq!(config.param_count(), 483_089);
        assert_eq!(config.flops_per_step(), 902_656);
        assert!(config.validate().is_ok());
        let dilations: Vec<usize> = (0..8).map(|l| config.dilation(l)).collect();
        assert_eq!(dilations, [1, 2, 4, 8, 16, 32, 64, 1]);
        assert!(config.has_residual(19) && !config.has_residual(20));
    }

    #[test]
    fn positions_map_meters_and_fold_long_bars() {
        let config = WaveNetConfig::default();
        assert_eq!(config.position_index(0), 0);
        assert_eq!(config.position_index(95), 95);
        // 9/8 (108 ticks) and 7/4 (168) keep every tick; a 10/4 bar (240) folds.
        assert_eq!(config.position_index(107), 107);
        assert_eq!(config.position_index(200), 8);
        let bad = WaveNetConfig {
            stacks: 0,
            ..config
        };
        assert!(bad.validate().unwrap_err().contains("stacks"));
    }

    /// A few MB of weights can ask for gigabytes of history through long dilations: refused
    /// before anything is built.
    #[test]
    fn a_config_whose_state_would_take_gigabytes_is_refused() {
        let narrow = WaveNetConfig {
            residual_channels: 4096,
            gate_channels: 1,
            skip_channels: 1,
            head_channels: 1,
            layers_per_stack: 16,
            stacks: 16,
            ..WaveNetConfig::default()
        };
        let error = narrow.validate().unwrap_err();
        assert!(error.contains("16383 MiB"), "{error}");
        // Dilations up to 32,768 events, far beyond any phrase: still built (48 MiB).
        let deep = WaveNetConfig {
            layers_per_stack: 16,
            stacks: 4,
            ..WaveNetConfig::default()
        };
        assert!(deep.validate().is_ok());
    }

    #[test]
    fn input_positions_are_the_time_after_each_token() {
        use Token::{End, NoteOff as Off, NoteOn as On, TimeShift as Shift};
        let tokens = [End, On(60), Shift(48), Off(60), On(62), Shift(48), Off(62)];
        let meter = Meter::constant(72);
        let after = input_positions(&tokens, &meter);
        assert_eq!(after, [0, 0, 48, 48, 48, 24, 24]);
        // It is `position_in_bar` shifted by one: the position of the next event.
        let at = position_in_bar(&tokens, &meter);
        assert_eq!(after[..tokens.len() - 1], at[1..]);
    }
}
