//! Note bookkeeping on a recorded note output: pairing note-ons with note-offs, and what sounds.
#![allow(dead_code)]

use std::collections::HashMap;

use super::clap_host::{NoteKind, NoteOut};

/// A note from its note-on to its note-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Played {
    pub channel: i16,
    pub key: i16,
    pub on: u64,
    pub off: u64,
}

/// Pairs every note-on with the next note-off of the same channel and key (first in, first
/// out). Errors on a note-off with nothing sounding or on notes still sounding at the end.
pub fn pair_notes(notes: &[NoteOut]) -> Result<Vec<Played>, String> {
    let mut sounding: HashMap<(i16, i16), Vec<(usize, u64)>> = HashMap::new();
    let mut played: Vec<(usize, Played)> = Vec::new();
    for (index, note) in notes.iter().enumerate() {
        let slot = sounding.entry((note.channel, note.key)).or_default();
        match note.kind {
            NoteKind::On => slot.push((index, note.sample)),
            NoteKind::Off => {
                if slot.is_empty() {
                    return Err(format!("note-off without a note-on: {note:?}"));
                }
                let (on_index, on) = slot.remove(0);
                played.push((
                    on_index,
                    Played {
                        channel: note.channel,
                        key: note.key,
                        on,
                        off: note.sample,
                    },
                ));
            }
            NoteKind::Choke | NoteKind::End => {}
        }
    }
    let dangling: Vec<_> = sounding
        .iter()
        .filter(|(_, ons)| !ons.is_empty())
        .map(|(k, ons)| (*k, ons.len()))
        .collect();
    if !dangling.is_empty() {
        return Err(format!(
            "notes never released, as ((channel, key), count): {dangling:?}"
        ));
    }
    played.sort_by_key(|(index, _)| *index);
    Ok(played.into_iter().map(|(_, p)| p).collect())
}

/// (channel, key) pairs sounding after `notes`.
pub fn sounding_after<'a>(
    notes: impl IntoIterator<Item = &'a NoteOut>,
    counts: &mut HashMap<(i16, i16), i32>,
) {
    for note in notes {
        let count = counts.entry((note.channel, note.key)).or_default();
        match note.kind {
            NoteKind::On => *count += 1,
            NoteKind::Off => *count = (*count - 1).max(0),
            NoteKind::Choke | NoteKind::End => {}
        }
    }
    counts.retain(|_, c| *c > 0);
}
