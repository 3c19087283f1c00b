//! The phrase WaveNet as a next-event model: the incremental kernel
//! ([`crate::models::wavenet::WaveNetKernel`]) fed one event at a time, its logits turned into a
//! distribution by a softmax.
//!
//! Feeding follows the training convention (see [`crate::models::wavenet`]): every tune starts with `END`
//! at bar position 0 as its start marker, and each event is fed with the bar position of the time
//! after it.

use crate::models::wavenet::WaveNetKernel;
use crate::models::EventModel;
use crate::music::encoding::{Token, Vocabulary};
use crate::music::meter::Meter;
use crate::simd::exp;

/// The WaveNet engine (see the module docs).
#[derive(Debug, Clone)]
pub struct WaveNetModel {
    kernel: WaveNetKernel,
    vocabulary: Vocabulary,
    /// The bar lines of the position inputs.
    meter: Meter,
    /// Ticks from the tune's start (its first bar line) to the next event.
    now_ticks: u64,
    /// Events with their bar positions, gathered for one [`WaveNetKernel::feed`].
    pending: Vec<(u16, u32)>,
}

impl WaveNetModel {
    /// The engine of `kernel` at the start of a tune in 4/4 (see [`EventModel::set_meter`]).
    pub fn new(kernel: WaveNetKernel) -> Self {
        let mut model = Self {
            vocabulary: *kernel.vocabulary(),
            kernel,
            meter: Meter::default(),
            now_ticks: 0,
            pending: Vec::new(),
        };
        model.reset();
        model
    }

    /// The vocabulary of the model's events.
    pub fn vocabulary(&self) -> &Vocabulary {
        &self.vocabulary
    }

    /// The kernel's logits for the next event (what [`EventModel::distribution`] turns into
    /// probabilities).
    pub fn logits(&self) -> &[f32] {
        self.kernel.logits()
    }

    /// Ticks from the tune's start to the next event (the sum of the time shifts observed).
    pub fn now_ticks(&self) -> u64 {
        self.now_ticks
    }

    /// Moves the clock past `token`; returns it with the bar position it is fed with (that of
    /// the time after it).
    fn advance(&mut self, token: u16) -> (u16, u32) {
        if let Some(Token::TimeShift(d)) = self.vocabulary.token(token) {
            self.now_ticks += u64::from(d);
        }
        let position = self.meter.position(self.now_ticks);
        (token, position)
    }
}

impl EventModel for WaveNetModel {
    fn name(&self) -> String {
        "wavenet".into()
    }

    fn set_meter(&mut self, meter: &Meter) {
        self.meter.clone_from(meter);
    }

    fn reset(&mut self) {
        self.kernel.reset();
        self.now_ticks = 0;
        self.kernel.step(self.vocabulary.end_id(), 0);
    }

    fn distribution(&mut self, out: &mut [f64]) {
        softmax(self.kernel.logits(), out);
    }

    fn observe(&mut self, token: u16) {
        let event = self.advance(token);
        self.kernel.feed(&[event]);
    }

    fn observe_all(&mut self, tokens: &[u16]) {
        let mut pending = std::mem::take(&mut self.pending);
        pending.clear();
        pending.extend(tokens.iter().map(|&token| self.advance(token)));
        self.kernel.feed(&pending);
        self.pending = pending;
    }
}

/// `out = softmax(logits)`, summed and normalised in f64 (max subtracted first, so large logits
/// cannot overflow). The exponentials are the kernel's vectorised f32 ones (1e-7 relative; a
/// logit more than 80 below the max counts as 80 below).
///
/// # Panics
/// If the lengths differ.
pub fn softmax(logits: &[f32], out: &mut [f64]) {
    assert_eq!(logits.len(), out.len(), "softmax lengths");
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for (o, &l) in out.iter_mut().zip(logits) {
        *o = f64::from(exp::<false>(l - max));
    }
    let mut sum = 0.0;
    for &o in out.iter() {
        sum += o;
    }
    for o in out.iter_mut() {
        *o /= sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_kit::random_kernel;

    #[test]
    fn distributions_are_the_kernels_softmax_fed_as_in_training() {
        let vocabulary = Vocabulary::default();
        let tokens = [
            Token::NoteOn(60),
            Token::TimeShift(90),
            Token::NoteOff(60),
            Token::TimeShift(30),
            Token::NoteOn(62),
        ];
        // Fed by hand: END at 0, then each token at the position after it (90, 90, 120), in
        // bars of 4/4 (96 ticks) or of 6/8 (72).
        for (meter, positions) in [
            (Meter::default(), [0u32, 90, 90, 24, 24]),
            (Meter::constant(72), [0, 18, 18, 48, 48]),
        ] {
            let mut model = WaveNetModel::new(random_kernel(3));
            model.set_meter(&meter);
            let mut reference = random_kernel(3);
            reference.reset();
            reference.step(vocabulary.end_id(), 0);
            let mut out = vec![0.0; vocabulary.len()];
            let mut expected = vec![0.0; vocabulary.len()];
            for (&token, &position) in tokens.iter().zip(&positions) {
                model.distribution(&mut out);
                softmax(reference.logits(), &mut expected);
                assert_eq!(out, expected);
                assert!((out.iter().sum::<f64>() - 1.0).abs() < 1e-9);
                assert!(out.iter().all(|&p| p > 0.0));
                let id = vocabulary.id(token).unwrap();
                model.observe(id);
                reference.step(id, position);
            }
            assert_eq!(model.now_ticks(), 120);
            // A reset starts the tune again, in the same meter: the first distribution comes
            // back.
            model.distribution(&mut out);
            let last = out.clone();
            model.reset();
            model.distribution(&mut out);
            assert_ne!(out, last);
            let mut fresh = WaveNetModel::new(random_kernel(3));
            fresh.distribution(&mut expected);
            assert_eq!(out, expected);
            model.observe(vocabulary.id(Token::TimeShift(90)).unwrap());
            reference.reset();
            reference.step(vocabulary.end_id(), 0);
            reference.step(vocabulary.id(Token::TimeShift(90)).unwrap(), positions[1]);
            model.distribution(&mut out);
            softmax(reference.logits(), &mut expected);
            assert_eq!(out, expected);
        }
    }

    #[test]
    fn softmax_survives_large_logits() {
        let mut out = [0.0; 3];
        softmax(&[1000.0, 999.0, -1000.0], &mut out);
        // The kernel's exponentials are within 3e-7 relative; one 2000 below the max is clamped
        // (to e^-80), so it stays above zero.
        assert!((out[0] / out[1] - std::f64::consts::E).abs() < 1e-6);
        assert!(out[2] > 0.0 && out[2] < 1e-34);
        assert!((out.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
}
