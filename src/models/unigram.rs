//! The baseline: how often each event occurs in the training corpus, with add-one smoothing.

use crate::models::EventModel;
use crate::music::encoding::Vocabulary;

/// Token frequencies of a corpus, `P(t) = (count(t) + 1) / (N + V)`; untrained, it is uniform.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Unigram {
    /// Times each token id occurred in training.
    counts: Vec<u64>,
}

impl Unigram {
    /// An untrained (uniform) model over `vocabulary`.
    pub fn new(vocabulary: Vocabulary) -> Self {
        Self {
            counts: vec![0; vocabulary.len()],
        }
    }

    /// Count the tokens of one tune (ids past the vocabulary are ignored).
    pub fn train(&mut self, tokens: &[u16]) {
        for &t in tokens {
            if let Some(c) = self.counts.get_mut(usize::from(t)) {
                *c += 1;
            }
        }
    }
}

impl EventModel for Unigram {
    fn name(&self) -> String {
        "unigram".into()
    }

    fn reset(&mut self) {}

    fn distribution(&mut self, out: &mut [f64]) {
        assert_eq!(out.len(), self.counts.len(), "distribution length");
        let total: u64 = self.counts.iter().sum::<u64>() + self.counts.len() as u64;
        for (p, &c) in out.iter_mut().zip(&self.counts) {
            *p = (c + 1) as f64 / total as f64;
        }
    }

    fn observe(&mut self, _token: u16) {}
}
