//! A neural voice at the host's rate, block by block, for the audio thread: the
//! [`VoicePlayer`] renders at the voice's own rate, rubato's sinc resampler brings it to the
//! host's, and a small queue hands the host exactly the samples each block asks for.
//!
//! The voice renders only up to the host's present (a note can arrive at any sample), in
//! pieces of [`CHUNK`] voice samples, and the resampler takes a whole piece at a time, so the
//! output runs behind the notes by a fixed [`VoiceStream::latency`]: the queue starts with
//! that much silence and never runs dry. Nothing allocates after [`VoiceStream::new`]. A voice
//! that has been silent for [`IDLE_AFTER_S`] stops rendering (it costs nothing between
//! phrases) and starts from a fresh state at its next note, so the same notes at the same
//! samples give the same audio whatever the host's block sizes — but for where the last
//! trace of a tail (by then over 100 dB down) is cut, which is checked at the end of a block.

use audioadapter_buffers::direct::InterleavedSlice;
use rubato::{
    Async, FixedAsync, Resampler, SincInterpolationParameters, SincInterpolationType,
    WindowFunction,
};

use crate::voice::delay::Delay;
use crate::voice::player::VoicePlayer;
use crate::voice::VoiceFile;

/// Voice-rate samples the resampler takes at a time: small, since the output waits for a
/// whole piece (32 samples are 1.3 ms at 24 kHz).
const CHUNK: usize = 32;
/// Most voice samples rendered at once (the kernel works in blocks of 64).
const RUN: usize = 512;
/// Length of the resampler's sinc filter, in voice-rate samples: its delay is half of it.
const SINC_LEN: usize = 64;
/// Sinc tables between two voice-rate samples (interpolated linearly between them).
const OVERSAMPLING: usize = 128;
/// Seconds a voice stays silent before it stops rendering: its DC blocker's tail (10 Hz) has
/// fallen by over 100 dB by then.
const IDLE_AFTER_S: f64 = 0.25;
/// Lowest and highest host rates a stream is made for, Hz.
const HOST_RATES_HZ: (u32, u32) = (8_000, 768_000);

/// A neural voice playing one line at the host's rate.
#[derive(Debug)]
pub struct VoiceStream {
    player: VoicePlayer,
    /// `None` when the host runs at the voice's own rate.
    resampler: Option<Async<f32>>,
    voice_rate: u64,
    host_rate: u64,
    /// Voice samples waiting for the resampler: `pending[..filled]`.
    pending: Box<[f32]>,
    filled: usize,
    /// The resampler's output for one piece.
    resampled: Box<[f32]>,
    /// Host-rate samples ready for the host: a ring of `queue.len()` samples.
    queue: Box<[f32]>,
    queue_start: usize,
    queue_len: usize,
    /// Silence the queue starts with, host samples.
    prefill: usize,
    /// Delays the output further, to the latency of the voices it is lined up with.
    align: Delay,
    /// Voice and host samples since the stream last started from silence.
    voice_pos: u64,
    host_pos: u64,
    /// Host samples rendered since the line fell silent.
    silent_for: u64,
    /// Not rendering: fresh state, nothing sounding.
    idle: bool,
    /// Samples the host asked for that the queue did not have (0 by construction; counted to
    /// prove it).
    underruns: u64,
}

impl VoiceStream {
    /// A silent stream of `file` for a host at `host_rate_hz` (clamped into 8–768 kHz; not a
    /// number means 48 kHz). Allocates: call it off the audio thread.
    pub fn new(file: &VoiceFile, host_rate_hz: f32) -> Self {
        Self::with_player(VoicePlayer::new(file), host_rate_hz)
    }

    /// A stream playing `player` (a chosen SIMD path, in tests and benches).
    pub fn with_player(player: VoicePlayer, host_rate_hz: f32) -> Self {
        let host_rate = if host_rate_hz.is_finite() {
            (host_rate_hz.round() as u32).clamp(HOST_RATES_HZ.0, HOST_RATES_HZ.1)
        } else {
            48_000
        };
        let voice_rate = player.sample_rate();
        let ratio = f64::from(host_rate) / f64::from(voice_rate);
        let resampler = (host_rate != voice_rate).then(|| {
            let parameters = SincInterpolationParameters {
                sinc_len: SINC_LEN,
                f_cutoff: None,
                oversampling_factor: OVERSAMPLING,
                interpolation: SincInterpolationType::Linear,
                window: WindowFunction::BlackmanHarris2,
            };
            // NOTE: the ratio is within 8 kHz / 24 kHz … 768 kHz / 24 kHz and the chunk is not
            // empty, the only things rubato refuses.
            Async::<f32>::new_sinc(ratio, 1.0, &parameters, CHUNK, 1, FixedAsync::Input)
                .expect("a sinc resampler between the clamped rates")
        });
        let most_out = resampler.as_ref().map_or(CHUNK, |r| r.output_frames_max());
        // The queue is short of what the host has asked for by at most one piece not yet
        // resampled, a voice sample of rounding, and a sample of the resampler's: that much
        // silence first.
        let prefill = if resampler.is_some() {
            ((CHUNK + 1) as f64 * ratio).ceil() as usize + 2
        } else {
            0
        };
        Self {
            player,
            resampler,
            voice_rate: u64::from(voice_rate),
            host_rate: u64::from(host_rate),
            pending: vec![0.0; RUN + CHUNK].into_boxed_slice(),
            filled: 0,
            resampled: vec![0.0; most_out].into_boxed_slice(),
            queue: vec![0.0; 2 * (prefill + most_out) + CHUNK].into_boxed_slice(),
            queue_start: 0,
            queue_len: prefill,
            prefill,
            align: Delay::new(host_rate as f32),
            voice_pos: 0,
            host_pos: 0,
            silent_for: 0,
            idle: true,
            underruns: 0,
        }
    }

    /// How far the output runs behind the notes, in host samples: its own latency and the
    /// delay it is lined up with others by ([`set_latency`](Self::set_latency)).
    pub fn latency(&self) -> usize {
        self.own_latency() + self.align.delay()
    }

    /// How far the stream itself runs behind the notes, in host samples: the silence the queue
    /// starts with plus the resampler's own delay. 0 at the voice's own rate.
    pub fn own_latency(&self) -> usize {
        self.prefill + self.resampler.as_ref().map_or(0, |r| r.output_delay())
    }

    /// Runs `latency` host samples behind the notes (its own latency at least, and at most
    /// [`crate::voice::delay::MOST_DELAY_S`] more), to play in time with voices that run
    /// further behind.
    pub fn set_latency(&mut self, latency: usize) {
        self.align
            .set_delay(latency.saturating_sub(self.own_latency()));
    }

    /// The host rate this stream was made for, Hz.
    pub fn host_rate_hz(&self) -> u32 {
        self.host_rate as u32
    }

    /// Strikes `pitch` at `velocity` (1–127) now, as one line with the notes before it.
    pub fn note_on(&mut self, pitch: u8, velocity: u8) {
        self.idle = false;
        self.silent_for = 0;
        self.player.note_on(pitch, velocity);
    }

    /// Releases `pitch` if it is the note held.
    pub fn note_off(&mut self, pitch: u8) {
        self.player.note_off(pitch);
    }

    /// Releases whatever is held; it fades over the voice's release.
    pub fn release(&mut self) {
        self.player.release();
    }

    /// The key held and its velocity, if any.
    pub fn held(&self) -> Option<(u8, u8)> {
        self.player.held()
    }

    /// Whether the stream still renders (a note held, fading, or its tail in the queue).
    pub fn active(&self) -> bool {
        !self.idle
    }

    /// Samples the host asked for that were not ready (stays 0: the queue's first silence
    /// covers the piece not yet resampled).
    pub fn underruns(&self) -> u64 {
        self.underruns
    }

    /// Instant silence and a fresh start.
    pub fn reset(&mut self) {
        self.player.reset();
        if let Some(resampler) = &mut self.resampler {
            resampler.reset();
        }
        self.filled = 0;
        self.align.clear();
        self.queue[..self.prefill].fill(0.0);
        self.queue_start = 0;
        self.queue_len = self.prefill;
        self.voice_pos = 0;
        self.host_pos = 0;
        self.silent_for = 0;
        self.idle = true;
    }

    /// Overwrites `out` with the next `out.len()` host-rate samples.
    pub fn render(&mut self, out: &mut [f32]) {
        if self.idle {
            out.fill(0.0);
            return;
        }
        self.host_pos += out.len() as u64;
        let voice_end = self.host_pos * self.voice_rate / self.host_rate;
        if self.resampler.is_none() {
            self.player.render(out);
            self.voice_pos = voice_end;
        } else {
            // The queue passes each piece on as it comes, so it never holds more than one.
            let mut ready = self.drain_into(out);
            while self.voice_pos < voice_end {
                // The voice renders in long runs (its kernel is fastest on whole blocks), the
                // resampler takes them a piece at a time.
                let room = self.pending.len() - self.filled;
                let n = room.min((voice_end - self.voice_pos) as usize);
                self.player
                    .render(&mut self.pending[self.filled..self.filled + n]);
                self.filled += n;
                self.voice_pos += n as u64;
                let mut taken = 0;
                while self.filled - taken >= CHUNK {
                    self.resample_chunk(taken);
                    taken += CHUNK;
                    ready += self.drain_into(&mut out[ready..]);
                }
                self.pending.copy_within(taken..self.filled, 0);
                self.filled -= taken;
            }
            let missing = &mut out[ready..];
            self.underruns += missing.len() as u64;
            missing.fill(0.0);
        }
        self.align.process(out);
        if self.player.sounding() {
            self.silent_for = 0;
        } else {
            self.silent_for += out.len() as u64;
            if self.silent_for as f64 > IDLE_AFTER_S * self.host_rate as f64 {
                self.reset();
            }
        }
    }

    /// Resamples the piece of `pending` from `start` into the queue.
    fn resample_chunk(&mut self, start: usize) {
        let Some(resampler) = &mut self.resampler else {
            return;
        };
        let most = self.resampled.len();
        let written = match (
            InterleavedSlice::new(&self.pending[start..start + CHUNK], 1, CHUNK),
            InterleavedSlice::new_mut(&mut self.resampled[..], 1, most),
        ) {
            (Ok(input), Ok(mut output)) => resampler
                .process_into_buffer(&input, &mut output, None)
                .map_or(0, |(_, written)| written),
            // NOTE: both buffers are sized for these shapes in `new`.
            _ => 0,
        };
        for i in 0..written {
            let x = self.resampled[i];
            self.push(x);
        }
    }

    fn push(&mut self, x: f32) {
        let capacity = self.queue.len();
        if self.queue_len < capacity {
            self.queue[(self.queue_start + self.queue_len) % capacity] = x;
            self.queue_len += 1;
        }
    }

    /// Moves as many queued samples as are ready into the start of `out`; how many.
    fn drain_into(&mut self, out: &mut [f32]) -> usize {
        let n = self.queue_len.min(out.len());
        let capacity = self.queue.len();
        for x in &mut out[..n] {
            *x = self.queue[self.queue_start];
            self.queue_start = (self.queue_start + 1) % capacity;
        }
        self.queue_len -= n;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assets::FIDDLE_VOICE;
    use crate::voice::resample::resample;

    fn fiddle() -> VoiceFile {
        VoiceFile::parse(FIDDLE_VOICE).unwrap()
    }

    /// A phrase as (host sample, key, velocity: `None` releases).
    type Phrase = [(u64, u8, Option<u8>)];

    const PHRASE: &Phrase = &[
        (100, 69, Some(100)),
        (9_000, 69, None),
        (9_000, 72, Some(80)),
        (14_000, 76, Some(90)),
        (20_000, 72, None),
        (24_000, 76, None),
    ];

    /// Renders `phrase` through `stream` in blocks of the given sizes (cycled), `total` samples.
    fn play(stream: &mut VoiceStream, phrase: &Phrase, blocks: &[usize], total: usize) -> Vec<f32> {
        let mut out = vec![0.0; total];
        let (mut at, mut next, mut b) = (0usize, 0usize, 0usize);
        while at < total {
            let end = (at + blocks[b % blocks.len()]).min(total);
            b += 1;
            let mut from = at;
            while next < phrase.len() && (phrase[next].0 as usize) < end {
                let (time, key, velocity) = phrase[next];
                stream.render(&mut out[from..time as usize]);
                from = time as usize;
                match velocity {
                    Some(v) => stream.note_on(key, v),
                    None => stream.note_off(key),
                }
                next += 1;
            }
            stream.render(&mut out[from..end]);
            at = end;
        }
        out
    }

    /// At 48 kHz the stream is the voice's own render, resampled, `latency()` samples late.
    #[test]
    fn the_stream_is_the_voice_resampled_and_delayed_by_its_latency() {
        let file = fiddle();
        let mut stream = VoiceStream::new(&file, 48_000.0);
        let latency = stream.latency();
        assert!(latency > 0 && latency < 240, "{latency} samples");
        let streamed = play(&mut stream, PHRASE, &[512], 40_000);
        let voice_phrase: Vec<_> = PHRASE.iter().map(|&(t, k, v)| (t / 2, k, v)).collect();
        let mut own = VoiceStream::new(&file, 24_000.0);
        assert_eq!(own.latency(), 0);
        let at_voice_rate = play(&mut own, &voice_phrase, &[64], 20_000);
        let offline = resample(&at_voice_rate, 24_000, 48_000).unwrap();
        let peak = offline.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert!(peak > 0.05, "the phrase sounds ({peak})");
        // rubato's figure for its delay may be a sample off its filter's centre.
        let worst = |lag: usize| {
            (0..offline.len() - lag)
                .map(|t| (streamed[t + lag] - offline[t]).abs())
                .fold(0.0f32, f32::max)
        };
        let best = (latency - 1..=latency + 1)
            .map(worst)
            .fold(f32::MAX, f32::min);
        assert!(best < 0.03 * peak, "worst difference {best} of peak {peak}");
        assert!(streamed[..latency - 1].iter().all(|&x| x == 0.0));
        assert_eq!(stream.underruns(), 0);
    }

    /// Whatever blocks the host asks for, at any rate, the same notes give the same samples,
    /// and the queue never runs dry.
    #[test]
    fn block_sizes_do_not_change_a_sample_at_any_rate() {
        let file = fiddle();
        for rate in [44_100.0, 96_000.0, 22_050.0, 24_000.0] {
            let mut even = VoiceStream::new(&file, rate);
            let reference = play(&mut even, PHRASE, &[64], 16_000);
            let mut stream = VoiceStream::new(&file, rate);
            let uneven = play(&mut stream, PHRASE, &[1, 511, 17, 4096, 3, 128, 33], 16_000);
            assert_eq!(even.underruns(), 0, "{rate} Hz");
            let first = reference.iter().zip(&uneven).position(|(a, b)| a != b);
            assert!(
                reference == uneven,
                "{rate} Hz: first difference at {first:?}"
            );
            assert_eq!(stream.underruns(), 0, "{rate} Hz");
            assert!(
                reference.iter().any(|&x| x.abs() > 0.01),
                "{rate} Hz sounds"
            );
        }
    }

    /// Lined up with a longer latency, a stream plays the same samples that much later, in any
    /// blocks, at the voice's own rate too (where it has no latency of its own); a latency
    /// shorter than its own leaves it as it is.
    #[test]
    fn a_stream_lined_up_on_a_longer_latency_plays_the_same_samples_later() {
        let file = fiddle();
        for rate in [48_000.0, 24_000.0] {
            let mut own = VoiceStream::new(&file, rate);
            let reference = play(&mut own, PHRASE, &[64], 20_000);
            let mut lined_up = VoiceStream::new(&file, rate);
            lined_up.set_latency(lined_up.own_latency() + 100);
            assert_eq!(lined_up.latency(), own.latency() + 100, "{rate} Hz");
            let later = play(&mut lined_up, PHRASE, &[1, 511, 17, 96], 20_000);
            assert!(later[..100].iter().all(|&x| x == 0.0), "{rate} Hz");
            assert!(later[100..] == reference[..20_000 - 100], "{rate} Hz");
            lined_up.set_latency(0);
            assert_eq!(lined_up.latency(), own.latency(), "{rate} Hz");
        }
    }

    /// After its release a voice stops rendering, outputs exact silence, and its next note
    /// sounds as from a fresh stream.
    #[test]
    fn a_silent_voice_idles_and_wakes_fresh() {
        let file = fiddle();
        let mut stream = VoiceStream::new(&file, 44_100.0);
        let phrase = [(0, 64, Some(90)), (4_000, 64, None)];
        let first = play(&mut stream, &phrase, &[256], 30_000);
        assert!(!stream.active(), "idle 0.25 s after the release has faded");
        assert!(first[first.len() - 256..].iter().all(|&x| x == 0.0));
        let again = play(&mut stream, &phrase, &[256], 30_000);
        assert!(first == again);
    }

    #[test]
    fn rendering_allocates_nothing() {
        let file = fiddle();
        let mut stream = VoiceStream::new(&file, 44_100.0);
        let mut out = vec![0.0; 1024];
        nice_assert_no_alloc::assert_no_alloc(|| {
            stream.note_on(60, 100);
            stream.render(&mut out[..300]);
            stream.note_on(62, 100);
            stream.render(&mut out[300..]);
            stream.release();
            stream.render(&mut out);
            stream.reset();
        });
        assert!(out.iter().any(|&x| x != 0.0));
    }
}
