//! The player's sustain pedal (MIDI CC 64): while it is down on a channel, the keys let go there
//! keep sounding on WaveJam's thru (the synth and the MIDI output; a one-line neural voice lets
//! them go) until it comes up, as on a piano. Listening is not affected: the phrase is heard as
//! the keys play it.

/// The pedal on every channel and the keys it holds.
#[derive(Debug, Clone, Copy)]
pub struct Sustain {
    /// Channels whose pedal is down, a bit each.
    down: u16,
    /// `held[key]`: the channels on which the pedal holds `key`'s thru note (let go while the
    /// pedal was down, not struck again since), a bit each.
    held: [u16; 128],
}

impl Default for Sustain {
    fn default() -> Self {
        Self {
            down: 0,
            held: [0; 128],
        }
    }
}

impl Sustain {
    /// `key` was let go on `channels`: those where the pedal is down now hold its note, the
    /// others release it. Returns the channels that release it and those where the pedal
    /// holds it from now on (not already).
    pub fn let_go(&mut self, channels: u16, key: u8) -> (u16, u16) {
        let kept = channels & self.down;
        let held = &mut self.held[key as usize & 127];
        let newly = kept & !*held;
        *held |= kept;
        (channels & !kept, newly)
    }

    /// `key` was struck on `channel`: whether the pedal held its last note there, which ends now
    /// (the new note's own release decides when it ends).
    pub fn strike(&mut self, channel: u8, key: u8) -> bool {
        let bit = 1 << (channel & 15);
        let held = &mut self.held[key as usize & 127];
        let was_held = *held & bit != 0;
        *held &= !bit;
        was_held
    }

    /// The pedal went down or up on `channels`. Lifting it ends nothing by itself: the notes it
    /// held there end with [`Sustain::end_held`].
    pub fn set_pedal(&mut self, channels: u16, down: bool) {
        if down {
            self.down |= channels;
        } else {
            self.down &= !channels;
        }
    }

    /// The notes the pedal holds on `channels` end (it lifted, all sound off, a transport stop):
    /// `release(channel, key)` is called for each. Where the pedal is down it goes on holding the
    /// keys let go next.
    pub fn end_held(&mut self, channels: u16, mut release: impl FnMut(u8, u8)) {
        for (key, held) in (0u8..).zip(self.held.iter_mut()) {
            let ending = *held & channels;
            *held &= !ending;
            for channel in (0..16u8).filter(|c| ending & (1 << c) != 0) {
                release(channel, key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn released_on_lifting(sustain: &mut Sustain, channels: u16) -> Vec<(u8, u8)> {
        let mut released = Vec::new();
        sustain.set_pedal(channels, false);
        sustain.end_held(channels, |channel, key| released.push((channel, key)));
        released
    }

    #[test]
    fn the_pedal_holds_the_keys_let_go_on_its_channel_until_it_lifts() {
        let mut sustain = Sustain::default();
        assert_eq!(sustain.let_go(0b1, 60), (0b1, 0), "no pedal yet: released");
        sustain.set_pedal(0b1, true);
        assert_eq!(sustain.let_go(0b1, 62), (0, 0b1), "held by the pedal");
        assert_eq!(sustain.let_go(0b1, 62), (0, 0), "held already");
        assert_eq!(
            sustain.let_go(0b10, 64),
            (0b10, 0),
            "channel 2 has no pedal"
        );
        assert_eq!(
            sustain.let_go(0b11, 65),
            (0b10, 0b1),
            "held on channel 1 only"
        );
        assert_eq!(released_on_lifting(&mut sustain, 0b10), vec![]);
        assert_eq!(
            released_on_lifting(&mut sustain, 0b1),
            vec![(0, 62), (0, 65)]
        );
        assert_eq!(
            released_on_lifting(&mut sustain, 0b1),
            vec![],
            "released once"
        );
        assert_eq!(
            sustain.let_go(0b1, 62),
            (0b1, 0),
            "lifted: released at once"
        );
    }

    #[test]
    fn a_key_struck_again_under_the_pedal_is_held_by_its_new_release() {
        let mut sustain = Sustain::default();
        sustain.set_pedal(u16::MAX, true);
        sustain.let_go(0b1, 60);
        assert!(!sustain.strike(1, 60), "held on channel 1, not 2");
        assert!(sustain.strike(0, 60), "the held note ends");
        assert_eq!(released_on_lifting(&mut sustain, u16::MAX), vec![]);
        sustain.set_pedal(u16::MAX, true);
        sustain.let_go(0b1, 60);
        sustain.strike(0, 60);
        sustain.let_go(0b1, 60);
        assert_eq!(released_on_lifting(&mut sustain, u16::MAX), vec![(0, 60)]);
    }

    #[test]
    fn notes_ended_otherwise_are_not_released_again() {
        let mut sustain = Sustain::default();
        sustain.set_pedal(0b11, true);
        sustain.let_go(0b11, 60);
        let mut ended = Vec::new();
        sustain.end_held(0b1, |channel, key| ended.push((channel, key)));
        assert_eq!(ended, vec![(0, 60)]);
        assert_eq!(released_on_lifting(&mut sustain, 0b11), vec![(1, 60)]);
        sustain.set_pedal(0b1, true);
        sustain.end_held(0b1, |_, _| {});
        assert_eq!(sustain.let_go(0b1, 61), (0, 0b1), "the pedal is still down");
    }
}
