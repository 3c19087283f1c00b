//! The notes WaveJam emits in one block, in time order, and which of them are sounding on the MIDI
//! output and on WaveJam's voice (so every note-on gets exactly one note-off, whatever happens).

use crate::audio::synth::VoiceSource;

/// Every MIDI channel and key: 16 × 128.
const KEYS: usize = 16 * 128;
/// Most note-ons one block may emit; more are dropped (and counted).
const NOTE_ON_LIMIT: usize = KEYS;
/// Most events one block may emit. Every note-off clears one of the flags that say a note
/// sounds (one a key on the MIDI output, one a key and source on the voice: 3 × [`KEYS`] at a
/// block's start) or one a note-on of the block set (two each at most), and a note-on may bring
/// a note-off for the key's last note: so a block's note-offs always fit, whatever comes in. A
/// key let go under the sustain pedal ([`OutEvent::pedal_held`]) needs the player's note voiced
/// there and not yet held by the pedal; the pedal's hold ends only with a note-off, so there is
/// one at most for each note voiced at the block's start or struck in it: [`KEYS`] +
/// [`NOTE_ON_LIMIT`] more.
pub const BLOCK_EVENT_CAPACITY: usize =
    NOTE_ON_LIMIT + 3 * KEYS + 2 * NOTE_ON_LIMIT + KEYS + NOTE_ON_LIMIT;

/// One note event for the host's MIDI output and/or WaveJam's own voice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutEvent {
    /// Sample offset in the block.
    pub offset: u32,
    pub source: VoiceSource,
    /// MIDI channel, 0–15.
    pub channel: u8,
    pub key: u8,
    /// `Some(velocity 1–127)` for a note-on, `None` for a note-off.
    pub velocity: Option<u8>,
    /// Send to the host's note output.
    pub midi: bool,
    /// Play on WaveJam's voice.
    pub audio: bool,
    /// A note-off the sustain pedal holds back (the player let the key go with it down): only
    /// a one-line neural voice takes it now (a fiddle has no pedal: the held key would slur the
    /// line into the next note); the synth and the MIDI output get the note's own note-off
    /// when the pedal lifts.
    pub pedal_held: bool,
}

/// The block's output events plus what sounds where.
pub struct BlockEvents {
    events: Vec<OutEvent>,
    /// Note-ons emitted this block.
    note_ons: usize,
    /// `sounding[channel * 128 + key]`: who struck the note sent to the host there and not
    /// yet released. The MIDI output has one note a key: a note-on there ends the last one,
    /// whoever struck it.
    sounding: [Option<VoiceSource>; KEYS],
    /// `voiced[source][channel * 128 + key]`: a note-on from `source` was sent to WaveJam's
    /// voice and not yet released. The voice keeps the player's and the answer's notes apart
    /// (neither releases the other's), so a note-off reaches it only for its own source's key.
    /// Note-offs go out only for notes sounding on either side, so a flood of note-offs for keys
    /// never struck takes no room.
    voiced: [[bool; KEYS]; 2],
    /// Note-offs the host refused (its queue was full), with who struck the note, retried at
    /// the start of the next block.
    refused: [Option<VoiceSource>; KEYS],
    /// `last_midi[channel * 128 + key]`: one past the index of the block's last event for the
    /// MIDI output on that key (0: none), so a refusal is weighed against what came after it.
    last_midi: [u32; KEYS],
    /// `held_by_host[channel * 128 + key]`: the host took a note-on there and not yet a
    /// note-off, whatever it refused since. A refused note-off needs a retry only then (a host
    /// without a note output refuses everything, and holds nothing).
    held_by_host: [bool; KEYS],
    any_refused: bool,
    /// Note-ons refused because the block was full (shown in the panel).
    pub dropped_note_ons: u64,
}

impl Default for BlockEvents {
    fn default() -> Self {
        Self {
            events: Vec::with_capacity(BLOCK_EVENT_CAPACITY),
            note_ons: 0,
            sounding: [None; KEYS],
            voiced: [[false; KEYS]; 2],
            refused: [None; KEYS],
            last_midi: [0; KEYS],
            held_by_host: [false; KEYS],
            any_refused: false,
            dropped_note_ons: 0,
        }
    }
}

impl BlockEvents {
    /// Start a new block: note-offs the host refused last block go out first, at offset 0.
    pub fn clear(&mut self) {
        self.events.clear();
        self.note_ons = 0;
        self.last_midi = [0; KEYS];
        if std::mem::take(&mut self.any_refused) {
            for slot in 0..KEYS {
                if let Some(source) = self.refused[slot].take() {
                    // Still sounding there, even if a new note-on for it was refused since.
                    self.sounding[slot] = Some(source);
                    self.push_off(0, source, slot, false);
                }
            }
        }
    }

    pub fn as_slice(&self) -> &[OutEvent] {
        &self.events
    }

    fn slot(channel: u8, key: u8) -> usize {
        (channel as usize & 15) * 128 + (key as usize & 127)
    }

    fn voiced(&mut self, source: VoiceSource, slot: usize) -> &mut bool {
        let side = match source {
            VoiceSource::Player => 0,
            VoiceSource::Answer => 1,
        };
        &mut self.voiced[side][slot]
    }

    /// Emit a note-on. A key already sounding on the MIDI output is released there first, so the
    /// host never sees two note-ons without a note-off between them. Returns whether it was
    /// emitted.
    pub fn note_on(&mut self, mut event: OutEvent) -> bool {
        if self.note_ons >= NOTE_ON_LIMIT {
            self.dropped_note_ons += 1;
            return false;
        }
        self.note_ons += 1;
        let slot = Self::slot(event.channel, event.key);
        if let Some(struck_by) = self.sounding[slot].filter(|_| event.midi) {
            self.push_off(event.offset, struck_by, slot, false);
        }
        if event.midi {
            self.sounding[slot] = Some(event.source);
        }
        *self.voiced(event.source, slot) |= event.audio;
        event.velocity = Some(event.velocity.unwrap_or(100).clamp(1, 127));
        self.push(event);
        true
    }

    /// Emit `source`'s note-off: on the MIDI output if `source` struck the note sounding
    /// there, and on the voice if `audio` and `source`'s note sounds there.
    pub fn note_off(
        &mut self,
        offset: u32,
        source: VoiceSource,
        channel: u8,
        key: u8,
        audio: bool,
    ) {
        self.push_off(offset, source, Self::slot(channel, key), audio);
    }

    fn push_off(&mut self, offset: u32, source: VoiceSource, slot: usize, audio: bool) {
        let midi = self.sounding[slot] == Some(source);
        if midi {
            self.sounding[slot] = None;
        }
        let audio = audio && std::mem::replace(self.voiced(source, slot), false);
        if !(midi || audio) {
            return;
        }
        // NOTE: the capacity holds every note-off a block can have (see
        // `BLOCK_EVENT_CAPACITY`), so this never reallocates.
        debug_assert!(self.events.len() < BLOCK_EVENT_CAPACITY);
        if self.events.len() < BLOCK_EVENT_CAPACITY {
            self.push(OutEvent {
                offset,
                source,
                channel: (slot / 128) as u8,
                key: (slot % 128) as u8,
                velocity: None,
                midi,
                audio,
                pedal_held: false,
            });
        }
    }

    /// The player let `key` go on `channel` while the sustain pedal holds its note: the voice
    /// is told (see [`OutEvent::pedal_held`]) if the note sounds there; nothing changes in what
    /// sounds where.
    pub fn let_go_under_pedal(&mut self, offset: u32, channel: u8, key: u8) {
        let slot = Self::slot(channel, key);
        if *self.voiced(VoiceSource::Player, slot) && self.events.len() < BLOCK_EVENT_CAPACITY {
            self.push(OutEvent {
                offset,
                source: VoiceSource::Player,
                channel,
                key,
                velocity: None,
                midi: false,
                audio: true,
                pedal_held: true,
            });
        }
    }

    fn push(&mut self, event: OutEvent) {
        if event.midi {
            self.last_midi[Self::slot(event.channel, event.key)] = self.events.len() as u32 + 1;
        }
        self.events.push(event);
    }

    /// The host took the block's event `index`.
    pub fn host_took(&mut self, index: usize) {
        if let Some(event) = self.events.get(index) {
            self.held_by_host[Self::slot(event.channel, event.key)] = event.velocity.is_some();
        }
    }

    /// The host refused the block's event `index` (its queue was full, or it has no note
    /// output). A note-on's note is not sounding there; a note-off's note still is, and its
    /// release is retried at the next block, if the host holds a note there at all. If the
    /// block went on to play that key on the MIDI output, what sounds there after the block is
    /// what its later events left (if the host took them).
    pub fn host_refused(&mut self, index: usize) {
        let Some(&event) = self.events.get(index) else {
            return;
        };
        let slot = Self::slot(event.channel, event.key);
        let later = self.last_midi[slot] as usize > index + 1;
        match event.velocity {
            Some(_) => {
                if !later {
                    self.sounding[slot] = None;
                }
            }
            // The host holds no note there: nothing to release.
            None if !self.held_by_host[slot] => {}
            None => {
                self.refused[slot] = Some(event.source);
                self.any_refused = true;
                if !later {
                    self.sounding[slot] = Some(event.source);
                }
            }
        }
    }

    /// Release every key sounding on the MIDI output at `offset` (the voice is released by the
    /// caller with `Synth::release_all`, so no key sounds there either).
    pub fn release_all_midi(&mut self, offset: u32) {
        self.voiced = [[false; KEYS]; 2];
        for slot in 0..KEYS {
            if let Some(source) = self.sounding[slot] {
                self.push_off(offset, source, slot, false);
            }
        }
    }

    /// Number of keys sounding on the MIDI output.
    pub fn sounding_count(&self) -> usize {
        self.sounding.iter().filter(|s| s.is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(offset: u32, key: u8) -> OutEvent {
        OutEvent {
            offset,
            source: VoiceSource::Answer,
            channel: 0,
            key,
            velocity: Some(90),
            midi: true,
            audio: true,
            pedal_held: false,
        }
    }

    #[test]
    fn every_note_on_gets_exactly_one_note_off() {
        let mut events = BlockEvents::default();
        assert!(events.note_on(on(0, 60)));
        events.note_off(5, VoiceSource::Answer, 0, 60, true);
        events.note_off(6, VoiceSource::Answer, 0, 60, false);
        let offs = events
            .as_slice()
            .iter()
            .filter(|e| e.velocity.is_none())
            .count();
        assert_eq!(offs, 1, "a second note-off for a released key is swallowed");
        assert_eq!(events.sounding_count(), 0);
    }

    #[test]
    fn a_retriggered_key_is_released_before_its_new_note_on() {
        let mut events = BlockEvents::default();
        events.note_on(on(0, 64));
        events.note_on(on(10, 64));
        let kinds: Vec<_> = events
            .as_slice()
            .iter()
            .map(|e| e.velocity.is_some())
            .collect();
        assert_eq!(kinds, vec![true, false, true]);
    }

    #[test]
    fn release_all_closes_every_channel_and_key() {
        let mut events = BlockEvents::default();
        for channel in 0..16 {
            for key in 0..128 {
                events.note_on(OutEvent {
                    channel,
                    ..on(0, key)
                });
                if events.as_slice().len() >= NOTE_ON_LIMIT {
                    break;
                }
            }
        }
        let ons = events.sounding_count();
        assert!(ons > 0);
        events.clear();
        events.release_all_midi(3);
        assert_eq!(events.as_slice().len(), ons);
        assert_eq!(events.sounding_count(), 0);
        assert!(events
            .as_slice()
            .iter()
            .all(|e| e.velocity.is_none() && e.offset == 3));
    }

    #[test]
    fn a_refused_note_off_is_retried_first_thing_next_block() {
        let mut events = BlockEvents::default();
        events.note_on(on(0, 60));
        events.host_took(0);
        events.note_off(9, VoiceSource::Answer, 0, 60, true);
        events.host_refused(1);
        assert_eq!(events.sounding_count(), 1);
        events.clear();
        assert_eq!(events.as_slice().len(), 1);
        assert_eq!(events.as_slice()[0].velocity, None);
        assert_eq!(events.as_slice()[0].offset, 0);
        assert_eq!(events.sounding_count(), 0);
        events.clear();
        assert!(events.as_slice().is_empty(), "retried once only");
    }

    #[test]
    fn a_full_block_refuses_note_ons_but_never_note_offs() {
        let mut events = BlockEvents::default();
        let mut accepted = 0;
        for i in 0..(NOTE_ON_LIMIT + 10) {
            let key = (i % 128) as u8;
            let channel = ((i / 128) % 16) as u8;
            if events.note_on(OutEvent {
                channel,
                ..on(0, key)
            }) {
                accepted += 1;
            }
        }
        assert!(events.dropped_note_ons > 0);
        let sounding = events.sounding_count();
        events.release_all_midi(0);
        let offs = events
            .as_slice()
            .iter()
            .filter(|e| e.velocity.is_none())
            .count();
        assert!(offs >= sounding && accepted > 0);
        assert_eq!(events.sounding_count(), 0);
    }

    fn offs_of(events: &BlockEvents, key: u8) -> Vec<OutEvent> {
        events
            .as_slice()
            .iter()
            .filter(|e| e.key == key && e.velocity.is_none())
            .copied()
            .collect()
    }

    #[test]
    fn a_flood_of_note_offs_for_keys_never_struck_leaves_room_for_the_one_that_counts() {
        let mut events = BlockEvents::default();
        events.note_on(on(0, 60));
        events.clear();
        for _ in 0..BLOCK_EVENT_CAPACITY {
            events.note_off(1, VoiceSource::Player, 0, 61, true);
        }
        events.note_off(2, VoiceSource::Answer, 0, 60, true);
        let offs = offs_of(&events, 60);
        assert_eq!(offs.len(), 1, "{} events", events.as_slice().len());
        assert!(offs[0].midi && offs[0].audio);
        assert_eq!(events.sounding_count(), 0);
    }

    #[test]
    fn a_retrigger_the_host_refused_whole_still_releases_the_first_note() {
        let mut events = BlockEvents::default();
        events.note_on(on(0, 60));
        events.host_took(0);
        events.clear();
        // The host takes neither the release nor the new note-on (in the order they went).
        events.note_on(on(5, 60));
        events.host_refused(0);
        events.host_refused(1);
        events.clear();
        let offs = offs_of(&events, 60);
        assert_eq!(offs.len(), 1);
        assert!(offs[0].midi);
        assert_eq!(events.sounding_count(), 0);
        // The retry refused too: the host still holds the first note, so it is retried again.
        events.host_refused(0);
        events.clear();
        assert_eq!(offs_of(&events, 60).len(), 1);
        events.host_took(0);
        events.clear();
        assert!(events.as_slice().is_empty());
    }

    /// The player and the answer strike one key on one channel, and let go in either order:
    /// the voice releases each one's note with that one's note-off (it keeps them apart), and
    /// the MIDI output, which has one note a key, never sees a note-on over a sounding note nor
    /// a note left sounding.
    #[test]
    fn the_player_and_the_answer_on_one_key_each_release_their_own_note() {
        use VoiceSource::{Answer, Player};
        for first_off in [Answer, Player] {
            let mut events = BlockEvents::default();
            events.note_on(on(0, 60));
            events.note_on(OutEvent {
                source: Player,
                ..on(10, 60)
            });
            let second_off = if first_off == Answer { Player } else { Answer };
            events.note_off(20, first_off, 0, 60, true);
            events.note_off(30, second_off, 0, 60, true);
            // What the voice holds (by source) and the host hears, event by event.
            let (mut held, mut host_sounding) = (Vec::new(), false);
            for e in events.as_slice() {
                if e.audio {
                    match e.velocity {
                        Some(_) => held.push(e.source),
                        None => held.retain(|s| *s != e.source),
                    }
                }
                if e.midi {
                    assert_ne!(host_sounding, e.velocity.is_some(), "{e:?}");
                    host_sounding = e.velocity.is_some();
                }
            }
            assert!(held.is_empty(), "{first_off:?} first: {held:?} still held");
            assert!(!host_sounding && events.sounding_count() == 0);
        }
    }

    /// A block of note-ons (each striking a key already sounding, so bringing a note-off) and
    /// then a release of everything still fits: no note-off is lost.
    #[test]
    fn the_most_note_ons_a_block_takes_leave_room_for_every_note_off() {
        let mut events = BlockEvents::default();
        // Every key sounds on the voice for both sources, and on the MIDI output.
        for source in [VoiceSource::Answer, VoiceSource::Player] {
            for slot in 0..KEYS {
                let (channel, key) = ((slot / 128) as u8, (slot % 128) as u8);
                events.note_on(OutEvent {
                    channel,
                    source,
                    ..on(0, key)
                });
            }
            events.clear();
        }
        for slot in 0..NOTE_ON_LIMIT + 5 {
            let (channel, key) = (((slot / 128) % 16) as u8, (slot % 128) as u8);
            events.note_on(OutEvent {
                channel,
                ..on(1, key)
            });
        }
        for slot in 0..KEYS {
            let (channel, key) = ((slot / 128) as u8, (slot % 128) as u8);
            for source in [VoiceSource::Player, VoiceSource::Answer] {
                events.note_off(2, source, channel, key, true);
            }
        }
        assert_eq!(events.dropped_note_ons, 5);
        assert_eq!(events.sounding_count(), 0);
        assert!(events.voiced.iter().flatten().all(|v| !v));
        // Every note-on brought the player's MIDI note's release; every key's two note-offs went
        // out (one for each source's voice, the answer's also on the MIDI output).
        assert_eq!(events.as_slice().len(), 2 * NOTE_ON_LIMIT + 2 * KEYS);
    }

    /// A refused event weighs only what the block did to its key after it: the host refused the
    /// answer's note-on but took the player's later one on that key, which still gets its
    /// note-off; a refused note-off is retried even though a later note struck the key.
    #[test]
    fn a_refusal_leaves_what_later_events_on_the_key_did() {
        let player = |offset| OutEvent {
            source: VoiceSource::Player,
            ..on(offset, 60)
        };
        let mut events = BlockEvents::default();
        events.note_on(on(0, 60));
        events.note_off(5, VoiceSource::Answer, 0, 60, true);
        events.note_on(player(9));
        events.host_refused(0);
        events.clear();
        events.note_off(3, VoiceSource::Player, 0, 60, true);
        let offs = offs_of(&events, 60);
        assert!(offs.len() == 1 && offs[0].midi, "{offs:?}");

        let mut events = BlockEvents::default();
        events.note_on(on(0, 60));
        events.host_took(0);
        events.clear();
        events.note_off(5, VoiceSource::Answer, 0, 60, true);
        events.note_on(player(9));
        events.host_refused(0);
        events.clear();
        let offs = offs_of(&events, 60);
        assert!(
            offs.len() == 1 && offs[0].midi && offs[0].offset == 0,
            "{offs:?}"
        );
    }

    /// A host that refuses every note event (one without a note output) is not sent the same
    /// note-off again at every block: the note-on it refused left nothing to release.
    #[test]
    fn a_host_refusing_everything_gets_no_endless_retries() {
        let mut events = BlockEvents::default();
        events.note_on(on(0, 60));
        events.host_refused(0);
        events.clear();
        events.note_off(5, VoiceSource::Answer, 0, 60, true);
        events.host_refused(0);
        events.clear();
        assert!(offs_of(&events, 60).is_empty(), "retried");
        // In one block too; a note the host took is still released again after a refusal.
        events.note_on(on(0, 62));
        events.note_off(5, VoiceSource::Answer, 0, 62, true);
        events.host_refused(0);
        events.host_refused(1);
        events.note_on(on(9, 64));
        events.host_took(2);
        events.clear();
        assert!(offs_of(&events, 62).is_empty());
        events.note_off(1, VoiceSource::Answer, 0, 64, true);
        events.host_refused(0);
        events.clear();
        assert_eq!(offs_of(&events, 64).len(), 1);
        assert_eq!(events.sounding_count(), 0);
    }
}
