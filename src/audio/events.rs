//! The notes WaveJam emits in one block, in time order, and which of them are sounding on the MIDI
//! output (so every note-on gets exactly one note-off, whatever happens).

use crate::audio::synth::VoiceSource;

/// Most events one block may emit. Half is reserved for note-offs, so a release of everything
/// (at most 16 channels × 128 keys) always fits.
pub const BLOCK_EVENT_CAPACITY: usize = 4096;
const NOTE_ON_LIMIT: usize = BLOCK_EVENT_CAPACITY - 16 * 128;

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
}

/// The block's output events plus the MIDI-output sounding table.
pub struct BlockEvents {
    events: Vec<OutEvent>,
    /// `sounding[channel * 128 + key]`: a note-on was sent to the host and not yet released.
    sounding: [bool; 16 * 128],
    /// `voiced[channel * 128 + key]`: a note-on was sent to WaveJam's voice and not yet
    /// released. Note-offs go out only for keys sounding on either side, so a block's note-offs
    /// never outnumber the keys that can sound (a flood of note-offs for keys never struck takes
    /// no room).
    voiced: [bool; 16 * 128],
    /// Note-offs the host refused (its queue was full), retried at the start of the next block.
    refused: [bool; 16 * 128],
    any_refused: bool,
    /// Note-ons refused because the block was full (shown in the panel).
    pub dropped_note_ons: u64,
}

impl Default for BlockEvents {
    fn default() -> Self {
        Self {
            events: Vec::with_capacity(BLOCK_EVENT_CAPACITY),
            sounding: [false; 16 * 128],
            voiced: [false; 16 * 128],
            refused: [false; 16 * 128],
            any_refused: false,
            dropped_note_ons: 0,
        }
    }
}

impl BlockEvents {
    /// Start a new block: note-offs the host refused last block go out first, at offset 0.
    pub fn clear(&mut self) {
        self.events.clear();
        if std::mem::take(&mut self.any_refused) {
            for slot in 0..self.refused.len() {
                if std::mem::take(&mut self.refused[slot]) {
                    // Still sounding there, even if a new note-on for it was refused since.
                    self.sounding[slot] = true;
                    let (channel, key) = ((slot / 128) as u8, (slot % 128) as u8);
                    self.push_off(0, VoiceSource::Answer, channel, key, false);
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

    /// Whether a note-on for `channel`/`key` is sounding on the MIDI output.
    pub fn is_sounding(&self, channel: u8, key: u8) -> bool {
        self.sounding[Self::slot(channel, key)]
    }

    /// Emit a note-on. A key already sounding on the MIDI output is released first, so the host
    /// never sees two note-ons without a note-off between them. Returns whether it was emitted.
    pub fn note_on(&mut self, mut event: OutEvent) -> bool {
        if self.events.len() >= NOTE_ON_LIMIT {
            self.dropped_note_ons += 1;
            return false;
        }
        if event.midi && self.is_sounding(event.channel, event.key) {
            self.push_off(event.offset, event.source, event.channel, event.key, false);
        }
        let slot = Self::slot(event.channel, event.key);
        self.sounding[slot] |= event.midi;
        self.voiced[slot] |= event.audio;
        event.velocity = Some(event.velocity.unwrap_or(100).clamp(1, 127));
        self.events.push(event);
        true
    }

    /// Emit a note-off; each side (MIDI, and the voice if `audio`) is sent only if that key is
    /// sounding there.
    pub fn note_off(
        &mut self,
        offset: u32,
        source: VoiceSource,
        channel: u8,
        key: u8,
        audio: bool,
    ) {
        self.push_off(offset, source, channel, key, audio);
    }

    fn push_off(&mut self, offset: u32, source: VoiceSource, channel: u8, key: u8, audio: bool) {
        let slot = Self::slot(channel, key);
        let midi = std::mem::replace(&mut self.sounding[slot], false);
        let audio = audio && std::mem::replace(&mut self.voiced[slot], false);
        if !(midi || audio) {
            return;
        }
        // NOTE: capacity is reserved for note-offs (at most one a key sounding), so this never
        // reallocates.
        debug_assert!(self.events.len() < BLOCK_EVENT_CAPACITY);
        if self.events.len() < BLOCK_EVENT_CAPACITY {
            self.events.push(OutEvent {
                offset,
                source,
                channel,
                key,
                velocity: None,
                midi,
                audio,
            });
        }
    }

    /// The host refused a note-on we sent: it is not sounding there.
    pub fn forget(&mut self, channel: u8, key: u8) {
        self.sounding[Self::slot(channel, key)] = false;
    }

    /// The host refused a note-off: the key is still sounding there; retry at the next block.
    pub fn retry_off(&mut self, channel: u8, key: u8) {
        let slot = Self::slot(channel, key);
        self.sounding[slot] = true;
        self.refused[slot] = true;
        self.any_refused = true;
    }

    /// Release every key sounding on the MIDI output at `offset` (the voice is released by the
    /// caller with `Synth::release_all`, so no key sounds there either).
    pub fn release_all_midi(&mut self, offset: u32) {
        self.voiced = [false; 16 * 128];
        for slot in 0..self.sounding.len() {
            if self.sounding[slot] {
                let (channel, key) = ((slot / 128) as u8, (slot % 128) as u8);
                self.push_off(offset, VoiceSource::Answer, channel, key, false);
            }
        }
    }

    /// Number of keys sounding on the MIDI output.
    pub fn sounding_count(&self) -> usize {
        self.sounding.iter().filter(|s| **s).count()
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
        events.note_off(9, VoiceSource::Answer, 0, 60, true);
        events.retry_off(0, 60);
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
        events.clear();
        // The host takes neither the release nor the new note-on (in the order they went).
        events.note_on(on(5, 60));
        events.retry_off(0, 60);
        events.forget(0, 60);
        events.clear();
        let offs = offs_of(&events, 60);
        assert_eq!(offs.len(), 1);
        assert!(offs[0].midi);
        assert_eq!(events.sounding_count(), 0);
    }
}
