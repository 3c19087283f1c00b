//! Small tunes built in code for the tests.

use crate::music::Note;

/// A note of velocity 80.
pub fn note(pitch: u8, onset_beats: f64, duration_beats: f64) -> Note {
    Note {
        pitch,
        velocity: 80,
        onset_beats,
        duration_beats,
    }
}

/// A melody from `(pitch, beats)` pairs, legato; a pitch of 0 is a rest.
pub fn melody(start_beats: f64, notes: &[(u8, f64)]) -> Vec<Note> {
    let mut t = start_beats;
    let mut out = Vec::new();
    for &(pitch, beats) in notes {
        if pitch > 0 {
            out.push(note(pitch, t, beats));
        }
        t += beats;
    }
    out
}

/// A folk-like tune in D, transposed by `transpose` semitones: two phrases, the first repeated,
/// with a pickup, a rest and a long last note.
pub fn folk_tune(transpose: i8) -> Vec<Note> {
    let phrase_a: &[(u8, f64)] = &[
        (62, 0.5),
        (66, 0.5),
        (69, 0.5),
        (66, 0.5),
        (71, 1.0),
        (69, 0.5),
        (66, 0.5),
        (67, 0.5),
        (66, 0.5),
        (64, 0.5),
        (62, 0.5),
        (64, 1.5),
        (0, 0.5),
    ];
    let phrase_b: &[(u8, f64)] = &[
        (74, 0.5),
        (73, 0.5),
        (71, 0.5),
        (69, 0.5),
        (67, 0.75),
        (66, 0.25),
        (64, 0.5),
        (62, 0.5),
        (64, 0.5),
        (66, 0.5),
        (64, 0.5),
        (62, 3.0),
    ];
    let mut all = vec![(57, 0.5)];
    for phrase in [phrase_a, phrase_a, phrase_b] {
        all.extend_from_slice(phrase);
    }
    let mut notes = melody(3.5, &all);
    for n in &mut notes {
        n.pitch = (i16::from(n.pitch) + i16::from(transpose)) as u8;
    }
    notes
}

/// A short polyphonic piece: a held bass under chords, triplets and a long gap.
pub fn chorale() -> Vec<Note> {
    let mut notes = vec![note(48, 0.0, 4.0), note(43, 4.0, 2.0)];
    for (i, chord) in [[60, 64, 67], [62, 65, 69], [64, 67, 72], [62, 67, 71]]
        .iter()
        .enumerate()
    {
        for &p in chord {
            notes.push(note(p, i as f64, 1.0));
        }
    }
    for i in 0..3 {
        notes.push(note(72 - i as u8 * 2, 4.0 + i as f64 / 3.0, 1.0 / 3.0));
    }
    notes.push(note(60, 15.0, 1.0));
    notes
}
