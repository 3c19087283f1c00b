//! The instrument WaveJam's notes sound on: the polyphonic [`Synth`] or a neural voice (the
//! embedded Fiddle and Flute, or the player's Custom voice file), chosen by the `voice`
//! parameter. Real-time safe: every voice is built before the audio thread uses it.
//!
//! A neural voice plays the answer and the thru notes as one line, the way a fiddler or a
//! flautist would ([`crate::voice::controls::Line`]). Switching the voice releases what the old
//! one plays (its notes fade as released notes do) and the next notes go to the new one.
//!
//! Every voice plays the same latency behind its notes, the longest of the neural voices' (the
//! synth and any neural voice that runs behind by less are delayed to it): the latency reported
//! to the host never changes with the voice chosen, so choosing one never has the host restart
//! the plugin and cut the notes.
//!
//! A neural voice renders in `process()` (about 0.3–0.7 µs per output sample, see
//! `cargo bench --bench voice`). Should a block's neural rendering take more than
//! [`DEADLINE_SHARE`] of the block's real time, the synth takes the line over (the note held
//! starts on the synth) while the neural voice fades out over [`FALLBACK_FADE_S`], and keeps
//! it until the line falls silent; each such fallback is counted for the panel. A bounce has
//! no deadline.

use std::time::{Duration, Instant};

use crate::assets::{FIDDLE_VOICE, FLUTE_VOICE};
use crate::audio::synth::{Synth, VoiceKey};
use crate::params::VoiceChoice;
use crate::voice::delay::Delay;
use crate::voice::slot::{AudioEnds, CustomVoice};
use crate::voice::VoiceFile;

/// Share of a block's real time the neural voice may take before the synth takes over.
pub const DEADLINE_SHARE: f64 = 0.5;
/// Seconds over which a neural voice that missed its deadline fades out.
pub const FALLBACK_FADE_S: f32 = 0.01;
/// Longest piece of a block rendered at once, in samples (the neural voice's mono scratch).
const SCRATCH: usize = 512;

/// Where the neural voices sit in [`Sound::neural`].
const FIDDLE: usize = 0;
const FLUTE: usize = 1;
const CUSTOM: usize = 2;
/// A custom voice replaced while it sounded, fading out.
const OUTGOING: usize = 3;
const NEURAL_SLOTS: usize = 4;

/// Who plays the next note.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Player {
    Synth,
    Neural(usize),
}

/// A neural voice fading out: `left` of `total` samples to go.
#[derive(Debug, Clone, Copy)]
struct Fade {
    slot: usize,
    left: u32,
    total: u32,
}

/// The synth and the neural voices, and which plays.
#[derive(Debug)]
pub struct Sound {
    synth: Synth,
    /// The synth's left and right output, delayed by [`Sound::latency`].
    synth_delay: [Delay; 2],
    /// Host samples every voice runs behind its notes.
    latency: usize,
    /// The neural voices: Fiddle, Flute, Custom and an outgoing Custom (see the consts).
    neural: [Option<Box<CustomVoice>>; NEURAL_SLOTS],
    /// The voice parameter as of the last block.
    choice: VoiceChoice,
    /// The last note struck on a neural line (the synth needs its key to take over).
    line_key: Option<VoiceKey>,
    /// The synth has the line after a missed deadline, until it falls silent.
    fallback: bool,
    fade: Option<Fade>,
    /// Time spent rendering neural voices in this block.
    spent: Duration,
    deadline_share: f64,
    sample_rate_hz: f32,
    scratch: Box<[f32; SCRATCH]>,
    ends: AudioEnds,
}

impl Sound {
    /// A silent sound at `sample_rate_hz` with every embedded voice built; `ends` are the audio
    /// thread's rings from the panel's [`crate::voice::slot::VoiceSlot`]. Allocates.
    pub fn new(sample_rate_hz: f32, ends: AudioEnds) -> Self {
        let mut sound = Self {
            synth: Synth::new(sample_rate_hz),
            synth_delay: [Delay::new(sample_rate_hz), Delay::new(sample_rate_hz)],
            latency: 0,
            neural: Default::default(),
            choice: VoiceChoice::Synth,
            line_key: None,
            fallback: false,
            fade: None,
            spent: Duration::ZERO,
            deadline_share: DEADLINE_SHARE,
            sample_rate_hz,
            scratch: Box::new([0.0; SCRATCH]),
            ends,
        };
        sound.set_sample_rate(sample_rate_hz);
        sound
    }

    /// Rebuilds every voice for `sample_rate_hz`, silent. Allocates: activation only.
    pub fn set_sample_rate(&mut self, sample_rate_hz: f32) {
        self.sample_rate_hz = sample_rate_hz;
        self.synth.set_sample_rate(sample_rate_hz);
        self.synth_delay = [Delay::new(sample_rate_hz), Delay::new(sample_rate_hz)];
        for (slot, bytes) in [(FIDDLE, FIDDLE_VOICE), (FLUTE, FLUTE_VOICE)] {
            // NOTE: the embedded voices are valid (tested in `assets`); were one not, its
            // choice would play the synth.
            self.neural[slot] = VoiceFile::parse(bytes).ok().map(|file| {
                CustomVoice::new(
                    Default::default(),
                    std::sync::Arc::new(file),
                    sample_rate_hz,
                )
            });
        }
        self.neural[OUTGOING] = None;
        if let Some(custom) = self.neural[CUSTOM].take() {
            let CustomVoice { choice, file, .. } = *custom;
            self.neural[CUSTOM] = Some(CustomVoice::new(choice, file, sample_rate_hz));
        }
        self.align();
        self.reset();
    }

    /// Lines every voice up on the longest latency of the neural voices installed.
    fn align(&mut self) {
        self.latency = [FIDDLE, FLUTE, CUSTOM]
            .iter()
            .filter_map(|&slot| self.neural[slot].as_ref())
            .map(|voice| voice.stream.own_latency())
            .max()
            .unwrap_or(0);
        for voice in self.neural.iter_mut().flatten() {
            voice.stream.set_latency(self.latency);
        }
        for delay in &mut self.synth_delay {
            delay.set_delay(self.latency);
        }
    }

    /// The custom voice installed, if any (activation compares it with the project's).
    pub fn custom(&self) -> Option<&CustomVoice> {
        self.neural[CUSTOM].as_deref()
    }

    /// Installs `voice` as the custom voice, or none (activation; drops the old one here).
    pub fn install_custom(&mut self, voice: Option<Box<CustomVoice>>) {
        self.neural[CUSTOM] = voice;
        self.align();
        self.reset();
    }

    /// Takes a custom voice the panel handed over, if any, and gives the one it replaces back
    /// (fading it out first if it sounds). Call once a block, before the notes.
    pub fn take_handover(&mut self) {
        let fading_out = self.fade.is_some_and(|f| f.slot == OUTGOING);
        if !fading_out && self.ends.retired.slots() > 0 {
            // A voice a reset silenced before it could go back goes now.
            if let Some(old) = self.neural[OUTGOING].take() {
                let _ = self.ends.retired.push(old);
            }
        }
        // NOTE: the replaced voices go back over `retired`; without room for them, wait.
        if self.ends.retired.slots() < 2 || self.neural[OUTGOING].is_some() {
            return;
        }
        let Ok(handover) = self.ends.from_panel.pop() else {
            return;
        };
        let fresh = match handover {
            Some(voice) if voice.stream.host_rate_hz() != self.host_rate() => {
                // Built for a rate the host left: give it back, keep the voice playing.
                let _ = self.ends.retired.push(voice);
                return;
            }
            other => other,
        };
        if let Some(old) = std::mem::replace(&mut self.neural[CUSTOM], fresh) {
            if old.stream.active() {
                self.neural[OUTGOING] = Some(old);
                self.start_fade(OUTGOING);
            } else {
                let _ = self.ends.retired.push(old);
            }
        }
        self.align();
    }

    /// Drops the custom voices the panel handed over that the audio thread has not taken
    /// (activation, before the project's voice is restored). Frees them: not on the audio thread.
    pub fn drop_handovers(&mut self) {
        while self.ends.from_panel.pop().is_ok() {}
    }

    /// The voice parameter for this block: a change releases what the old voice plays.
    pub fn select(&mut self, choice: VoiceChoice) {
        if choice == self.choice {
            return;
        }
        self.release_all();
        self.choice = choice;
    }

    /// Who plays a note struck now.
    fn player(&self) -> Player {
        match self.chosen_neural() {
            Some(slot) if !self.fallback => Player::Neural(slot),
            _ => Player::Synth,
        }
    }

    /// The slot of the neural voice chosen, if it is there.
    fn chosen_neural(&self) -> Option<usize> {
        let slot = match self.choice {
            VoiceChoice::Synth => return None,
            VoiceChoice::Fiddle => FIDDLE,
            VoiceChoice::Flute => FLUTE,
            VoiceChoice::Custom => CUSTOM,
        };
        self.neural[slot].is_some().then_some(slot)
    }

    /// How far every voice runs behind its notes, in host samples: the same whichever plays
    /// (a change of latency makes hosts restart the plugin, which cuts the notes). Changes only
    /// when a custom voice whose own latency is the longest arrives or leaves.
    pub fn latency(&self) -> usize {
        self.latency
    }

    /// Starts a note; `velocity` is `0.0..=1.0`.
    pub fn note_on(&mut self, key: VoiceKey, velocity: f32) {
        match self.player() {
            Player::Synth => self.synth.note_on(key, velocity),
            Player::Neural(slot) => {
                if let Some(voice) = &mut self.neural[slot] {
                    let velocity = (velocity.clamp(0.0, 1.0) * 127.0).round().max(1.0) as u8;
                    voice.stream.note_on(key.key, velocity);
                    self.line_key = Some(key);
                }
            }
        }
    }

    /// Releases `key` wherever it sounds.
    pub fn note_off(&mut self, key: VoiceKey) {
        self.synth.note_off(key);
        self.release_line(key);
    }

    /// The player let `key` go with the sustain pedal down: the synth holds it until the pedal
    /// lifts ([`Sound::note_off`] comes then), a one-line neural voice lets it go now (a fiddle
    /// has no pedal: the held key would slur the line into the next note).
    pub fn let_go_under_pedal(&mut self, key: VoiceKey) {
        self.release_line(key);
    }

    /// Releases `key` on the neural voices' line, if it is the line's note.
    fn release_line(&mut self, key: VoiceKey) {
        if self.line_key == Some(key) {
            for voice in self.neural.iter_mut().flatten() {
                voice.stream.note_off(key.key);
            }
        }
    }

    /// Releases every note musically (transport stop, panic, a voice change).
    pub fn release_all(&mut self) {
        self.synth.release_all();
        for voice in self.neural.iter_mut().flatten() {
            voice.stream.release();
        }
    }

    /// Instant silence everywhere; an outgoing voice goes back to the panel.
    pub fn reset(&mut self) {
        self.synth.reset();
        for delay in &mut self.synth_delay {
            delay.clear();
        }
        for voice in self.neural.iter_mut().flatten() {
            voice.stream.reset();
        }
        if let Some(old) = self.neural[OUTGOING].take() {
            // NOTE: `take_handover` keeps room for it; were there none, dropping it here
            // would be the one way out.
            if let Err(rtrb::PushError::Full(old)) = self.ends.retired.push(old) {
                self.neural[OUTGOING] = Some(old);
            }
        }
        self.fade = None;
        self.fallback = false;
        self.line_key = None;
    }

    /// Sounds still going (synth voices, or a neural voice rendering).
    pub fn active(&self) -> bool {
        self.synth.active_voices() > 0 || self.neural.iter().flatten().any(|v| v.stream.active())
    }

    /// Overwrites `left` and `right` with the next samples (any length; equal lengths).
    pub fn render(&mut self, left: &mut [f32], right: &mut [f32]) {
        let len = left.len().min(right.len());
        for start in (0..len).step_by(SCRATCH) {
            let end = (start + SCRATCH).min(len);
            self.render_piece(&mut left[start..end], &mut right[start..end]);
        }
    }

    fn render_piece(&mut self, left: &mut [f32], right: &mut [f32]) {
        self.synth.render(left, right);
        self.synth_delay[0].process(left);
        self.synth_delay[1].process(right);
        // Only a neural voice's rendering is timed (the synth has no deadline to miss).
        let started = self
            .neural
            .iter()
            .flatten()
            .any(|v| v.stream.active())
            .then(Instant::now);
        let n = left.len();
        for slot in 0..NEURAL_SLOTS {
            let Some(voice) = &mut self.neural[slot] else {
                continue;
            };
            if !voice.stream.active() {
                continue;
            }
            let scratch = &mut self.scratch[..n];
            voice.stream.render(scratch);
            if let Some(fade) = self.fade.as_mut().filter(|f| f.slot == slot) {
                for x in scratch.iter_mut() {
                    *x *= fade.left as f32 / fade.total as f32;
                    fade.left = fade.left.saturating_sub(1);
                }
            }
            for ((l, r), x) in left.iter_mut().zip(right.iter_mut()).zip(scratch.iter()) {
                *l += x;
                *r += x;
            }
        }
        if let Some(started) = started {
            self.spent += started.elapsed();
        }
        // A fade is over when it has run out, or when its voice fell silent first (its tail
        // ended within the fade).
        let over = self.fade.filter(|f| {
            f.left == 0
                || !self.neural[f.slot]
                    .as_ref()
                    .is_some_and(|v| v.stream.active())
        });
        if let Some(fade) = over {
            self.fade = None;
            self.end_fade(fade.slot);
        }
        if self.fallback && self.fade.is_none() && self.synth.active_voices() == 0 {
            self.fallback = false;
        }
    }

    /// Ends a block of `samples`: a neural voice that took more than its share of the block's
    /// real time hands its line to the synth (not in a bounce, `realtime` false). Whether it
    /// did.
    pub fn end_block(&mut self, samples: usize, realtime: bool) -> bool {
        let spent = std::mem::take(&mut self.spent);
        let seconds = samples as f64 / f64::from(self.sample_rate_hz.max(1.0));
        let Player::Neural(neural) = self.player() else {
            return false;
        };
        if !realtime || spent.as_secs_f64() < self.deadline_share * seconds {
            return false;
        }
        let Some(voice) = &mut self.neural[neural] else {
            return false;
        };
        if !voice.stream.active() {
            return false;
        }
        if let (Some((_, velocity)), Some(key)) = (voice.stream.held(), self.line_key) {
            self.synth.note_on(key, f32::from(velocity) / 127.0);
        }
        self.fallback = true;
        self.start_fade(neural);
        true
    }

    /// Fades the neural voice in `slot` out (a fade already running is cut short: it ends now).
    fn start_fade(&mut self, slot: usize) {
        if let Some(old) = self.fade.take() {
            self.end_fade(old.slot);
        }
        let total = (FALLBACK_FADE_S * self.sample_rate_hz).max(1.0) as u32;
        self.fade = Some(Fade {
            slot,
            left: total,
            total,
        });
    }

    /// Silences the voice in `slot` at the end of its fade; an outgoing one goes back.
    fn end_fade(&mut self, slot: usize) {
        if let Some(voice) = &mut self.neural[slot] {
            voice.stream.reset();
        }
        if slot == OUTGOING {
            if let Some(old) = self.neural[OUTGOING].take() {
                // NOTE: `take_handover` kept room for it.
                let _ = self.ends.retired.push(old);
            }
        }
    }

    fn host_rate(&self) -> u32 {
        // Same rounding as the streams'.
        self.neural[FIDDLE]
            .as_ref()
            .map_or(self.sample_rate_hz.round() as u32, |v| {
                v.stream.host_rate_hz()
            })
    }

    /// Test hook: the share of a block's time the neural voice may take (0: every block of a
    /// sounding neural voice misses).
    #[cfg(test)]
    pub fn set_deadline_share(&mut self, share: f64) {
        self.deadline_share = share;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::synth::test_support::max_step;
    use crate::audio::synth::VoiceSource;
    use crate::models::choice::ModelChoice;
    use crate::voice::slot::{rings, PanelEnds};
    use std::sync::Arc;

    const RATE: f32 = 48_000.0;
    const BLOCK: usize = 480;

    fn key(key: u8) -> VoiceKey {
        VoiceKey {
            source: VoiceSource::Answer,
            channel: 0,
            key,
        }
    }

    fn sound() -> (Sound, PanelEnds) {
        let (panel, audio) = rings();
        (Sound::new(RATE, audio), panel)
    }

    /// Renders `blocks` blocks (`realtime`: as a live host, else a bounce): the left channel
    /// and how many fallbacks there were.
    fn blocks(sound: &mut Sound, blocks: usize, realtime: bool) -> (Vec<f32>, usize) {
        let (mut left, mut right) = (vec![0.0; BLOCK * blocks], vec![0.0; BLOCK * blocks]);
        let mut fallbacks = 0;
        for (l, r) in left.chunks_mut(BLOCK).zip(right.chunks_mut(BLOCK)) {
            sound.render(l, r);
            fallbacks += usize::from(sound.end_block(BLOCK, realtime));
        }
        (left, fallbacks)
    }

    /// A neural voice that misses its deadline hands the held note to the synth, fading out
    /// without a click, counts once, keeps the latency reported, and plays again once the line
    /// has fallen silent; a bounce never falls back.
    #[test]
    fn a_missed_deadline_hands_the_line_to_the_synth_without_a_click() {
        let (mut sound, _panel) = sound();
        sound.select(VoiceChoice::Fiddle);
        sound.note_on(key(69), 0.8);
        let (before, fallbacks) = blocks(&mut sound, 20, false);
        assert_eq!(fallbacks, 0, "a bounce has no deadline");
        assert_eq!(sound.synth.active_voices(), 0, "the fiddle plays it");
        let latency = sound.latency();
        assert!(latency > 0);
        sound.set_deadline_share(0.0);
        let (during, fallbacks) = blocks(&mut sound, 20, true);
        assert_eq!(fallbacks, 1, "counted once, then the synth has the line");
        assert_eq!(sound.latency(), latency, "no restart asked of the host");
        assert_eq!(
            sound.synth.active_voices(),
            1,
            "the synth took the held note"
        );
        assert!(!sound.neural[FIDDLE].as_ref().unwrap().stream.active());
        let steady = max_step(&before[BLOCK * 10..]);
        let crossing = max_step(&during[..BLOCK * 2]);
        assert!(
            crossing <= 1.5 * steady,
            "step {crossing} in the crossfade, {steady} while playing"
        );
        // A new note while the synth has the line stays on the synth.
        sound.note_on(key(71), 0.8);
        assert!(!sound.neural[FIDDLE].as_ref().unwrap().stream.active());
        sound.note_off(key(69));
        sound.note_off(key(71));
        blocks(&mut sound, 100, true);
        assert!(!sound.active(), "every note released");
        sound.set_deadline_share(DEADLINE_SHARE);
        sound.note_on(key(72), 0.8);
        assert!(sound.neural[FIDDLE].as_ref().unwrap().stream.active());
        assert_eq!(
            sound.latency(),
            sound.neural[FIDDLE].as_ref().unwrap().stream.latency()
        );
    }

    /// A voice whose tail ends within the fade that hands its line to the synth ends the fade
    /// too: the next note after the line falls silent plays on the neural voice again.
    #[test]
    fn a_fade_ends_when_its_voice_falls_silent_first() {
        let (mut sound, _panel) = sound();
        sound.select(VoiceChoice::Fiddle);
        sound.note_on(key(69), 0.8);
        blocks(&mut sound, 4, false);
        sound.set_deadline_share(0.0);
        assert_eq!(blocks(&mut sound, 1, true).1, 1);
        assert!(sound.fade.is_some());
        // The tail ends now, in the middle of the fade.
        sound.neural[FIDDLE].as_mut().unwrap().stream.reset();
        sound.set_deadline_share(DEADLINE_SHARE);
        sound.note_off(key(69));
        blocks(&mut sound, 100, true);
        assert!(sound.fade.is_none());
        sound.note_on(key(72), 0.8);
        assert!(sound.neural[FIDDLE].as_ref().unwrap().stream.active());
    }

    /// The first sample of `audio` louder than -80 dB.
    fn onset(audio: &[f32]) -> usize {
        audio.iter().position(|x| x.abs() > 1e-4).unwrap()
    }

    /// Every voice runs the same latency behind its notes, so choosing one never changes what
    /// the host is told (it would restart the plugin): the synth plays exactly that late, and
    /// the neural voices start there too.
    #[test]
    fn every_voice_plays_its_notes_one_latency_late() {
        let (mut sound, _panel) = sound();
        let latency = sound.latency();
        assert!(latency > 0, "the neural voices are resampled to 48 kHz");
        for choice in [VoiceChoice::Fiddle, VoiceChoice::Flute, VoiceChoice::Custom] {
            sound.select(choice);
            assert_eq!(sound.latency(), latency, "{choice:?}");
        }
        sound.select(VoiceChoice::Synth);
        sound.note_on(key(69), 0.8);
        let (delayed, _) = blocks(&mut sound, 4, false);
        let mut synth = Synth::new(RATE);
        synth.note_on(key(69), 0.8);
        let (mut own, mut right) = (vec![0.0; delayed.len()], vec![0.0; delayed.len()]);
        synth.render(&mut own, &mut right);
        assert!(delayed[..latency].iter().all(|&x| x == 0.0));
        assert_eq!(delayed[latency..], own[..own.len() - latency]);
        for choice in [VoiceChoice::Fiddle, VoiceChoice::Flute] {
            sound.reset();
            sound.select(choice);
            sound.note_on(key(69), 0.8);
            let (audio, _) = blocks(&mut sound, 4, false);
            let start = onset(&audio);
            // A sample or two early: the resampler's sinc rings before the attack it carries.
            assert!(
                (latency - 4..latency + 48).contains(&start),
                "{choice:?} starts {start} samples late, {latency} expected"
            );
        }
    }

    /// A key let go under the sustain pedal ends the neural line's note (the next note starts
    /// afresh, not slurred) and leaves the synth's sounding until its note-off.
    #[test]
    fn a_key_let_go_under_the_pedal_ends_only_the_line() {
        let (mut sound, _panel) = sound();
        sound.select(VoiceChoice::Flute);
        sound.note_on(key(72), 0.8);
        blocks(&mut sound, 5, false);
        sound.let_go_under_pedal(key(72));
        assert_eq!(sound.neural[FLUTE].as_ref().unwrap().stream.held(), None);

        let (mut sound, _panel) = self::sound();
        sound.note_on(key(72), 0.8);
        sound.let_go_under_pedal(key(72));
        let (held, _) = blocks(&mut sound, 100, false);
        let tail = &held[held.len() - BLOCK..];
        assert!(tail.iter().any(|s| s.abs() > 1e-3), "the synth let it go");
        sound.note_off(key(72));
        blocks(&mut sound, 200, false);
        assert!(!sound.active(), "released by its note-off");
    }

    /// Changing the voice releases what the old one plays; the next note goes to the new one.
    #[test]
    fn a_voice_change_releases_the_old_voice() {
        let (mut sound, _panel) = sound();
        sound.select(VoiceChoice::Flute);
        sound.note_on(key(72), 0.8);
        blocks(&mut sound, 5, false);
        sound.select(VoiceChoice::Synth);
        sound.note_on(key(74), 0.8);
        assert_eq!(sound.neural[FLUTE].as_ref().unwrap().stream.held(), None);
        assert_eq!(sound.synth.active_voices(), 1);
        sound.note_off(key(74));
        sound.note_off(key(72));
        blocks(&mut sound, 100, false);
        assert!(!sound.active(), "nothing stuck");
    }

    /// A custom voice from the panel plays when Custom is chosen; replacing it while it sounds
    /// fades the old one out and gives it back to the panel; nothing allocates on the way.
    #[test]
    fn custom_voices_arrive_and_leave_over_the_rings_without_allocating() {
        let (mut sound, mut panel) = sound();
        let custom = || {
            let file = VoiceFile::parse(FLUTE_VOICE).unwrap();
            CustomVoice::new(ModelChoice::default(), Arc::new(file), RATE)
        };
        sound.select(VoiceChoice::Custom);
        let latency = sound.latency();
        panel.to_audio.push(Some(custom())).unwrap();
        panel.to_audio.push(Some(custom())).unwrap();
        let (mut left, mut right) = (vec![0.0; BLOCK], vec![0.0; BLOCK]);
        nice_assert_no_alloc::assert_no_alloc(|| {
            sound.take_handover();
            sound.note_on(key(76), 0.9);
            sound.render(&mut left, &mut right);
            sound.take_handover();
            sound.render(&mut left, &mut right);
            sound.note_on(key(77), 0.9);
            sound.render(&mut left, &mut right);
            sound.end_block(BLOCK, false);
        });
        assert_eq!(
            sound.latency(),
            latency,
            "a voice at the embedded ones' rate"
        );
        assert!(panel.retired.pop().is_ok(), "the replaced voice came back");
        assert!(sound.neural[OUTGOING].is_none());
        assert!(sound.neural[CUSTOM].as_ref().unwrap().stream.active());
        // A voice built for another rate is given back unplayed.
        let file = VoiceFile::parse(FLUTE_VOICE).unwrap();
        let wrong = CustomVoice::new(ModelChoice::default(), Arc::new(file), 44_100.0);
        panel.to_audio.push(Some(wrong)).unwrap();
        sound.take_handover();
        assert!(panel.retired.pop().is_ok());
        assert_eq!(sound.custom().unwrap().stream.host_rate_hz(), 48_000);
    }
}
