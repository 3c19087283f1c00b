//! Spectrum and waveform measurements shared by the synth's tests (test builds only).

use std::f64::consts::PI;

/// 4-term Blackman-Harris window: sidelobes about 92 dB down, main lobe ±4 bins wide.
fn blackman_harris(len: usize) -> Vec<f64> {
    let (a0, a1, a2, a3) = (0.358_75, 0.488_29, 0.141_28, 0.011_68);
    (0..len)
        .map(|n| {
            let x = 2.0 * PI * n as f64 / (len - 1) as f64;
            a0 - a1 * x.cos() + a2 * (2.0 * x).cos() - a3 * (3.0 * x).cos()
        })
        .collect()
}

/// In-place iterative radix-2 FFT of `(re, im)`; the length must be a power of two.
fn fft(re: &mut [f64], im: &mut [f64]) {
    let len = re.len();
    assert!(
        len.is_power_of_two(),
        "FFT length {len} is not a power of two"
    );
    let mut j = 0;
    for i in 1..len {
        let mut bit = len >> 1;
        while j & bit != 0 {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
        if i < j {
            re.swap(i, j);
            im.swap(i, j);
        }
    }
    let mut size = 2;
    while size <= len {
        let angle = -2.0 * PI / size as f64;
        for start in (0..len).step_by(size) {
            for k in 0..size / 2 {
                let (w_im, w_re) = (angle * k as f64).sin_cos();
                let (a, b) = (start + k, start + k + size / 2);
                let t_re = re[b] * w_re - im[b] * w_im;
                let t_im = re[b] * w_im + im[b] * w_re;
                re[b] = re[a] - t_re;
                im[b] = im[a] - t_im;
                re[a] += t_re;
                im[a] += t_im;
            }
        }
        size *= 2;
    }
}

/// Power per FFT bin (`0..=len/2`) of the Blackman-Harris-windowed signal.
fn power_spectrum(samples: &[f32]) -> Vec<f64> {
    let window = blackman_harris(samples.len());
    let mut re: Vec<f64> = samples
        .iter()
        .zip(&window)
        .map(|(s, w)| *s as f64 * w)
        .collect();
    let mut im = vec![0.0; samples.len()];
    fft(&mut re, &mut im);
    (0..=samples.len() / 2)
        .map(|k| re[k] * re[k] + im[k] * im[k])
        .collect()
}

/// How far (dB) the energy away from every harmonic of `fundamentals_hz` lies below the energy
/// on them. A bin counts as harmonic within 6 bins (the window's main lobe plus slack) of any
/// `k·f0` below Nyquist; the lowest 6 bins (DC) are ignored. `samples.len()` must be a power of 2.
pub(super) fn harmonic_to_inharmonic_db(
    samples: &[f32],
    sample_rate_hz: f32,
    fundamentals_hz: &[f32],
) -> f64 {
    const LOBE_BINS: f64 = 6.0;
    let power = power_spectrum(samples);
    let bin_hz = sample_rate_hz as f64 / samples.len() as f64;
    let nyquist_hz = sample_rate_hz as f64 / 2.0;
    let is_harmonic = |bin: usize| {
        fundamentals_hz.iter().any(|&f0| {
            let f0 = f0 as f64;
            let mut harmonic_hz = f0;
            while harmonic_hz < nyquist_hz + LOBE_BINS * bin_hz {
                if (bin as f64 * bin_hz - harmonic_hz).abs() <= LOBE_BINS * bin_hz {
                    return true;
                }
                harmonic_hz += f0;
            }
            false
        })
    };
    let (mut harmonic, mut inharmonic) = (0.0, 0.0);
    for (bin, p) in power.iter().enumerate().skip(LOBE_BINS as usize) {
        if is_harmonic(bin) {
            harmonic += p;
        } else {
            inharmonic += p;
        }
    }
    10.0 * (harmonic / inharmonic.max(1e-300)).log10()
}

/// Level (dB, arbitrary reference) of the Blackman-Harris-windowed DFT at exactly `frequency_hz`.
pub(super) fn tone_level_db(samples: &[f32], sample_rate_hz: f32, frequency_hz: f32) -> f64 {
    let window = blackman_harris(samples.len());
    let step = 2.0 * PI * frequency_hz as f64 / sample_rate_hz as f64;
    let (mut re, mut im) = (0.0, 0.0);
    for (n, (s, w)) in samples.iter().zip(&window).enumerate() {
        let (sin, cos) = (step * n as f64).sin_cos();
        re += *s as f64 * w * cos;
        im -= *s as f64 * w * sin;
    }
    10.0 * (re * re + im * im).max(1e-300).log10()
}

/// Frequency (Hz) of the strongest spectral peak between `low_hz` and `high_hz`: the strongest
/// FFT bin, refined by a parabola through the log power of it and its neighbours (accurate to
/// a few hundredths of a bin with this window). `samples.len()` must be a power of two.
pub(super) fn peak_frequency_hz(
    samples: &[f32],
    sample_rate_hz: f32,
    low_hz: f32,
    high_hz: f32,
) -> f32 {
    let power = power_spectrum(samples);
    let bin_hz = sample_rate_hz as f64 / samples.len() as f64;
    let first = ((low_hz as f64 / bin_hz).ceil() as usize).max(1);
    let last = ((high_hz as f64 / bin_hz).floor() as usize).min(power.len() - 2);
    let peak = (first..=last)
        .max_by(|a, b| power[*a].total_cmp(&power[*b]))
        .expect("empty frequency range");
    let [below, at, above] = [peak - 1, peak, peak + 1].map(|k| power[k].max(1e-300).ln());
    let offset = 0.5 * (below - above) / (below - 2.0 * at + above);
    ((peak as f64 + offset) * bin_hz) as f32
}

/// Root-mean-square level of `samples`.
pub(super) fn rms(samples: &[f32]) -> f32 {
    let energy: f64 = samples.iter().map(|s| (*s as f64).powi(2)).sum();
    (energy / samples.len().max(1) as f64).sqrt() as f32
}

/// Largest absolute sample-to-sample step, the quantity a click shows up in.
pub(crate) fn max_step(samples: &[f32]) -> f32 {
    samples
        .windows(2)
        .fold(0.0, |m, w| m.max((w[1] - w[0]).abs()))
}

/// Largest absolute sample value.
pub(super) fn peak(samples: &[f32]) -> f32 {
    samples.iter().fold(0.0, |m, s| m.max(s.abs()))
}

/// Ratio of first-difference energy to signal energy: grows with high-frequency content and
/// does not depend on level, so it measures brightness.
pub(super) fn brightness(samples: &[f32]) -> f32 {
    let diff: f64 = samples
        .windows(2)
        .map(|w| ((w[1] - w[0]) as f64).powi(2))
        .sum();
    let energy: f64 = samples.iter().map(|s| (*s as f64).powi(2)).sum();
    (diff / energy.max(1e-300)) as f32
}
