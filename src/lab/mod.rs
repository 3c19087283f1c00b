//! The offline laboratory, above the runtime: corpus reading, bits per note, musical checks,
//! offline continuation, rendering, the in-process host that drives the real plugin, and notation
//! played as people play it.

pub mod continuations;
pub mod eval;
pub mod fluidsynth;
pub mod host;
pub mod listening;
pub mod musical;
pub mod offline;
pub mod performance;
pub mod render;
pub mod voice_checks;
pub mod voice_data;
pub mod voice_render;
