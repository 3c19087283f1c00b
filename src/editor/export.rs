//! "Save answer as MIDI…" without a file dialog: answers go to `~/WaveJam/answer-<unix time>.mid`.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::music::midi_file;
use crate::music::Note;

/// MIDI channel of saved answers (0-based: channel 1).
const CHANNEL: u8 = 0;
/// Most files tried for one second's saves (`answer-<t>.mid`, `answer-<t>-2.mid`, …).
const MAX_NAME_TRIES: u32 = 100;

/// The folder answers are saved in: `$HOME/WaveJam` (`%USERPROFILE%\WaveJam` where `HOME` is not
/// set, as on Windows).
pub fn answers_dir() -> io::Result<PathBuf> {
    let home = std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .filter(|home| !home.is_empty())
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "$HOME is not set"))?;
    Ok(PathBuf::from(home).join("WaveJam"))
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// Write `notes` (beats from 0) at `tempo_bpm` as a MIDI file `answer-<unix_secs>.mid` in `dir`,
/// creating `dir`. Never overwrites: another save in the same second gets `-2`, `-3`, ….
/// Returns the path written.
pub fn save_answer(
    dir: &Path,
    notes: &[Note],
    tempo_bpm: f64,
    unix_secs: u64,
) -> io::Result<PathBuf> {
    fs::create_dir_all(dir)?;
    // NOTE: an answer starts on the grid, not always on a bar line, so no time signature: its
    // bars are the host project's, wherever it is dropped.
    let bytes = midi_file::to_smf_bytes(notes, tempo_bpm, CHANNEL, &[]);
    for attempt in 1..=MAX_NAME_TRIES {
        let name = match attempt {
            1 => format!("answer-{unix_secs}.mid"),
            n => format!("answer-{unix_secs}-{n}.mid"),
        };
        let path = dir.join(name);
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut file) => {
                file.write_all(&bytes)?;
                return Ok(path);
            }
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(err),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("{MAX_NAME_TRIES} answers saved this second already"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_saved_as_midi_without_overwriting() {
        let temp = crate::test_kit::TempDir::new("export");
        // A folder that does not exist yet: saving creates it.
        let dir = temp.0.join("answers");
        let notes = [
            Note {
                pitch: 60,
                velocity: 90,
                onset_beats: 0.0,
                duration_beats: 1.0,
            },
            Note {
                pitch: 67,
                velocity: 70,
                onset_beats: 1.5,
                duration_beats: 0.5,
            },
        ];
        let first = save_answer(&dir, &notes, 100.0, 1_700_000_000).unwrap();
        let second = save_answer(&dir, &notes, 100.0, 1_700_000_000).unwrap();
        assert_eq!(first, dir.join("answer-1700000000.mid"));
        assert_eq!(second, dir.join("answer-1700000000-2.mid"));
        let back = midi_file::read_notes(&fs::read(&first).unwrap()).unwrap();
        assert_eq!(back.len(), notes.len());
        assert_eq!((back[1].pitch, back[1].onset_beats), (67, 1.5));
    }
}
