//! Real-host integration tests: load the built `target/bundled/WaveJam.clap` with `clack-host`,
//! play it a phrase over a running transport, and check the answer on its note output and audio.
//!
//! Build the bundle first: `cargo xtask bundle wavejam --release` (or set `WAVEJAM_CLAP`).

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::clap_host::{Host, Input, Instance, Recording, Timed, Timeline};
use common::notes::{pair_notes, sounding_after, Played};

const TEMPO: f64 = 120.0;
const BEATS_PER_BAR: f64 = 4.0;
/// Default "Wait" in beats.
const WAIT_BEATS: f64 = 1.0;
/// Grid step of the default "Quantize" (Beat).
const GRID_BEATS: f64 = 1.0;
/// Default "Answer Length" in bars.
const ANSWER_BARS: f64 = 2.0;
/// Channel the answer is emitted on.
const ANSWER_CHANNEL: i16 = 0;

/// Two bars of eighth notes on a pedal C. The Continuator matches contexts of up to 6 notes, so
/// it only has choices where a 6-note context recurs with different continuations: here the runs
/// of C continue with C, D or E, and the seed decides at almost every step. (A melodic phrase such
/// as C D E C D G … has unique 6-note contexts and is answered identically whatever the seed.)
const PHRASE: [u8; 16] = [
    60, 60, 60, 60, 60, 60, 60, 62, 60, 60, 60, 60, 60, 60, 64, 60,
];
/// Length of each phrase note, in beats.
const PHRASE_STEP_BEATS: f64 = 0.5;
/// Fraction of the step a phrase note is held.
const PHRASE_GATE: f64 = 0.75;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn samples_per_beat(sample_rate: f64) -> f64 {
    sample_rate * 60.0 / TEMPO
}

fn beat_of(sample: u64, sample_rate: f64) -> f64 {
    sample as f64 / samples_per_beat(sample_rate)
}

fn sample_at(beat: f64, sample_rate: f64) -> u64 {
    (beat * samples_per_beat(sample_rate)).round() as u64
}

/// The phrase on `channel` starting at beat 0; returns the inputs and the last note-off sample.
fn phrase(sample_rate: f64, channel: u8) -> (Vec<Timed>, u64) {
    let mut inputs = Vec::new();
    let mut last_off = 0;
    for (i, &key) in PHRASE.iter().enumerate() {
        let on_beat = i as f64 * PHRASE_STEP_BEATS;
        let on = sample_at(on_beat, sample_rate);
        let off = sample_at(on_beat + PHRASE_STEP_BEATS * PHRASE_GATE, sample_rate);
        inputs.push(Timed::note_on(on, key, 0.8).with_channel(channel));
        inputs.push(Timed::note_off(off, key).with_channel(channel));
        last_off = last_off.max(off);
    }
    (inputs, last_off)
}

/// One host configuration.
#[derive(Debug, Clone, Copy)]
struct Setup {
    sample_rate: f64,
    block: usize,
    offline: bool,
}

impl Setup {
    const OFFLINE_48K: Setup = Setup {
        sample_rate: 48_000.0,
        block: 512,
        offline: true,
    };
}

/// A rendered phrase and its answer.
struct Jam {
    rec: Recording,
    sample_rate: f64,
    last_phrase_off: u64,
    /// Answer notes (all output notes on the answer channel).
    answer: Vec<Played>,
}

/// Starts an instance with Thru off (unless `thru`) and `params` (plain values).
fn start(host: &Host, setup: Setup, thru: bool, params: &[(&str, f64)]) -> Instance {
    let mut inst = host.start(setup.sample_rate, setup.block, setup.offline);
    inst.set_param_plain("Thru", if thru { 1.0 } else { 0.0 });
    for &(name, plain) in params {
        inst.set_param_plain(name, plain);
    }
    inst
}

/// Plays the phrase from beat 0 at 120 BPM and renders `total_beats`.
fn jam_on(inst: &mut Instance, setup: Setup, total_beats: f64) -> Jam {
    let sample_rate = setup.sample_rate;
    let (inputs, last_phrase_off) = phrase(sample_rate, 0);
    let mut tl = Timeline::playing(TEMPO);
    tl.schedule(inputs);
    tl.run_until(inst, sample_at(total_beats, sample_rate), setup.block);
    let rec = tl.rec;
    let answer = pair_notes(&rec.notes)
        .unwrap_or_else(|err| panic!("{err}\noutput notes: {:#?}", rec.notes))
        .into_iter()
        .filter(|p| p.channel == ANSWER_CHANNEL)
        .collect();
    Jam {
        rec,
        sample_rate,
        last_phrase_off,
        answer,
    }
}

/// A fresh instance (Thru off) plays the phrase; renders up to 2 beats after the answer's end.
fn jam(host: &Host, setup: Setup, params: &[(&str, f64)]) -> Jam {
    let mut inst = start(host, setup, false, params);
    let bars = params
        .iter()
        .find(|(name, _)| *name == "Answer Length")
        .map_or(ANSWER_BARS, |(_, bars)| *bars);
    let total = answer_window(
        beat_of(phrase(setup.sample_rate, 0).1, setup.sample_rate),
        bars,
    )
    .1 + 2.0;
    jam_on(&mut inst, setup, total)
}

/// Beats [start, end) the answer may occupy after a phrase whose last note-off is at
/// `last_off_beat`: it starts on the first grid point at or after `last_off + Wait`.
fn answer_window(last_off_beat: f64, bars: f64) -> (f64, f64) {
    let start = ((last_off_beat + WAIT_BEATS) / GRID_BEATS - 1e-9).ceil() * GRID_BEATS;
    (start, start + bars * BEATS_PER_BAR)
}

/// Test 1's assertions: the answer comes on time, stays in its window, is released, and sounds.
fn check_answer(jam: &Jam, bars: f64, label: &str) {
    let sr = jam.sample_rate;
    let one_sample = 1.0 / samples_per_beat(sr);
    let last_off_beat = beat_of(jam.last_phrase_off, sr);
    let (start, end) = answer_window(last_off_beat, bars);
    assert!(
        !jam.answer.is_empty(),
        "{label}: no answer. Output notes: {:#?}",
        jam.rec.notes
    );
    let first_on = beat_of(jam.answer.iter().map(|p| p.on).min().unwrap(), sr);
    assert!(
        first_on <= last_off_beat + WAIT_BEATS + GRID_BEATS + one_sample,
        "{label}: first answer note at beat {first_on}, phrase ended at {last_off_beat} \
         (+ wait {WAIT_BEATS} + grid {GRID_BEATS})"
    );
    for p in &jam.answer {
        let (on, off) = (beat_of(p.on, sr), beat_of(p.off, sr));
        assert!(
            on >= start - one_sample && off <= end + one_sample && off >= on,
            "{label}: answer note {p:?} spans beats {on}..{off}, outside the {bars}-bar \
             window {start}..{end}"
        );
    }
    // Audio: sounding while the answer plays, finite everywhere.
    assert!(jam.rec.all_finite(), "{label}: non-finite audio samples");
    let answer_samples = jam.answer.iter().map(|p| p.on).min().unwrap()
        ..jam.answer.iter().map(|p| p.off).max().unwrap();
    let peak = jam.rec.peak(answer_samples.clone());
    assert!(
        peak > 1e-3,
        "{label}: answer audio is silent (peak {peak}) over samples {answer_samples:?}"
    );
}

/// An answer as (key, on beat, off beat), beats in thousandths.
type Signature = Vec<(i16, i64, i64)>;

/// The answer as (key, on beat, off beat) rounded to 1/1000 beat, for comparing configurations.
fn signature(jam: &Jam) -> Signature {
    let milli = |sample| (beat_of(sample, jam.sample_rate) * 1000.0).round() as i64;
    jam.answer
        .iter()
        .map(|p| (p.key, milli(p.on), milli(p.off)))
        .collect()
}

/// Renders the phrase, then blocks until `cond(sounding answer notes, answer notes so far)`
/// holds at a block's end; returns the timeline (answer under way) or panics.
fn play_until_answer_sounds(inst: &mut Instance, setup: Setup, min_notes: usize) -> Timeline {
    let sr = setup.sample_rate;
    let (inputs, last_off) = phrase(sr, 0);
    let mut tl = Timeline::playing(TEMPO);
    tl.schedule(inputs);
    tl.run_until(inst, last_off + 1, setup.block);
    let limit = sample_at(answer_window(beat_of(last_off, sr), ANSWER_BARS).1, sr);
    let mut counts = HashMap::new();
    while tl.sample < limit {
        let block = tl.step(inst, setup.block, &[]);
        sounding_after(&block.notes, &mut counts);
        let answer_ons = tl
            .rec
            .note_ons()
            .filter(|n| n.channel == ANSWER_CHANNEL)
            .count();
        if answer_ons >= min_notes && !counts.is_empty() {
            return tl;
        }
    }
    panic!(
        "the answer never had a sounding note after {min_notes} note-ons. Output: {:#?}",
        tl.rec.notes
    );
}

/// Parameter values equal, NaN included (compared bit for bit).
fn assert_same_values(actual: &[(String, f64)], expected: &[(String, f64)], what: &str) {
    let bits = |values: &[(String, f64)]| {
        values
            .iter()
            .map(|(name, v)| (name.clone(), v.to_bits()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        bits(actual),
        bits(expected),
        "{what}: {actual:?} vs {expected:?}"
    );
}

fn sounding(rec: &Recording) -> HashMap<(i16, i16), i32> {
    let mut counts = HashMap::new();
    sounding_after(&rec.notes, &mut counts);
    counts
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// The bundle exposes the documented parameters, ranges, and ports.
#[test]
fn plugin_surface() {
    let host = Host::load();
    let mut inst = host.instantiate();
    // (name, CLAP max: 1 for continuous, steps for stepped, stepped?)
    let expected: [(&str, f64, bool); 19] = [
        ("Engine", 3.0, true),
        ("Temperature", 1.0, false),
        ("Seed", 9999.0, true),
        ("Seed Mode", 1.0, true),
        ("Wait", 1.0, false),
        ("Answer Length", 7.0, true),
        ("Quantize", 2.0, true),
        ("Mode", 2.0, true),
        ("Generate", 1.0, true),
        ("Barge-in", 1.0, true),
        ("Output", 2.0, true),
        ("Bypass", 1.0, true),
        ("Gain", 1.0, false),
        ("Thru", 1.0, true),
        ("Scale", 2.0, true),
        ("Scale Root", 11.0, true),
        ("Scale Type", 7.0, true),
        ("Feel", 1.0, false),
        ("Voice", 3.0, true),
    ];
    for (name, max, stepped) in expected {
        let desc = inst.param(name).clone();
        assert_eq!(
            (desc.min, desc.max, desc.stepped()),
            (0.0, max, stepped),
            "{name}: CLAP range/stepping"
        );
    }
    // Defaults, read back through the plugin's own formatter.
    let defaults = [
        ("Engine", "Hybrid"),
        ("Temperature", "1.00"),
        ("Seed", "1"),
        ("Seed Mode", "Fixed"),
        ("Wait", "1.00 beats"),
        ("Answer Length", "2 bars"),
        ("Quantize", "Beat"),
        ("Mode", "Answer"),
        ("Barge-in", "On"),
        ("Output", "MIDI + audio"),
        ("Thru", "On"),
        ("Scale", "Off"),
        ("Scale Root", "C"),
        ("Scale Type", "Major"),
        ("Feel", "1.00"),
        ("Voice", "Synth"),
    ];
    for (name, text) in defaults {
        let default = inst.param(name).default;
        assert_eq!(inst.param_text(name, default), text, "{name}: default");
        assert_eq!(inst.current_text(name), text, "{name}: current value");
    }
    // Plain → CLAP conversion goes through the plugin's parser.
    assert_eq!(inst.plain_to_value("Seed", 1234.0), 1234.0);
    assert_eq!(inst.plain_to_value("Answer Length", 3.0), 2.0);
    assert!((inst.plain_to_value("Temperature", 1.5) - 0.75).abs() < 1e-6);
    assert_eq!(inst.note_ports(), (1, 1), "note ports (in, out)");
    assert_eq!(
        inst.audio_ports(),
        (vec![], vec![2]),
        "audio ports (in, out)"
    );
}

/// Hosts store and automate what `get_info` and `get_value` report: every parameter's range,
/// default and current value must be finite.
#[test]
fn parameter_values_are_finite() {
    let host = Host::load();
    let mut inst = host.start(48_000.0, 512, false);
    let mut bad = Vec::new();
    for desc in inst.params().to_vec() {
        let value = inst.get_param(&desc.name);
        if ![desc.min, desc.max, desc.default, value]
            .iter()
            .all(|v| v.is_finite())
        {
            bad.push(format!(
                "{}: min {} max {} default {} value {value}",
                desc.name, desc.min, desc.max, desc.default
            ));
        }
    }
    assert!(bad.is_empty(), "non-finite CLAP parameter values: {bad:#?}");
}

/// Test 1: A 2-bar phrase, then silence: the answer starts within Wait + one grid step of the last
/// note-off, stays within Answer Length bars, releases every note, and sounds.
#[test]
fn answers_a_phrase_on_time() {
    let host = Host::load();
    let setup = Setup::OFFLINE_48K;
    let jam = jam(&host, setup, &[]);
    check_answer(&jam, ANSWER_BARS, "offline 48 kHz / 512");
    // Thru is off: only answer notes on the output, and no sound during the phrase.
    assert!(
        jam.rec
            .notes
            .iter()
            .all(|n| n.channel == ANSWER_CHANNEL && n.sample > jam.last_phrase_off),
        "with Thru off, output notes before/outside the answer: {:#?}",
        jam.rec.notes
    );
    let phrase_peak = jam.rec.peak(0..jam.last_phrase_off);
    assert!(
        phrase_peak < 1e-6,
        "with Thru off the phrase is not voiced, but the audio peaks at {phrase_peak}"
    );
    // A host that puts quiet plugins to sleep must keep calling process() until the answer.
    let first_on = jam.answer[0].on;
    for block in &jam.rec.blocks {
        let end = block.start_sample + block.frames as u64;
        if block.start_sample >= jam.last_phrase_off && end <= first_on {
            assert_eq!(
                block.status,
                clack_host::prelude::ProcessStatus::Continue,
                "block at sample {} between phrase end and answer asks to sleep",
                block.start_sample
            );
        }
    }
}

/// Test 2: Same seed ⇒ same answer (two fresh instances); different seed ⇒ different answer.
#[test]
fn seed_decides_the_answer() {
    let host = Host::load();
    let setup = Setup::OFFLINE_48K;
    let sr = setup.sample_rate;
    let relative = |jam: &Jam| {
        let (start, _) = answer_window(beat_of(jam.last_phrase_off, sr), ANSWER_BARS);
        let start = sample_at(start, sr) as i64;
        jam.answer
            .iter()
            .map(|p| (p.key, p.on as i64 - start, p.off as i64 - start))
            .collect::<Vec<_>>()
    };
    let a = jam(&host, setup, &[("Seed", 7.0)]);
    let b = jam(&host, setup, &[("Seed", 7.0)]);
    let c = jam(&host, setup, &[("Seed", 8.0)]);
    check_answer(&a, ANSWER_BARS, "seed 7");
    check_answer(&c, ANSWER_BARS, "seed 8");
    assert_eq!(
        relative(&a),
        relative(&b),
        "seed 7 twice gave different answers"
    );
    assert_ne!(
        relative(&a),
        relative(&c),
        "seeds 7 and 8 gave the same answer"
    );
}

/// Test 3: Barge-in: a player note-on while answer notes sound releases all of them in that same
/// process call, and no answer note starts after it.
#[test]
fn barge_in_releases_the_answer_at_once() {
    let host = Host::load();
    let setup = Setup::OFFLINE_48K;
    let mut inst = start(&host, setup, false, &[]);
    let mut tl = play_until_answer_sounds(&mut inst, setup, 2);
    let before = sounding(&tl.rec);
    let barge_time = (setup.block / 2) as u64;
    let barge = Timed::note_on(barge_time, 72, 0.9);
    let block = tl.step(&mut inst, setup.block, &[barge]).clone();
    let barge_sample = block.start_sample + barge_time;
    let left = sounding(&tl.rec);
    assert!(
        left.is_empty(),
        "answer notes {before:?} were sounding; after the barge-in block still sounding: \
         {left:?}. That block's output: {:#?}",
        block.notes
    );
    // Hold the barge-in note for 2 beats (no new phrase end), then release it.
    let hold = sample_at(2.0, setup.sample_rate);
    tl.run_until(&mut inst, barge_sample + hold, setup.block);
    tl.schedule([Timed::note_off(tl.sample, 72)]);
    tl.step(&mut inst, setup.block, &[]);
    let late: Vec<_> = tl
        .rec
        .note_ons()
        .filter(|n| n.channel == ANSWER_CHANNEL && n.sample >= barge_sample)
        .collect();
    assert!(
        late.is_empty(),
        "answer note-ons after the barge-in: {late:#?}"
    );
    pair_notes(&tl.rec.notes).unwrap();
}

/// Test 4: The transport stopping during the answer releases every note in that block.
#[test]
fn transport_stop_releases_all_notes() {
    let host = Host::load();
    let setup = Setup::OFFLINE_48K;
    let mut inst = start(&host, setup, false, &[]);
    let mut tl = play_until_answer_sounds(&mut inst, setup, 2);
    let before = sounding(&tl.rec);
    tl.playing = false;
    let block = tl.step(&mut inst, setup.block, &[]).clone();
    let left = sounding(&tl.rec);
    assert!(
        left.is_empty(),
        "answer notes {before:?} were sounding; after the stop block still sounding: {left:?}. \
         That block's output: {:#?}",
        block.notes
    );
    // Stopped for 2 beats: nothing new starts.
    let stop_sample = block.start_sample;
    tl.run_until(
        &mut inst,
        stop_sample + sample_at(2.0, setup.sample_rate),
        setup.block,
    );
    let late: Vec<_> = tl
        .rec
        .note_ons()
        .filter(|n| n.sample >= stop_sample)
        .collect();
    assert!(late.is_empty(), "note-ons while stopped: {late:#?}");
    pair_notes(&tl.rec.notes).unwrap();
}

/// Test 5: State round-trip: non-default Seed / Temperature / Answer Length survive save → load
/// into a fresh instance (inactive and active), and the restored instance answers the same.
#[test]
fn state_round_trip() {
    let host = Host::load();
    let setup = Setup::OFFLINE_48K;
    let params = [
        ("Seed", 4321.0),
        ("Temperature", 1.5),
        ("Answer Length", 3.0),
    ];
    let mut original = start(&host, setup, false, &params);
    original.set_param_text("Engine", "Markov");
    let saved = original.save_state();
    let original_values = original.param_values();
    assert_eq!(original.current_text("Engine"), "Markov");
    assert_eq!(original.current_text("Seed"), "4321");
    assert_eq!(original.current_text("Temperature"), "1.50");
    assert_eq!(original.current_text("Answer Length"), "3 bars");
    let total = answer_window(
        beat_of(phrase(setup.sample_rate, 0).1, setup.sample_rate),
        3.0,
    )
    .1 + 2.0;
    let original_jam = jam_on(&mut original, setup, total);
    check_answer(&original_jam, 3.0, "original");

    // Loaded before activation, like a DAW opening a project.
    let mut restored = host.instantiate();
    restored.load_state(&saved);
    assert!(restored.set_render_mode(clack_extensions::render::RenderMode::Offline));
    restored.activate(setup.sample_rate, setup.block);
    assert_same_values(
        &restored.param_values(),
        &original_values,
        "restored parameters",
    );
    let restored_jam = jam_on(&mut restored, setup, total);
    assert_eq!(
        signature(&restored_jam),
        signature(&original_jam),
        "the restored instance answers differently"
    );

    // State saved after jamming, loaded into an active instance.
    let after = original.save_state();
    let mut active = host.start(setup.sample_rate, setup.block, true);
    active.load_state(&after);
    assert_same_values(
        &active.param_values(),
        &original_values,
        "loaded while active",
    );
}

/// Test 6: Block sizes × sample rates (offline): test 1 holds and the answer is the same
/// everywhere; one real-time run (as fast as this host goes, far ahead of the clock) equals it
/// too.
#[test]
fn answer_is_identical_across_block_sizes_and_sample_rates() {
    let host = Host::load();
    let mut reference: Option<(String, Signature)> = None;
    let mut compare = |label: String, jam: &Jam| {
        check_answer(jam, ANSWER_BARS, &label);
        let sig = signature(jam);
        match &reference {
            None => reference = Some((label, sig)),
            Some((ref_label, ref_sig)) => {
                assert_eq!(&sig, ref_sig, "answer at {label} differs from {ref_label}")
            }
        }
    };
    for sample_rate in [44_100.0, 48_000.0, 96_000.0] {
        for block in [32, 64, 128, 512, 1000, 1024, 4096] {
            let setup = Setup {
                sample_rate,
                block,
                offline: true,
            };
            let jam = jam(&host, setup, &[]);
            compare(format!("offline {sample_rate} Hz / {block}"), &jam);
        }
    }
    let realtime = Setup {
        offline: false,
        ..Setup::OFFLINE_48K
    };
    let jam = jam(&host, realtime, &[]);
    compare("real-time 48000 Hz / 512".to_string(), &jam);
}

/// Test 7: Thru: the player's notes are echoed on their own channel at their own offsets, with
/// their note-offs, and voiced; the answer still follows on channel 0.
#[test]
fn thru_echoes_the_players_notes() {
    let host = Host::load();
    let setup = Setup::OFFLINE_48K;
    let sr = setup.sample_rate;
    let mut inst = start(&host, setup, true, &[]);
    let channel = 3u8;
    let (inputs, last_off) = phrase(sr, channel);
    let mut tl = Timeline::playing(TEMPO);
    tl.schedule(inputs.clone());
    let total = answer_window(beat_of(last_off, sr), ANSWER_BARS).1 + 2.0;
    tl.run_until(&mut inst, sample_at(total, sr), setup.block);
    let played = pair_notes(&tl.rec.notes)
        .unwrap_or_else(|err| panic!("{err}\noutput: {:#?}", tl.rec.notes));
    let echoed: Vec<Played> = played
        .iter()
        .copied()
        .filter(|p| p.channel == i16::from(channel))
        .collect();
    let expected: Vec<Played> = PHRASE
        .iter()
        .enumerate()
        .map(|(i, &key)| {
            let on_beat = i as f64 * PHRASE_STEP_BEATS;
            Played {
                channel: i16::from(channel),
                key: i16::from(key),
                on: sample_at(on_beat, sr),
                off: sample_at(on_beat + PHRASE_STEP_BEATS * PHRASE_GATE, sr),
            }
        })
        .collect();
    assert_eq!(echoed, expected, "Thru echo of the phrase");
    let peak = tl.rec.peak(0..last_off);
    assert!(
        peak > 1e-3,
        "Thru on, but the phrase is silent (peak {peak})"
    );
    assert!(
        played
            .iter()
            .any(|p| p.channel == ANSWER_CHANNEL && p.on > last_off),
        "no answer with Thru on: {played:#?}"
    );
}

/// The sustain pedal (MIDI CC 64) holds the thru notes until it lifts, as on a piano (a key
/// struck again ends its held note), and leaves the answer as it is without it: the phrase is
/// heard as the keys play it.
#[test]
fn the_sustain_pedal_holds_the_thru_notes_to_its_lift() {
    let host = Host::load();
    let setup = Setup::OFFLINE_48K;
    let sr = setup.sample_rate;
    let channel = 3u8;
    let (inputs, last_off) = phrase(sr, channel);
    let (answer_from, answer_to) = answer_window(beat_of(last_off, sr), ANSWER_BARS);
    let lift = sample_at(answer_from + 1.0, sr);
    let cc64 = |sample: u64, value: u8| Timed {
        sample,
        input: Input::Midi([0xB0 | channel, 64, value]),
    };
    let play = |pedal: bool| {
        let mut inst = start(&host, setup, true, &[]);
        let mut tl = Timeline::playing(TEMPO);
        if pedal {
            tl.schedule([cc64(0, 127)]);
        }
        tl.schedule(inputs.clone());
        if pedal {
            tl.schedule([cc64(lift, 0)]);
        }
        tl.run_until(&mut inst, sample_at(answer_to + 2.0, sr), setup.block);
        pair_notes(&tl.rec.notes).unwrap_or_else(|err| panic!("{err}\noutput: {:#?}", tl.rec.notes))
    };
    let (plain, pedalled) = (play(false), play(true));
    let on_channel = |played: &[Played], c: i16| -> Vec<Played> {
        played.iter().copied().filter(|p| p.channel == c).collect()
    };
    let expected: Vec<Played> = PHRASE
        .iter()
        .enumerate()
        .map(|(i, &key)| {
            let struck_again = PHRASE[i + 1..].iter().position(|&k| k == key);
            let on_beat = i as f64 * PHRASE_STEP_BEATS;
            Played {
                channel: i16::from(channel),
                key: i16::from(key),
                on: sample_at(on_beat, sr),
                off: struck_again.map_or(lift, |j| {
                    sample_at(on_beat + (j + 1) as f64 * PHRASE_STEP_BEATS, sr)
                }),
            }
        })
        .collect();
    assert_eq!(on_channel(&pedalled, i16::from(channel)), expected);
    let answer = on_channel(&pedalled, ANSWER_CHANNEL);
    assert!(
        answer.iter().any(|p| p.on < lift),
        "no answer before the lift"
    );
    assert_eq!(answer, on_channel(&plain, ANSWER_CHANNEL));
}

/// With a neural voice the jam sounds (thru and answer), in range, and every note ends; the
/// notes are the synth's: the voice changes the sound only.
#[test]
fn the_neural_voices_play_the_jam() {
    let host = Host::load();
    let setup = Setup::OFFLINE_48K;
    let sr = setup.sample_rate;
    let total = answer_window(beat_of(phrase(sr, 0).1, sr), ANSWER_BARS).1 + 4.0;
    let play = |voice: &str| {
        let mut inst = start(&host, setup, true, &[]);
        inst.set_param_text("Voice", voice);
        let mut tl = Timeline::playing(TEMPO);
        tl.schedule(phrase(sr, 0).0);
        tl.run_until(&mut inst, sample_at(total, sr), setup.block);
        tl.rec
    };
    let synth = play("Synth");
    for name in ["Fiddle", "Flute"] {
        let rec = play(name);
        assert_eq!(rec.notes, synth.notes, "{name}: the same notes");
        pair_notes(&rec.notes).unwrap_or_else(|err| panic!("{name}: {err}"));
        let end = rec.audio[0].len() as u64;
        let peak = rec.peak(0..end);
        assert!(peak > 1e-2 && peak <= 1.0, "{name}: peak {peak}");
        assert!(rec.all_finite(), "{name}: not finite");
        assert_ne!(rec.audio, synth.audio, "{name} sounds, not the synth");
        let tail = rec.peak(end - sample_at(0.5, sr)..end);
        assert_eq!(tail, 0.0, "{name}: silent once the jam is over");
    }
}

/// Automating the voice while the jam plays (thru notes and the answer sounding) never asks the
/// host for a restart: every voice runs one latency behind its notes, so the latency the host
/// compensates stays put (a restart would cut the notes), and no note is left hanging.
#[test]
fn automating_the_voice_asks_the_host_for_no_restart() {
    let host = Host::load();
    let setup = Setup::OFFLINE_48K;
    let sr = setup.sample_rate;
    let mut inst = start(&host, setup, true, &[]);
    // nice-plug tells the host a latency set in `activate` only once that has returned, by one
    // restart (the next activation reports it), as a host honours it.
    if inst.take_restart_request() {
        inst.deactivate();
        inst.activate(sr, setup.block);
    }
    assert!(!inst.take_restart_request(), "the latency is known now");
    let id = inst.param("Voice").id;
    let (phrase_inputs, last_off) = phrase(sr, 0);
    let answer_start = answer_window(beat_of(last_off, sr), ANSWER_BARS).0;
    let mut changes = Vec::new();
    for (beat, voice) in [
        (1.3, "Fiddle"),
        (2.6, "Flute"),
        (3.9, "Synth"),
        (answer_start + 0.6, "Flute"),
        (answer_start + 1.7, "Fiddle"),
        (answer_start + 2.9, "Synth"),
    ] {
        let value = inst.text_to_value("Voice", voice).unwrap();
        changes.push(Timed {
            sample: sample_at(beat, sr),
            input: Input::Param { id, value },
        });
    }
    let latency = inst.latency();
    assert!(latency > 0, "the neural voices' resampler");
    let mut tl = Timeline::playing(TEMPO);
    tl.schedule(phrase_inputs.into_iter().chain(changes));
    let end = answer_window(beat_of(last_off, sr), ANSWER_BARS).1 + 2.0;
    tl.run_until(&mut inst, sample_at(end, sr), setup.block);
    assert!(
        !inst.take_restart_request(),
        "a change of voice asked the host to restart the plugin"
    );
    assert_eq!(inst.current_text("Voice"), "Synth");
    assert_eq!(inst.latency(), latency);
    let answer = pair_notes(&tl.rec.notes).unwrap_or_else(|err| panic!("{err}"));
    assert!(
        answer.iter().any(|p| p.channel == ANSWER_CHANNEL),
        "the answer played"
    );
    assert!(tl.rec.all_finite());
}

/// The same phrase sent as MIDI 1.0 events gets the same answer as CLAP note events.
#[test]
fn midi_1_input_is_answered_like_clap_notes() {
    let host = Host::load();
    let setup = Setup::OFFLINE_48K;
    let sr = setup.sample_rate;
    let clap = jam(&host, setup, &[]);
    let mut inst = start(&host, setup, false, &[]);
    let (inputs, last_off) = phrase(sr, 0);
    let mut tl = Timeline::playing(TEMPO);
    tl.schedule(inputs.into_iter().map(Timed::as_midi));
    let total = answer_window(beat_of(last_off, sr), ANSWER_BARS).1 + 2.0;
    tl.run_until(&mut inst, sample_at(total, sr), setup.block);
    let answer: Vec<Played> = pair_notes(&tl.rec.notes)
        .unwrap_or_else(|err| panic!("{err}\noutput: {:#?}", tl.rec.notes))
        .into_iter()
        .filter(|p| p.channel == ANSWER_CHANNEL)
        .collect();
    let keys = |a: &[Played]| a.iter().map(|p| (p.key, p.on, p.off)).collect::<Vec<_>>();
    assert_eq!(
        keys(&answer),
        keys(&clap.answer),
        "MIDI 1.0 vs CLAP-note answer"
    );
}

// ---------------------------------------------------------------------------------------------
// Host lifecycle
// ---------------------------------------------------------------------------------------------

/// Answer notes as (key, on, off) in thousandths of a beat after `from` (an absolute sample),
/// for answers rendered at `sample_rate` from there on.
fn answer_after(rec: &Recording, from: u64, sample_rate: f64) -> Signature {
    let milli = |sample: u64| {
        ((sample - from) as f64 / samples_per_beat(sample_rate) * 1000.0).round() as i64
    };
    pair_notes(&rec.notes)
        .unwrap_or_else(|err| panic!("{err}\noutput: {:#?}", rec.notes))
        .into_iter()
        .filter(|p| p.channel == ANSWER_CHANNEL && p.on >= from)
        .map(|p| (p.key, milli(p.on), milli(p.off)))
        .collect()
}

/// The phrase from beat `beat` of a timeline that has played at one sample rate since beat 0.
fn phrase_at(tl: &Timeline, inst: &Instance, beat: f64) -> (Vec<Timed>, u64) {
    let start = tl.sample_at_beat(inst, beat);
    let (inputs, last_off) = phrase(inst.sample_rate(), 0);
    let shifted = inputs
        .into_iter()
        .map(|t| Timed {
            sample: t.sample + start,
            ..t
        })
        .collect();
    (shifted, last_off + start)
}

/// Deactivated while an answer note and a thru note sound, then activated again: the first
/// block sends every note-off they are owed, at its start.
#[test]
fn deactivation_mid_answer_owes_its_note_offs_to_the_first_block() {
    let host = Host::load();
    let setup = Setup::OFFLINE_48K;
    let mut inst = start(&host, setup, true, &[("Barge-in", 0.0)]);
    let mut tl = play_until_answer_sounds(&mut inst, setup, 2);
    tl.step(&mut inst, setup.block, &[Timed::note_on(0, 90, 0.8)]);
    let before = sounding(&tl.rec);
    assert!(
        before.contains_key(&(0, 90)) && before.len() >= 2,
        "a thru note and an answer note should sound: {before:?}"
    );
    inst.deactivate();
    inst.activate(setup.sample_rate, setup.block);
    let block = tl.step(&mut inst, setup.block, &[]).clone();
    let left = sounding(&tl.rec);
    assert!(
        left.is_empty(),
        "{before:?} sounded at deactivation; after the first block still sounding: {left:?}. \
         That block's output: {:#?}",
        block.notes
    );
    assert!(block.notes.iter().all(|n| n.sample == block.start_sample));
    // The player lets go of the key later: nothing more to release.
    tl.schedule([Timed::note_off(tl.sample, 90)]);
    tl.run_until(
        &mut inst,
        tl.sample + sample_at(12.0, setup.sample_rate),
        setup.block,
    );
    pair_notes(&tl.rec.notes).unwrap();
}

/// A stop and start of processing 0.1 beat after the phrase ends, before the answer's grid
/// point, changes nothing: the same answer on its grid point, offline and in a run paced at the
/// audio rate.
#[test]
fn a_processing_restart_after_the_phrase_keeps_the_answer() {
    let host = Host::load();
    for offline in [true, false] {
        let setup = Setup {
            offline,
            ..Setup::OFFLINE_48K
        };
        let sr = setup.sample_rate;
        let run = |restart: bool| {
            let mut inst = start(&host, setup, false, &[("Answer Length", 1.0)]);
            let (inputs, last_off) = phrase(sr, 0);
            let mut tl = Timeline::playing(TEMPO);
            tl.schedule(inputs);
            if !offline {
                tl.pace_in_real_time();
            }
            let restart_at = sample_at(beat_of(last_off, sr) + 0.1, sr);
            tl.run_until(&mut inst, restart_at, setup.block);
            if restart {
                inst.restart_processing();
            }
            let end = answer_window(beat_of(last_off, sr), 1.0).1 + 0.5;
            tl.run_until(&mut inst, sample_at(end, sr), setup.block);
            let answer = pair_notes(&tl.rec.notes)
                .unwrap()
                .into_iter()
                .filter(|p| p.channel == ANSWER_CHANNEL)
                .collect();
            Jam {
                rec: tl.rec,
                sample_rate: sr,
                last_phrase_off: last_off,
                answer,
            }
        };
        let label = if offline { "offline" } else { "real time" };
        let reference = run(false);
        check_answer(&reference, 1.0, label);
        let restarted = run(true);
        check_answer(&restarted, 1.0, &format!("{label}, restarted"));
        assert_eq!(
            signature(&restarted),
            signature(&reference),
            "{label}: the restart changed the answer"
        );
    }
}

/// An engine change right after the phrase, while the generator works on the answer: no note
/// of that answer plays afterwards.
#[test]
fn an_engine_change_while_the_answer_is_generated_cancels_it() {
    let host = Host::load();
    let setup = Setup {
        offline: false,
        ..Setup::OFFLINE_48K
    };
    let sr = setup.sample_rate;
    let mut inst = start(&host, setup, false, &[]);
    let (inputs, last_off) = phrase(sr, 0);
    let mut tl = Timeline::playing(TEMPO);
    tl.schedule(inputs);
    tl.run_until(&mut inst, last_off + 1, setup.block);
    let markov = inst.text_to_value("Engine", "Markov").unwrap();
    let change = Timed {
        sample: 0,
        input: Input::Param {
            id: inst.param("Engine").id,
            value: markov,
        },
    };
    tl.step(&mut inst, setup.block, &[change]);
    let until = sample_at(
        answer_window(beat_of(last_off, sr), ANSWER_BARS).1 + 1.0,
        sr,
    );
    tl.throttle = Some((tl.sample..until, Duration::from_millis(1)));
    tl.run_until(&mut inst, until, setup.block);
    let answer: Vec<_> = tl
        .rec
        .note_ons()
        .filter(|n| n.channel == ANSWER_CHANNEL)
        .collect();
    assert!(
        answer.is_empty(),
        "the cancelled answer played: {answer:#?}"
    );
}

/// Activated twice (48 kHz, then 96 kHz) between two phrases: the second answer is the one an
/// instance that was never re-activated gives (the session, its phrases and memories, is kept).
#[test]
fn reactivation_between_phrases_keeps_the_session() {
    let host = Host::load();
    let setup = Setup::OFFLINE_48K;
    let second_answer = |reactivate: bool| {
        let mut inst = start(&host, setup, false, &[]);
        let mut tl = Timeline::playing(TEMPO);
        let (inputs, _) = phrase_at(&tl, &inst, 0.0);
        tl.schedule(inputs);
        tl.run_until(&mut inst, sample_at(20.0, setup.sample_rate), setup.block);
        if reactivate {
            inst.deactivate();
            inst.activate(48_000.0, setup.block);
            inst.deactivate();
            inst.activate(96_000.0, setup.block);
        }
        let (inputs, _) = phrase_at(&tl, &inst, 24.0);
        let from = tl.sample_at_beat(&inst, 24.0);
        tl.schedule(inputs);
        let end = tl.sample_at_beat(&inst, 44.0);
        tl.run_until(&mut inst, end, setup.block);
        answer_after(&tl.rec, from, inst.sample_rate())
    };
    let kept = second_answer(false);
    assert!(!kept.is_empty(), "no second answer");
    assert_eq!(second_answer(true), kept);
}

/// A real-time host that renders far faster than real time (no pause at all) gets every answer
/// on time, the same as a bounce.
#[test]
fn a_real_time_host_running_far_ahead_gets_every_answer_on_time() {
    let host = Host::load();
    let jam_of = |offline: bool| {
        let setup = Setup {
            offline,
            ..Setup::OFFLINE_48K
        };
        let sr = setup.sample_rate;
        let mut inst = start(&host, setup, false, &[]);
        let mut tl = Timeline::playing(TEMPO);
        let mut answers = Vec::new();
        for start_beat in [0.0, 24.0, 48.0] {
            let (inputs, last_off) = phrase_at(&tl, &inst, start_beat);
            tl.schedule(inputs);
            let from = tl.sample;
            let end = tl.sample_at_beat(&inst, start_beat + 24.0);
            tl.run_until(&mut inst, end, setup.block);
            let answer = answer_after(&tl.rec, from, sr);
            let first_on = answer.first().map(|a| a.1);
            let limit = ((beat_of(last_off - from, sr) + WAIT_BEATS + GRID_BEATS) * 1000.0).round();
            assert!(
                first_on.is_some_and(|on| on as f64 <= limit),
                "offline {offline}: the phrase at beat {start_beat} was answered at {first_on:?} \
                 (limit {limit} thousandths of a beat)"
            );
            answers.push(answer);
        }
        answers
    };
    assert_eq!(jam_of(false), jam_of(true));
}
