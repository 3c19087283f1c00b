//! The predictors: the phrase WaveNet (file format, validation, kernel), the PPM/Markov memories
//! and their mixture, the unigram baseline, the Continuator's memory and the engines built from
//! them. Next-event models share one interface ([`EventModel`]), so `lab::eval` compares them in
//! bits per note.

pub mod choice;
pub mod container;
pub mod continuator;
pub mod engines;
pub mod markov;
pub mod melodies;
pub mod mixing;
pub mod mixture;
pub mod ppm;
pub mod stack;
pub mod step_model;
pub mod steps;
pub mod unigram;
pub mod viewpoint;
pub mod wavenet;

pub use markov::{Markov, MarkovConfig};
pub use mixture::Mixture;
pub use unigram::Unigram;
pub use wavenet::event_model::WaveNetModel;

use crate::music::meter::Meter;

/// A model of the next event of a tune, given the events before it.
///
/// The caller [`reset`](EventModel::reset)s at the start of each tune, then alternates
/// [`distribution`](EventModel::distribution) and [`observe`](EventModel::observe) for every
/// event up to and including `END`. Models must be deterministic: the same calls give the same
/// distributions, bit for bit.
pub trait EventModel {
    /// Short name for reports (`"markov"`).
    fn name(&self) -> String;
    /// Start a new tune: forget its events (and whatever was learned online from them), keep
    /// what was trained.
    fn reset(&mut self);
    /// The distribution of the next event into `out`, one entry per token id of the vocabulary:
    /// every entry above zero, summing to one.
    fn distribution(&mut self, out: &mut [f64]);
    /// The next event was `token` (an id of the vocabulary).
    fn observe(&mut self, token: u16);
    /// The tune's bar lines, in ticks from its start, for the events read after this call;
    /// models that do not read bar positions ignore them (as by default).
    fn set_meter(&mut self, _meter: &Meter) {}
    /// The next events were `tokens`, in order: the same as observing each, but a model may read
    /// them faster together (priming with a phrase).
    fn observe_all(&mut self, tokens: &[u16]) {
        for &token in tokens {
            self.observe(token);
        }
    }
}
