//! A slider for one parameter whose every touch is one whole host gesture: begun when the
//! pointer goes down on it, ended when the pointer comes up, whether it dragged or only clicked
//! (a host recording automation in touch or latch mode holds a parameter for as long as its
//! gesture lasts). Drag or click to set, shift-drag for fine steps, double-click or ctrl-click to
//! reset, click the value to type one.

use egui::{emath, vec2, Key, PointerButton, Response, Sense, Stroke, TextEdit, TextStyle, Ui};
use nice_plug::context::gui::ParamSetter;
use nice_plug::prelude::*;

/// Change of the normalised value per logical pixel of a shift-drag.
const FINE_DRAG_PER_PIXEL: f32 = 0.0015;
/// Height of the slider bar, in logical px.
const HEIGHT: f32 = 18.0;

/// What one slider keeps between frames while it is touched or typed into (in egui's memory,
/// under the slider's own id).
#[derive(Debug, Clone, Default)]
struct Touch {
    /// A gesture is open: the pointer went down on the slider and has not come up.
    gesture: bool,
    /// A shift-drag's normalised value at its start and the pixels dragged since.
    fine: Option<(f32, f32)>,
    /// The text being typed in the value field, while it has the focus.
    typing: Option<String>,
}

/// Draws the slider for `param`, `width` logical px wide, its value after it; returns the bar's
/// response.
pub fn param_slider<P: Param>(
    ui: &mut Ui,
    param: &P,
    setter: &ParamSetter,
    width: f32,
) -> Response {
    ui.horizontal(|ui| {
        let (_, response) = ui.allocate_exact_size(vec2(width, HEIGHT), Sense::click_and_drag());
        let id = response.id;
        let mut touch: Touch = ui.data(|d| d.get_temp(id)).unwrap_or_default();
        drag(ui, &response, param, setter, &mut touch);
        paint(ui, &response, param.modulated_normalized_value());
        value_field(ui, id, param, setter, &mut touch);
        ui.data_mut(|d| d.insert_temp(id, touch));
        response
    })
    .inner
}

/// The pointer's part: opens the gesture on the press, sets values while it is down, closes it
/// on the release.
fn drag<P: Param>(
    ui: &Ui,
    response: &Response,
    param: &P,
    setter: &ParamSetter,
    touch: &mut Touch,
) {
    let down = response.is_pointer_button_down_on() && ui.input(|i| i.pointer.primary_down());
    if down && !touch.gesture {
        setter.begin_set_parameter(param);
        touch.gesture = true;
        touch.fine = None;
    }
    let (command, shift) = ui.input(|i| (i.modifiers.command, i.modifiers.shift));
    if down {
        if command {
            set(param, setter, param.default_normalized_value());
        } else if shift {
            let (start, pixels) = touch
                .fine
                .unwrap_or((param.modulated_normalized_value(), 0.0));
            let pixels = pixels + response.drag_delta().x;
            touch.fine = Some((start, pixels));
            set(
                param,
                setter,
                (start + pixels * FINE_DRAG_PER_PIXEL).clamp(0.0, 1.0),
            );
        } else if let Some(pointer) = response.interact_pointer_pos() {
            touch.fine = None;
            let at = emath::remap_clamp(pointer.x, response.rect.x_range(), 0.0..=1.0);
            set(param, setter, at);
        }
    }
    let tapped_at = response
        .interact_pointer_pos()
        .filter(|_| response.clicked_by(PointerButton::Primary) && !touch.gesture);
    if let Some(pointer) = tapped_at {
        // Pressed and released within one frame (a trackpad's tap): the pointer was never seen
        // down on it. (A key's "click" on a focused slider has no pointer, and changes nothing.)
        setter.begin_set_parameter(param);
        let at = if command {
            param.default_normalized_value()
        } else {
            emath::remap_clamp(pointer.x, response.rect.x_range(), 0.0..=1.0)
        };
        set(param, setter, at);
        setter.end_set_parameter(param);
    }
    if response.double_clicked() {
        if !touch.gesture {
            setter.begin_set_parameter(param);
            touch.gesture = true;
        }
        set(param, setter, param.default_normalized_value());
    }
    if touch.gesture && !down {
        setter.end_set_parameter(param);
        touch.gesture = false;
    }
}

/// Sets `param` to the plain value nearest `normalized`, if that changes it (inside an open
/// gesture).
fn set<P: Param>(param: &P, setter: &ParamSetter, normalized: f32) {
    let value = param.preview_plain(normalized);
    if value != param.modulated_plain_value() {
        setter.set_parameter(param, value);
    }
}

/// Flat bar: background, the filled share, a thin border.
fn paint(ui: &Ui, response: &Response, normalized: f32) {
    if !ui.is_rect_visible(response.rect) {
        return;
    }
    let visuals = ui.visuals();
    let painter = ui.painter();
    painter.rect_filled(response.rect, 0.0, visuals.widgets.inactive.bg_fill);
    let mut filled = response.rect;
    filled.set_width(response.rect.width() * normalized.clamp(0.0, 1.0));
    let fill = if response.hovered() {
        visuals.selection.bg_fill.gamma_multiply(1.2)
    } else {
        visuals.selection.bg_fill
    };
    painter.rect_filled(filled, 0.0, fill);
    painter.rect_stroke(
        response.rect,
        0.0,
        Stroke::new(1.0, visuals.widgets.active.bg_fill),
        egui::StrokeKind::Middle,
    );
}

/// The value as text; a click opens it for typing, Enter sets the typed value as one gesture
/// (text the parameter cannot read changes nothing), Escape or a click elsewhere cancels.
fn value_field<P: Param>(
    ui: &mut Ui,
    id: egui::Id,
    param: &P,
    setter: &ParamSetter,
    touch: &mut Touch,
) {
    let field = id.with("value");
    let Some(text) = touch.typing.as_mut() else {
        if ui.button(param.to_string()).clicked() {
            touch.typing = Some(param.to_string());
            ui.memory_mut(|m| m.request_focus(field));
        }
        return;
    };
    let response = ui.add(
        TextEdit::singleline(text)
            .id(field)
            .font(TextStyle::Monospace)
            .desired_width(80.0),
    );
    let (enter, escape) = ui.input(|i| (i.key_pressed(Key::Enter), i.key_pressed(Key::Escape)));
    if enter {
        if let Some(normalized) = param.string_to_normalized_value(text) {
            setter.begin_set_parameter(param);
            set(param, setter, normalized);
            setter.end_set_parameter(param);
        }
    }
    if enter || escape || response.lost_focus() {
        touch.typing = None;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use egui::{pos2, Context, Event, Modifiers, PointerButton, Pos2, RawInput, Rect};
    use nice_plug::context::gui::GuiContextInner;
    use nice_plug::context::PluginApi;
    use nice_plug::params::internals::ParamPtr;

    use super::*;

    /// What the slider told the host, in order.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Call {
        Begin(ParamPtr),
        Set(ParamPtr),
        End(ParamPtr),
    }

    /// A host that records the calls.
    #[derive(Default)]
    struct Host {
        calls: Mutex<Vec<Call>>,
    }

    impl Host {
        fn take(&self) -> Vec<Call> {
            std::mem::take(&mut *self.calls.lock().unwrap())
        }
    }

    impl GuiContextInner for Host {
        fn plugin_api(&self) -> PluginApi {
            PluginApi::Clap
        }
        unsafe fn raw_begin_set_parameter(&self, param: ParamPtr) {
            self.calls.lock().unwrap().push(Call::Begin(param));
        }
        unsafe fn raw_set_parameter_normalized(&self, param: ParamPtr, _normalized: f32) {
            self.calls.lock().unwrap().push(Call::Set(param));
        }
        unsafe fn raw_end_set_parameter(&self, param: ParamPtr) {
            self.calls.lock().unwrap().push(Call::End(param));
        }
        fn get_state(&self) -> PluginState {
            unreachable!("the slider never reads the plugin's state")
        }
        fn set_state(&self, _state: PluginState) {
            unreachable!("the slider never sets the plugin's state")
        }
        fn request_restart(&self) {}
    }

    /// Two sliders in a panel, driven frame by frame with pointer events.
    struct Panel {
        ctx: Context,
        host: Host,
        a: FloatParam,
        b: FloatParam,
        /// The bars' rectangles, as of the last frame.
        bars: [Rect; 2],
    }

    impl Panel {
        fn new() -> Self {
            let param =
                |name| FloatParam::new(name, 0.5, FloatRange::Linear { min: 0.0, max: 1.0 });
            let mut panel = Self {
                ctx: Context::default(),
                host: Host::default(),
                a: param("a"),
                b: param("b"),
                bars: [Rect::NOTHING; 2],
            };
            panel.frame(Vec::new());
            panel
        }

        fn frame(&mut self, events: Vec<Event>) {
            let input = RawInput {
                screen_rect: Some(Rect::from_min_size(Pos2::ZERO, vec2(400.0, 200.0))),
                events,
                ..RawInput::default()
            };
            let setter = ParamSetter::new(&self.host);
            let (a, b, bars) = (&self.a, &self.b, &mut self.bars);
            let output = self.ctx.run_ui(input, |ui| {
                bars[0] = param_slider(ui, a, &setter, 130.0).rect;
                bars[1] = param_slider(ui, b, &setter, 130.0).rect;
            });
            output.drop_without_applying_deltas();
        }

        /// Presses and releases the primary button at `at`, `moves` pixels apart, a frame each.
        fn click(&mut self, at: Pos2, moves: f32) {
            self.frame(vec![Event::PointerMoved(at), button(at, true)]);
            let to = at + vec2(moves, 0.0);
            self.frame(vec![Event::PointerMoved(to)]);
            self.frame(vec![button(to, false)]);
            self.frame(Vec::new());
        }

        /// Presses and releases the primary button at `at` within one frame (a trackpad's tap).
        fn tap(&mut self, at: Pos2) {
            self.frame(vec![
                Event::PointerMoved(at),
                button(at, true),
                button(at, false),
            ]);
            self.frame(Vec::new());
        }

        fn on_bar(&self, bar: usize, share: f32) -> Pos2 {
            let rect = self.bars[bar];
            pos2(rect.left() + share * rect.width(), rect.center().y)
        }
    }

    fn button(pos: Pos2, pressed: bool) -> Event {
        Event::PointerButton {
            pos,
            button: PointerButton::Primary,
            pressed,
            modifiers: Modifiers::default(),
        }
    }

    /// Every begin is followed by sets of the same parameter and its end.
    fn gestures(calls: &[Call]) -> Vec<(ParamPtr, usize)> {
        let mut gestures = Vec::new();
        let mut open: Option<(ParamPtr, usize)> = None;
        for call in calls {
            open = match (open, *call) {
                (None, Call::Begin(p)) => Some((p, 0)),
                (Some((p, sets)), Call::Set(q)) if p == q => Some((p, sets + 1)),
                (Some((p, sets)), Call::End(q)) if p == q => {
                    gestures.push((p, sets));
                    None
                }
                _ => panic!("{call:?} out of place in {calls:?}"),
            };
        }
        assert!(open.is_none(), "a gesture never ended: {calls:?}");
        gestures
    }

    #[test]
    fn a_click_or_a_drag_is_one_whole_gesture_of_its_own_parameter() {
        let mut panel = Panel::new();
        let (a, b) = (panel.a.as_ptr(), panel.b.as_ptr());
        // The parameters whose gestures the host saw, each with at least one value set.
        let touched = |panel: &mut Panel| -> Vec<ParamPtr> {
            let gestures = gestures(&panel.host.take());
            assert!(gestures.iter().all(|(_, sets)| *sets > 0), "{gestures:?}");
            gestures.into_iter().map(|(param, _)| param).collect()
        };
        panel.click(panel.on_bar(0, 0.9), 0.0);
        assert_eq!(touched(&mut panel), vec![a], "a click");
        panel.click(panel.on_bar(1, 0.2), 30.0);
        assert_eq!(touched(&mut panel), vec![b], "a drag");
        panel.click(panel.on_bar(0, 0.1), 0.0);
        assert_eq!(touched(&mut panel), vec![a], "a click after a drag");
        panel.tap(panel.on_bar(1, 0.7));
        assert_eq!(touched(&mut panel), vec![b], "a tap");
    }
}
