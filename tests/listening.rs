//! WaveJam listens like a musician: validation melodies (tests/data/validation) played as
//! written, live, over chords, swung and at a free tempo into the real plugin, through the
//! in-process host. Deterministic (seeded performances, fixed plugin seed), so each figure is a
//! regression guard; `wavejam listen-checks` prints the same table for any folder.

use std::path::Path;

use wavejam::lab::listening::{
    listening_checks, melodies, prompts, ListeningRow, Playing, FREE_TEMPOS,
};

/// Takes of each prompt (seeded performances, plugin seeds 1 to this).
const TAKES: u32 = 4;

fn rows(ways: &[Playing]) -> Vec<ListeningRow> {
    let tunes = melodies(Path::new("tests/data/validation"), 24).expect("the test melodies");
    let prompts = prompts(&tunes);
    assert_eq!(prompts.len(), 24);
    listening_checks(&prompts, ways, TAKES)
}

#[test]
fn answers_to_live_chordal_and_swung_playing_are_as_good_as_to_notation() {
    let all = rows(&[
        Playing::AsWritten,
        Playing::Live,
        Playing::Chords,
        Playing::Swung,
    ]);
    let [written, live, chords, swung] = &all[..] else {
        unreachable!()
    };
    eprintln!("{}", wavejam::lab::listening::listening_table(&all));
    assert_eq!(written.answers, 24 * TAKES as usize);
    // Live: on the grid, in key and as dense as answers to the written phrases. (In key within
    // 3 points here, where 96 answers draw a point or two of noise; the README's 60 melodies ×
    // 4 takes hold the 2: 0.947 against 0.961.)
    assert!(live.on_grid >= 0.95, "live on grid {}", live.on_grid);
    assert!((live.in_key - written.in_key).abs() <= 0.03);
    assert!((live.density_ratio / written.density_ratio - 1.0).abs() <= 0.10);
    // Over chords: one line, in key, not drawn down to the left hand.
    assert!(chords.chord_time <= 0.03, "{}", chords.chord_time);
    assert!((chords.in_key - written.in_key).abs() <= 0.02);
    assert!((chords.pitch_offset - written.pitch_offset).abs() <= 1.0);
    assert!(chords.pitch_offset.abs() <= 3.0, "{}", chords.pitch_offset);
    // Swung: the answers swing too.
    assert!(swung.swung_offbeats >= 0.90, "{}", swung.swung_offbeats);
}

#[test]
fn a_free_player_is_answered_at_their_tempo() {
    let all = rows(&FREE_TEMPOS.map(Playing::FreeTempo));
    eprintln!("{}", wavejam::lab::listening::listening_table(&all));
    eprintln!("{}", wavejam::lab::listening::tempo_misses_table(&all));
    for row in &all {
        assert_eq!(row.answers, 24 * TAKES as usize, "{}", row.playing);
        let heard_off = (1.0 - row.tempo_within_3_percent) * row.answers as f64;
        assert_eq!(
            row.tempo_misses.len(),
            heard_off.round() as usize,
            "{row:?}"
        );
        // Measured: 0.92, 1.00, 0.88, 0.88 at 70, 95, 140, 170 BPM; every miss is an octave
        // off (a 2/4 tune in 16ths heard in 8ths at twice the tempo, a chorale in quarters heard
        // in 8ths at half), none at another tempo (with the grid fit's spread at 25 ms, before
        // it was 15, one take at 170 BPM was heard at 2/3 of it).
        assert!(row.tempo_within_3_percent >= 0.85, "{row:?}");
        assert!(row.tempo_within_3_percent_or_octave >= 0.99, "{row:?}");
        // On the player's grid as closely as their own onsets are (measured 0.91 against 0.87
        // at 70 BPM, 0.83/0.74 at 95, 0.67/0.56 at 140, 0.56/0.47 at 170, where 1/48 beat is
        // 7 ms).
        assert!(
            row.on_grid_when_heard >= row.player_on_grid - 0.02,
            "{row:?}"
        );
        assert!(row.chord_time <= 0.03, "{row:?}");
        // Heard in the player's bars: the phrase begins where it does in them (measured 0.56,
        // 0.62, 0.71, 0.71; 0.17–0.23 on the 60 melodies of the README when a free player's
        // bar began on their first beat, and most of these tunes begin with a pickup).
        assert!(row.bar_heard >= 0.5, "{row:?}");
        // The player's next phrase, after the answer, in the bars kept from the first (measured
        // 0.65, 0.73, 0.70, 0.67; 0.34–0.37 on the 60 melodies of the README heard afresh).
        assert!(row.next_bar_heard >= 0.5, "{row:?}");
    }
}

/// A melody file whose pickup was not padded to its bar (its first note on beat 0) has its bar
/// phase found again from the notes (`wavejam continue --infer-bars`): the first 4 bars of each
/// test melody, unpadded.
#[test]
fn the_bar_phase_of_an_unpadded_pickup_is_found() {
    use wavejam::listen::bar::{find_bar_phase, BarPrior};
    use wavejam::models::engines::EngineKind;
    use wavejam::music::meter::Meter;
    use wavejam::music::{Note, TICKS_PER_BEAT};

    let brains = wavejam::assets::default_brains().unwrap();
    let tunes = melodies(Path::new("tests/data/validation"), 24).unwrap();
    let mut found = 0;
    for (name, notes, bar_beats) in &tunes {
        let first = notes[0].onset_beats;
        let head: Vec<Note> = notes
            .iter()
            .filter(|n| n.onset_beats < 4.0 * bar_beats)
            .map(|n| Note {
                onset_beats: n.onset_beats - first,
                ..*n
            })
            .collect();
        let meter = Meter::constant((bar_beats * f64::from(TICKS_PER_BEAT)).round() as u32);
        let mut model = brains.engine(EngineKind::Hybrid);
        let phase = find_bar_phase(
            model.as_mut(),
            brains.wavenet.vocabulary(),
            &head,
            &meter,
            BarPrior::Opening,
        );
        let right = (phase - first.rem_euclid(*bar_beats)).abs() < 1e-9;
        eprintln!("{name}: pickup at {first}, heard at {phase}");
        found += usize::from(right);
    }
    eprintln!("bar phase found for {found} of {}", tunes.len());
    // Measured: 20 of 24 (16 before a phrase was held unlikely to begin in the first half of
    // its bar off the downbeat: most misses were half a bar off, beat 3 of 4/4 for beat 1).
    assert!(found * 5 >= tunes.len() * 4, "{found} of {}", tunes.len());
}
