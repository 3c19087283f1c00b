//! The panel's file rows — the phrase model and the Custom voice: a path field, "Load"
//! (validates, then hands the file over; a bad file only shows why) and a button back to the
//! embedded default, with the line saying what plays.

use egui::{RichText, Ui};

use super::theme;
use crate::models::choice::{ModelChoiceState, ModelLine};
use crate::params::WaveJamParams;
use crate::status::Status;

/// What a row loads, and how it is labelled.
pub struct FileKind {
    label: &'static str,
    hint: &'static str,
    load_hover: &'static str,
    clear_label: &'static str,
    clear_hover: &'static str,
    /// The project's record of the file.
    choice: fn(&WaveJamParams) -> &ModelChoiceState,
    /// Validates and hands over the file at a path (a bad one changes only the line).
    load: fn(&Status, &str, &ModelChoiceState),
    /// Back to the default.
    clear: fn(&Status, &ModelChoiceState),
    line: fn(&Status) -> ModelLine,
}

/// The phrase model row.
pub const MODEL: FileKind = FileKind {
    label: "Model",
    hint: "model.safetensors (empty = default)",
    load_hover: "Check the file, then answer with it",
    clear_label: "Default",
    clear_hover: "Answer with the embedded model",
    choice: |params| &params.model,
    // NOTE: the slot's line says what went wrong.
    load: |status, path, choice| {
        let _ = status.model_slot.load_file(path, choice);
    },
    clear: |status, choice| status.model_slot.load_default(choice),
    line: |status| status.model_slot.line(),
};

/// The Custom voice row.
pub const VOICE: FileKind = FileKind {
    label: "Voice file",
    hint: "voice.safetensors (Voice: Custom)",
    load_hover: "Check the file, then play it when Voice is Custom",
    clear_label: "None",
    clear_hover: "No voice file: Custom plays the synth",
    choice: |params| &params.voice_file,
    load: |status, path, choice| {
        let _ = status.voice_slot.load_file(path, choice);
    },
    clear: |status, choice| status.voice_slot.unload(choice),
    line: |status| status.voice_slot.line(),
};

/// A row and what it keeps between frames.
pub struct FilePicker {
    kind: &'static FileKind,
    /// The path being typed.
    path: String,
    /// The project's path as last shown: when the project's record changes (a project or
    /// preset loaded after the panel was made, a file loaded), the field shows the new one.
    shown: Option<Option<String>>,
}

impl FilePicker {
    /// A row of `kind`; it shows the project's path from its first frame on.
    pub fn new(kind: &'static FileKind) -> Self {
        Self {
            kind,
            path: String::new(),
            shown: None,
        }
    }

    /// Shows the project's path in the field if it changed since last shown (what is typed
    /// stays until then).
    fn follow_project(&mut self, params: &WaveJamParams) {
        let saved = (self.kind.choice)(params)
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .path
            .clone();
        if self.shown.as_ref() != Some(&saved) {
            self.path = saved.clone().unwrap_or_default();
            self.shown = Some(saved);
        }
    }

    pub fn show(&mut self, ui: &mut Ui, params: &WaveJamParams, status: &Status) {
        self.follow_project(params);
        let kind = self.kind;
        ui.horizontal(|ui| {
            ui.label(kind.label);
            ui.add(
                egui::TextEdit::singleline(&mut self.path)
                    .hint_text(kind.hint)
                    .desired_width(170.0),
            );
            if ui.button("Load").on_hover_text(kind.load_hover).clicked() {
                self.load(params, status);
            }
            if ui
                .button(kind.clear_label)
                .on_hover_text(kind.clear_hover)
                .clicked()
            {
                self.path.clear();
                self.load(params, status);
            }
        });
        let line = (kind.line)(status);
        let colour = if line.error.is_some() {
            theme::DANGER
        } else {
            theme::TEXT_DIM
        };
        ui.label(RichText::new(line.text).small().color(colour));
    }

    /// Validates and hands over the file at the typed path (the default if empty); a bad file
    /// changes nothing but the line.
    fn load(&mut self, params: &WaveJamParams, status: &Status) {
        let path = self.path.trim();
        let choice = (self.kind.choice)(params);
        if path.is_empty() {
            (self.kind.clear)(status, choice);
        } else {
            (self.kind.load)(status, path, choice);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(params: &WaveJamParams, path: Option<&str>) {
        params.model.lock().unwrap().path = path.map(str::to_owned);
    }

    /// The panel is made before the host loads the project: its field follows the project's
    /// record (so "Load" reloads the project's file, not the default), and keeps what is typed
    /// until the record changes.
    #[test]
    fn the_field_follows_a_project_loaded_after_the_panel_was_made() {
        let params = WaveJamParams::default();
        let mut row = FilePicker::new(&MODEL);
        row.follow_project(&params);
        assert_eq!(row.path, "");
        record(&params, Some("/songs/reel.safetensors"));
        row.follow_project(&params);
        assert_eq!(row.path, "/songs/reel.safetensors");
        row.path = "/songs/jig.safe".into();
        row.follow_project(&params);
        assert_eq!(row.path, "/songs/jig.safe", "what is typed stays");
        record(&params, None);
        row.follow_project(&params);
        assert_eq!(row.path, "", "another project, with the default");
    }
}
