//! The egui panel: the musical clock and what WaveJam is doing, every control, the last phrase and
//! answer as piano rolls, MIDI export, ring health, and the panic button.

mod controls;
mod export;
mod file_picker;
mod piano_roll;
mod readout;
mod session_view;
mod slider;
mod theme;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use egui::{vec2, Align, Button, Color32, Frame, Label, Layout, RichText, Sense, Ui};
use nice_plug::context::gui::{GuiContext, ParamSetter};
use nice_plug::prelude::*;
use nice_plug_egui::{
    create_egui_editor, EguiEditor, EguiEditorState, EguiNiceSettings, NiceEguiApp,
};

use crate::music::Note;
use crate::params::{ScaleMode, WaveJamParams};
use crate::status::Status;
use file_picker::FilePicker;
use session_view::SessionView;

/// Initial panel size in logical pixels.
pub const PANEL_SIZE: (f64, f64) = (760.0, 560.0);
/// Width of the controls column, in logical px.
const CONTROLS_WIDTH: f32 = 340.0;
/// Width of a control's name column, in logical px.
const LABEL_WIDTH: f32 = 96.0;
/// Height of one piano roll, in logical px.
const ROLL_HEIGHT: f32 = 138.0;
/// How often the open panel redraws to follow the clock and the activity.
const REPAINT_INTERVAL: Duration = Duration::from_millis(30);

/// The panel's state and the shared objects it reads.
pub struct Panel {
    params: Arc<WaveJamParams>,
    status: Arc<Status>,
    /// The audio thread releases every note when this is set.
    panic: Arc<AtomicBool>,
    /// Present once the editor has opened.
    gui: Option<GuiContext>,
    generate: controls::GeneratePulse,
    session: SessionView,
    /// The outcome of the last "Save answer as MIDI…": the file written, or why not.
    saved: Option<Result<PathBuf, String>>,
    model: FilePicker,
    voice_file: FilePicker,
}

/// The editor the plugin hands to the host.
pub type WaveJamEditor = EguiEditor<Panel>;

/// Build the editor.
pub fn create(
    params: Arc<WaveJamParams>,
    status: Arc<Status>,
    panic: Arc<AtomicBool>,
) -> Option<WaveJamEditor> {
    let state = EguiEditorState::from_size(
        nice_plug::editor::dpi::LogicalSize::new(PANEL_SIZE.0, PANEL_SIZE.1),
        1.0,
    );
    let settings = EguiNiceSettings {
        title: "WaveJam".into(),
        ..EguiNiceSettings::default()
    };
    create_egui_editor(
        state,
        nice_plug_egui::RepaintNotifier::new(),
        settings,
        Panel {
            model: FilePicker::new(&file_picker::MODEL),
            voice_file: FilePicker::new(&file_picker::VOICE),
            params,
            status,
            panic,
            gui: None,
            generate: controls::GeneratePulse::default(),
            session: SessionView::default(),
            saved: None,
        },
    )
}

impl NiceEguiApp for Panel {
    fn build(
        &mut self,
        egui_ctx: egui::Context,
        gui: GuiContext,
        _frame: &mut nice_plug_egui::Frame,
    ) -> Result<(), nice_plug_egui::baseview::HandlerError> {
        theme::apply(&egui_ctx);
        if self.generate.is_on() {
            // The editor closed mid-pulse: end that gesture before starting afresh.
            self.generate
                .finish(&gui.param_setter(), &self.params.generate);
        }
        self.session.invalidate();
        self.gui = Some(gui);
        Ok(())
    }

    fn ui(&mut self, ui: &mut Ui, _frame: &mut nice_plug_egui::Frame) {
        let Some(gui) = self.gui.clone() else { return };
        let setter = gui.param_setter();
        self.generate
            .update(&setter, &self.params.generate, Instant::now());
        let revision = self.status.session_revision.load(Ordering::Relaxed);
        self.session.refresh(&self.params.session, revision);

        let strip = Frame::new()
            .fill(theme::GROUP_FILL)
            .inner_margin(vec2(12.0, 6.0));
        egui::Panel::top("header")
            .frame(strip)
            .show(ui, |ui| self.header(ui));
        egui::Panel::bottom("health")
            .frame(strip)
            .show(ui, |ui| self.health(ui));
        egui::CentralPanel::default_margins()
            .frame(Frame::new().inner_margin(10.0))
            .show(ui, |ui| {
                ui.horizontal_top(|ui| {
                    ui.vertical(|ui| {
                        ui.set_width(CONTROLS_WIDTH);
                        self.controls(ui, &setter);
                    });
                    ui.add_space(4.0);
                    ui.vertical(|ui| {
                        self.actions(ui, &setter);
                        self.model.show(ui, &self.params, &self.status);
                        self.voice_file.show(ui, &self.params, &self.status);
                        self.rolls(ui);
                    });
                });
            });
        ui.ctx().request_repaint_after(REPAINT_INTERVAL);
    }
}

impl Panel {
    /// Title and engine on the left; tempo, position, transport and activity on the right.
    fn header(&self, ui: &mut Ui) {
        let s = &self.status;
        let tempo = readout::tempo_bpm(s.tempo_bpm.load(Ordering::Relaxed));
        let position = readout::bar_beat(
            s.beat.load(Ordering::Relaxed),
            s.bar_beats.load(Ordering::Relaxed),
            s.bar_origin_beat.load(Ordering::Relaxed),
            s.bar_origin_number.load(Ordering::Relaxed),
        );
        let transport = if s.playing.load(Ordering::Relaxed) {
            "playing"
        } else {
            "internal clock"
        };
        let activity = s.activity();
        ui.horizontal(|ui| {
            ui.label(
                RichText::new("WaveJam")
                    .heading()
                    .strong()
                    .color(theme::ACCENT),
            );
            ui.label(RichText::new(self.params.engine.to_string()).color(theme::TEXT_DIM))
                .on_hover_text("Engine");
            if let Some(heard) = readout::heard(s) {
                ui.label(RichText::new(format!("hears {heard}")).color(theme::TEXT_DIM))
                    .on_hover_text(
                        "What WaveJam hears in your playing: the key of the session's phrases, \
                         the grid of the last one, and, with the transport stopped, your tempo \
                         (it answers in it)",
                    );
            }
            for (note, meaning, colour) in readout::generator_notes(s) {
                ui.label(RichText::new(note).small().color(colour))
                    .on_hover_text(meaning);
            }
            ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
                ui.label(activity.label());
                indicator(ui, theme::activity_colour(activity));
                ui.separator();
                ui.label(RichText::new(transport).color(theme::TEXT_DIM));
                ui.separator();
                ui.monospace(format!("bar {position}"))
                    .on_hover_text("Position: bar.beat");
                ui.separator();
                ui.monospace(format!("{tempo:.1} BPM"));
            });
        });
    }

    /// Every parameter but bypass and the Generate trigger, in three groups.
    fn controls(&self, ui: &mut Ui, setter: &ParamSetter) {
        let p = &self.params;
        group(ui, "Answer", |ui| {
            row(ui, &p.mode, |ui| controls::choice(ui, &p.mode, setter));
            row(ui, &p.wait_beats, |ui| {
                controls::slider(ui, &p.wait_beats, setter)
            });
            row(ui, &p.quantize, |ui| {
                controls::choice(ui, &p.quantize, setter)
            });
            row(ui, &p.answer_bars, |ui| {
                controls::slider(ui, &p.answer_bars, setter)
            });
            row(ui, &p.barge_in, |ui| {
                controls::toggle(ui, &p.barge_in, setter, "stop answering when you play");
            });
        });
        group(ui, "Character", |ui| {
            row(ui, &p.engine, |ui| controls::choice(ui, &p.engine, setter));
            row(ui, &p.temperature, |ui| {
                controls::slider(ui, &p.temperature, setter)
            });
            row(ui, &p.seed, |ui| {
                controls::slider(ui, &p.seed, setter);
                if ui.small_button("New seed").clicked() {
                    controls::set_once(setter, &p.seed, controls::next_seed(p.seed.value()));
                }
            });
            row(ui, &p.seed_mode, |ui| {
                controls::choice(ui, &p.seed_mode, setter)
            });
            row(ui, &p.feel, |ui| controls::slider(ui, &p.feel, setter));
            row(ui, &p.scale_mode, |ui| {
                controls::choice(ui, &p.scale_mode, setter)
            });
            if p.scale_mode.value() == ScaleMode::Fixed {
                row(ui, &p.scale_root, |ui| {
                    controls::choice(ui, &p.scale_root, setter)
                });
                row(ui, &p.scale_type, |ui| {
                    controls::choice(ui, &p.scale_type, setter)
                });
            }
        });
        group(ui, "Output", |ui| {
            row(ui, &p.output, |ui| controls::choice(ui, &p.output, setter));
            row(ui, &p.voice, |ui| controls::choice(ui, &p.voice, setter));
            row(ui, &p.thru, |ui| {
                controls::toggle(ui, &p.thru, setter, "play and echo your notes");
            });
            row(ui, &p.gain, |ui| controls::slider(ui, &p.gain, setter));
        });
    }

    /// Generate (answer the last phrase now) and Panic (release every note).
    fn actions(&mut self, ui: &mut Ui, setter: &ParamSetter) {
        ui.horizontal(|ui| {
            let generate = Button::new(RichText::new("Generate").strong().color(Color32::BLACK))
                .fill(theme::ACCENT)
                .selected(self.generate.is_on())
                .min_size(vec2(120.0, 26.0));
            if ui
                .add(generate)
                .on_hover_text("Answer the last phrase now (any mode)")
                .clicked()
            {
                self.generate
                    .start(setter, &self.params.generate, Instant::now());
            }
            let panic = Button::new(RichText::new("Panic").strong())
                .fill(theme::DANGER.gamma_multiply(0.6))
                .min_size(vec2(80.0, 26.0));
            if ui
                .add(panic)
                .on_hover_text("Release every note now")
                .clicked()
            {
                self.panic.store(true, Ordering::Relaxed);
            }
        });
        ui.add_space(4.0);
    }

    /// The last phrase and answer as piano rolls, and the MIDI export of the answer.
    fn rolls(&mut self, ui: &mut Ui) {
        let bar_beats = readout::bar_beats(self.status.bar_beats.load(Ordering::Relaxed));
        roll(
            ui,
            "Your phrase",
            &self.session.phrase,
            theme::PHRASE,
            bar_beats,
        );
        ui.add_space(4.0);
        roll(ui, "Answer", &self.session.answer, theme::ANSWER, bar_beats);
        ui.add_space(2.0);
        ui.horizontal(|ui| {
            let save = Button::new("Save answer as MIDI…");
            if ui
                .add_enabled(!self.session.answer.is_empty(), save)
                .on_hover_text(
                    "Writes ~/WaveJam/answer-<time>.mid at the answer's tempo (yours, if it \
                     followed you)",
                )
                .clicked()
            {
                self.saved = Some(self.save_answer());
            }
            match &self.saved {
                Some(Ok(path)) => {
                    let path = path.display().to_string();
                    ui.add(
                        Label::new(RichText::new(&path).small().color(theme::TEXT_DIM)).truncate(),
                    )
                    .on_hover_text(path);
                }
                Some(Err(err)) => {
                    ui.add(Label::new(RichText::new(err).small().color(theme::DANGER)).truncate());
                }
                None => {}
            }
        });
    }

    /// Write the cached answer at its tempo (the player's, if it followed them with the
    /// transport stopped; for an answer from an older project, the clock's now); the path
    /// written, or the error as text.
    fn save_answer(&self) -> Result<PathBuf, String> {
        let tempo = readout::tempo_bpm(
            self.session
                .answer_tempo_bpm
                .unwrap_or_else(|| self.status.tempo_bpm.load(Ordering::Relaxed)),
        );
        export::answers_dir()
            .and_then(|dir| {
                export::save_answer(&dir, &self.session.answer, tempo, export::unix_secs())
            })
            .map_err(|err| format!("could not save the answer: {err}"))
    }

    /// Ring and host counters (highlighted when not zero) and the last answer's generation time.
    fn health(&self, ui: &mut Ui) {
        let s = &self.status;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let counters =
            readout::COUNTERS.map(|(name, field, meaning)| (name, load(field(s)), meaning));
        ui.horizontal(|ui| {
            ui.spacing_mut().item_spacing.x = 10.0;
            for (name, count, meaning) in counters {
                let colour = if count == 0 {
                    theme::TEXT_DIM
                } else {
                    theme::WARNING
                };
                ui.label(
                    RichText::new(format!("{name} {count}"))
                        .small()
                        .color(colour),
                )
                .on_hover_text(meaning);
            }
            ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
                let micros = load(&s.last_answer_micros);
                ui.label(
                    RichText::new(format!("last answer {micros} µs"))
                        .small()
                        .color(theme::TEXT_DIM),
                )
                .on_hover_text("Wall time the generator took for its last answer");
            });
        });
    }
}

/// A captioned box of control rows.
fn group(ui: &mut Ui, caption: &str, add_rows: impl FnOnce(&mut Ui)) {
    Frame::group(ui.style())
        .fill(theme::GROUP_FILL)
        .stroke(egui::Stroke::NONE)
        .inner_margin(vec2(8.0, 6.0))
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.label(
                RichText::new(caption.to_uppercase())
                    .small()
                    .strong()
                    .color(theme::ACCENT),
            );
            egui::Grid::new(caption)
                .num_columns(2)
                .min_col_width(LABEL_WIDTH)
                .spacing(vec2(6.0, 4.0))
                .show(ui, add_rows);
        });
    ui.add_space(4.0);
}

/// One grid row: `param`'s name, then its widget.
fn row<P: Param>(ui: &mut Ui, param: &P, add_widget: impl FnOnce(&mut Ui)) {
    ui.label(param.name());
    ui.horizontal(add_widget);
    ui.end_row();
}

/// A titled piano roll of `notes` with their count and length.
fn roll(ui: &mut Ui, title: &str, notes: &[Note], colour: Color32, bar_beats: f64) {
    ui.horizontal(|ui| {
        ui.label(RichText::new(title).strong().color(colour));
        if !notes.is_empty() {
            let bars = piano_roll::shown_bars(notes, bar_beats);
            let summary = format!(
                "{} note{} · {bars} bar{}",
                notes.len(),
                if notes.len() == 1 { "" } else { "s" },
                if bars == 1 { "" } else { "s" },
            );
            ui.label(RichText::new(summary).small().color(theme::TEXT_DIM));
        }
    });
    let size = vec2(ui.available_width(), ROLL_HEIGHT);
    piano_roll::show(ui, notes, bar_beats, colour, size);
}

/// A small filled circle in `colour`.
fn indicator(ui: &mut Ui, colour: Color32) {
    let (rect, _) = ui.allocate_exact_size(vec2(10.0, 10.0), Sense::hover());
    ui.painter().circle_filled(rect.center(), 4.5, colour);
}
