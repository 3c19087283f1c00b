//! The answer the audio thread is waiting for or playing: notes arrive from the generator (in
//! beats, relative to the answer's start) and are turned into note-ons and note-offs in time order.

use crate::music::Note;
use crate::protocol::{PlayerTime, MAX_ANSWER_NOTES, MAX_ANSWER_POLYPHONY};

/// Answer notes the slot can track sounding at once: twice the generator's limit, so a note
/// ending a rounding error after the next one starts never costs a note (one that cannot be
/// tracked is skipped, never left hanging).
pub const MAX_ACTIVE_NOTES: usize = 2 * MAX_ANSWER_POLYPHONY;

/// A note-on or note-off of the answer, at a beat.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AnswerEvent {
    On { beat: f64, key: u8, velocity: u8 },
    Off { beat: f64, key: u8 },
}

impl AnswerEvent {
    pub fn beat(&self) -> f64 {
        match *self {
            AnswerEvent::On { beat, .. } | AnswerEvent::Off { beat, .. } => beat,
        }
    }
}

/// A sounding answer note.
#[derive(Debug, Clone, Copy)]
struct Active {
    key: u8,
    end_beat: f64,
}

/// One answer, from request to its last note-off.
pub struct AnswerSlot {
    /// The request this slot collects (answers to older requests are ignored).
    serial: u64,
    notes: Vec<Note>,
    /// A request for `serial` reached the generator (else no answer is coming).
    requested: bool,
    complete: bool,
    length_beats: f64,
    /// The player's time the answer is in (free tempo), if any: it starts on their grid.
    player: Option<PlayerTime>,
    /// When the answer should start at the earliest (phrase end, trigger or previous answer end).
    trigger_beat: Option<f64>,
    /// Beat of the answer's first grid point, once it is playing.
    start_beat: Option<f64>,
    next_note: usize,
    active: [Option<Active>; MAX_ACTIVE_NOTES],
    /// Notes lost because the answer was larger than the slot (shown in the panel).
    pub overflows: u64,
}

impl Default for AnswerSlot {
    fn default() -> Self {
        Self {
            serial: 0,
            notes: Vec::with_capacity(MAX_ANSWER_NOTES),
            requested: false,
            complete: false,
            length_beats: 0.0,
            player: None,
            trigger_beat: None,
            start_beat: None,
            next_note: 0,
            active: [None; MAX_ACTIVE_NOTES],
            overflows: 0,
        }
    }
}

impl AnswerSlot {
    /// Wait for the answer to request `serial`, dropping whatever was here. Call only when
    /// nothing is sounding (see [`AnswerSlot::release_all`]).
    pub fn expect(&mut self, serial: u64) {
        debug_assert!(!self.has_sounding());
        self.serial = serial;
        self.notes.clear();
        self.requested = false;
        self.complete = false;
        self.length_beats = 0.0;
        self.player = None;
        self.trigger_beat = None;
        self.start_beat = None;
        self.next_note = 0;
    }

    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// The request for the awaited answer reached the generator.
    pub fn mark_requested(&mut self) {
        self.requested = true;
    }

    /// The generator has (or had) the request for the awaited answer.
    pub fn is_requested(&self) -> bool {
        self.requested
    }

    /// The awaited answer will never come: it was not requested (the ring was full, the
    /// generator is down), its request was lost with a generator that panicked, or a bounce gave
    /// up waiting for it.
    pub fn is_hopeless(&self) -> bool {
        !self.complete && !self.requested
    }

    /// The request for the awaited answer is lost (or given up on).
    pub fn forget_request(&mut self) {
        self.requested = false;
    }

    /// A note of answer `serial` arrived from the generator.
    pub fn receive_note(&mut self, serial: u64, note: Note) {
        if serial != self.serial || self.complete {
            return;
        }
        if self.notes.len() < self.notes.capacity() {
            self.notes.push(note);
        } else {
            self.overflows += 1;
        }
    }

    /// Answer `serial` is complete; `player`: it is in the player's time.
    pub fn receive_end(&mut self, serial: u64, length_beats: f64, player: Option<PlayerTime>) {
        if serial == self.serial {
            self.complete = true;
            self.length_beats = length_beats;
            self.player = player;
        }
    }

    /// The player's time the awaited answer is in, once it is complete (free tempo).
    pub fn player(&self) -> Option<PlayerTime> {
        self.player
    }

    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Ask for the answer to start on the first grid point at or after `beat`.
    pub fn trigger(&mut self, beat: f64) {
        if self.trigger_beat.is_none() {
            self.trigger_beat = Some(beat);
        }
    }

    pub fn trigger_beat(&self) -> Option<f64> {
        self.trigger_beat
    }

    /// Triggered and complete but not yet started.
    pub fn ready_to_start(&self) -> bool {
        self.trigger_beat.is_some() && self.start_beat.is_none() && self.complete
    }

    /// Start playing at `beat`.
    pub fn start(&mut self, beat: f64) {
        self.start_beat = Some(beat);
    }

    pub fn start_beat(&self) -> Option<f64> {
        self.start_beat
    }

    /// Triggered (waiting for its start or the generator) or playing.
    pub fn is_engaged(&self) -> bool {
        self.trigger_beat.is_some()
    }

    /// Playing and not yet over.
    pub fn is_playing(&self) -> bool {
        self.start_beat.is_some()
    }

    /// Beat at which the answer is over, once started.
    pub fn end_beat(&self) -> Option<f64> {
        self.start_beat.map(|start| start + self.length_beats)
    }

    pub fn has_sounding(&self) -> bool {
        self.active.iter().any(Option::is_some)
    }

    /// The answer has started, every note has been played and released, and its length is over
    /// at `beat`.
    pub fn finished_by(&self, beat: f64) -> bool {
        match self.end_beat() {
            Some(end) => self.next_note >= self.notes.len() && !self.has_sounding() && beat >= end,
            None => false,
        }
    }

    /// The next answer event before `limit_beat`, in time order (a note-off before a note-on at the
    /// same beat, so repeated keys retrigger cleanly). Consumes it.
    pub fn next_event_before(&mut self, limit_beat: f64) -> Option<AnswerEvent> {
        let start = self.start_beat?;
        let off = self
            .active
            .iter()
            .enumerate()
            .filter_map(|(i, a)| a.map(|a| (i, a)))
            .min_by(|(_, a), (_, b)| a.end_beat.total_cmp(&b.end_beat));
        let on = self
            .notes
            .get(self.next_note)
            .map(|n| start + n.onset_beats);
        match (off, on) {
            (Some((i, a)), on) if a.end_beat < limit_beat && on.is_none_or(|b| a.end_beat <= b) => {
                self.active[i] = None;
                Some(AnswerEvent::Off {
                    beat: a.end_beat,
                    key: a.key,
                })
            }
            (_, Some(beat)) if beat < limit_beat => {
                let note = self.notes[self.next_note];
                self.next_note += 1;
                // Retrigger: an answer note on a sounding key takes over its slot (the note-on
                // path releases the old note on the MIDI output first).
                let same_key = self
                    .active
                    .iter()
                    .position(|a| a.is_some_and(|a| a.key == note.pitch));
                let Some(slot) = same_key.or_else(|| self.active.iter().position(Option::is_none))
                else {
                    // A note that cannot be tracked is skipped rather than left hanging.
                    return self.next_event_before(limit_beat);
                };
                self.active[slot] = Some(Active {
                    key: note.pitch,
                    end_beat: beat + note.duration_beats.max(1e-6),
                });
                Some(AnswerEvent::On {
                    beat,
                    key: note.pitch,
                    velocity: note.velocity,
                })
            }
            _ => None,
        }
    }

    /// Stop the answer: returns the keys that were sounding (the caller releases them), forgets
    /// the rest of the answer and waits for `next_serial`, so nothing of the cancelled answer
    /// that is still on its way from the generator can play.
    pub fn release_all(&mut self, next_serial: u64, mut release: impl FnMut(u8)) {
        for slot in self.active.iter_mut() {
            if let Some(a) = slot.take() {
                release(a.key);
            }
        }
        self.expect(next_serial);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_kit::note;

    fn loaded(notes: &[Note], length: f64) -> AnswerSlot {
        let mut slot = AnswerSlot::default();
        slot.expect(7);
        for n in notes {
            slot.receive_note(7, *n);
        }
        slot.receive_end(7, length, None);
        slot
    }

    fn drain(slot: &mut AnswerSlot, limit: f64) -> Vec<AnswerEvent> {
        std::iter::from_fn(|| slot.next_event_before(limit)).collect()
    }

    #[test]
    fn notes_play_in_time_order_with_offs_before_ons_at_the_same_beat() {
        let mut slot = loaded(
            &[note(60, 0.0, 1.0), note(62, 1.0, 0.5), note(64, 1.0, 2.0)],
            4.0,
        );
        slot.trigger(3.5);
        assert!(slot.ready_to_start());
        slot.start(4.0);
        let events = drain(&mut slot, 100.0);
        let beats: Vec<f64> = events.iter().map(AnswerEvent::beat).collect();
        assert_eq!(beats, vec![4.0, 5.0, 5.0, 5.0, 5.5, 7.0]);
        assert!(matches!(events[1], AnswerEvent::Off { key: 60, .. }));
        assert!(slot.finished_by(8.0));
        assert!(!slot.finished_by(7.9));
    }

    #[test]
    fn events_span_block_boundaries() {
        let mut slot = loaded(&[note(60, 0.0, 1.5), note(67, 0.5, 0.25)], 2.0);
        slot.trigger(0.0);
        slot.start(0.0);
        let mut seen = Vec::new();
        for block in 0..8 {
            let limit = (block + 1) as f64 * 0.3;
            for e in drain(&mut slot, limit) {
                assert!(e.beat() < limit && e.beat() >= limit - 0.3);
                seen.push(e);
            }
        }
        assert_eq!(seen.len(), 4);
        assert!(!slot.has_sounding());
    }

    #[test]
    fn stale_answers_are_ignored() {
        let mut slot = AnswerSlot::default();
        slot.expect(2);
        slot.receive_note(1, note(60, 0.0, 1.0));
        slot.receive_end(1, 4.0, None);
        assert!(!slot.is_complete());
        slot.receive_note(2, note(62, 0.0, 1.0));
        slot.receive_end(2, 4.0, None);
        slot.trigger(0.0);
        slot.start(0.0);
        assert!(matches!(
            drain(&mut slot, 1.0)[0],
            AnswerEvent::On { key: 62, .. }
        ));
    }

    #[test]
    fn release_all_returns_every_sounding_key_and_stops_the_answer() {
        let mut slot = loaded(
            &[note(60, 0.0, 4.0), note(64, 0.0, 4.0), note(67, 2.0, 1.0)],
            4.0,
        );
        slot.trigger(0.0);
        slot.start(0.0);
        drain(&mut slot, 1.0);
        let mut released = Vec::new();
        slot.release_all(8, |k| released.push(k));
        released.sort();
        assert_eq!(released, vec![60, 64]);
        assert!(!slot.is_playing() && !slot.has_sounding());
        assert!(slot.next_event_before(100.0).is_none());
        // Notes of the released answer still on their way are dropped.
        slot.receive_note(7, note(60, 0.0, 1.0));
        slot.receive_end(7, 4.0, None);
        assert!(!slot.is_complete());
    }

    #[test]
    fn an_oversized_answer_is_counted_not_grown() {
        let mut slot = AnswerSlot::default();
        slot.expect(1);
        for i in 0..(MAX_ANSWER_NOTES + 5) {
            slot.receive_note(1, note(60, i as f64 * 0.01, 0.01));
        }
        assert_eq!(slot.overflows, 5);
        assert_eq!(slot.notes.capacity(), MAX_ANSWER_NOTES);
    }
}
