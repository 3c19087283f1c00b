//! The plugin's answer, offline: `wavejam continue` runs the same engines, context layout,
//! sampler and seed stream as the generator thread.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::generator::event_answer::{answer_phrases, EventAnswerer, Layout};
use crate::generator::sampling::mix_seed;
use crate::models::engines::{Brains, EngineKind};
use crate::music::meter::Meter;
use crate::music::{beats_to_ticks, ticks_to_beats, Note};

/// A continuation and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Continued {
    /// The first bar line after the phrase's last release, in beats from the phrase's beat 0.
    pub start_beats: f64,
    /// Onsets from `start_beats`.
    pub notes: Vec<Note>,
}

/// `kind`'s continuation of `phrase` (beat 0 on bar line 0 of `meter`), `bars` bars of the
/// meter at the phrase's end long, at `temperature`, from the stream the plugin draws for seed
/// `seed` on its first phrase.
pub fn continue_tune(
    brains: &Brains,
    kind: EngineKind,
    phrase: &[Note],
    meter: &Meter,
    bars: u32,
    temperature: f32,
    seed: u32,
) -> Continued {
    let mut rng = ChaCha8Rng::seed_from_u64(mix_seed(seed, 0));
    let mut notes = Vec::new();
    let end = phrase.iter().map(Note::end_beats).fold(0.0, f64::max);
    let bar_ticks = meter.bar_ticks(beats_to_ticks(end));
    let start_ticks = answer_phrases(
        &mut EventAnswerer::new(*brains.wavenet.vocabulary()),
        brains.engine(kind).as_mut(),
        &[phrase],
        &Layout {
            meter: meter.clone(),
            answer_offset_ticks: 0,
        },
        f64::from(bars) * ticks_to_beats(u64::from(bar_ticks)),
        temperature,
        &mut rng,
        &mut notes,
    );
    Continued {
        start_beats: ticks_to_beats(start_ticks),
        notes,
    }
}
