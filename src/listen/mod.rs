//! The listening stage, on the generator thread: what the player did, heard as a musician hears
//! it (the grid, one melodic line, the chords under it) before the engines read it.

pub mod bar;
pub mod tempo;
pub mod transcribe;
