//! The generator thread fails: with `WAVEJAM_TEST_GENERATOR_PANIC` set, the built plugin's
//! generator panics on every answer request. WaveJam keeps processing, leaves no note hanging,
//! and a bounce does not wait for answers that will not come.
//!
//! Its own test binary, so the variable reaches no other test. Build the bundle first:
//! `cargo xtask bundle wavejam --release`.

mod common;

use std::time::{Duration, Instant};

use common::clap_host::{Host, Timed, Timeline};
use common::notes::pair_notes;

const TEMPO: f64 = 120.0;
const SAMPLE_RATE: f64 = 48_000.0;
const BLOCK: usize = 512;
/// Channel the player plays on (echoed there by Thru); answers come on channel 0.
const PLAYER_CHANNEL: u8 = 2;

fn sample_at(beat: f64) -> u64 {
    (beat * SAMPLE_RATE * 60.0 / TEMPO).round() as u64
}

/// Four two-bar phrases of eighth notes, 24 beats apart, bounced offline with Thru on and
/// `mode` ("Answer": each is answered; "Manual": none is asked for); returns the recording's
/// notes and the wall time of the bounce.
fn bounce(host: &Host, mode: &str) -> (Vec<common::clap_host::NoteOut>, Duration) {
    let mut inst = host.start(SAMPLE_RATE, BLOCK, true);
    inst.set_param_plain("Thru", 1.0);
    inst.set_param_text("Mode", mode);
    let mut tl = Timeline::playing(TEMPO);
    for phrase in 0..4 {
        let from = phrase as f64 * 24.0;
        for step in 0..16 {
            let beat = from + step as f64 * 0.5;
            let key = 60 + (step % 5) as u8;
            tl.schedule([
                Timed::note_on(sample_at(beat), key, 0.8).with_channel(PLAYER_CHANNEL),
                Timed::note_off(sample_at(beat + 0.4), key).with_channel(PLAYER_CHANNEL),
            ]);
        }
    }
    let started = Instant::now();
    tl.run_until(&mut inst, sample_at(96.0), BLOCK);
    (tl.rec.notes, started.elapsed())
}

#[test]
fn a_failing_generator_leaves_no_stuck_note_and_no_wait() {
    // NOTE: this binary's only test; the plugin reads the variable when its generator starts.
    std::env::set_var("WAVEJAM_TEST_GENERATOR_PANIC", "1");
    let host = Host::load();
    let (unanswered, no_answers_time) = bounce(&host, "Manual");
    let (notes, time) = bounce(&host, "Answer");
    let played = pair_notes(&notes).unwrap_or_else(|err| panic!("{err}\noutput: {notes:#?}"));
    let echoed = played
        .iter()
        .filter(|p| p.channel == i16::from(PLAYER_CHANNEL))
        .count();
    assert_eq!(
        echoed, 64,
        "the plugin stopped processing the player's notes"
    );
    assert_eq!(
        echoed,
        pair_notes(&unanswered).unwrap().len(),
        "the manual-mode bounce"
    );
    assert!(
        played
            .iter()
            .all(|p| p.channel == i16::from(PLAYER_CHANNEL)),
        "answer notes from a generator that panics on every request: {played:#?}"
    );
    // Each answer would be waited for up to 2 s: four phrases, none waited for.
    assert!(
        time < no_answers_time + Duration::from_secs(1),
        "the bounce took {time:?}, without answers {no_answers_time:?}"
    );
}
