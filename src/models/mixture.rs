//! The `hybrid` engine's core: several next-event models read the same events, and their
//! distributions are combined at every step by entropy weights ([`combine`]), so the most
//! certain model leads where it knows the idiom and the others fill in where it does not.

use crate::models::mixing::{combine, Combination};
use crate::models::EventModel;
use crate::music::meter::Meter;

/// Most models in one mixture (their distributions are gathered on the stack at every step).
pub const MAX_MODELS: usize = 8;

/// Models combined into one (see the module docs).
pub struct Mixture {
    name: String,
    models: Vec<Box<dyn EventModel + Send>>,
    combination: Combination,
    /// Entropy bias of the combination (0 = equal weights).
    bias: f64,
    /// One distribution per model, reused at every step.
    scratch: Vec<Vec<f64>>,
}

impl Mixture {
    /// `models` (1 to [`MAX_MODELS`], over the same `vocabulary_len` events) combined by
    /// `combination` with entropy bias `bias`, reported as `name`.
    ///
    /// # Panics
    /// If there are no models or more than [`MAX_MODELS`].
    pub fn new(
        name: impl Into<String>,
        models: Vec<Box<dyn EventModel + Send>>,
        vocabulary_len: usize,
        combination: Combination,
        bias: f64,
    ) -> Self {
        assert!(
            (1..=MAX_MODELS).contains(&models.len()),
            "a mixture of {} models",
            models.len()
        );
        Self {
            name: name.into(),
            scratch: vec![vec![0.0; vocabulary_len]; models.len()],
            models,
            combination,
            bias,
        }
    }
}

impl std::fmt::Debug for Mixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.models.iter().map(|m| m.name()).collect();
        f.debug_struct("Mixture")
            .field("name", &self.name)
            .field("models", &names)
            .field("combination", &self.combination)
            .field("bias", &self.bias)
            .finish()
    }
}

impl EventModel for Mixture {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn reset(&mut self) {
        for model in &mut self.models {
            model.reset();
        }
    }

    fn distribution(&mut self, out: &mut [f64]) {
        for (model, scratch) in self.models.iter_mut().zip(&mut self.scratch) {
            model.distribution(scratch);
        }
        let mut parts: [&[f64]; MAX_MODELS] = [&[]; MAX_MODELS];
        for (part, scratch) in parts.iter_mut().zip(&self.scratch) {
            *part = scratch;
        }
        combine(
            &parts[..self.scratch.len()],
            self.combination,
            self.bias,
            out,
        );
    }

    fn observe(&mut self, token: u16) {
        for model in &mut self.models {
            model.observe(token);
        }
    }

    fn observe_all(&mut self, tokens: &[u16]) {
        for model in &mut self.models {
            model.observe_all(tokens);
        }
    }

    fn set_meter(&mut self, meter: &Meter) {
        for model in &mut self.models {
            model.set_meter(meter);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::eval::code_length_bits;
    use crate::models::{Markov, MarkovConfig, Unigram};
    use crate::music::encoding::Vocabulary;

    fn folk_tokens(shift: i8) -> Vec<u16> {
        let v = Vocabulary::default();
        v.encode_ids(&crate::test_kit::folk_tune(shift))
    }

    #[test]
    fn a_mixture_is_normalised_and_beats_its_weaker_part() {
        let v = Vocabulary::default();
        let train: Vec<Vec<u16>> = [-2, 0, 3].iter().map(|&s| folk_tokens(s)).collect();
        let mut unigram = Unigram::new(v);
        let mut markov = Markov::new(v, MarkovConfig::default());
        for t in &train {
            unigram.train(t);
        }
        markov.train(train.iter().map(|t| &t[..]));
        let mut mixture = Mixture::new(
            "hybrid",
            vec![Box::new(unigram.clone()), Box::new(markov.clone())],
            v.len(),
            Combination::Arithmetic,
            2.0,
        );
        let held_out = folk_tokens(5);
        let mut scratch = vec![0.0; v.len()];
        let mixed = code_length_bits(&mut mixture, &held_out, &mut scratch);
        let alone = code_length_bits(&mut unigram, &held_out, &mut scratch);
        assert!(mixed.is_finite() && mixed < alone, "{mixed} vs {alone}");
        // Every step's distribution sums to one.
        mixture.reset();
        for &t in &held_out {
            mixture.distribution(&mut scratch);
            assert!((scratch.iter().sum::<f64>() - 1.0).abs() < 1e-9);
            mixture.observe(t);
        }
        // One model alone is that model.
        let mut single = Mixture::new(
            "one",
            vec![Box::new(markov.clone())],
            v.len(),
            Combination::Geometric,
            1.0,
        );
        let one = code_length_bits(&mut single, &held_out, &mut scratch);
        assert_eq!(one, code_length_bits(&mut markov, &held_out, &mut scratch));
    }
}
