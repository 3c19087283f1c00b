//! One synth voice and the sound design it plays.
//!
//! Two band-limited saws detuned ±6 cents, panned slightly apart, go through one state-variable
//! lowpass per channel; a sine one octave down is added under them unfiltered, and the amplitude
//! envelope shapes the sum. Velocity sets level (24 dB range) and brightness (base cutoff and
//! filter-envelope depth). Everything that depends only on the note is computed in `start`.

use super::envelope::{AdsrCoefficients, AdsrShape, Envelope};
use super::filter::{Svf, SvfCoefficients};
use super::oscillator::{BlepSaw, BlepTable, ParabolicSine};
use super::{VoiceKey, VoiceSource};

/// Amplitude envelope: a quick but click-free attack, a slow fall to a sustained body.
const AMP_SHAPE: AdsrShape = AdsrShape {
    attack_ms: 5.0,
    decay_ms: 400.0,
    sustain_level: 0.6,
    release_ms: 300.0,
};
/// Filter envelope: opens fast for a soft pluck, then settles darker than its peak.
const FILTER_SHAPE: AdsrShape = AdsrShape {
    attack_ms: 3.0,
    decay_ms: 600.0,
    sustain_level: 0.3,
    release_ms: 400.0,
};
/// Each saw sits this far above or below the note, in cents: a slow, warm beating.
const DETUNE_CENTS: f32 = 6.0;
/// Share of a saw in its own side's channel; the rest goes to the other side (gentle width).
const SAW_NEAR_SIDE_GAIN: f32 = 0.65;
/// Share of a saw in the opposite channel.
const SAW_FAR_SIDE_GAIN: f32 = 1.0 - SAW_NEAR_SIDE_GAIN;
/// Level of the sub-octave sine relative to a full-scale saw (about −7 dB).
const SUB_GAIN: f32 = 0.45;
/// Output gain of one voice at full velocity: leaves headroom for 16 loud voices.
const VOICE_GAIN: f32 = 0.18;
/// Level difference between velocity 1 and velocity 0, in dB (linear in dB in between).
const VELOCITY_RANGE_DB: f32 = 24.0;
/// Lowpass cutoff at middle C (MIDI 60), velocity 0, filter envelope closed, in Hz.
const CUTOFF_AT_MIDDLE_C_HZ: f32 = 400.0;
/// Octaves the cutoff moves per octave of pitch, so high notes are not muffled.
const CUTOFF_KEY_TRACKING: f32 = 0.5;
/// Octaves the base cutoff rises from velocity 0 to velocity 1.
const CUTOFF_VELOCITY_OCTAVES: f32 = 2.5;
/// Octaves a fully open filter envelope adds to the cutoff at velocity 0 ...
const ENVELOPE_OCTAVES_AT_ZERO_VELOCITY: f32 = 1.5;
/// ... and how many more it adds at velocity 1.
const ENVELOPE_OCTAVES_PER_VELOCITY: f32 = 2.0;
/// Duration of the fade that silences a stolen voice, in milliseconds (≥ 2 ms: no click).
const STEAL_FADE_MS: f32 = 3.0;
/// Rate at which the filter envelope and cutoff are recomputed, in Hz; the filter coefficients
/// are ramped linearly per sample in between, so the cutoff never steps.
const CONTROL_RATE_HZ: f32 = 3_000.0;

/// Everything voices share at one sample rate: envelope recursions, the control period and
/// the BLEP table.
#[derive(Clone, Debug)]
pub(super) struct VoiceContext {
    sample_rate_hz: f32,
    /// Amplitude envelope, advanced every sample.
    amp_envelope: AdsrCoefficients,
    /// Filter envelope, advanced every control tick.
    filter_envelope: AdsrCoefficients,
    /// Samples between control ticks.
    control_period_samples: usize,
    /// `1 / control_period_samples`, for the coefficient ramps.
    inverse_control_period: f32,
    /// Length of a steal fade, in samples.
    steal_fade_samples: f32,
    /// Band-limited step residual shared by every saw (independent of sample rate).
    blep: BlepTable,
}

impl VoiceContext {
    /// A context for `sample_rate_hz`; builds the BLEP table, so call it outside the audio thread.
    pub(super) fn new(sample_rate_hz: f32) -> Self {
        let mut context = Self {
            sample_rate_hz: 0.0,
            amp_envelope: AdsrCoefficients::default(),
            filter_envelope: AdsrCoefficients::default(),
            control_period_samples: 1,
            inverse_control_period: 1.0,
            steal_fade_samples: 1.0,
            blep: BlepTable::new(),
        };
        context.set_sample_rate(sample_rate_hz);
        context
    }

    /// Recomputes every rate-dependent coefficient (no allocation).
    pub(super) fn set_sample_rate(&mut self, sample_rate_hz: f32) {
        let control_period_samples = (sample_rate_hz / CONTROL_RATE_HZ).round().max(1.0) as usize;
        let control_rate_hz = sample_rate_hz / control_period_samples as f32;
        self.sample_rate_hz = sample_rate_hz;
        self.amp_envelope = AdsrCoefficients::new(AMP_SHAPE, sample_rate_hz);
        self.filter_envelope = AdsrCoefficients::new(FILTER_SHAPE, control_rate_hz);
        self.control_period_samples = control_period_samples;
        self.inverse_control_period = 1.0 / control_period_samples as f32;
        self.steal_fade_samples = STEAL_FADE_MS * 0.001 * sample_rate_hz;
    }
}

/// One voice slot. Idle slots keep stale oscillator and filter state, which `start` replaces.
#[derive(Clone, Copy, Debug)]
pub(super) struct Voice {
    /// Which note this voice plays, for note-off matching.
    key: VoiceKey,
    /// Order of the note-on that started it (higher is newer).
    started_stamp: u64,
    /// Order of the note-off that released it (higher is newer); 0 while held.
    released_stamp: u64,
    /// Saw `DETUNE_CENTS` below the note, leaning left.
    saw_down: BlepSaw,
    /// Saw `DETUNE_CENTS` above the note, leaning right.
    saw_up: BlepSaw,
    /// Sine one octave below the note, centred.
    sub: ParabolicSine,
    /// Output level, advanced every sample.
    amp_envelope: Envelope,
    /// Cutoff modulation, advanced every control tick.
    filter_envelope: Envelope,
    left_filter: Svf,
    right_filter: Svf,
    /// Filter coefficients at the current sample, ramping towards `target_coefficients`.
    coefficients: SvfCoefficients,
    /// Per-sample increment of `coefficients` during this control period.
    coefficient_step: SvfCoefficients,
    /// Coefficients at the next control tick.
    target_coefficients: SvfCoefficients,
    /// Samples left before the next control tick.
    control_countdown: usize,
    /// Linear output gain from velocity.
    gain: f32,
    /// Cutoff with the filter envelope closed, in Hz (from key and velocity).
    base_cutoff_hz: f32,
    /// Octaves a fully open filter envelope adds to `base_cutoff_hz`.
    envelope_octaves: f32,
}

impl Voice {
    /// A silent slot.
    pub(super) fn idle() -> Self {
        Self {
            key: VoiceKey {
                source: VoiceSource::Player,
                channel: 0,
                key: 0,
            },
            started_stamp: 0,
            released_stamp: 0,
            saw_down: BlepSaw::default(),
            saw_up: BlepSaw::default(),
            sub: ParabolicSine::default(),
            amp_envelope: Envelope::IDLE,
            filter_envelope: Envelope::IDLE,
            left_filter: Svf::default(),
            right_filter: Svf::default(),
            coefficients: SvfCoefficients::default(),
            coefficient_step: SvfCoefficients::default(),
            target_coefficients: SvfCoefficients::default(),
            control_countdown: 0,
            gain: 0.0,
            base_cutoff_hz: 0.0,
            envelope_octaves: 0.0,
        }
    }

    /// Starts `key` at `velocity` (`0.0..=1.0`) from silence; `start_phases_cycles` gives the
    /// saws and the sub their free-running starting phases.
    pub(super) fn start(
        &mut self,
        key: VoiceKey,
        velocity: f32,
        started_stamp: u64,
        start_phases_cycles: [f32; 3],
        context: &VoiceContext,
    ) {
        let sample_rate_hz = context.sample_rate_hz;
        let semitones_from_a4 = key.key as f32 - 69.0;
        let frequency_hz = 440.0 * (semitones_from_a4 / 12.0).exp2();
        let detune_ratio = (DETUNE_CENTS / 1_200.0).exp2();
        let octaves_from_middle_c = (key.key as f32 - 60.0) / 12.0;
        let base_cutoff_hz = CUTOFF_AT_MIDDLE_C_HZ
            * (CUTOFF_KEY_TRACKING * octaves_from_middle_c + CUTOFF_VELOCITY_OCTAVES * velocity)
                .exp2();
        let coefficients = SvfCoefficients::lowpass(base_cutoff_hz, sample_rate_hz);
        let [down_phase, up_phase, sub_phase] = start_phases_cycles;
        *self = Self {
            key,
            started_stamp,
            released_stamp: 0,
            saw_down: BlepSaw::new(frequency_hz / detune_ratio, sample_rate_hz, down_phase),
            saw_up: BlepSaw::new(frequency_hz * detune_ratio, sample_rate_hz, up_phase),
            sub: ParabolicSine::new(0.5 * frequency_hz, sample_rate_hz, sub_phase),
            amp_envelope: Envelope::IDLE,
            filter_envelope: Envelope::IDLE,
            left_filter: Svf::default(),
            right_filter: Svf::default(),
            coefficients,
            coefficient_step: SvfCoefficients::default(),
            target_coefficients: coefficients,
            control_countdown: 0,
            gain: VOICE_GAIN * 10.0_f32.powf(VELOCITY_RANGE_DB * (velocity - 1.0) / 20.0),
            base_cutoff_hz,
            envelope_octaves: ENVELOPE_OCTAVES_AT_ZERO_VELOCITY
                + ENVELOPE_OCTAVES_PER_VELOCITY * velocity,
        };
        self.amp_envelope.trigger(&context.amp_envelope);
        self.filter_envelope.trigger(&context.filter_envelope);
    }

    /// Note-off: both envelopes enter their release; `released_stamp` orders releases.
    pub(super) fn release(&mut self, released_stamp: u64, context: &VoiceContext) {
        if self.amp_envelope.is_held() {
            self.amp_envelope.release(&context.amp_envelope);
            self.filter_envelope.release(&context.filter_envelope);
            self.released_stamp = released_stamp;
        }
    }

    /// Steal: fades to silence over `STEAL_FADE_MS` whatever stage it is in.
    pub(super) fn fade_out(&mut self, context: &VoiceContext) {
        self.amp_envelope.fade_out(context.steal_fade_samples);
    }

    /// Silences at once (reset).
    pub(super) fn stop(&mut self) {
        *self = Self::idle();
    }

    pub(super) fn key(&self) -> VoiceKey {
        self.key
    }

    pub(super) fn started_stamp(&self) -> u64 {
        self.started_stamp
    }

    pub(super) fn released_stamp(&self) -> u64 {
        self.released_stamp
    }

    /// Still producing sound (held, releasing or fading).
    pub(super) fn is_active(&self) -> bool {
        self.amp_envelope.is_active()
    }

    /// Key still down.
    pub(super) fn is_held(&self) -> bool {
        self.amp_envelope.is_held()
    }

    /// Being faded out after a steal: no longer counts against the polyphony.
    pub(super) fn is_fading(&self) -> bool {
        self.amp_envelope.is_fading()
    }

    /// Current amplitude-envelope level, `0.0..=1.0`.
    pub(super) fn level(&self) -> f32 {
        self.amp_envelope.level()
    }

    /// Adds this voice's output to `left` and `right` (same length). The state advances one step
    /// per sample whatever the slice boundaries, so rendering in pieces gives identical output.
    pub(super) fn render_add(
        &mut self,
        context: &VoiceContext,
        left: &mut [f32],
        right: &mut [f32],
    ) {
        let mut start = 0;
        while start < left.len() && self.is_active() {
            if self.control_countdown == 0 {
                self.control_tick(context);
            }
            let end = left.len().min(start + self.control_countdown);
            self.render_run(context, &mut left[start..end], &mut right[start..end]);
            self.control_countdown -= end - start;
            start = end;
        }
    }

    /// Advances the filter envelope and sets up the coefficient ramp to the new cutoff.
    fn control_tick(&mut self, context: &VoiceContext) {
        // Land exactly on the last target so rounding in the ramp never accumulates.
        self.coefficients = self.target_coefficients;
        let envelope_level = self.filter_envelope.next_level(&context.filter_envelope);
        let cutoff_hz = self.base_cutoff_hz * (self.envelope_octaves * envelope_level).exp2();
        self.target_coefficients = SvfCoefficients::lowpass(cutoff_hz, context.sample_rate_hz);
        self.coefficient_step = self
            .coefficients
            .step_towards(self.target_coefficients, context.inverse_control_period);
        self.control_countdown = context.control_period_samples;
    }

    /// The per-sample loop over a stretch within one control period. The state lives in locals
    /// for the loop so the compiler keeps it in registers.
    #[inline(always)]
    fn render_run(&mut self, context: &VoiceContext, left: &mut [f32], right: &mut [f32]) {
        let blep = &context.blep;
        let amp_coefficients = &context.amp_envelope;
        let (mut saw_down, mut saw_up, mut sub) = (self.saw_down, self.saw_up, self.sub);
        let (mut left_filter, mut right_filter) = (self.left_filter, self.right_filter);
        let mut envelope = self.amp_envelope;
        let mut coefficients = self.coefficients;
        let (step, gain) = (self.coefficient_step, self.gain);
        for (left, right) in left.iter_mut().zip(right.iter_mut()) {
            coefficients.advance(step);
            let down = saw_down.next_sample(blep);
            let up = saw_up.next_sample(blep);
            let left_saws = SAW_NEAR_SIDE_GAIN * down + SAW_FAR_SIDE_GAIN * up;
            let right_saws = SAW_FAR_SIDE_GAIN * down + SAW_NEAR_SIDE_GAIN * up;
            let sub = SUB_GAIN * sub.next_sample();
            let amplitude = gain * envelope.next_level(amp_coefficients);
            *left += amplitude * (left_filter.lowpass(&coefficients, left_saws) + sub);
            *right += amplitude * (right_filter.lowpass(&coefficients, right_saws) + sub);
        }
        (self.saw_down, self.saw_up, self.sub) = (saw_down, saw_up, sub);
        (self.left_filter, self.right_filter) = (left_filter, right_filter);
        self.amp_envelope = envelope;
        self.coefficients = coefficients;
    }
}
