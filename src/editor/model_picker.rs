//! The panel's model row: a path field, "Load" (validates, then hands the model to the
//! generator; a bad file only shows why) and "Default" (back to the embedded model), with the
//! line saying which model plays.

use egui::{RichText, Ui};

use super::theme;
use crate::model_choice::{describe, load_model_file, ModelChoice};
use crate::params::WaveJamParams;
use crate::status::Status;

/// What the row keeps between frames.
#[derive(Debug, Default)]
pub struct ModelPicker {
    /// The path being typed.
    path: String,
    /// The last load failed: the message is an error.
    failed: bool,
}

impl ModelPicker {
    /// A row showing the project's saved model path.
    pub fn new(params: &WaveJamParams) -> Self {
        let choice = params.model.lock().unwrap_or_else(|e| e.into_inner());
        Self {
            path: choice.path.clone().unwrap_or_default(),
            failed: false,
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
        let colour = if self.failed {
            theme::DANGER
        } else {
            theme::TEXT_DIM
        };
        ui.label(RichText::new(status.model.message()).small().color(colour));
    }

    /// Validate and hand over the model at `path` (the default if empty); a bad file changes
    /// nothing but the message.
    fn load(&mut self, params: &WaveJamParams, status: &Status) {
        let path = self.path.trim().to_string();
        let choice = if path.is_empty() {
            status.model.offer(None);
            status
                .model
                .set_message(crate::generator::worker::DEFAULT_MODEL_MESSAGE);
            ModelChoice::default()
        } else {
            match load_model_file(std::path::Path::new(&path)) {
                Ok((kernel, hash)) => {
                    status.model.set_message(describe(&kernel, &path));
                    status.model.offer(Some(kernel));
                    ModelChoice {
                        path: Some(path),
                        hash: Some(hash),
                    }
                }
                Err(message) => {
                    self.failed = true;
                    status
                        .model
                        .set_message(format!("{message} (the previous model keeps playing)"));
                    return;
                }
            }
        };
        self.failed = false;
        *params.model.lock().unwrap_or_else(|e| e.into_inner()) = choice;
    }
}
