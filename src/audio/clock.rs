//! The musical clock: turns the host transport into beat positions for every block, and keeps an
//! internal clock running at the host tempo (or 120 BPM) while the transport is stopped, so WaveJam
//! still answers when the host is not playing.

/// Tempo used when the host reports none, in BPM.
pub const DEFAULT_TEMPO_BPM: f64 = 120.0;
/// A playing transport whose position differs from the expected one by more than this many beats
/// is a jump (loop, locate). Hosts round positions to their tick grid (Ardour: 1/1920 beat), so
/// exact comparison would see a jump on every block.
pub const JUMP_TOLERANCE_BEATS: f64 = 1.0 / 64.0;

/// What the host told us about time for one block (all optional, as hosts differ).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct HostTime {
    pub playing: bool,
    pub tempo_bpm: Option<f64>,
    /// Position of the block's first sample in beats (quarter notes).
    pub pos_beats: Option<f64>,
    /// Time signature as (numerator, denominator).
    pub time_signature: Option<(i32, i32)>,
    /// Beat of the bar line at or before `pos_beats` (hosts know it where the meter changed
    /// earlier in the song; nice-plug works it out from the signature otherwise).
    pub bar_start_beats: Option<f64>,
    /// Number of the bar starting at `bar_start_beats`, 0 for the song's first.
    pub bar_number: Option<i32>,
}

/// How this block's timeline relates to the previous block's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Continuity {
    /// The timeline simply continues.
    Continuous,
    /// The transport started playing (the host position takes over).
    Started,
    /// The transport stopped (the internal clock takes over from the last position).
    Stopped,
    /// The playing transport jumped (loop or locate).
    Jumped,
}

/// The musical timeline of one block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockTime {
    /// Beat of the block's first sample.
    pub start_beat: f64,
    /// Beats advanced per sample (tempo / 60 / sample rate).
    pub beats_per_sample: f64,
    /// Block length in samples.
    pub samples: usize,
    pub tempo_bpm: f64,
    /// Bar length in beats (4 in 4/4, 3 in 6/8).
    pub bar_beats: f64,
    /// A bar line, in beats: the bars of `bar_beats` run from it (the host's latest bar start;
    /// kept while the transport is stopped).
    pub bar_origin_beat: f64,
    /// The number of the bar starting at `bar_origin_beat`, 0 for the song's first.
    pub bar_origin_number: i64,
    pub playing: bool,
    pub continuity: Continuity,
}

impl BlockTime {
    /// Beat at sample `offset` of the block.
    pub fn beat_at(&self, offset: usize) -> f64 {
        self.start_beat + offset as f64 * self.beats_per_sample
    }

    /// Beat just after the block's last sample (the next block's start when nothing jumps).
    pub fn end_beat(&self) -> f64 {
        self.beat_at(self.samples)
    }

    /// Sample offset of `beat`, rounded to the nearest sample; beats before the block map to 0.
    /// A beat belongs to this block when the result is `< samples`; the rounding is consistent
    /// across block boundaries, so an event is placed exactly once.
    pub fn offset_of(&self, beat: f64) -> usize {
        let exact = (beat - self.start_beat) / self.beats_per_sample;
        if exact <= 0.0 {
            0
        } else {
            // NOTE: saturating float→int cast; a far-future beat maps past the block end.
            exact.round() as usize
        }
    }

    /// Whether `beat` falls inside this block.
    pub fn contains(&self, beat: f64) -> bool {
        self.offset_of(beat) < self.samples
    }
}

/// First grid point at or after `beat`, for a grid of `step_beats` through `origin_beat` (a
/// bar line). Beats within a microbeat of a grid point count as on it.
pub fn next_grid_point(beat: f64, step_beats: f64, origin_beat: f64) -> f64 {
    const ON_GRID_EPSILON_BEATS: f64 = 1e-6;
    origin_beat + ((beat - origin_beat - ON_GRID_EPSILON_BEATS) / step_beats).ceil() * step_beats
}

/// Tracks the timeline across blocks.
#[derive(Debug, Clone)]
pub struct Clock {
    sample_rate_hz: f64,
    /// Beat where the next block is expected to start.
    next_beat: f64,
    /// Last tempo seen from the host, in BPM.
    tempo_bpm: f64,
    /// Whether the previous block was driven by a playing transport.
    was_playing: bool,
    /// The last bar line the host reported, in beats (0 until it reports one), and its bar's
    /// number.
    bar_origin_beat: f64,
    bar_origin_number: i64,
}

impl Clock {
    pub fn new(sample_rate_hz: f32) -> Self {
        Self {
            sample_rate_hz: sample_rate_hz as f64,
            next_beat: 0.0,
            tempo_bpm: DEFAULT_TEMPO_BPM,
            was_playing: false,
            bar_origin_beat: 0.0,
            bar_origin_number: 0,
        }
    }

    /// A new sample rate (the host re-activated): the timeline goes on where it was.
    pub fn set_sample_rate(&mut self, sample_rate_hz: f32) {
        self.sample_rate_hz = sample_rate_hz as f64;
    }

    /// The internal clock starts again from beat 0 if it is running (transport stopped); a
    /// playing host's position is kept.
    pub fn restart_internal(&mut self) {
        if !self.was_playing {
            self.next_beat = 0.0;
        }
    }

    /// Beat where the next block starts if nothing jumps.
    pub fn next_beat(&self) -> f64 {
        self.next_beat
    }

    /// The timeline of a block of `samples` samples given what the host reports.
    pub fn advance(&mut self, host: &HostTime, samples: usize) -> BlockTime {
        if let Some(tempo) = host.tempo_bpm.filter(|t| t.is_finite() && *t > 0.0) {
            self.tempo_bpm = tempo.clamp(10.0, 1000.0);
        }
        let bar_beats = match host.time_signature {
            Some((num, den)) if num > 0 && den > 0 => num as f64 * 4.0 / den as f64,
            _ => 4.0,
        };
        let host_pos = host.pos_beats.filter(|p| p.is_finite());
        let (start_beat, playing, continuity) = match (host.playing, host_pos) {
            (true, Some(pos)) => {
                let continuity = if !self.was_playing {
                    Continuity::Started
                } else if (pos - self.next_beat).abs() > JUMP_TOLERANCE_BEATS {
                    Continuity::Jumped
                } else {
                    Continuity::Continuous
                };
                (pos, true, continuity)
            }
            _ => {
                let continuity = if self.was_playing {
                    Continuity::Stopped
                } else {
                    Continuity::Continuous
                };
                (self.next_beat, false, continuity)
            }
        };
        if let Some(bar_start) = host.bar_start_beats.filter(|b| b.is_finite() && playing) {
            self.bar_origin_beat = bar_start;
            self.bar_origin_number = host
                .bar_number
                .map_or((bar_start / bar_beats).round() as i64, i64::from);
        }
        let beats_per_sample = self.tempo_bpm / 60.0 / self.sample_rate_hz;
        self.was_playing = playing;
        self.next_beat = start_beat + samples as f64 * beats_per_sample;
        BlockTime {
            start_beat,
            beats_per_sample,
            samples,
            tempo_bpm: self.tempo_bpm,
            bar_beats,
            bar_origin_beat: self.bar_origin_beat,
            bar_origin_number: self.bar_origin_number,
            playing,
            continuity,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn playing_at(pos: f64, tempo: f64) -> HostTime {
        HostTime {
            playing: true,
            tempo_bpm: Some(tempo),
            pos_beats: Some(pos),
            time_signature: Some((4, 4)),
            bar_start_beats: None,
            bar_number: None,
        }
    }

    #[test]
    fn beats_and_samples_convert_both_ways() {
        let mut clock = Clock::new(48_000.0);
        let t = clock.advance(&playing_at(8.0, 120.0), 512);
        // 120 BPM at 48 kHz: 24 000 samples per beat.
        assert!((t.beats_per_sample - 1.0 / 24_000.0).abs() < 1e-15);
        assert_eq!(t.offset_of(8.0 + 100.0 / 24_000.0), 100);
        assert!((t.beat_at(100) - (8.0 + 100.0 / 24_000.0)).abs() < 1e-12);
        assert!(t.contains(t.beat_at(511)));
        assert!(!t.contains(t.end_beat()));
        assert_eq!(t.offset_of(7.0), 0, "late events land at the block start");
    }

    #[test]
    fn an_event_is_placed_in_exactly_one_block_at_any_block_size() {
        for block in [1usize, 7, 32, 100, 4096] {
            let mut clock = Clock::new(44_100.0);
            let event_beat = 1.234_567;
            let mut hits = Vec::new();
            let mut pos = 0.0;
            for _ in 0..(3 * 44_100 / block + 2) {
                let t = clock.advance(&playing_at(pos, 90.0), block);
                // Past beats clamp to offset 0, so a block owns a beat from half a sample before it.
                if t.contains(event_beat) && event_beat >= t.start_beat - 0.5 * t.beats_per_sample {
                    hits.push(t.start_beat + t.offset_of(event_beat) as f64 * t.beats_per_sample);
                }
                pos = t.end_beat();
            }
            assert_eq!(hits.len(), 1, "block size {block}");
            assert!((hits[0] - event_beat).abs() <= 0.5 * 90.0 / 60.0 / 44_100.0 + 1e-12);
        }
    }

    #[test]
    fn tempo_changes_follow_the_host() {
        let mut clock = Clock::new(48_000.0);
        let a = clock.advance(&playing_at(0.0, 120.0), 480);
        let b = clock.advance(&playing_at(a.end_beat(), 60.0), 480);
        assert_eq!(b.continuity, Continuity::Continuous);
        assert!((b.beats_per_sample * 2.0 - a.beats_per_sample).abs() < 1e-15);
        assert!((b.end_beat() - a.end_beat() - 480.0 / 48_000.0).abs() < 1e-12);
    }

    #[test]
    fn loops_and_locates_are_jumps_but_host_tick_rounding_is_not() {
        let mut clock = Clock::new(48_000.0);
        let first = clock.advance(&playing_at(15.9, 120.0), 4800);
        assert_eq!(first.continuity, Continuity::Started);
        // Ardour-style rounding to 1/1920 beat: continuous.
        let rounded = clock.advance(&playing_at(first.end_beat() + 1.0 / 1920.0, 120.0), 4800);
        assert_eq!(rounded.continuity, Continuity::Continuous);
        // Loop back to bar 1.
        let looped = clock.advance(&playing_at(0.0, 120.0), 4800);
        assert_eq!(looped.continuity, Continuity::Jumped);
        assert_eq!(looped.start_beat, 0.0);
    }

    #[test]
    fn stopped_transport_runs_an_internal_clock_from_the_last_position() {
        let mut clock = Clock::new(48_000.0);
        let playing = clock.advance(&playing_at(4.0, 120.0), 24_000);
        let stopped_host = HostTime {
            playing: false,
            tempo_bpm: Some(120.0),
            pos_beats: Some(4.0),
            time_signature: Some((4, 4)),
            bar_start_beats: None,
            bar_number: None,
        };
        let stop = clock.advance(&stopped_host, 24_000);
        assert_eq!(stop.continuity, Continuity::Stopped);
        assert_eq!(stop.start_beat, playing.end_beat());
        let next = clock.advance(&stopped_host, 24_000);
        assert_eq!(next.continuity, Continuity::Continuous);
        assert!(
            (next.start_beat - 6.0).abs() < 1e-12,
            "internal clock keeps counting"
        );
    }

    #[test]
    fn no_transport_at_all_runs_at_120_bpm() {
        let mut clock = Clock::new(44_100.0);
        let t = clock.advance(&HostTime::default(), 44_100);
        assert!(!t.playing);
        assert!((t.end_beat() - 2.0).abs() < 1e-12);
        assert_eq!(t.bar_beats, 4.0);
    }

    #[test]
    fn meters_set_the_bar_length() {
        let mut clock = Clock::new(48_000.0);
        let host = HostTime {
            time_signature: Some((6, 8)),
            ..playing_at(0.0, 120.0)
        };
        assert_eq!(clock.advance(&host, 64).bar_beats, 3.0);
    }

    #[test]
    fn grid_points_round_up_and_keep_exact_points() {
        assert_eq!(next_grid_point(4.0, 1.0, 0.0), 4.0);
        assert_eq!(next_grid_point(4.000_000_1, 1.0, 0.0), 4.0);
        assert_eq!(next_grid_point(4.01, 1.0, 0.0), 5.0);
        assert_eq!(next_grid_point(4.01, 0.25, 0.0), 4.25);
        assert_eq!(next_grid_point(5.0, 4.0, 0.0), 8.0);
        assert_eq!(next_grid_point(-0.5, 1.0, 0.0), 0.0);
        // Bars from beat 2 (after a 2/4 bar): the next bar line after 5 is 6, after 6.5 is 10.
        assert_eq!(next_grid_point(5.0, 4.0, 2.0), 6.0);
        assert_eq!(next_grid_point(6.5, 4.0, 2.0), 10.0);
        assert_eq!(next_grid_point(6.5, 4.0, 10.0), 10.0);
        // A 5/8 bar is 2.5 beats: its beats are on half beats from a bar line at 2.5.
        assert_eq!(next_grid_point(3.2, 1.0, 2.5), 3.5);
    }

    #[test]
    fn bar_lines_follow_the_host_and_stay_while_stopped() {
        let mut clock = Clock::new(48_000.0);
        assert_eq!(
            clock.advance(&playing_at(5.0, 120.0), 64).bar_origin_beat,
            0.0
        );
        let after_pickup = HostTime {
            bar_start_beats: Some(2.0),
            bar_number: Some(1),
            ..playing_at(5.0, 120.0)
        };
        let t = clock.advance(&after_pickup, 64);
        assert_eq!((t.bar_origin_beat, t.bar_origin_number), (2.0, 1));
        let unnumbered = HostTime {
            bar_start_beats: Some(8.0),
            ..playing_at(9.0, 120.0)
        };
        let t = clock.advance(&unnumbered, 64);
        assert_eq!((t.bar_origin_beat, t.bar_origin_number), (8.0, 2));
        clock.advance(&after_pickup, 64);
        let stopped = HostTime {
            bar_start_beats: Some(0.0),
            ..HostTime::default()
        };
        assert_eq!(clock.advance(&stopped, 64).bar_origin_beat, 2.0);
        let nonsense = HostTime {
            bar_start_beats: Some(f64::NAN),
            ..playing_at(5.0, 120.0)
        };
        assert_eq!(clock.advance(&nonsense, 64).bar_origin_beat, 2.0);
    }
}
