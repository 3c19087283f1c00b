//! Symbolic music modelling: the event vocabulary of the phrase WaveNet, PPM models and their
//! evaluation in bits per note.

pub mod continuations;
pub mod encoding;
pub mod engines;
pub mod eval;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod melodies;
pub mod meter;
pub mod models;
pub mod musical;
pub mod ppm;
