//! The egui panel: every control, the musical clock, what WaveJam is doing, ring health, and the
//! panic button.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nice_plug::prelude::*;
use nice_plug_egui::widgets::ParamSlider;
use nice_plug::context::gui::GuiContext;
use nice_plug_egui::{create_egui_editor, EguiEditor, EguiEditorState, EguiNiceSettings, NiceEguiApp};

use crate::params::WaveJamParams;
use crate::status::Status;

/// Initial panel size in logical pixels.
pub const PANEL_SIZE: (f64, f64) = (760.0, 520.0);

/// The panel's state and the shared objects it reads.
pub struct Panel {
    params: Arc<WaveJamParams>,
    status: Arc<Status>,
    panic: Arc<AtomicBool>,
    gui: Option<GuiContext>,
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
            params,
            status,
            panic,
            gui: None,
        },
    )
}

impl NiceEguiApp for Panel {
    fn build(
        &mut self,
        _egui_ctx: egui::Context,
        gui: GuiContext,
        _frame: &mut nice_plug_egui::Frame,
    ) -> Result<(), nice_plug_egui::baseview::HandlerError> {
        self.gui = Some(gui);
        Ok(())
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut nice_plug_egui::Frame) {
        let Some(gui) = &self.gui else { return };
        let setter = gui.param_setter();
        let p = &self.params;
        let s = &self.status;
        ui.heading("WaveJam");
        ui.label(format!(
            "{:.1} BPM · beat {:.2} · {} · {}",
            s.tempo_bpm.load(Ordering::Relaxed),
            s.beat.load(Ordering::Relaxed),
            if s.playing.load(Ordering::Relaxed) { "playing" } else { "internal clock" },
            s.activity().label()
        ));
        egui::Grid::new("controls").num_columns(2).show(ui, |ui| {
            macro_rules! row {
                ($param:expr) => {
                    ui.label($param.name());
                    ui.add(ParamSlider::for_param(&$param, &setter));
                    ui.end_row();
                };
            }
            row!(p.temperature);
            row!(p.seed);
            row!(p.seed_mode);
            row!(p.wait_beats);
            row!(p.answer_bars);
            row!(p.quantize);
            row!(p.mode);
            row!(p.barge_in);
            row!(p.output);
            row!(p.engine);
            row!(p.gain);
            row!(p.thru);
        });
        if ui.button("Panic").clicked() {
            self.panic.store(true, Ordering::Relaxed);
        }
        ui.ctx().request_repaint();
    }
}
