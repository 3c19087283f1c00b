//! The offline laboratory, above the runtime: corpus reading, bits per note, musical checks,
//! offline continuation, rendering and the in-process host that drives the real plugin.

pub mod continuations;
pub mod eval;
pub mod host;
pub mod musical;
pub mod offline;
pub mod render;
