//! The bar: where a phrase's bar lines fall, heard from its notes, for a phrase whose first note
//! need not be on one — a pickup, a file not padded to its bar, a free player who starts
//! wherever they like.

use crate::listen::transcribe::transcribe;
use crate::models::EventModel;
use crate::music::encoding::{TokenClass, Vocabulary};
use crate::music::meter::Meter;
use crate::music::{ticks_to_beats, Note};

/// Bar phases [`find_bar_phase`] tries: every 8th of the bar, at most [`MAX_PHASES`] of them.
const PHASE_STEP_BEATS: f64 = 0.5;
/// Most phases tried: a bar of 8 beats has 16 8ths; a longer one (a host may report 16/4, or
/// 255/4) is tried at as many places, evenly spread, for each costs a reading of the phrase.
const MAX_PHASES: usize = 16;
/// How much less likely (bits) a phrase is to begin in the first half of its bar off the
/// downbeat than on the downbeat or with a pickup of half a bar or less, as tunes begin: a
/// player who comes in after the downbeat is still heard so when the notes say it clearly.
/// Without it, the first 4 bars of the 24 test melodies (`tests/listening.rs`) were placed
/// right 16 times, most misses half a bar off; with 4 bits or 8, 20 times.
const MID_BAR_START_BITS: f64 = 4.0;
/// Most notes of a phrase read, from its first: enough to hear where its bars fall, and a bound
/// on the cost (each phase reads them all; the phrase in progress may hold hundreds of notes,
/// and 12–30 notes take 5–31 ms at the 8 phases of a 4/4 bar in a release build).
const MAX_NOTES: usize = 48;
/// How much less likely (bits) a phrase of a jam in progress is to begin elsewhere in the bar
/// than the bars kept so far say: a player who comes back in after an answer keeps counting
/// its bars, wherever in them they enter.
const KEPT_BAR_BITS: f64 = 8.0;
/// A first note this close to a bar line or the bar's middle (beats) is on it.
const BAR_LINE_BEATS: f64 = 1e-6;

/// What is known of where a phrase's bars fall before its notes are read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BarPrior {
    /// Nothing: it begins as tunes begin, on a downbeat or with a pickup of half a bar or less
    /// ([`MID_BAR_START_BITS`]).
    Opening,
    /// The jam's bars go on: the phrase's beat 0 falls this many beats after one of their bar
    /// lines ([`KEPT_BAR_BITS`] against any other place).
    Kept(f64),
}

impl BarPrior {
    /// Where the prior alone places the phrase's beat 0, in beats after a bar line: the kept
    /// phase, or the bar line.
    pub fn guess(self) -> f64 {
        match self {
            BarPrior::Opening => 0.0,
            BarPrior::Kept(phase) => phase,
        }
    }

    /// The bits the prior costs the phrase's beat 0 placed `phase` beats after a bar line of
    /// `bar_beats`, its first note `first` beats after beat 0, phases tried every `step` beats.
    fn bits(self, phase: f64, first: f64, bar_beats: f64, step: f64) -> f64 {
        match self {
            BarPrior::Opening => {
                let start = (first + phase).rem_euclid(bar_beats);
                let mid_bar = start > BAR_LINE_BEATS && start < bar_beats / 2.0 - BAR_LINE_BEATS;
                if mid_bar {
                    MID_BAR_START_BITS
                } else {
                    0.0
                }
            }
            BarPrior::Kept(kept) => {
                // The phase tried nearest the kept one is it.
                let off = (phase - kept).rem_euclid(bar_beats);
                if off.min(bar_beats - off) > step / 2.0 {
                    KEPT_BAR_BITS
                } else {
                    0.0
                }
            }
        }
    }
}

/// Where `phrase`'s beat 0 falls in its first bar, in beats after the bar line (0 when the
/// phrase's bar lines are right): the phase, of every 8th of the bar of `meter` (at most
/// [`MAX_PHASES`] places), at which `model` (reading `vocabulary`'s events) finds the phrase's
/// first [`MAX_NOTES`] notes, heard as the plugin hears a player, most likely, with what `prior`
/// says of its bars — a pickup not padded to its bar is found where it belongs. The bits of the
/// rest before the first note are not counted, so no phase pays for its padding; a tie goes to
/// the earliest phase. `model` is left reset to no tune, in `meter`.
pub fn find_bar_phase(
    model: &mut dyn EventModel,
    vocabulary: &Vocabulary,
    phrase: &[Note],
    meter: &Meter,
    prior: BarPrior,
) -> f64 {
    let mut heard = transcribe(phrase).melody;
    heard.truncate(MAX_NOTES);
    model.set_meter(meter);
    let mut scratch = vec![0.0; vocabulary.len()];
    let bar_beats = ticks_to_beats(u64::from(meter.bar_ticks(0)));
    let phases = ((bar_beats / PHASE_STEP_BEATS).ceil().max(1.0) as usize).min(MAX_PHASES);
    let step = bar_beats / phases as f64;
    let mut best = (f64::INFINITY, 0.0);
    for phase in (0..phases).map(|i| i as f64 * step) {
        let shifted: Vec<Note> = heard
            .iter()
            .map(|n| Note {
                onset_beats: n.onset_beats + phase,
                ..*n
            })
            .collect();
        let tokens = vocabulary.encode_ids(&shifted);
        model.reset();
        let mut bits = 0.0;
        let mut started = false;
        for &token in &tokens {
            started |= vocabulary.class(token) == TokenClass::NoteOn;
            if started {
                model.distribution(&mut scratch);
                bits -= scratch[usize::from(token)].log2();
            }
            model.observe(token);
        }
        let first = heard.first().map_or(0.0, |n| n.onset_beats);
        bits += prior.bits(phase, first, bar_beats, step);
        if bits < best.0 {
            best = (bits, phase);
        }
    }
    model.reset();
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::music::encoding::Vocabulary;
    use crate::test_kit::folk_tune;

    /// A model that finds every event alike, and counts the readings of a phrase it is asked for.
    #[derive(Default)]
    struct Even {
        readings: usize,
    }

    impl EventModel for Even {
        fn name(&self) -> String {
            "even".into()
        }
        fn reset(&mut self) {
            self.readings += 1;
        }
        fn distribution(&mut self, out: &mut [f64]) {
            out.fill(1.0 / out.len() as f64);
        }
        fn observe(&mut self, _token: u16) {}
    }

    fn phase(bar_beats: f64, prior: BarPrior) -> (f64, usize) {
        let mut model = Even::default();
        let meter = Meter::constant(crate::music::beats_to_ticks(bar_beats) as u32);
        let phase = find_bar_phase(
            &mut model,
            &Vocabulary::default(),
            &folk_tune(0),
            &meter,
            prior,
        );
        (phase, model.readings)
    }

    /// Every 8th of a 4/4 bar is tried, 16 places at most of a longer one; where the notes say
    /// nothing, the prior places the phrase: on the downbeat, or where the jam's bars are.
    #[test]
    fn the_phases_tried_are_bounded_and_the_prior_decides_a_tie() {
        // A reading a phase, and the reset after.
        assert_eq!(phase(4.0, BarPrior::Opening), (0.0, 8 + 1));
        assert_eq!(phase(64.0, BarPrior::Opening).1, MAX_PHASES + 1);
        assert_eq!(phase(4.0, BarPrior::Kept(2.5)).0, 2.5);
        assert_eq!(phase(64.0, BarPrior::Kept(9.0)).0, 8.0);
    }
}
