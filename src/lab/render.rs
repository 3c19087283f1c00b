//! Render a phrase and WaveJam's answer without a DAW, through the real plugin and the
//! in-process [`Host`] (the `wavejam render` demo).

use crate::lab::host::{Host, RecordedNote};
use crate::music::Note;
use crate::params::VoiceChoice;

/// What to render.
#[derive(Debug, Clone)]
pub struct RenderSetup {
    /// The player's phrase, beats from its first note.
    pub phrase: Vec<Note>,
    pub tempo_bpm: f64,
    pub sample_rate_hz: f32,
    pub block_size: usize,
    pub seed: u32,
    pub temperature: f32,
    pub answer_bars: u32,
    /// The instrument the phrase (thru) and the answer sound on.
    pub voice: VoiceChoice,
}

/// Longest phrase [`render`] plays, in beats from its first note (64 bars of 4/4): a phrase to
/// answer is far shorter, and the render's audio grows with it (a prompt file's stray note
/// hours in would fill the memory).
pub const MAX_PHRASE_BEATS: f64 = 256.0;

impl RenderSetup {
    /// An error saying why this setup cannot be rendered: a sample rate outside
    /// [`RENDER_RATES_HZ`](crate::lab::voice_render::RENDER_RATES_HZ), or a phrase longer than
    /// [`MAX_PHRASE_BEATS`].
    pub fn check(&self) -> Result<(), String> {
        crate::lab::voice_render::check_render_rate(self.sample_rate_hz as u32)?;
        let end = self.phrase.iter().map(Note::end_beats).fold(0.0, f64::max);
        if end > MAX_PHRASE_BEATS {
            return Err(format!(
                "a phrase lasting {end:.0} beats (at most {MAX_PHRASE_BEATS})"
            ));
        }
        Ok(())
    }
}

/// The result of a render.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The answer, beats from its first grid point.
    pub answer: Vec<Note>,
    /// Beat where the answer started.
    pub answer_start_beat: f64,
    /// Stereo audio of the phrase (played through WaveJam's voice) and the answer.
    pub audio: [Vec<f32>; 2],
    pub sample_rate_hz: f32,
}

/// A two-bar phrase in D major, a jig-like figure with repeated motifs for the engine to learn.
pub fn demo_phrase() -> Vec<Note> {
    let figure: [(u8, f64, f64); 12] = [
        (62, 0.0, 0.5),
        (66, 0.5, 0.5),
        (69, 1.0, 1.0),
        (66, 2.0, 0.5),
        (69, 2.5, 0.5),
        (74, 3.0, 1.0),
        (73, 4.0, 0.5),
        (71, 4.5, 0.5),
        (69, 5.0, 1.0),
        (66, 6.0, 0.5),
        (64, 6.5, 0.5),
        (62, 7.0, 0.75),
    ];
    figure
        .iter()
        .map(|&(pitch, onset, duration)| Note {
            pitch,
            velocity: if onset.fract() == 0.0 { 100 } else { 80 },
            onset_beats: onset,
            duration_beats: duration * 0.9,
        })
        .collect()
}

impl Default for RenderSetup {
    fn default() -> Self {
        Self {
            phrase: demo_phrase(),
            tempo_bpm: 120.0,
            sample_rate_hz: 48_000.0,
            block_size: 512,
            seed: 1,
            temperature: 1.0,
            answer_bars: 2,
            voice: VoiceChoice::Synth,
        }
    }
}

/// Notes from recorded note events at or after absolute sample `from` (beats relative to the
/// first note-on there).
pub fn notes_from_events(events: &[RecordedNote], from: u64, samples_per_beat: f64) -> Vec<Note> {
    let mut open: Vec<(u8, u8, u64, u8)> = Vec::new();
    let mut notes = Vec::new();
    for e in events.iter().filter(|e| e.sample >= from) {
        match e.velocity {
            Some(v) => open.push((
                e.channel,
                e.key,
                e.sample,
                (v * 127.0).round().clamp(1.0, 127.0) as u8,
            )),
            None => {
                if let Some(i) = open.iter().position(|o| o.0 == e.channel && o.1 == e.key) {
                    let (_, key, start, velocity) = open.remove(i);
                    notes.push((start, e.sample, key, velocity));
                }
            }
        }
    }
    notes.sort();
    let Some(first) = notes.first().map(|n| n.0) else {
        return Vec::new();
    };
    notes
        .into_iter()
        .map(|(start, end, pitch, velocity)| Note {
            pitch,
            velocity,
            onset_beats: (start - first) as f64 / samples_per_beat,
            duration_beats: (end - start) as f64 / samples_per_beat,
        })
        .collect()
}

/// Render: the phrase starts on bar 1, the transport plays at `tempo_bpm`, the host bounces
/// offline (so the answer is the same as played live with the same seed).
pub fn render(setup: &RenderSetup) -> Rendered {
    let mut host = Host::new(setup.sample_rate_hz, setup.block_size, true);
    host.transport.tempo_bpm = setup.tempo_bpm;
    host.set_param("seed", setup.seed as f32);
    host.set_param("temperature", setup.temperature);
    host.set_param("answer_bars", setup.answer_bars as f32);
    host.set_param("voice", setup.voice as i32 as f32);
    host.play_phrase(0.0, &setup.phrase);
    let phrase_end = setup.phrase.iter().map(Note::end_beats).fold(0.0, f64::max);
    let from = (phrase_end * host.samples_per_beat()).ceil() as u64 + 1;
    // Wait (≤ 8 beats) + grid (≤ 1 bar) + answer + release tail.
    let end_beat = phrase_end + 8.0 + 4.0 + setup.answer_bars as f64 * 4.0 + 2.0;
    host.run_until_beat(end_beat, setup.block_size);
    let spb = host.samples_per_beat();
    let answer = notes_from_events(&host.notes, from, spb);
    let answer_start_sample = host
        .notes
        .iter()
        .find(|n| n.sample >= from && n.velocity.is_some())
        .map_or(0, |n| n.sample);
    // A host takes the latency the plugin reports off what it bounces (its voice runs that far
    // behind the notes), so the audio lines up with the notes.
    let latency = host
        .plugin
        .status()
        .voice_slot
        .latency_samples
        .load(std::sync::atomic::Ordering::Relaxed) as usize;
    let audio = std::mem::take(&mut host.audio).map(|mut channel| {
        channel.drain(..latency.min(channel.len()));
        channel
    });
    Rendered {
        answer,
        answer_start_beat: answer_start_sample as f64 / spb,
        audio,
        sample_rate_hz: setup.sample_rate_hz,
    }
}

/// How a WAV file stores its samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WavFormat {
    /// 32-bit float: exactly what was rendered.
    Float32,
    /// 16-bit integer (half the size; samples beyond full scale clip).
    Pcm16,
}

/// Write a WAV of `channels` (one slice each, interleaved in the file; as long as the
/// shortest), e.g. `&[&left, &right]` for stereo or `&[&mono]`.
pub fn write_wav(
    path: &std::path::Path,
    channels: &[&[f32]],
    sample_rate_hz: f32,
    format: WavFormat,
) -> Result<(), hound::Error> {
    let (bits_per_sample, sample_format) = match format {
        WavFormat::Float32 => (32, hound::SampleFormat::Float),
        WavFormat::Pcm16 => (16, hound::SampleFormat::Int),
    };
    let spec = hound::WavSpec {
        channels: channels.len() as u16,
        sample_rate: sample_rate_hz as u32,
        bits_per_sample,
        sample_format,
    };
    let frames = channels.iter().map(|c| c.len()).min().unwrap_or(0);
    let mut writer = hound::WavWriter::create(path, spec)?;
    for i in 0..frames {
        for channel in channels {
            match format {
                WavFormat::Float32 => writer.write_sample(channel[i])?,
                WavFormat::Pcm16 => writer
                    .write_sample((channel[i].clamp(-1.0, 1.0) * f32::from(i16::MAX)) as i16)?,
            }
        }
    }
    writer.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A prompt whose stray note lies hours in, or a sample rate of 0, is refused before
    /// anything is rendered (it would fill the memory, or write an empty file).
    #[test]
    fn setups_that_cannot_render_are_refused_with_the_reason() {
        let good = RenderSetup::default();
        assert_eq!(good.check(), Ok(()));
        let mut stray = demo_phrase();
        stray.push(Note {
            onset_beats: 65_000.0,
            ..stray[0]
        });
        let long = RenderSetup {
            phrase: stray,
            ..good.clone()
        };
        let error = long.check().unwrap_err();
        assert!(error.contains("beats (at most 256)"), "{error}");
        let silent = RenderSetup {
            sample_rate_hz: 0.0,
            ..good
        };
        assert!(silent.check().unwrap_err().contains("0 Hz"));
    }

    #[test]
    fn the_demo_answers_audibly_and_reproducibly() {
        let setup = RenderSetup {
            block_size: 1024,
            ..RenderSetup::default()
        };
        let a = render(&setup);
        assert!(!a.answer.is_empty(), "no answer");
        assert!(a.answer.iter().all(|n| n.end_beats() <= 8.0 + 1e-6));
        let peak = a.audio[0].iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert!(a.audio[0].iter().all(|x| x.is_finite()));
        assert!(peak > 0.01 && peak < 2.0, "peak {peak}");
        let start = (a.answer_start_beat * 24_000.0) as usize;
        let answer_energy: f32 = a.audio[0][start..].iter().map(|x| x * x).sum();
        assert!(answer_energy > 1.0, "answer inaudible");
        let b = render(&RenderSetup {
            block_size: 97,
            ..setup.clone()
        });
        assert_eq!(
            a.answer, b.answer,
            "offline answer depends on the block size"
        );
        let differs = (2..6).any(|seed| {
            render(&RenderSetup {
                seed,
                ..setup.clone()
            })
            .answer
                != a.answer
        });
        assert!(differs, "the seed does not matter");
    }
}
