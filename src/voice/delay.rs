//! A delay line, to line WaveJam's voices up on one latency: the synth (no latency of its own)
//! and a neural voice whose stream runs behind by less than another's are delayed to the
//! longest, so a change of voice never changes the latency reported to the host (which would
//! have it restart the plugin and cut the notes). Allocated once; [`Delay::process`] never
//! allocates.

/// The longest delay a line is made for, seconds: more than any voice stream runs behind
/// (at most 8.1 ms: a voice at 8 kHz resampled for a host at 768 kHz).
pub const MOST_DELAY_S: f64 = 0.025;

/// One channel's delay line.
#[derive(Debug, Clone)]
pub struct Delay {
    /// The last `ring.len()` samples in, `at` the next to be written.
    ring: Box<[f32]>,
    at: usize,
    /// Samples of delay, less than `ring.len()`.
    delay: usize,
}

impl Delay {
    /// A silent line for up to [`MOST_DELAY_S`] at `rate_hz` (not a positive number: 48 kHz),
    /// delaying by nothing until [`set_delay`](Self::set_delay). Allocates.
    pub fn new(rate_hz: f32) -> Self {
        let rate = if rate_hz.is_finite() && rate_hz > 0.0 {
            f64::from(rate_hz)
        } else {
            48_000.0
        };
        let most = (MOST_DELAY_S * rate).ceil() as usize;
        Self {
            ring: vec![0.0; most + 1].into_boxed_slice(),
            at: 0,
            delay: 0,
        }
    }

    /// Delays by `samples` from now on (at most [`MOST_DELAY_S`]'s worth; more is cut to it).
    /// A new delay starts from silence (the line does not keep what passed at no delay).
    pub fn set_delay(&mut self, samples: usize) {
        let delay = samples.min(self.ring.len() - 1);
        if delay != self.delay {
            self.delay = delay;
            self.clear();
        }
    }

    /// The delay, in samples.
    pub fn delay(&self) -> usize {
        self.delay
    }

    /// Replaces `samples` with what came in `delay` samples before each.
    pub fn process(&mut self, samples: &mut [f32]) {
        if self.delay == 0 {
            return;
        }
        let len = self.ring.len();
        for x in samples {
            self.ring[self.at] = *x;
            let from = if self.at >= self.delay {
                self.at - self.delay
            } else {
                self.at + len - self.delay
            };
            *x = self.ring[from];
            self.at += 1;
            if self.at == len {
                self.at = 0;
            }
        }
    }

    /// Forgets what came in: silence until new samples have come through.
    pub fn clear(&mut self) {
        self.ring.fill(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(n: usize) -> Vec<f32> {
        (1..=n).map(|i| i as f32).collect()
    }

    #[test]
    fn a_line_delays_by_its_delay_across_calls_of_any_length() {
        let mut delay = Delay::new(48_000.0);
        delay.set_delay(100);
        let input = ramp(3_000);
        let mut out = input.clone();
        for piece in out.chunks_mut(7) {
            delay.process(piece);
        }
        assert!(out[..100].iter().all(|&x| x == 0.0));
        assert_eq!(out[100..], input[..2_900]);
    }

    #[test]
    fn no_delay_passes_samples_through_and_clearing_silences_the_line() {
        let mut delay = Delay::new(48_000.0);
        let mut out = ramp(50);
        delay.process(&mut out);
        assert_eq!(out, ramp(50));
        delay.set_delay(10);
        delay.process(&mut out);
        delay.clear();
        let mut after = vec![1.0; 20];
        delay.process(&mut after);
        assert!(after[..10].iter().all(|&x| x == 0.0), "{after:?}");
        assert!(after[10..].iter().all(|&x| x == 1.0));
    }

    /// A line that passed samples through at no delay gives silence, not what it held before,
    /// once it delays again.
    #[test]
    fn a_new_delay_starts_from_silence() {
        let mut delay = Delay::new(48_000.0);
        delay.set_delay(5);
        delay.process(&mut ramp(20));
        delay.set_delay(0);
        delay.process(&mut ramp(20));
        delay.set_delay(5);
        let mut out = vec![1.0; 10];
        delay.process(&mut out);
        assert!(out[..5].iter().all(|&x| x == 0.0), "{out:?}");
    }

    #[test]
    fn a_delay_past_the_longest_is_cut_to_it() {
        let mut delay = Delay::new(48_000.0);
        delay.set_delay(1_000_000);
        assert_eq!(delay.delay(), (MOST_DELAY_S * 48_000.0).ceil() as usize);
        let mut bad_rate = Delay::new(f32::NAN);
        bad_rate.set_delay(1_000_000);
        assert_eq!(bad_rate.delay(), delay.delay());
    }
}
