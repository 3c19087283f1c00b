//! Models that predict the next note of a melody as a [`Step`] (pitch and rhythm on the tick
//! grid): the Continuator's interface.
//!
//! The generator thread feeds a model the player's phrase with [`StepModel::observe`], asks for
//! [`StepModel::next_distribution`], samples one step (see `generator::sampling`), observes that
//! step too, and repeats until the answer is long enough. Distributions are normalised over
//! everything the model can emit. (The corpus-trained engines predict events instead: see
//! [`crate::models::EventModel`].)

use crate::music::Note;

pub use crate::music::TICKS_PER_BEAT;
/// Longest inter-onset interval or duration a step can carry, in ticks (8 beats).
pub const MAX_STEP_TICKS: u16 = (8 * TICKS_PER_BEAT) as u16;

/// One note as the engines see it: pitch plus its rhythm on the tick grid.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Step {
    /// MIDI key, 0–127.
    pub pitch: u8,
    /// Ticks from the previous step's onset to this one's (0 = same onset, a chord note).
    pub ioi_ticks: u16,
    /// Length in ticks, ≥ 1.
    pub duration_ticks: u16,
    /// MIDI velocity, 1–127.
    pub velocity: u8,
}

/// A next-step distribution: `(step, probability)` pairs with probabilities summing to 1, in a
/// deterministic order (so seeded sampling is reproducible).
pub type Distribution = Vec<(Step, f64)>;

/// A next-step predictor. Implementations must be deterministic: the same calls in the same order
/// give the same distributions, bit for bit (no `HashMap` iteration order, no clocks).
pub trait StepModel: Send {
    /// Short name for the panel and the CLI (`"continuator"`).
    fn name(&self) -> &'static str;
    /// Start a new context: forget the steps observed so far (not the learned memory).
    fn begin(&mut self);
    /// Append one step to the context.
    fn observe(&mut self, step: Step);
    /// Fill `out` with the distribution of the step after the context (cleared first). Leaves it
    /// empty only if the model knows nothing at all (an empty memory).
    fn next_distribution(&mut self, out: &mut Distribution);
    /// Learn a finished phrase (onsets relative to its first note) into the online memory.
    fn learn(&mut self, phrase: &[Note]);
    /// Forget everything learned online.
    fn clear_memory(&mut self);
}
