//! The neural voice's offline side: what it hears in a recording of an instrument.

pub mod analysis;
