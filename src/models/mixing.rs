//! Combining several models' distributions over the same events into one, weighted by how
//! certain each model is (Conklin & Witten 1995; Pearce, Conklin & Wiggins 2004).
//!
//! Model `i` with distribution `P_i` over `n` events gets the weight `w_i = H_rel(P_i)^(−b)`,
//! where `H_rel = H(P_i) / log2(n)` is its entropy relative to the uniform distribution and `b`
//! the bias (0 = equal weights; larger trusts the most certain model more). The arithmetic
//! combination is `Σ w_i P_i / Σ w_i`; the geometric one is `Π P_i^(w_i / Σ w)`, renormalised.

/// How distributions are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Combination {
    /// Weighted mean of probabilities.
    Arithmetic,
    /// Weighted mean of log probabilities, renormalised (a product of experts).
    Geometric,
}

/// Smallest relative entropy used for a weight, so a certain model's weight stays finite.
const MIN_RELATIVE_ENTROPY: f64 = 1e-4;

/// Entropy of a distribution, in bits (entries below the smallest normal `f64` count as zero).
#[inline]
pub fn entropy_bits(p: &[f64]) -> f64 {
    // NOTE: blocks of terms computed by a plain map (which vectorises, `log2` being
    // branch-free), then summed in order.
    const BLOCK: usize = 64;
    let mut terms = [0.0; BLOCK];
    let mut total = 0.0;
    for block in p.chunks(BLOCK) {
        let terms = &mut terms[..block.len()];
        for (t, &x) in terms.iter_mut().zip(block) {
            *t = x * log2(x.max(f64::MIN_POSITIVE));
        }
        for &t in terms.iter() {
            total -= t;
        }
    }
    total
}

/// `log2(x)` of a positive normal `x`, within ~1e-15 relative, in plain arithmetic: it inlines
/// and vectorises (a call into libm does neither) and gives the same bits on every machine.
///
/// With `x = 2^e · m`, `m` in `[√½, √2)`: `ln m = 2 atanh(s)`, `s = (m − 1) / (m + 1)`, so
/// `|s| < 0.172` and the series `atanh(s) / s = Σ s^2k / (2k + 1)` to `k = 9` leaves under 1e-17.
#[inline(always)]
fn log2(x: f64) -> f64 {
    const MANTISSA: u64 = (1 << 52) - 1;
    const ONE: u64 = 1023 << 52;
    // 2^52 as the exponent field of `TWO_52`, so an integer below 2^52 ORed into the mantissa
    // reads as `TWO_52 + integer` (an exact conversion in plain 64-bit lanes).
    const TWO_52: f64 = 4_503_599_627_370_496.0;
    let bits = x.to_bits();
    let biased = f64::from_bits((bits >> 52) | TWO_52.to_bits()) - TWO_52;
    let m = f64::from_bits((bits & MANTISSA) | ONE);
    let high = m > std::f64::consts::SQRT_2;
    let m = if high { m * 0.5 } else { m };
    let exponent = biased - 1023.0 + if high { 1.0 } else { 0.0 };
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut series = 1.0 / 19.0;
    for k in (0..9).rev() {
        series = series * s2 + 1.0 / f64::from(2 * k + 1);
    }
    exponent + 2.0 * s * series * std::f64::consts::LOG2_E
}

/// Combines `distributions` (each normalised, as long as `out`) into `out`.
///
/// # Panics
/// If there are no distributions or their lengths differ from `out`'s.
pub fn combine(distributions: &[&[f64]], method: Combination, bias: f64, out: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 was just detected.
        return unsafe { combine_avx2(distributions, method, bias, out) };
    }
    combine_with(distributions, method, bias, out);
}

/// [`combine_with`] compiled for AVX2: twice the lanes for the entropies' logarithms and the
/// means. The same bits as the plain build, as neither contracts a multiply and an add.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn combine_avx2(distributions: &[&[f64]], method: Combination, bias: f64, out: &mut [f64]) {
    combine_with(distributions, method, bias, out);
}

/// [`combine`], inlined into each instruction set's build.
#[inline(always)]
fn combine_with(distributions: &[&[f64]], method: Combination, bias: f64, out: &mut [f64]) {
    assert!(!distributions.is_empty(), "nothing to combine");
    let n = out.len();
    assert!(distributions.iter().all(|d| d.len() == n), "lengths differ");
    if n == 1 {
        out[0] = 1.0;
        return;
    }
    if distributions.len() == 1 {
        out.copy_from_slice(distributions[0]);
        return;
    }
    let max_entropy = (n as f64).log2();
    let mut weights = [0.0f64; 16];
    let mut weights_vec;
    let weights: &mut [f64] = if distributions.len() <= weights.len() {
        &mut weights[..distributions.len()]
    } else {
        weights_vec = vec![0.0; distributions.len()];
        &mut weights_vec
    };
    for (w, d) in weights.iter_mut().zip(distributions) {
        // NOTE: with no bias every weight is 1 whatever the entropy; skip computing it.
        *w = if bias == 0.0 {
            1.0
        } else {
            let relative = (entropy_bits(d) / max_entropy).clamp(MIN_RELATIVE_ENTROPY, 1.0);
            relative.powf(-bias)
        };
    }
    let total: f64 = weights.iter().sum();
    for w in weights.iter_mut() {
        *w /= total;
    }
    match method {
        Combination::Arithmetic => {
            out.fill(0.0);
            for (w, d) in weights.iter().zip(distributions) {
                for (o, &p) in out.iter_mut().zip(d.iter()) {
                    *o += w * p;
                }
            }
        }
        Combination::Geometric if bias == 0.0 && equal_geometric(distributions, out) => {}
        Combination::Geometric => {
            out.fill(0.0);
            for (w, d) in weights.iter().zip(distributions) {
                for (o, &p) in out.iter_mut().zip(d.iter()) {
                    *o += w * p.max(f64::MIN_POSITIVE).ln();
                }
            }
            let max = out.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            for o in out.iter_mut() {
                *o = (*o - max).exp();
            }
        }
    }
    let sum: f64 = out.iter().sum();
    for o in out.iter_mut() {
        *o /= sum;
    }
}

/// The geometric mean with equal weights, `(Π P_i)^(1/k)` (unnormalised), into `out`, computed
/// without logarithms: a root per event instead of `k` logarithms and an exponential. `false`
/// (and `out` unspecified) where a product underflows, so that only logarithms keep it exact.
#[inline(always)]
fn equal_geometric(distributions: &[&[f64]], out: &mut [f64]) -> bool {
    out.fill(1.0);
    for d in distributions {
        for (o, &p) in out.iter_mut().zip(d.iter()) {
            *o *= p;
        }
    }
    if out.iter().any(|&o| o < f64::MIN_POSITIVE) {
        return false;
    }
    match distributions.len() {
        2 => out.iter_mut().for_each(|o| *o = o.sqrt()),
        4 => out.iter_mut().for_each(|o| *o = o.sqrt().sqrt()),
        k => {
            let root = 1.0 / k as f64;
            out.iter_mut().for_each(|o| *o = o.powf(root));
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combinations_are_normalised_and_favour_the_certain_model() {
        let sharp = [0.94, 0.02, 0.02, 0.02];
        let flat = [0.25; 4];
        let mut out = [0.0; 4];
        for method in [Combination::Arithmetic, Combination::Geometric] {
            combine(&[&sharp, &flat], method, 0.0, &mut out);
            let even = out[0];
            assert!((out.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            combine(&[&sharp, &flat], method, 4.0, &mut out);
            assert!((out.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            assert!(out[0] > even && out[0] < 0.94, "{method:?} {out:?}");
            assert!(out.iter().all(|&p| p > 0.0));
        }
        // Equal weights: the arithmetic mean, and the normalised geometric mean.
        combine(&[&sharp, &flat], Combination::Arithmetic, 0.0, &mut out);
        assert!((out[0] - 0.595).abs() < 1e-12);
        combine(&[&sharp, &flat], Combination::Geometric, 0.0, &mut out);
        let (a, b) = ((0.94f64 * 0.25).sqrt(), (0.02f64 * 0.25).sqrt());
        assert!((out[0] - a / (a + 3.0 * b)).abs() < 1e-12);
        // One distribution is itself.
        combine(&[&sharp], Combination::Geometric, 3.0, &mut out);
        assert_eq!(out, sharp);
        assert!((entropy_bits(&flat) - 2.0).abs() < 1e-12);
    }

    #[test]
    fn equal_geometric_means_match_the_logarithms_even_where_products_underflow() {
        let dists: [&[f64]; 4] = [
            &[0.7, 0.2, 0.1],
            &[0.1, 0.3, 0.6],
            &[1e-200, 0.5, 0.5 - 1e-200],
            &[1e-200, 0.9, 0.1 - 1e-200],
        ];
        for k in [2, 3, 4] {
            let mut expected = [0.0; 3];
            for (j, e) in expected.iter_mut().enumerate() {
                let mean: f64 = dists[..k].iter().map(|d| d[j].ln()).sum::<f64>() / k as f64;
                *e = mean.exp();
            }
            let total: f64 = expected.iter().sum();
            let mut out = [0.0; 3];
            combine(&dists[..k], Combination::Geometric, 0.0, &mut out);
            for (o, e) in out.iter().zip(expected) {
                assert!(
                    (o - e / total).abs() <= 1e-12 * (e / total),
                    "k {k}: {out:?}"
                );
            }
            assert!(out[0] > 0.0, "k {k}: {out:?}");
        }
    }

    #[test]
    fn the_inlined_logarithm_matches_libm() {
        let mut x = f64::MIN_POSITIVE;
        while x < 1e300 {
            for f in [1.0, 1.1, 1.41, 1.42, 1.5, 1.999] {
                let y = x * f;
                let (ours, libm) = (log2(y), y.log2());
                assert!(
                    (ours - libm).abs() <= 4.0 * f64::EPSILON * libm.abs().max(1.0),
                    "log2({y:e}) = {ours} ≠ {libm}"
                );
            }
            x *= 3.7;
        }
        assert_eq!(log2(1.0), 0.0);
        assert_eq!(log2(0.125), -3.0);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx2_build_combines_to_the_same_bits() {
        use rand::{Rng, SeedableRng};
        if !std::is_x86_feature_detected!("avx2") {
            return;
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let dists: Vec<Vec<f64>> = (0..4)
            .map(|_| {
                let d: Vec<f64> = (0..353).map(|_| rng.random::<f64>().powi(4)).collect();
                let total: f64 = d.iter().sum();
                d.iter().map(|p| p / total).collect()
            })
            .collect();
        let dists: Vec<&[f64]> = dists.iter().map(Vec::as_slice).collect();
        for method in [Combination::Arithmetic, Combination::Geometric] {
            for (k, bias) in [(2, 0.0), (3, 0.0), (4, 1.0), (3, 2.5)] {
                let (mut plain, mut avx2) = ([0.0; 353], [0.0; 353]);
                combine_with(&dists[..k], method, bias, &mut plain);
                // SAFETY: AVX2 was detected above.
                unsafe { combine_avx2(&dists[..k], method, bias, &mut avx2) };
                assert_eq!(plain, avx2, "{method:?} {k} {bias}");
            }
        }
    }
}
