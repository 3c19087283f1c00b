//! A small read-only piano roll: time in beats on x, pitch on y (high at the top), velocity as
//! brightness, with beat and bar lines.

use egui::{pos2, vec2, Align2, Color32, FontId, Rangef, Rect, Response, Sense, Stroke, Ui, Vec2};

use crate::editor::theme;
use crate::music::Note;

/// Semitones shown above the highest and below the lowest note.
const PITCH_MARGIN: u8 = 2;
/// Beat lines are drawn only when beats are at least this far apart, in logical px.
const MIN_BEAT_SPACING_PX: f32 = 6.0;
/// Pitch labels are drawn only when octaves are at least this tall, in logical px.
const MIN_LABEL_OCTAVE_PX: f32 = 12.0;
/// Size of the pitch labels, in logical px.
const LABEL_FONT_PX: f32 = 9.0;
/// Brightness of the quietest note (velocity 0) relative to the loudest (127).
const MIN_BRIGHTNESS: f32 = 0.3;
/// Width of the key strip left of the notes, in logical px.
const KEY_STRIP_PX: f32 = 20.0;
/// Shortest drawn note, in logical px, so very short notes stay visible.
const MIN_NOTE_WIDTH_PX: f32 = 2.0;

/// The pitches shown for `notes`, lowest and highest inclusive: their span ± [`PITCH_MARGIN`],
/// within MIDI's 0–127. `None` when there are no notes.
pub fn pitch_span(notes: &[Note]) -> Option<(u8, u8)> {
    let low = notes.iter().map(|n| n.pitch.min(127)).min()?;
    let high = notes.iter().map(|n| n.pitch.min(127)).max()?;
    Some((
        low.saturating_sub(PITCH_MARGIN),
        (high + PITCH_MARGIN).min(127),
    ))
}

/// The beats shown for `notes`: their last release rounded up to whole bars of `bar_beats`
/// beats, at least one bar.
pub fn shown_beats(notes: &[Note], bar_beats: f64) -> f64 {
    let end = notes.iter().map(Note::end_beats).fold(0.0, f64::max);
    let bars = (end / bar_beats).ceil().max(1.0);
    bars * bar_beats
}

/// The length of `notes` in whole bars, as [`shown_beats`] shows them.
pub fn shown_bars(notes: &[Note], bar_beats: f64) -> u32 {
    (shown_beats(notes, bar_beats) / bar_beats).round() as u32
}

/// MIDI key `pitch` as a name, middle C (60) being "C4".
pub fn pitch_name(pitch: u8) -> String {
    const NAMES: [&str; 12] = [
        "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B",
    ];
    format!(
        "{}{}",
        NAMES[usize::from(pitch % 12)],
        i32::from(pitch / 12) - 1
    )
}

/// Whether `pitch` is a black key.
fn is_black_key(pitch: u8) -> bool {
    matches!(pitch % 12, 1 | 3 | 6 | 8 | 10)
}

/// Fill of a key in the key strip.
fn key_colour(black: bool) -> Color32 {
    if black {
        Color32::from_rgb(0x0b, 0x0c, 0x0f)
    } else {
        Color32::from_rgb(0x34, 0x38, 0x41)
    }
}

/// `colour` at a note's `velocity` (1–127): brighter when louder.
fn velocity_colour(colour: Color32, velocity: u8) -> Color32 {
    let loudness = f32::from(velocity.min(127)) / 127.0;
    theme::ROLL_FILL.lerp_to_gamma(colour, MIN_BRIGHTNESS + (1.0 - MIN_BRIGHTNESS) * loudness)
}

/// Paint a piano roll of `notes` (beats from 0) in a `size` area; `colour` is a note at full
/// velocity, `bar_beats` the bar length in beats for the grid.
pub fn show(ui: &mut Ui, notes: &[Note], bar_beats: f64, colour: Color32, size: Vec2) -> Response {
    let (response, painter) = ui.allocate_painter(size, Sense::hover());
    let rect = response.rect;
    painter.rect_filled(rect, 3.0, theme::ROLL_FILL);
    let Some((low, high)) = pitch_span(notes) else {
        painter.text(
            rect.center(),
            Align2::CENTER_CENTER,
            "nothing yet",
            FontId::proportional(12.0),
            theme::TEXT_DIM,
        );
        return response;
    };
    let grid = Grid::new(rect, low, high, shown_beats(notes, bar_beats));
    grid.paint_rows(&painter);
    grid.paint_beat_lines(&painter, bar_beats);
    for note in notes {
        painter.rect_filled(
            grid.note_rect(note),
            1.0,
            velocity_colour(colour, note.velocity),
        );
    }
    response
}

/// Where beats and pitches fall in a roll's rectangle: a key strip on the left, note lanes right.
struct Grid {
    /// The key strip, one key per row.
    keys: Rect,
    /// The note lanes: beats across, pitches down.
    lanes: Rect,
    low: u8,
    high: u8,
    /// Beats across the lanes.
    beats: f64,
    /// Height of one semitone, in logical px.
    row_px: f32,
}

impl Grid {
    fn new(rect: Rect, low: u8, high: u8, beats: f64) -> Self {
        let rows = f32::from(high - low) + 1.0;
        let (keys, lanes) = rect.split_left_right_at_x(rect.left() + KEY_STRIP_PX);
        Self {
            keys,
            lanes,
            low,
            high,
            beats,
            row_px: rect.height() / rows,
        }
    }

    /// x of `beat`, in logical px.
    fn x(&self, beat: f64) -> f32 {
        self.lanes.left() + (beat / self.beats) as f32 * self.lanes.width()
    }

    /// Top y of `pitch`'s row, in logical px.
    fn row_top(&self, pitch: u8) -> f32 {
        self.lanes.top() + f32::from(self.high - pitch) * self.row_px
    }

    fn note_rect(&self, note: &Note) -> Rect {
        let pitch = note.pitch.clamp(self.low, self.high);
        let left = self.x(note.onset_beats);
        let right = self.x(note.end_beats()).max(left + MIN_NOTE_WIDTH_PX);
        let top = self.row_top(pitch);
        Rect::from_min_max(pos2(left, top + 0.5), pos2(right, top + self.row_px - 0.5))
            .intersect(self.lanes)
    }

    /// Draw the key strip, shade black-key lanes, and label every C (or the lowest key when no C
    /// is shown).
    fn paint_rows(&self, painter: &egui::Painter) {
        let has_c = (self.low..=self.high).any(|p| p % 12 == 0);
        for pitch in self.low..=self.high {
            let top = self.row_top(pitch);
            let y_range = Rangef::new(top, top + self.row_px);
            let key = Rect::from_x_y_ranges(self.keys.x_range(), y_range);
            let black = is_black_key(pitch);
            painter.rect_filled(key.shrink2(vec2(0.0, 0.25)), 0.0, key_colour(black));
            if black {
                let lane = Rect::from_x_y_ranges(self.lanes.x_range(), y_range);
                painter.rect_filled(lane, 0.0, Color32::from_white_alpha(6));
            }
            let labelled = if has_c {
                pitch % 12 == 0
            } else {
                pitch == self.low
            };
            if labelled && 12.0 * self.row_px >= MIN_LABEL_OCTAVE_PX {
                painter.text(
                    pos2(self.keys.left() + 2.0, key.center().y),
                    Align2::LEFT_CENTER,
                    pitch_name(pitch),
                    FontId::proportional(LABEL_FONT_PX),
                    theme::TEXT,
                );
            }
        }
    }

    /// A faint line on every beat (when they are far enough apart) and a brighter one on bars.
    fn paint_beat_lines(&self, painter: &egui::Painter, bar_beats: f64) {
        let beat_stroke = Stroke::new(1.0, Color32::from_white_alpha(14));
        let bar_stroke = Stroke::new(1.0, Color32::from_white_alpha(40));
        let px_per_beat = self.lanes.width() / self.beats as f32;
        let beats = self.beats.round() as u32;
        for beat in 1..beats {
            let on_bar = (f64::from(beat) / bar_beats).fract().abs() < 1e-9;
            if on_bar || px_per_beat >= MIN_BEAT_SPACING_PX {
                let stroke = if on_bar { bar_stroke } else { beat_stroke };
                painter.vline(self.x(f64::from(beat)), self.lanes.y_range(), stroke);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_kit::note;

    #[test]
    fn pitch_span_adds_a_margin_within_midi_range() {
        assert_eq!(pitch_span(&[]), None);
        assert_eq!(
            pitch_span(&[note(60, 0.0, 1.0), note(67, 1.0, 1.0)]),
            Some((58, 69))
        );
        assert_eq!(
            pitch_span(&[note(0, 0.0, 1.0), note(127, 0.0, 1.0)]),
            Some((0, 127))
        );
    }

    #[test]
    fn length_rounds_up_to_whole_bars() {
        assert_eq!(shown_beats(&[], 4.0), 4.0);
        assert_eq!(shown_beats(&[note(60, 0.0, 4.0)], 4.0), 4.0);
        assert_eq!(shown_beats(&[note(60, 3.5, 1.0)], 4.0), 8.0);
        assert_eq!(shown_bars(&[note(60, 5.0, 1.0)], 3.0), 2);
    }

    #[test]
    fn notes_land_on_their_row_and_beat() {
        let rect = Rect::from_min_size(pos2(10.0, 20.0), vec2(400.0, 100.0));
        let grid = Grid::new(rect, 60, 64, 8.0);
        let r = grid.note_rect(&note(64, 2.0, 2.0));
        let lanes_left = 10.0 + KEY_STRIP_PX;
        let beat_px = (400.0 - KEY_STRIP_PX) / 8.0;
        assert_eq!(
            (r.left(), r.right()),
            (lanes_left + 2.0 * beat_px, lanes_left + 4.0 * beat_px)
        );
        assert!(
            (r.top() - 20.5).abs() < 1e-4,
            "highest pitch is the top row"
        );
        let low = grid.note_rect(&note(60, 0.0, 0.001));
        assert!(low.bottom() <= rect.bottom() && low.width() >= MIN_NOTE_WIDTH_PX);
    }

    #[test]
    fn names_and_brightness() {
        assert_eq!(pitch_name(60), "C4");
        assert_eq!(pitch_name(61), "C#4");
        assert_eq!(pitch_name(0), "C-1");
        let soft = velocity_colour(theme::ANSWER, 1);
        let loud = velocity_colour(theme::ANSWER, 127);
        assert_eq!(loud, theme::ANSWER);
        assert!(soft.r() < loud.r());
    }
}
