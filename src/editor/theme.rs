//! The panel's one dark theme: colours and spacing.

use egui::{vec2, Color32, Context, Theme};

use crate::status::Activity;

/// Window background.
pub const BACKGROUND: Color32 = Color32::from_rgb(0x15, 0x17, 0x1c);
/// Fill of a control group.
pub const GROUP_FILL: Color32 = Color32::from_rgb(0x1d, 0x20, 0x27);
/// Background of a piano roll.
pub const ROLL_FILL: Color32 = Color32::from_rgb(0x0f, 0x11, 0x15);
/// Body text.
pub const TEXT: Color32 = Color32::from_rgb(0xd8, 0xdc, 0xe3);
/// Secondary text (units, captions, zero counters).
pub const TEXT_DIM: Color32 = Color32::from_rgb(0x86, 0x8c, 0x98);
/// The brand colour: title, group captions, the Generate button.
pub const ACCENT: Color32 = Color32::from_rgb(0x3f, 0xc1, 0xc9);
/// Notes of the player's phrase.
pub const PHRASE: Color32 = Color32::from_rgb(0x5b, 0x9c, 0xff);
/// Notes of WaveJam's answer.
pub const ANSWER: Color32 = Color32::from_rgb(0xff, 0xa3, 0x4d);
/// Counters that are not zero.
pub const WARNING: Color32 = Color32::from_rgb(0xff, 0xc1, 0x4d);
/// Panic and errors.
pub const DANGER: Color32 = Color32::from_rgb(0xe0, 0x55, 0x55);

/// The indicator colour of what WaveJam is doing.
pub fn activity_colour(activity: Activity) -> Color32 {
    match activity {
        Activity::Listening => Color32::from_rgb(0x4a, 0x6b, 0x55),
        Activity::Hearing => PHRASE,
        Activity::Waiting => WARNING,
        Activity::Answering => ANSWER,
    }
}

/// Install the theme in `ctx` (dark whatever the system prefers, tighter spacing for 760×560 px).
pub fn apply(ctx: &Context) {
    ctx.set_theme(Theme::Dark);
    ctx.style_mut_of(Theme::Dark, |style| {
        style.visuals.panel_fill = BACKGROUND;
        style.visuals.window_fill = BACKGROUND;
        style.visuals.extreme_bg_color = ROLL_FILL;
        style.visuals.override_text_color = Some(TEXT);
        style.spacing.item_spacing = vec2(6.0, 4.0);
        style.spacing.button_padding = vec2(6.0, 2.0);
    });
}
