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

/// Entropy of a distribution, in bits.
pub fn entropy_bits(p: &[f64]) -> f64 {
    p.iter().filter(|&&x| x > 0.0).map(|&x| -x * x.log2()).sum()
}

/// Combines `distributions` (each normalised, as long as `out`) into `out`.
///
/// # Panics
/// If there are no distributions or their lengths differ from `out`'s.
pub fn combine(distributions: &[&[f64]], method: Combination, bias: f64, out: &mut [f64]) {
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
        let relative = (entropy_bits(d) / max_entropy).clamp(MIN_RELATIVE_ENTROPY, 1.0);
        *w = relative.powf(-bias);
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
}
