//! Whether the host runs far ahead of the wall clock.
//!
//! Hosts render ahead of real time without saying so (anticipative processing, track freezing,
//! scripted renders; and nice-plug's VST3 wrapper hands `activate()` the process mode of the
//! host's *previous* `setupProcessing`, so a first offline render looks real-time). A host that
//! renders seconds of audio in milliseconds leaves the generator no time to answer: WaveJam then
//! behaves as in a bounce and waits, bounded, for it. A live audio device cannot get this far
//! ahead: it would have to buffer a large part of [`WINDOW_SECONDS`] of audio.

use std::time::Instant;

/// Audio time over which the pace is measured, in seconds.
pub const WINDOW_SECONDS: f64 = 0.5;
/// Audio advancing this many times faster than the wall clock over a window is running ahead.
pub const AHEAD_RATIO: f64 = 4.0;
/// Once ahead, the host is back in real time when the ratio falls below this (hysteresis).
pub const REAL_TIME_RATIO: f64 = 2.0;

/// Measures audio time against wall time over windows of [`WINDOW_SECONDS`].
#[derive(Debug, Clone)]
pub struct Pace {
    sample_rate_hz: f64,
    /// Wall time at the start of the window's first block.
    window_start: Option<Instant>,
    /// Samples processed in the window so far.
    window_samples: u64,
    ahead: bool,
}

impl Pace {
    pub fn new(sample_rate_hz: f32) -> Self {
        Self {
            sample_rate_hz: f64::from(sample_rate_hz).max(1.0),
            window_start: None,
            window_samples: 0,
            ahead: false,
        }
    }

    /// A block of `samples` starts at wall time `now`; returns whether the host runs ahead.
    pub fn block(&mut self, now: Instant, samples: usize) -> bool {
        let start = *self.window_start.get_or_insert(now);
        let audio_seconds = self.window_samples as f64 / self.sample_rate_hz;
        if audio_seconds >= WINDOW_SECONDS {
            let wall_seconds = now.saturating_duration_since(start).as_secs_f64();
            let ratio = audio_seconds / wall_seconds.max(1e-9);
            self.ahead = ratio
                > if self.ahead {
                    REAL_TIME_RATIO
                } else {
                    AHEAD_RATIO
                };
            self.window_start = Some(now);
            self.window_samples = 0;
        }
        self.window_samples += samples as u64;
        self.ahead
    }

    /// Processing restarted: the next window starts afresh (the gap is not audio time).
    pub fn restart(&mut self) {
        self.window_start = None;
        self.window_samples = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Runs `blocks` blocks of 512 samples at 48 kHz, `wall` apart; returns the last verdict.
    fn run(pace: &mut Pace, from: Instant, blocks: u32, wall: Duration) -> (bool, Instant) {
        let mut now = from;
        let mut ahead = false;
        for _ in 0..blocks {
            ahead = pace.block(now, 512);
            now += wall;
        }
        (ahead, now)
    }

    #[test]
    fn real_time_is_not_ahead_and_a_fast_render_is() {
        let block = Duration::from_secs_f64(512.0 / 48_000.0);
        let mut pace = Pace::new(48_000.0);
        let (ahead, now) = run(&mut pace, Instant::now(), 200, block);
        assert!(!ahead, "a host paced at the audio rate");
        // Three times faster than real time is still not "far ahead".
        let (ahead, now) = run(&mut pace, now, 200, block / 3);
        assert!(!ahead);
        let (ahead, now) = run(&mut pace, now, 200, block / 100);
        assert!(ahead, "a host 100 times faster than real time");
        // Back to real time: no longer ahead after a window.
        let (ahead, _) = run(&mut pace, now, 200, block);
        assert!(!ahead);
    }

    #[test]
    fn a_burst_shorter_than_the_window_is_not_ahead() {
        let block = Duration::from_secs_f64(512.0 / 48_000.0);
        let mut pace = Pace::new(48_000.0);
        let (_, now) = run(&mut pace, Instant::now(), 100, block);
        // A host that renders 0.1 s of audio in one go, then waits, as live hosts do.
        let (_, now) = run(&mut pace, now, 9, Duration::ZERO);
        let (ahead, _) = run(&mut pace, now + block * 9, 100, block);
        assert!(!ahead);
    }
}
