//! Behaviour of the whole synth through its public API (plus a look at which slot is fading).

use super::test_support::{
    brightness, harmonic_to_inharmonic_db, max_step, peak, peak_frequency_hz, rms,
};
use super::*;

const SAMPLE_RATE_HZ: f32 = 48_000.0;
/// The amplitude release time set in `voice`, in milliseconds.
const RELEASE_MS: f32 = 300.0;
/// Shortest fade that does not click, in milliseconds: the steal fade must be at least this.
const SHORTEST_CLICK_FREE_FADE_MS: f32 = 2.0;

fn player(key: u8) -> VoiceKey {
    VoiceKey {
        source: VoiceSource::Player,
        channel: 0,
        key,
    }
}

fn samples(ms: f32, sample_rate_hz: f32) -> usize {
    (ms * 0.001 * sample_rate_hz).round() as usize
}

/// Renders `len` samples in one call.
fn render(synth: &mut Synth, len: usize) -> (Vec<f32>, Vec<f32>) {
    let (mut left, mut right) = (vec![0.0; len], vec![0.0; len]);
    synth.render(&mut left, &mut right);
    (left, right)
}

/// MIDI key to frequency, equal temperament, A4 = 440 Hz.
fn key_hz(key: u8) -> f32 {
    440.0 * ((key as f32 - 69.0) / 12.0).exp2()
}

#[test]
fn idle_synth_overwrites_the_buffers_with_silence() {
    let mut synth = Synth::new(SAMPLE_RATE_HZ);
    let (mut left, mut right) = (vec![0.7; 512], vec![-0.3; 512]);
    synth.render(&mut left, &mut right);
    assert!(left.iter().chain(&right).all(|s| *s == 0.0));
    assert_eq!(synth.active_voices(), 0);
}

#[test]
fn empty_and_single_sample_renders_work() {
    let mut synth = Synth::new(SAMPLE_RATE_HZ);
    synth.note_on(player(60), 0.8);
    synth.render(&mut [], &mut []);
    let (mut left, mut right) = ([0.0], [0.0]);
    for _ in 0..1_000 {
        synth.render(&mut left, &mut right);
        assert!(left[0].is_finite() && right[0].is_finite());
    }
    assert_eq!(synth.active_voices(), 1);
}

#[test]
fn a_note_produces_finite_audible_stereo() {
    let mut synth = Synth::new(SAMPLE_RATE_HZ);
    synth.note_on(player(60), 0.8);
    let (left, right) = render(&mut synth, samples(500.0, SAMPLE_RATE_HZ));
    assert!(left.iter().chain(&right).all(|s| s.is_finite()));
    assert!(
        rms(&left) > 0.02 && rms(&right) > 0.02,
        "too quiet: {}",
        rms(&left)
    );
    assert_ne!(left, right, "no stereo spread");
}

#[test]
fn note_off_fades_to_exact_silence_within_the_release_time() {
    let mut synth = Synth::new(SAMPLE_RATE_HZ);
    synth.note_on(player(60), 0.8);
    render(&mut synth, samples(700.0, SAMPLE_RATE_HZ));
    synth.note_off(player(60));
    let (early, _) = render(&mut synth, samples(50.0, SAMPLE_RATE_HZ));
    assert!(
        rms(&early) > 0.005,
        "release is not musical: it cut the note"
    );
    render(&mut synth, samples(RELEASE_MS - 50.0 + 5.0, SAMPLE_RATE_HZ));
    assert_eq!(synth.active_voices(), 0);
    let (left, right) = render(&mut synth, 256);
    assert!(left.iter().chain(&right).all(|s| *s == 0.0));
}

#[test]
fn release_all_releases_every_note_musically() {
    let mut synth = Synth::new(SAMPLE_RATE_HZ);
    for key in [48, 52, 55, 59, 62] {
        synth.note_on(player(key), 0.7);
    }
    synth.note_on(
        VoiceKey {
            source: VoiceSource::Answer,
            channel: 3,
            key: 67,
        },
        0.7,
    );
    render(&mut synth, samples(200.0, SAMPLE_RATE_HZ));
    synth.release_all();
    let (early, _) = render(&mut synth, samples(20.0, SAMPLE_RATE_HZ));
    assert!(rms(&early) > 0.01 && synth.active_voices() == 6);
    render(&mut synth, samples(RELEASE_MS, SAMPLE_RATE_HZ));
    assert_eq!(synth.active_voices(), 0);
}

#[test]
fn reset_silences_at_once_and_replays_identically() {
    let mut fresh = Synth::new(SAMPLE_RATE_HZ);
    fresh.note_on(player(57), 0.9);
    let reference = render(&mut fresh, 4_096);

    let mut synth = Synth::new(SAMPLE_RATE_HZ);
    for key in 40..60 {
        synth.note_on(player(key), 1.0);
    }
    render(&mut synth, 1_000);
    synth.reset();
    assert_eq!(synth.active_voices(), 0);
    let (left, _) = render(&mut synth, 64);
    assert!(left.iter().all(|s| *s == 0.0));
    synth.note_on(player(57), 0.9);
    assert_eq!(render(&mut synth, 4_096), reference);
}

#[test]
fn player_and_answer_notes_never_release_each_other() {
    let mut synth = Synth::new(SAMPLE_RATE_HZ);
    let answer = VoiceKey {
        source: VoiceSource::Answer,
        ..player(60)
    };
    synth.note_on(player(60), 0.7);
    synth.note_on(answer, 0.7);
    synth.note_off(player(60));
    render(&mut synth, samples(RELEASE_MS + 10.0, SAMPLE_RATE_HZ));
    assert_eq!(
        synth.active_voices(),
        1,
        "the answer's note was released too"
    );
    let other_channel = VoiceKey {
        channel: 1,
        ..answer
    };
    synth.note_off(other_channel);
    render(&mut synth, samples(RELEASE_MS + 10.0, SAMPLE_RATE_HZ));
    assert_eq!(
        synth.active_voices(),
        1,
        "a note-off on another channel released it"
    );
}

#[test]
fn repeating_a_held_key_releases_the_previous_voice() {
    let mut synth = Synth::new(SAMPLE_RATE_HZ);
    synth.note_on(player(64), 0.7);
    render(&mut synth, 1_000);
    synth.note_on(player(64), 0.7);
    assert_eq!(
        synth.active_voices(),
        2,
        "the old voice must release, not be cut"
    );
    render(&mut synth, samples(RELEASE_MS + 10.0, SAMPLE_RATE_HZ));
    assert_eq!(synth.active_voices(), 1);
    synth.note_off(player(64));
    render(&mut synth, samples(RELEASE_MS + 10.0, SAMPLE_RATE_HZ));
    assert_eq!(synth.active_voices(), 0);
}

/// Sustain-phase audio (after attack and decays settle) of one note at `velocity`.
fn sustained_note(key: u8, velocity: f32) -> Vec<f32> {
    let mut synth = Synth::new(SAMPLE_RATE_HZ);
    synth.note_on(player(key), velocity);
    render(&mut synth, samples(1_000.0, SAMPLE_RATE_HZ));
    render(&mut synth, 16_384).0
}

#[test]
fn higher_velocity_is_louder_and_brighter() {
    let soft = sustained_note(60, 0.2);
    let medium = sustained_note(60, 0.5);
    let hard = sustained_note(60, 1.0);
    assert!(rms(&soft) < rms(&medium) && rms(&medium) < rms(&hard));
    // At least 12 dB between the extremes (the design range is 24 dB).
    assert!(
        rms(&hard) > 4.0 * rms(&soft),
        "{} vs {}",
        rms(&hard),
        rms(&soft)
    );
    let (soft, medium, hard) = (brightness(&soft), brightness(&medium), brightness(&hard));
    assert!(
        soft < medium && medium < hard,
        "brightness {soft} {medium} {hard}"
    );
    assert!(
        hard > 2.0 * soft,
        "velocity hardly changes the tone: {soft} vs {hard}"
    );
}

#[test]
fn high_note_is_band_limited() {
    // MIDI 96 (2093 Hz): harmonics above 24 kHz would fold back into the audible band. The
    // voice holds three fundamentals: the two detuned saws and the sub an octave down.
    let key = 96;
    let detune = (6.0_f32 / 1_200.0).exp2();
    let f0 = key_hz(key);
    let fundamentals = [f0 / detune, f0 * detune, 0.5 * f0];
    let audio = sustained_note(key, 1.0);
    let db = harmonic_to_inharmonic_db(&audio, SAMPLE_RATE_HZ, &fundamentals);
    assert!(db > 40.0, "aliasing only {db:.1} dB below the harmonics");
}

#[test]
fn sixteen_loud_notes_sound_together_within_headroom() {
    // A wide voicing and a dense cluster, both at full velocity, including the attacks.
    let wide: Vec<u8> = (0..16).map(|i| 28 + 5 * i).collect();
    let cluster: Vec<u8> = (0..16).map(|i| 52 + i).collect();
    let low_cluster: Vec<u8> = (0..16).map(|i| 24 + i).collect();
    let octaves: Vec<u8> = (0..16).map(|i| 12 * (i % 8) + 12 + i / 8 * 7).collect();
    for keys in [wide, cluster, low_cluster, octaves] {
        let mut synth = Synth::new(SAMPLE_RATE_HZ);
        for &key in &keys {
            synth.note_on(player(key), 1.0);
        }
        assert_eq!(synth.active_voices(), 16);
        let (left, right) = render(&mut synth, samples(2_000.0, SAMPLE_RATE_HZ));
        assert_eq!(synth.active_voices(), 16, "notes died while held");
        assert!(left.iter().chain(&right).all(|s| s.is_finite()));
        let loudest = peak(&left).max(peak(&right));
        assert!(loudest < 1.5, "16 voices peak at {loudest}");
        assert!(loudest > 0.3, "16 voices are implausibly quiet: {loudest}");
    }
}

#[test]
fn full_polyphony_steals_the_oldest_voice_once_it_faded() {
    let mut synth = Synth::new(SAMPLE_RATE_HZ);
    for key in 40..40 + POLYPHONY as u8 {
        synth.note_on(player(key), 0.5);
        render(&mut synth, 10);
    }
    assert_eq!(synth.active_voices(), POLYPHONY);
    synth.note_on(player(100), 0.5);
    let fading: Vec<u8> = synth
        .voices
        .iter()
        .filter(|v| v.is_fading())
        .map(|v| v.key().key)
        .collect();
    assert_eq!(fading, vec![40], "the oldest note should be fading");
    assert_eq!(
        synth.active_voices(),
        POLYPHONY + 1,
        "the stolen voice was cut"
    );
    render(
        &mut synth,
        samples(SHORTEST_CLICK_FREE_FADE_MS, SAMPLE_RATE_HZ),
    );
    assert_eq!(
        synth.active_voices(),
        POLYPHONY + 1,
        "steal fade shorter than 2 ms"
    );
    render(&mut synth, samples(10.0, SAMPLE_RATE_HZ));
    assert_eq!(synth.active_voices(), POLYPHONY);
}

#[test]
fn stealing_prefers_the_voice_released_longest_ago() {
    let mut synth = Synth::new(SAMPLE_RATE_HZ);
    for key in 40..40 + POLYPHONY as u8 {
        synth.note_on(player(key), 0.5);
    }
    render(&mut synth, 100);
    synth.note_off(player(50));
    render(&mut synth, 100);
    synth.note_off(player(45));
    synth.note_on(player(100), 0.5);
    let fading: Vec<u8> = synth
        .voices
        .iter()
        .filter(|v| v.is_fading())
        .map(|v| v.key().key)
        .collect();
    assert_eq!(fading, vec![50]);
}

#[test]
fn many_steals_at_once_stay_finite_and_bounded() {
    let mut synth = Synth::new(SAMPLE_RATE_HZ);
    let (mut left, mut right) = ([0.0; 7], [0.0; 7]);
    for round in 0..400_u32 {
        // 400 notes in 2.8k samples: far more steals than spare slots within one fade.
        synth.note_on(player((round * 37 % 88) as u8 + 21), 1.0);
        synth.render(&mut left, &mut right);
        assert!(left
            .iter()
            .chain(&right)
            .all(|s| s.is_finite() && s.abs() < 2.0));
        assert!(synth.active_voices() <= POLYPHONY + STEAL_SLOTS);
    }
}

/// First index in `from..to` where `signal` has its largest magnitude.
fn loudest_index(signal: &[f32], from: usize, to: usize) -> usize {
    (from..to)
        .max_by(|a, b| signal[*a].abs().total_cmp(&signal[*b].abs()))
        .expect("empty range")
}

#[test]
fn note_off_does_not_click() {
    // A dark, low note: its waveform is smooth, so a hard cut would stand out as a step.
    let (key, velocity) = (43, 0.2);
    let sustain_from = samples(800.0, SAMPLE_RATE_HZ);
    let sustain_to = samples(1_200.0, SAMPLE_RATE_HZ);
    let mut probe = Synth::new(SAMPLE_RATE_HZ);
    probe.note_on(player(key), velocity);
    let (steady, _) = render(&mut probe, sustain_to);
    let steady_slope = max_step(&steady[sustain_from..]);
    // Release where a hard cut would jump the furthest: the loudest sample.
    let off_at = loudest_index(&steady, sustain_from, sustain_to);
    let amplitude = steady[off_at].abs();

    // The released note is the same waveform times a falling gain g: |Δ(g·x)| ≤ |Δx| + |Δg|·|x|.
    // A click-free fade takes at least 2 ms, so |Δg| ≤ 1 / (2 ms · rate) per sample.
    let fade_floor = samples(SHORTEST_CLICK_FREE_FADE_MS, SAMPLE_RATE_HZ) as f32;
    let bound = steady_slope + amplitude / fade_floor;
    assert!(
        amplitude > 3.0 * bound,
        "a hard cut would not be detectable here"
    );

    let mut synth = Synth::new(SAMPLE_RATE_HZ);
    synth.note_on(player(key), velocity);
    let (before, _) = render(&mut synth, off_at);
    synth.note_off(player(key));
    let (after, _) = render(&mut synth, samples(RELEASE_MS + 10.0, SAMPLE_RATE_HZ));
    let around = [&before[off_at - 1..], &after[..]].concat();
    let worst = max_step(&around);
    assert!(worst <= bound, "note-off step {worst} above bound {bound}");
}

#[test]
fn stealing_does_not_click() {
    // The victim is loud and low; the 23 other held notes are quiet and dark, and the note
    // that steals is quiet, so the victim's removal dominates what could change at the steal.
    let (victim_key, victim_velocity) = (36, 1.0);
    let (thief_key, thief_velocity) = (100, 0.0);
    let settled = samples(1_000.0, SAMPLE_RATE_HZ);
    let window = samples(200.0, SAMPLE_RATE_HZ);

    // Voices are independent and the victim is the first note in both synths, so it has the
    // same phases and waveform alone as in the crowd.
    let mut alone = Synth::new(SAMPLE_RATE_HZ);
    alone.note_on(player(victim_key), victim_velocity);
    let (victim, _) = render(&mut alone, settled + window);
    let steal_at = loudest_index(&victim, settled, settled + window);
    let victim_amplitude = victim[steal_at].abs();

    let mut thief_alone = Synth::new(SAMPLE_RATE_HZ);
    thief_alone.note_on(player(thief_key), thief_velocity);
    let thief_slope = max_step(&render(&mut thief_alone, settled).0);

    let mut synth = Synth::new(SAMPLE_RATE_HZ);
    synth.note_on(player(victim_key), victim_velocity);
    for key in victim_key + 1..victim_key + POLYPHONY as u8 {
        synth.note_on(player(key), 0.0);
    }
    let (before, _) = render(&mut synth, steal_at);
    assert_eq!(synth.active_voices(), POLYPHONY);
    let crowd_slope = max_step(&before[steal_at - window..]);
    synth.note_on(player(thief_key), thief_velocity);
    let fading = synth.voices.iter().find(|v| v.is_fading()).map(|v| v.key());
    assert_eq!(
        fading,
        Some(player(victim_key)),
        "the victim was not stolen"
    );
    let (after, _) = render(&mut synth, samples(20.0, SAMPLE_RATE_HZ));

    // Each part's step adds at most its own: the crowd (victim included) as before, the thief
    // as alone, plus the victim's fade |Δg|·|x| with a fade of at least 2 ms. The maxima of the
    // parts need not coincide in time, hence no exact equality; a 10% allowance covers that.
    let fade_floor = samples(SHORTEST_CLICK_FREE_FADE_MS, SAMPLE_RATE_HZ) as f32;
    let bound = 1.1 * (crowd_slope + thief_slope) + victim_amplitude / fade_floor;
    // A hard cut would jump by the victim's value, minus whatever the rest moves at most.
    let hard_cut_step = victim_amplitude - crowd_slope - thief_slope;
    assert!(
        hard_cut_step > 1.5 * bound,
        "cut {hard_cut_step} vs bound {bound}: test blind"
    );
    let around = [&before[steal_at - 1..], &after[..]].concat();
    let worst = max_step(&around);
    assert!(worst <= bound, "steal step {worst} above bound {bound}");
}

/// Plays a fixed sequence of note events (including steals) into `synth`, rendering between
/// events in pieces whose sizes cycle through `piece_sizes`.
fn play_sequence(synth: &mut Synth, len: usize, piece_sizes: &[usize]) -> (Vec<f32>, Vec<f32>) {
    // (sample offset, key, velocity; None = note-off)
    let mut events: Vec<(usize, u8, Option<f32>)> = (0..30)
        .map(|i| {
            (
                i * 97 % 3_000,
                36 + (i * 7 % 48) as u8,
                Some(0.3 + 0.02 * i as f32),
            )
        })
        .collect();
    events.extend((0..10).map(|i| (1_500 + i * 211, 36 + (i * 7 % 48) as u8, None)));
    events.sort_by_key(|e| e.0);
    let (mut left, mut right) = (vec![0.0; len], vec![0.0; len]);
    let (mut position, mut next_event, mut piece) = (0, 0, 0);
    while position < len {
        while next_event < events.len() && events[next_event].0 == position {
            match events[next_event] {
                (_, key, Some(velocity)) => synth.note_on(player(key), velocity),
                (_, key, None) => synth.note_off(player(key)),
            }
            next_event += 1;
        }
        let event_at = events.get(next_event).map_or(len, |e| e.0);
        let end = len
            .min(event_at)
            .min(position + piece_sizes[piece % piece_sizes.len()]);
        synth.render(&mut left[position..end], &mut right[position..end]);
        position = end;
        piece += 1;
    }
    (left, right)
}

#[test]
fn rendering_in_pieces_equals_rendering_at_once() {
    let len = 4_096;
    let whole = play_sequence(&mut Synth::new(SAMPLE_RATE_HZ), len, &[len]);
    assert!(rms(&whole.0) > 0.01);
    for sizes in [&[1, 7, 31, 500][..], &[3, 2, 511, 1], &[64], &[1]] {
        let pieces = play_sequence(&mut Synth::new(SAMPLE_RATE_HZ), len, sizes);
        assert_eq!(pieces, whole, "pieces {sizes:?} differ");
    }
}

#[test]
fn pitch_is_right_at_every_common_sample_rate() {
    let key = 57; // A3, 220 Hz
    let f0 = key_hz(key);
    // About 1.4 s each: the two detuned saws beat at 1.5 Hz, so a shorter window would smear
    // their joint peak.
    for (sample_rate_hz, len) in [
        (44_100.0, 65_536),
        (48_000.0, 65_536),
        (96_000.0, 131_072),
        (192_000.0, 262_144),
    ] {
        let mut synth = Synth::new(96_000.0);
        synth.set_sample_rate(sample_rate_hz);
        synth.note_on(player(key), 0.3);
        render(&mut synth, samples(500.0, sample_rate_hz));
        let (left, right) = render(&mut synth, len);
        assert!(left
            .iter()
            .chain(&right)
            .all(|s| s.is_finite() && s.abs() < 1.0));
        // The sub is a single sine an octave down: it must sit within 2 cents of f0 / 2.
        let sub_hz = peak_frequency_hz(&left, sample_rate_hz, 0.4 * f0, 0.6 * f0);
        let sub_error = 2.0 * sub_hz / f0 - 1.0;
        assert!(
            sub_error.abs() < 0.001,
            "{sample_rate_hz} Hz: sub at {sub_hz} Hz"
        );
        // The saws are ±6 cents apart, so their joint peak lies within 10 cents of f0.
        let saws_hz = peak_frequency_hz(&left, sample_rate_hz, 0.8 * f0, 1.25 * f0);
        let saws_error = saws_hz / f0 - 1.0;
        assert!(
            saws_error.abs() < 0.006,
            "{sample_rate_hz} Hz: saws at {saws_hz} Hz"
        );
    }
}

#[test]
fn extreme_keys_velocities_and_rates_stay_finite() {
    for sample_rate_hz in [22_050.0, 192_000.0, 0.0, f32::NAN] {
        let mut synth = Synth::new(sample_rate_hz);
        for (key, velocity) in [(0, 0.0), (127, 1.0), (127, 0.0), (0, 1.0), (64, f32::NAN)] {
            synth.note_on(player(key), velocity);
        }
        let (left, right) = render(&mut synth, 20_000);
        assert!(left
            .iter()
            .chain(&right)
            .all(|s| s.is_finite() && s.abs() < 1.5));
        synth.release_all();
        render(&mut synth, samples(RELEASE_MS + 10.0, 192_000.0));
        assert_eq!(synth.active_voices(), 0);
    }
}
