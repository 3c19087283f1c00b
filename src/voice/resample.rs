//! Sample-rate conversion of whole recordings (rubato's FFT resampler): a recording at the
//! player's rate becomes training audio at the voice's rate, a render at the voice's rate
//! becomes a file at the rate asked for.

use audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

/// Frames the resampler takes at a time (its latency is trimmed by `process_all`).
const CHUNK: usize = 1024;

/// `samples` (mono) at `from` Hz, resampled to `to` Hz: the same duration, band-limited below
/// the lower rate's Nyquist frequency, no delay. Returns the input unchanged when the rates
/// are equal.
///
/// # Errors
/// A rate of 0 or one rubato cannot convert between.
pub fn resample(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>, String> {
    if from == to {
        return Ok(samples.to_vec());
    }
    if samples.is_empty() {
        return Ok(Vec::new());
    }
    let mut resampler = Fft::<f32>::new(from as usize, to as usize, CHUNK, 1, FixedSync::Input)
        .map_err(|e| format!("cannot resample {from} Hz to {to} Hz: {e}"))?;
    let input = InterleavedSlice::new(samples, 1, samples.len()).map_err(|e| e.to_string())?;
    let output = resampler
        .process_all(&input, samples.len(), None)
        .map_err(|e| format!("resampling {from} Hz to {to} Hz: {e}"))?;
    Ok(output.take_data())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sine_keeps_its_frequency_level_and_timing_through_a_rate_change() {
        let sine = |rate: f64, n: usize| -> Vec<f32> {
            (0..n)
                .map(|i| (std::f64::consts::TAU * 1000.0 * i as f64 / rate).sin() as f32)
                .collect()
        };
        let input = sine(24_000.0, 24_000);
        let output = resample(&input, 24_000, 48_000).unwrap();
        assert!(
            output.len().abs_diff(48_000) <= 1,
            "{} frames",
            output.len()
        );
        let expected = sine(48_000.0, output.len());
        // Away from the edges it is the same sine, in phase (no delay).
        let worst = output[2_000..46_000]
            .iter()
            .zip(&expected[2_000..46_000])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(worst < 1e-3, "worst difference {worst}");
        assert_eq!(resample(&input, 24_000, 24_000).unwrap(), input);
    }
}
