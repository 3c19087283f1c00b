//! Seeding an answer's random stream, and drawing one step (or event) from an engine's
//! distribution at a temperature with it.
//!
//! Temperature `T` reshapes each probability to `p^(1/T)` before renormalising: below 1 it
//! sharpens towards the likeliest step, above 1 it flattens towards uniform. Weights are computed
//! as `exp((ln p − ln p_max) / T)`, which is 1 for the likeliest step and stays finite however
//! small `T` is. A call with `T > 0` consumes exactly one RNG draw whatever the distribution, so
//! the stream position depends only on how many steps were sampled and seeded answers replay.

use rand::Rng;

use crate::models::step_model::{Distribution, Step};
use crate::music::{beats_to_ticks, Note};
use crate::params::SeedMode;
use crate::protocol::Request;

/// The seed of an answer's random stream: a function of the seed parameter, of the `phrase` it
/// answers and, in [`SeedMode::NewEachPhrase`], of the phrase's index since playback started.
/// The same seed answers the same phrase the same way, and two phrases with unrelated draws:
/// without the phrase, every answer of a session would draw the same numbers, and answers to
/// different phrases would make the same choices (the same leap up at their start, say).
pub fn stream_seed(request: &Request, phrase: &[Note]) -> u64 {
    let index = match request.seed_mode {
        SeedMode::Fixed => 0,
        SeedMode::NewEachPhrase => request.phrase_index,
    };
    mix_seed(request.seed, index ^ fingerprint(phrase))
}

/// A hash of what the engines read of `phrase`: each note's pitch, and its onset and length in
/// ticks (not its velocity, which a player never repeats exactly). FNV-1a over the numbers.
fn fingerprint(phrase: &[Note]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01B3;
    phrase
        .iter()
        .flat_map(|n| {
            [
                u64::from(n.pitch),
                beats_to_ticks(n.onset_beats),
                beats_to_ticks(n.duration_beats),
            ]
        })
        .fold(0xCBF2_9CE4_8422_2325, |hash, word| {
            word.to_le_bytes()
                .iter()
                .fold(hash, |h, byte| (h ^ u64::from(*byte)).wrapping_mul(PRIME))
        })
}

/// The random stream seed of answer `index` from seed `seed` (SplitMix64 mixing, so neighbouring
/// seeds give unrelated streams).
pub fn mix_seed(seed: u32, index: u64) -> u64 {
    let mut z = (seed as u64) << 32 ^ index;
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Highest temperature; larger requests are clamped to it.
pub const MAX_TEMPERATURE: f32 = 2.0;

/// Samples one step of `dist` at `temperature` (clamped to `0..=MAX_TEMPERATURE`; NaN counts as
/// 0). Temperature 0 returns the likeliest step, the first one on ties, without touching `rng`.
/// Returns `None` for an empty distribution. Entries with a probability that is not positive are
/// never drawn; a distribution with no positive entry gives its first step.
pub fn sample(dist: &Distribution, temperature: f32, rng: &mut impl Rng) -> Option<Step> {
    sample_index(dist.len(), |i| dist[i].1, temperature, rng).map(|i| dist[i].0)
}

/// [`sample`] over `len` entries whose probabilities `probability(i)` gives: the index drawn.
pub fn sample_index(
    len: usize,
    probability: impl Fn(usize) -> f64,
    temperature: f32,
    rng: &mut impl Rng,
) -> Option<usize> {
    let temperature = clamp_temperature(temperature);
    let draw = (temperature > 0.0).then(|| rng.random::<f64>());
    let (likeliest, max_probability) = argmax(len, &probability)?;
    let Some(draw) = draw else {
        return Some(likeliest);
    };
    if max_probability <= 0.0 {
        return Some(likeliest);
    }
    let inverse_temperature = 1.0 / f64::from(temperature);
    let ln_max_probability = max_probability.ln();
    let weight = |probability: f64| {
        if probability > 0.0 {
            ((probability.ln() - ln_max_probability) * inverse_temperature).exp()
        } else {
            0.0
        }
    };
    // NOTE: the likeliest entry weighs exactly 1, so the total is ≥ 1 and the target is finite.
    let mut total_weight = 0.0;
    for i in 0..len {
        total_weight += weight(probability(i));
    }
    let target = draw * total_weight;
    let mut cumulative_weight = 0.0;
    let mut last_drawable = likeliest;
    for index in 0..len {
        let entry_weight = weight(probability(index));
        if entry_weight > 0.0 {
            cumulative_weight += entry_weight;
            last_drawable = index;
            if target < cumulative_weight {
                return Some(index);
            }
        }
    }
    // Rounding can leave the target a hair above the last cumulative sum.
    Some(last_drawable)
}

/// `temperature` limited to `0..=MAX_TEMPERATURE`, with NaN as 0.
fn clamp_temperature(temperature: f32) -> f32 {
    if temperature > 0.0 {
        temperature.min(MAX_TEMPERATURE)
    } else {
        0.0
    }
}

/// Index and probability of the likeliest of `len` entries, the first on ties (a NaN
/// probability counts as −∞); `None` if there are none.
fn argmax(len: usize, probability: impl Fn(usize) -> f64) -> Option<(usize, f64)> {
    if len == 0 {
        return None;
    }
    let mut best = (0, f64::NEG_INFINITY);
    for index in 0..len {
        let p = probability(index);
        // NOTE: `>` keeps the first of equal entries and is false for NaN.
        if p > best.1 {
            best = (index, p);
        }
    }
    Some(best)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::EngineChoice;
    use crate::test_kit::{melody, request};
    use rand::{RngCore, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Same seed and phrase: the same stream, whatever the velocities; another phrase, another
    /// seed or (new each phrase) another index: another stream.
    #[test]
    fn an_answer_stream_follows_the_seed_and_the_phrase() {
        let fixed = request(EngineChoice::Hybrid);
        let phrase = melody(0.0, &[(60, 0.5), (62, 0.5), (64, 1.0)]);
        let mut louder = phrase.clone();
        louder[1].velocity = 120;
        let mut other = phrase.clone();
        other[2].pitch = 65;
        let mut later = phrase.clone();
        later[2].onset_beats += 0.25;
        let seed = stream_seed(&fixed, &phrase);
        assert_eq!(stream_seed(&fixed, &louder), seed);
        assert_ne!(stream_seed(&fixed, &other), seed);
        assert_ne!(stream_seed(&fixed, &later), seed);
        let reseeded = Request {
            seed: fixed.seed + 1,
            ..fixed
        };
        assert_ne!(stream_seed(&reseeded, &phrase), seed);
        let (first, second) = [0, 1]
            .map(|phrase_index| Request {
                seed_mode: SeedMode::NewEachPhrase,
                phrase_index,
                ..fixed
            })
            .into();
        assert_ne!(stream_seed(&first, &phrase), stream_seed(&second, &phrase));
    }

    /// A seeded RNG that counts how many values were drawn from it.
    struct CountingRng {
        inner: ChaCha8Rng,
        draws: usize,
    }

    impl CountingRng {
        fn new(seed: u64) -> Self {
            Self {
                inner: ChaCha8Rng::seed_from_u64(seed),
                draws: 0,
            }
        }
    }

    impl RngCore for CountingRng {
        fn next_u32(&mut self) -> u32 {
            self.draws += 1;
            self.inner.next_u32()
        }

        fn next_u64(&mut self) -> u64 {
            self.draws += 1;
            self.inner.next_u64()
        }

        fn fill_bytes(&mut self, dst: &mut [u8]) {
            self.draws += 1;
            self.inner.fill_bytes(dst);
        }
    }

    fn step(pitch: u8) -> Step {
        Step {
            pitch,
            ioi_ticks: 24,
            duration_ticks: 24,
            velocity: 100,
        }
    }

    fn dist(probabilities: &[f64]) -> Distribution {
        probabilities
            .iter()
            .enumerate()
            .map(|(i, &p)| (step(60 + i as u8), p))
            .collect()
    }

    fn draw_pitches(dist: &Distribution, temperature: f32, seed: u64, count: usize) -> Vec<u8> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..count)
            .map(|_| sample(dist, temperature, &mut rng).unwrap().pitch)
            .collect()
    }

    /// Entropy in bits of the histogram of `pitches`.
    fn entropy_bits(pitches: &[u8]) -> f64 {
        let mut counts = [0usize; 128];
        for &pitch in pitches {
            counts[usize::from(pitch)] += 1;
        }
        let total = pitches.len() as f64;
        counts
            .iter()
            .filter(|&&count| count > 0)
            .map(|&count| {
                let p = count as f64 / total;
                -p * p.log2()
            })
            .sum()
    }

    #[test]
    fn zero_temperature_is_argmax_and_ignores_the_rng() {
        let d = dist(&[0.2, 0.5, 0.3]);
        for seed in 0..10 {
            let mut rng = CountingRng::new(seed);
            assert_eq!(sample(&d, 0.0, &mut rng), Some(step(61)));
            assert_eq!(rng.draws, 0);
        }
    }

    #[test]
    fn argmax_ties_go_to_the_first_entry() {
        let mut rng = CountingRng::new(0);
        assert_eq!(
            sample(&dist(&[0.1, 0.45, 0.45]), 0.0, &mut rng),
            Some(step(61))
        );
    }

    #[test]
    fn an_empty_distribution_gives_none() {
        let mut rng = CountingRng::new(0);
        assert_eq!(sample(&Distribution::new(), 0.0, &mut rng), None);
        assert_eq!(sample(&Distribution::new(), 1.0, &mut rng), None);
    }

    #[test]
    fn positive_temperature_draws_exactly_once_per_call() {
        let mut rng = CountingRng::new(1);
        let distributions = [
            Distribution::new(),
            dist(&[1.0]),
            dist(&[0.1, 0.2, 0.3, 0.4]),
        ];
        for (calls, d) in distributions.iter().cycle().take(30).enumerate() {
            sample(d, 0.7, &mut rng);
            assert_eq!(rng.draws, calls + 1);
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_sequence() {
        let d = dist(&[0.25, 0.25, 0.25, 0.25]);
        assert_eq!(
            draw_pitches(&d, 1.0, 42, 200),
            draw_pitches(&d, 1.0, 42, 200)
        );
    }

    #[test]
    fn different_seeds_give_different_sequences() {
        let d = dist(&[0.25, 0.25, 0.25, 0.25]);
        assert_ne!(draw_pitches(&d, 1.0, 1, 64), draw_pitches(&d, 1.0, 2, 64));
    }

    #[test]
    fn unit_temperature_follows_the_probabilities() {
        let probabilities = [0.5, 0.3, 0.15, 0.05];
        let draws = 20_000;
        let pitches = draw_pitches(&dist(&probabilities), 1.0, 9, draws);
        for (i, &p) in probabilities.iter().enumerate() {
            let share = pitches
                .iter()
                .filter(|&&pitch| pitch == 60 + i as u8)
                .count() as f64
                / draws as f64;
            assert!((share - p).abs() < 0.02, "entry {i}: {share} vs {p}");
        }
    }

    #[test]
    fn higher_temperature_gives_more_varied_output() {
        let d = dist(&[0.5, 0.3, 0.15, 0.05]);
        // Expected ≈ 0.8 bits at T = 0.3 and ≈ 1.8 bits at T = 1.5.
        let cold_bits = entropy_bits(&draw_pitches(&d, 0.3, 5, 5000));
        let hot_bits = entropy_bits(&draw_pitches(&d, 1.5, 5, 5000));
        assert!(hot_bits > cold_bits + 0.7, "{cold_bits} vs {hot_bits}");
    }

    #[test]
    fn temperatures_are_clamped() {
        let d = dist(&[0.5, 0.3, 0.15, 0.05]);
        assert_eq!(
            draw_pitches(&d, 50.0, 3, 300),
            draw_pitches(&d, 2.0, 3, 300)
        );
        for temperature in [-1.0, f32::NAN] {
            let mut rng = CountingRng::new(0);
            assert_eq!(sample(&d, temperature, &mut rng), Some(step(60)));
            assert_eq!(rng.draws, 0);
        }
    }

    #[test]
    fn tiny_temperatures_and_probabilities_stay_finite() {
        // Raised directly to 1/T these would underflow to 0/0.
        let d = dist(&[1e-300, 3e-300]);
        assert!(draw_pitches(&d, 0.01, 4, 100)
            .iter()
            .all(|&pitch| pitch == 61));
        let d = dist(&[0.4, 0.6]);
        assert!(draw_pitches(&d, f32::MIN_POSITIVE, 4, 100)
            .iter()
            .all(|&pitch| pitch == 61));
    }

    #[test]
    fn entries_without_positive_probability_are_never_drawn() {
        let d = dist(&[0.0, 0.5, f64::NAN, 0.5]);
        let pitches = draw_pitches(&d, 2.0, 8, 500);
        assert!(pitches.iter().all(|&pitch| pitch == 61 || pitch == 63));
        let mut rng = CountingRng::new(0);
        assert_eq!(sample(&dist(&[0.0, 0.0]), 1.0, &mut rng), Some(step(60)));
    }
}
