//! The plugin's answer, offline: `wavejam continue` hears the file's phrase as the plugin hears a
//! player (`listen`), then runs the same engines, context layout, sampler and seed stream as the
//! generator thread.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::generator::event_answer::{answer_phrases, EventAnswerer, Layout};
use crate::generator::sampling::mix_seed;
use crate::listen::transcribe::transcribe;
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

/// `kind`'s continuation of `phrase` (beat 0 on bar line 0 of `meter`; heard as notation: one
/// line on its grid), `bars` bars of the meter at the phrase's end long, at `temperature`, from
/// the stream the plugin draws for seed `seed` on its first phrase.
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
    let heard = transcribe(phrase).melody;
    let phrase = heard.as_slice();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assets::default_brains;
    use crate::lab::performance::{played_legato, with_chords};
    use crate::test_kit::folk_tune;

    /// A file played with loose timing and legato, or with chords under its tune, continues as
    /// the written tune does.
    #[test]
    fn a_loosely_played_file_continues_as_the_written_one() {
        let brains = default_brains().unwrap();
        let meter = Meter::constant(96);
        let tune = folk_tune(0);
        let continued =
            |phrase: &[Note]| continue_tune(&brains, EngineKind::Hybrid, phrase, &meter, 2, 1.0, 5);
        let written = continued(&tune);
        assert!(!written.notes.is_empty());
        assert_eq!(continued(&played_legato(&tune, 120.0, 4)), written);
        assert_eq!(continued(&with_chords(&tune, 4.0)), written);
    }
}
