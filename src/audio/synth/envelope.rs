//! ADSR envelope with analog-style exponential segments.
//!
//! Each segment is a one-pole recursion `level = base + level · coefficient` chasing a target a
//! little beyond where the segment ends (the "target ratio" trick from Nigel Redmon's ADSR), so
//! segments curve like an RC circuit yet still finish in exactly their set time. The recursion
//! costs one multiply-add per tick; the coefficients are computed once per tick rate.

/// How far past 1.0 the attack aims, relative to the full range: a large ratio gives a nearly
/// linear, punchy rise instead of a slow exponential approach.
const ATTACK_TARGET_RATIO: f32 = 0.3;
/// How far below its end the decay and release aim: 0.001 makes them fall 60 dB over their time.
const DECAY_TARGET_RATIO: f32 = 0.001;

/// An ADSR as a musician sets it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct AdsrShape {
    /// Rise from silence to full level, in milliseconds.
    pub(super) attack_ms: f32,
    /// Fall from full level across the whole range (to zero, were sustain zero), in milliseconds.
    pub(super) decay_ms: f32,
    /// Level held while the key is down, `0.0..=1.0`.
    pub(super) sustain_level: f32,
    /// Fall from full level to silence after note-off, in milliseconds.
    pub(super) release_ms: f32,
}

/// One segment's recursion: `level = base + level · coefficient` per tick.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Segment {
    /// Share of the previous level kept per tick (`0.0..=1.0`).
    coefficient: f32,
    /// Step towards the target per tick: `target · (1 − coefficient)`.
    base: f32,
}

impl Segment {
    /// A segment chasing `target` that covers the full 0..1 range in `duration_ticks`, with
    /// `target_ratio` the distance (as a fraction of the range) by which the target overshoots.
    fn new(duration_ticks: f32, target: f32, target_ratio: f32) -> Self {
        let coefficient =
            (-((1.0 + target_ratio) / target_ratio).ln() / duration_ticks.max(1.0)).exp();
        Self {
            coefficient,
            base: target * (1.0 - coefficient),
        }
    }

    #[inline(always)]
    fn step(self, level: f32) -> f32 {
        self.base + level * self.coefficient
    }
}

/// An `AdsrShape` turned into per-tick recursions for one tick rate (sample or control rate).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct AdsrCoefficients {
    attack: Segment,
    decay: Segment,
    release: Segment,
    sustain_level: f32,
}

impl AdsrCoefficients {
    /// Coefficients for envelopes advanced `tick_rate_hz` times per second.
    pub(super) fn new(shape: AdsrShape, tick_rate_hz: f32) -> Self {
        let ticks = |ms: f32| ms * 0.001 * tick_rate_hz;
        let sustain_level = shape.sustain_level.clamp(0.0, 1.0);
        Self {
            attack: Segment::new(
                ticks(shape.attack_ms),
                1.0 + ATTACK_TARGET_RATIO,
                ATTACK_TARGET_RATIO,
            ),
            decay: Segment::new(
                ticks(shape.decay_ms),
                sustain_level - DECAY_TARGET_RATIO,
                DECAY_TARGET_RATIO,
            ),
            release: Segment::new(
                ticks(shape.release_ms),
                -DECAY_TARGET_RATIO,
                DECAY_TARGET_RATIO,
            ),
            sustain_level,
        }
    }
}

/// Where an envelope is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Idle,
    Attack,
    Decay,
    Sustain,
    Release,
    /// Linear fade to silence of a stolen voice, faster than any release.
    Fade,
}

/// One running envelope; the coefficients are shared and passed in at every stage change.
///
/// Every stage is the same recursion with its own `segment` (hold stages multiply by one), so
/// a tick is one multiply-add and one well-predicted comparison; stage changes are out of line.
#[derive(Clone, Copy, Debug)]
pub(super) struct Envelope {
    stage: Stage,
    /// Current output, `0.0..=1.0`.
    level: f32,
    /// Recursion of the current stage.
    segment: Segment,
    /// Level at which the current stage is over (unreachable for idle and sustain).
    end_level: f32,
    /// Whether the stage ends by rising to `end_level` (attack) or falling to it.
    rising: bool,
}

impl Envelope {
    /// A silent, finished envelope.
    pub(super) const IDLE: Self = Self::holding(Stage::Idle, 0.0);

    /// A stage that keeps `level` until told otherwise (idle, sustain).
    const fn holding(stage: Stage, level: f32) -> Self {
        Self {
            stage,
            level,
            segment: Segment {
                coefficient: 1.0,
                base: 0.0,
            },
            end_level: f32::NEG_INFINITY,
            rising: false,
        }
    }

    /// Starts the attack from silence.
    pub(super) fn trigger(&mut self, coefficients: &AdsrCoefficients) {
        *self = Self {
            stage: Stage::Attack,
            level: 0.0,
            segment: coefficients.attack,
            end_level: 1.0,
            rising: true,
        };
    }

    /// Enters the release from the current level, unless already releasing, fading or idle.
    pub(super) fn release(&mut self, coefficients: &AdsrCoefficients) {
        if self.is_held() {
            self.enter_falling(Stage::Release, coefficients.release, 0.0);
        }
    }

    /// Fades linearly from the current level to silence over `duration_ticks` (at least one).
    pub(super) fn fade_out(&mut self, duration_ticks: f32) {
        if self.is_active() {
            let step = self.level / duration_ticks.max(1.0);
            let fade = Segment {
                coefficient: 1.0,
                base: -step,
            };
            // Half a step, not zero: rounding must not leave a tick with a sliver of level.
            self.enter_falling(Stage::Fade, fade, 0.5 * step);
        }
    }

    fn enter_falling(&mut self, stage: Stage, segment: Segment, end_level: f32) {
        *self = Self {
            stage,
            level: self.level,
            segment,
            end_level,
            rising: false,
        };
    }

    /// Still producing a level above zero (or about to).
    pub(super) fn is_active(&self) -> bool {
        self.stage != Stage::Idle
    }

    /// The key is still down: attack, decay or sustain.
    pub(super) fn is_held(&self) -> bool {
        matches!(self.stage, Stage::Attack | Stage::Decay | Stage::Sustain)
    }

    /// Being faded out after a steal.
    pub(super) fn is_fading(&self) -> bool {
        self.stage == Stage::Fade
    }

    /// Current output without advancing, `0.0..=1.0`.
    pub(super) fn level(&self) -> f32 {
        self.level
    }

    /// Advances one tick and returns the new level, `0.0..=1.0`.
    #[inline(always)]
    pub(super) fn next_level(&mut self, coefficients: &AdsrCoefficients) -> f32 {
        self.level = self.segment.step(self.level);
        let finished = if self.rising {
            self.level >= self.end_level
        } else {
            self.level <= self.end_level
        };
        if finished {
            self.finish_stage(coefficients);
        }
        self.level
    }

    /// Moves on from a stage that reached its end level.
    #[cold]
    fn finish_stage(&mut self, coefficients: &AdsrCoefficients) {
        let sustain_level = coefficients.sustain_level;
        *self = match self.stage {
            Stage::Attack => Self {
                stage: Stage::Decay,
                level: 1.0,
                segment: coefficients.decay,
                end_level: sustain_level,
                rising: false,
            },
            Stage::Decay => Self::holding(Stage::Sustain, sustain_level),
            Stage::Release | Stage::Fade => Self::IDLE,
            // Their end level is unreachable; nothing to do.
            Stage::Idle | Stage::Sustain => *self,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK_RATE_HZ: f32 = 48_000.0;
    const SHAPE: AdsrShape = AdsrShape {
        attack_ms: 5.0,
        decay_ms: 400.0,
        sustain_level: 0.6,
        release_ms: 300.0,
    };

    fn ticks(ms: f32) -> usize {
        (ms * 0.001 * TICK_RATE_HZ).round() as usize
    }

    /// Runs `envelope` for `count` ticks, returning every level.
    fn run(envelope: &mut Envelope, coefficients: &AdsrCoefficients, count: usize) -> Vec<f32> {
        (0..count)
            .map(|_| envelope.next_level(coefficients))
            .collect()
    }

    #[test]
    fn attack_reaches_full_level_in_its_time() {
        let coefficients = AdsrCoefficients::new(SHAPE, TICK_RATE_HZ);
        let mut envelope = Envelope::IDLE;
        envelope.trigger(&coefficients);
        let levels = run(&mut envelope, &coefficients, ticks(10.0));
        let peak_tick = levels
            .iter()
            .position(|l| *l >= 1.0)
            .expect("attack never peaks");
        assert!(
            peak_tick.abs_diff(ticks(SHAPE.attack_ms)) <= 2,
            "peak at tick {peak_tick}"
        );
        assert!(
            levels.windows(2).take(peak_tick).all(|w| w[1] > w[0]),
            "attack not rising"
        );
    }

    #[test]
    fn decay_settles_on_sustain_and_holds() {
        let coefficients = AdsrCoefficients::new(SHAPE, TICK_RATE_HZ);
        let mut envelope = Envelope::IDLE;
        envelope.trigger(&coefficients);
        let levels = run(&mut envelope, &coefficients, ticks(1_000.0));
        assert!(levels
            .iter()
            .all(|l| *l >= SHAPE.sustain_level - 1e-6 || *l < 1.0));
        assert_eq!(*levels.last().expect("levels"), SHAPE.sustain_level);
        assert!(envelope.is_held());
    }

    #[test]
    fn release_falls_exponentially_and_ends_within_its_time() {
        let coefficients = AdsrCoefficients::new(SHAPE, TICK_RATE_HZ);
        let mut envelope = Envelope::IDLE;
        envelope.trigger(&coefficients);
        run(&mut envelope, &coefficients, ticks(1_000.0));
        envelope.release(&coefficients);
        let levels = run(&mut envelope, &coefficients, ticks(SHAPE.release_ms) + 1);
        assert!(!envelope.is_active(), "still active after the release time");
        // Exponential: after a third of the release it has lost far more than a third.
        let third = levels[ticks(SHAPE.release_ms / 3.0)];
        assert!(
            third < 0.2 * SHAPE.sustain_level,
            "release too linear: {third}"
        );
        assert!(
            levels.windows(2).all(|w| w[1] <= w[0]),
            "release not falling"
        );
    }

    #[test]
    fn fade_is_linear_and_exactly_as_long_as_asked() {
        let coefficients = AdsrCoefficients::new(SHAPE, TICK_RATE_HZ);
        let mut envelope = Envelope::IDLE;
        envelope.trigger(&coefficients);
        run(&mut envelope, &coefficients, ticks(1_000.0));
        envelope.fade_out(96.0);
        let levels = run(&mut envelope, &coefficients, 96);
        assert!(!envelope.is_active());
        let step = SHAPE.sustain_level / 96.0;
        assert!(levels
            .windows(2)
            .all(|w| (w[0] - w[1] - step).abs() < 1e-5 || w[1] == 0.0));
    }

    #[test]
    fn release_during_attack_starts_from_the_current_level() {
        let coefficients = AdsrCoefficients::new(SHAPE, TICK_RATE_HZ);
        let mut envelope = Envelope::IDLE;
        envelope.trigger(&coefficients);
        run(&mut envelope, &coefficients, ticks(2.0));
        let before = envelope.level();
        envelope.release(&coefficients);
        let after = envelope.next_level(&coefficients);
        assert!(
            after < before && after > 0.9 * before,
            "{before} -> {after}"
        );
    }

    #[test]
    fn idle_envelope_stays_silent() {
        let coefficients = AdsrCoefficients::new(SHAPE, TICK_RATE_HZ);
        let mut envelope = Envelope::IDLE;
        envelope.release(&coefficients);
        envelope.fade_out(10.0);
        assert!(run(&mut envelope, &coefficients, 100)
            .iter()
            .all(|l| *l == 0.0));
    }
}
