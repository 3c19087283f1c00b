//! The panel's model row: a path field, "Load" (validates, then hands the model to the
//! generator; a bad file only shows why) and "Default" (back to the embedded model), with the
//! line saying which model plays.

use egui::{RichText, Ui};

use super::theme;
use crate::params::WaveJamParams;
use crate::status::Status;

/// What the row keeps between frames.
#[derive(Debug, Default)]
pub struct ModelPicker {
    /// The path being typed.
    path: String,
}

impl ModelPicker {
    /// A row showing the project's saved model path.
    pub fn new(params: &WaveJamParams) -> Self {
        let choice = params.model.lock().unwrap_or_else(|e| e.into_inner());
        Self {
            path: choice.path.clone().unwrap_or_default(),
        }
    }

    pub fn show(&mut self, ui: &mut Ui, params: &WaveJamParams, status: &Status) {
        ui.horizontal(|ui| {
            ui.label("Model");
            ui.add(
                egui::TextEdit::singleline(&mut self.path)
                    .hint_text("model.safetensors (empty = default)")
                    .desired_width(170.0),
            );
            if ui
                .button("Load")
                .on_hover_text("Check the file, then answer with it")
                .clicked()
            {
                self.load(params, status);
            }
            if ui
                .button("Default")
                .on_hover_text("Answer with the embedded model")
                .clicked()
            {
                self.path.clear();
                self.load(params, status);
            }
        });
        let line = status.model_slot.line();
        let colour = if line.error.is_some() {
            theme::DANGER
        } else {
            theme::TEXT_DIM
        };
        ui.label(RichText::new(line.text).small().color(colour));
    }

    /// Validate and hand over the model at the typed path (the default if empty); a bad file
    /// changes nothing but the line.
    fn load(&mut self, params: &WaveJamParams, status: &Status) {
        let path = self.path.trim();
        if path.is_empty() {
            status.model_slot.load_default(&params.model);
        } else {
            // NOTE: the slot's line says what went wrong.
            let _ = status.model_slot.load_file(path, &params.model);
        }
    }
}
