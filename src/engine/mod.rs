//! The audio-thread side: musical clock, call-and-response conductor, answer playback, output
//! events and WaveJam's own voice.

pub mod answer;
pub mod clock;
pub mod conductor;
pub mod events;
pub mod pace;
pub mod synth;
