//! Parameter widgets (sliders, choice buttons, toggles) and the Generate trigger's pulse.

use std::time::{Duration, Instant};

use egui::Ui;
use nice_plug::context::gui::ParamSetter;
use nice_plug::prelude::*;

use crate::params::MAX_SEED;

/// Width of a parameter slider, in logical px (its value text comes after it).
pub const SLIDER_WIDTH: f32 = 130.0;

/// Shortest time the Generate trigger stays on. A change made in the GUI reaches the plugin only
/// at the end of a process block, so the "on" must outlast at least one whole block (blocks are
/// rarely longer than ~40 ms).
pub const GENERATE_MIN_HOLD: Duration = Duration::from_millis(50);
/// Longest time the Generate trigger stays on when the plugin never sees it (the host is not
/// processing), so the button does not stick.
pub const GENERATE_MAX_HOLD: Duration = Duration::from_millis(500);

/// Set `param` to `value` as one complete gesture (a click, not a drag).
pub fn set_once<P: Param>(setter: &ParamSetter, param: &P, value: P::Plain) {
    setter.begin_set_parameter(param);
    setter.set_parameter(param, value);
    setter.end_set_parameter(param);
}

/// A slider for a continuous or integer parameter (see [`super::slider`]).
pub fn slider<P: Param>(ui: &mut Ui, param: &P, setter: &ParamSetter) {
    super::slider::param_slider(ui, param, setter, SLIDER_WIDTH);
}

/// One button per variant of an enum parameter, the current one highlighted.
pub fn choice<T: Enum + PartialEq + 'static>(
    ui: &mut Ui,
    param: &EnumParam<T>,
    setter: &ParamSetter,
) {
    let current = param.value().to_index();
    ui.horizontal(|ui| {
        ui.spacing_mut().item_spacing.x = 2.0;
        for (index, name) in T::variants().iter().enumerate() {
            if ui.selectable_label(index == current, *name).clicked() && index != current {
                set_once(setter, param, T::from_index(index));
            }
        }
    });
}

/// A checkbox for a bool parameter, with `hint` saying what "on" does.
pub fn toggle(ui: &mut Ui, param: &BoolParam, setter: &ParamSetter, hint: &str) {
    let mut on = param.value();
    if ui.checkbox(&mut on, hint).changed() {
        set_once(setter, param, on);
    }
}

/// A seed different from `seed`, derived from it deterministically (`(seed · 7919 + 1) mod
/// (MAX_SEED + 1)`, which has no fixed point), so the GUI holds no randomness.
pub fn next_seed(seed: i32) -> i32 {
    let modulus = i64::from(MAX_SEED) + 1;
    ((i64::from(seed.clamp(0, MAX_SEED)) * 7919 + 1) % modulus) as i32
}

/// The Generate trigger while it is on: the plugin answers on its rising edge, so the "on" must
/// last until the plugin has seen it before it falls again.
#[derive(Debug, Default)]
pub struct GeneratePulse {
    /// When the trigger went on; `None` while it is off.
    since: Option<Instant>,
}

impl GeneratePulse {
    /// Whether the trigger is on.
    pub fn is_on(&self) -> bool {
        self.since.is_some()
    }

    /// Turn the trigger on (a gesture starts); does nothing while it is already on.
    pub fn start(&mut self, setter: &ParamSetter, param: &BoolParam, now: Instant) {
        if self.since.is_none() {
            setter.begin_set_parameter(param);
            setter.set_parameter(param, true);
            self.since = Some(now);
        }
    }

    /// Turn the trigger off once it has been on long enough; call every frame.
    pub fn update(&mut self, setter: &ParamSetter, param: &BoolParam, now: Instant) {
        if let Some(since) = self.since {
            if release_due(now.saturating_duration_since(since), param.value()) {
                self.finish(setter, param);
            }
        }
    }

    /// Turn the trigger off now and end the gesture (e.g. the editor reopened while it was on).
    pub fn finish(&mut self, setter: &ParamSetter, param: &BoolParam) {
        setter.set_parameter(param, false);
        setter.end_set_parameter(param);
        self.since = None;
    }
}

/// Whether a trigger that has been on for `held` may go off. `applied`: the plugin's parameter
/// already reads "on", so the audio thread has seen the rising edge or starts its next block
/// with it (a later "off" can only land in a later block).
fn release_due(held: Duration, applied: bool) -> bool {
    held >= GENERATE_MIN_HOLD && (applied || held >= GENERATE_MAX_HOLD)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_seed_is_always_different_and_in_range() {
        for seed in 0..=MAX_SEED {
            let next = next_seed(seed);
            assert_ne!(next, seed);
            assert!((0..=MAX_SEED).contains(&next));
        }
        assert_eq!(next_seed(1), 7920);
        assert_eq!(next_seed(1), next_seed(1));
    }

    #[test]
    fn generate_stays_on_until_seen_and_held() {
        let ms = Duration::from_millis;
        assert!(
            !release_due(ms(10), true),
            "too short for a block to see it"
        );
        assert!(
            !release_due(ms(60), false),
            "the plugin has not applied it yet"
        );
        assert!(release_due(ms(60), true));
        assert!(
            release_due(GENERATE_MAX_HOLD, false),
            "a host that never processes"
        );
    }
}
