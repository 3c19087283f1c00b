//! Two-pole state-variable lowpass in the topology-preserving (trapezoidal) form of Andrew
//! Simper (Cytomic). Unlike a biquad it stays stable and free of zipper noise while its cutoff
//! moves every few samples, which is what a filter envelope does.

use std::f32::consts::PI;

/// Damping `k = 1/Q` of the lowpass: Q ≈ 0.9, a gentle resonant bump at the cutoff.
const DAMPING: f32 = 1.1;

/// The SVF's gains, as `p = 2·a1 − 1`, `q = 2·a2`, `r = 2·a3` of Simper's `a1 = 1/(1 + g(g + k))`,
/// `a2 = g·a1`, `a3 = g·a2`. Folding the doublings of the trapezoidal state update into the
/// gains shortens the sample-to-sample dependency chain (about 10 instead of 16 cycles), and
/// the update stays linear in them, so the voice can ramp them per sample.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct SvfCoefficients {
    p: f32,
    q: f32,
    r: f32,
}

impl SvfCoefficients {
    /// Lowpass at `cutoff_hz` (clamped to `0.45 · sample rate`), with `sample_rate_hz` as given.
    pub(super) fn lowpass(cutoff_hz: f32, sample_rate_hz: f32) -> Self {
        let g = (PI * cutoff_hz.clamp(1.0, 0.45 * sample_rate_hz) / sample_rate_hz).tan();
        let a1 = 1.0 / (1.0 + g * (g + DAMPING));
        let a2 = g * a1;
        Self {
            p: 2.0 * a1 - 1.0,
            q: 2.0 * a2,
            r: 2.0 * g * a2,
        }
    }

    /// The per-sample increment that walks from `self` to `target` in `1 / inverse_steps` steps.
    pub(super) fn step_towards(self, target: Self, inverse_steps: f32) -> Self {
        Self {
            p: (target.p - self.p) * inverse_steps,
            q: (target.q - self.q) * inverse_steps,
            r: (target.r - self.r) * inverse_steps,
        }
    }

    /// Adds one ramp increment.
    #[inline(always)]
    pub(super) fn advance(&mut self, step: Self) {
        self.p += step.p;
        self.q += step.q;
        self.r += step.r;
    }
}

/// The two integrator states of one SVF (Simper's `ic1eq`, `ic2eq`); the coefficients are
/// passed in per sample.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Svf {
    ic1eq: f32,
    ic2eq: f32,
}

impl Svf {
    /// Filters one sample and returns the lowpass output.
    ///
    /// Simper's update `v3 = x − ic2; v1 = a1·ic1 + a2·v3; v2 = ic2 + a2·ic1 + a3·v3;
    /// ic1 = 2·v1 − ic1; ic2 = 2·v2 − ic2`, rearranged: `ic1' = p·ic1 + q·v3`,
    /// `ic2' = ic2 + q·ic1 + r·v3`, and the lowpass `v2 = (ic2 + ic2') / 2`.
    ///
    /// NOTE: a zero input would let the states decay into denormals; the voice only runs the
    /// filter while its oscillators feed it a full-scale signal, and clears it at each note.
    #[inline(always)]
    pub(super) fn lowpass(&mut self, coefficients: &SvfCoefficients, input: f32) -> f32 {
        let SvfCoefficients { p, q, r } = *coefficients;
        let (ic1, ic2) = (self.ic1eq, self.ic2eq);
        let v3 = input - ic2;
        let next_ic2 = (ic2 + q * ic1) + r * v3;
        self.ic1eq = p * ic1 + q * v3;
        self.ic2eq = next_ic2;
        0.5 * (ic2 + next_ic2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE_RATE_HZ: f32 = 48_000.0;

    /// Steady-state peak gain of the lowpass for a sine at `frequency_hz`.
    fn sine_gain(coefficients: &SvfCoefficients, frequency_hz: f32) -> f32 {
        let mut filter = Svf::default();
        let step = 2.0 * PI * frequency_hz / SAMPLE_RATE_HZ;
        let mut peak = 0.0_f32;
        for n in 0..48_000 {
            let out = filter.lowpass(coefficients, (step * n as f32).sin());
            if n >= 24_000 {
                peak = peak.max(out.abs());
            }
        }
        peak
    }

    #[test]
    fn passes_low_and_cuts_high_frequencies_at_12_db_per_octave() {
        let coefficients = SvfCoefficients::lowpass(1_000.0, SAMPLE_RATE_HZ);
        assert!((sine_gain(&coefficients, 50.0) - 1.0).abs() < 0.01);
        let at_cutoff = sine_gain(&coefficients, 1_000.0);
        assert!(
            (at_cutoff - 1.0 / DAMPING).abs() < 0.02,
            "gain at cutoff {at_cutoff}"
        );
        // Two octaves up the slope is 24 dB (0.063) below the passband, ± tolerance.
        let two_octaves_up = sine_gain(&coefficients, 4_000.0);
        assert!(
            (0.045..0.08).contains(&two_octaves_up),
            "gain {two_octaves_up}"
        );
    }

    #[test]
    fn stays_bounded_when_the_cutoff_jumps_every_few_samples() {
        let mut filter = Svf::default();
        let low = SvfCoefficients::lowpass(30.0, SAMPLE_RATE_HZ);
        let high = SvfCoefficients::lowpass(20_000.0, SAMPLE_RATE_HZ);
        let mut coefficients = low;
        let mut peak = 0.0_f32;
        for block in 0..6_000 {
            // Sweep between the extremes over 16 samples, then back, as fast as the voice can.
            let target = if block % 2 == 0 { high } else { low };
            let step = coefficients.step_towards(target, 1.0 / 16.0);
            for n in 0..16 {
                coefficients.advance(step);
                let input = if (block * 16 + n) % 37 < 18 {
                    1.0
                } else {
                    -1.0
                };
                peak = peak.max(filter.lowpass(&coefficients, input).abs());
            }
            coefficients = target;
        }
        assert!(peak.is_finite() && peak < 3.0, "peak {peak}");
    }
}
