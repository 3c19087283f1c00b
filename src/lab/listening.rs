//! Listening checks: phrases of held-out tunes played the way people play them (see
//! [`crate::lab::performance`]) into the real plugin (the in-process [`Host`]), and what its
//! answers do — stay in the tune's key, on a 16th or triplet grid, one line, as dense as the
//! prompt, swing with a swinging player, follow a player's own tempo with the transport stopped.
//!
//! Every performance is seeded from the tune's place in the list, so the figures are
//! reproducible: `wavejam listen-checks --data corpus/validation` prints the README's table.

use serde::Serialize;

use std::path::Path;
use std::sync::atomic::Ordering;

use crate::lab::eval::{load_folder, EvalError};
use crate::lab::host::Host;
use crate::lab::performance::{played_live, swung, with_chords};
use crate::lab::render::notes_from_events;
use crate::music::encoding::Vocabulary;
use crate::music::key::{find_key, Key};
use crate::music::{Note, TICKS_PER_BEAT};

/// The host's tempo, in BPM (with the transport stopped: its internal clock's).
pub const HOST_BPM: f64 = 120.0;
/// Tempos the free-tempo player plays at, in BPM.
pub const FREE_TEMPOS: [f64; 4] = [70.0, 95.0, 140.0, 170.0];
/// Bars of each tune that make its prompt.
pub const PROMPT_BARS: u32 = 4;
/// An onset this close to a grid point (in beats) is on it.
pub const ON_GRID_BEATS: f64 = 1.0 / 48.0;
/// Sample rate and block size of the renders.
const SAMPLE_RATE_HZ: f32 = 48_000.0;
const BLOCK: usize = 512;
/// Where a free player's phrase starts, in seconds (off the internal clock's beats).
const FREE_START_SECONDS: f64 = 0.53;

/// How a prompt is played.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Playing {
    AsWritten,
    /// Loose onsets, legato and early releases, other velocities.
    Live,
    /// The melody over a diatonic triad a bar.
    Chords,
    /// 8ths at 2:1.
    Swung,
    /// Live, at this tempo (BPM), with the transport stopped.
    FreeTempo(f64),
}

impl Playing {
    /// Every way, in the table's order.
    pub fn all() -> Vec<Playing> {
        let mut all = vec![
            Playing::AsWritten,
            Playing::Live,
            Playing::Chords,
            Playing::Swung,
        ];
        all.extend(FREE_TEMPOS.map(Playing::FreeTempo));
        all
    }

    pub fn label(self) -> String {
        match self {
            Playing::AsWritten => "as written".into(),
            Playing::Live => "live".into(),
            Playing::Chords => "with chords".into(),
            Playing::Swung => "swung".into(),
            Playing::FreeTempo(bpm) => format!("free tempo, {bpm:.0} BPM"),
        }
    }

    /// Whether playing `prompt` this way differs from playing it as written: swing needs two
    /// off-beat 8ths or more to be heard.
    fn changes(self, prompt: &Prompt) -> bool {
        match self {
            Playing::Swung => {
                let moved = swung(&prompt.notes)
                    .iter()
                    .zip(&prompt.notes)
                    .filter(|(played, written)| played.onset_beats != written.onset_beats)
                    .count();
                moved >= 2
            }
            _ => true,
        }
    }

    /// The player's tempo, in BPM.
    fn bpm(self) -> f64 {
        match self {
            Playing::FreeTempo(bpm) => bpm,
            _ => HOST_BPM,
        }
    }
}

/// A held-out tune's prompt: its first [`PROMPT_BARS`] bars, beats from the first bar line.
#[derive(Debug, Clone)]
pub struct Prompt {
    pub name: String,
    pub notes: Vec<Note>,
    /// The tune's next [`PROMPT_BARS`] bars, beats from their first bar line: what a free
    /// player plays when they come back in after the answer.
    pub next: Vec<Note>,
    /// Bar length, in beats.
    pub bar_beats: f64,
    /// The whole tune's key.
    pub key: Key,
}

/// What one answer did, against its prompt.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Heard {
    notes: usize,
    in_key: usize,
    on_grid: usize,
    /// Off-beat 8ths (onsets from 5/12 to 0.7 of the beat: straight, swung or between) and
    /// those at the swung place.
    offbeats: usize,
    swung_offbeats: usize,
    /// Answer time with one note or more, and with two or more, in beats.
    sounding_beats: f64,
    chord_beats: f64,
    pitch_sum: f64,
    /// Answer notes per beat over the prompt's.
    density_ratio: f64,
    prompt_mean_pitch: f64,
    /// The tempo the plugin heard, over the player's (0 if none).
    tempo_ratio: f64,
    /// The player's own onsets, and those within [`ON_GRID_BEATS`] of their grid.
    played: usize,
    played_on_grid: usize,
    /// The plugin heard the phrase begin where it does in the player's bar (free tempo).
    bar_heard: bool,
    /// The same for the player's next phrase, played after the answer in their bars (free
    /// tempo, a tune with a next phrase).
    next_bar_heard: Option<bool>,
}

/// The figures of one way of playing, over every prompt.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ListeningRow {
    pub playing: String,
    pub answers: usize,
    pub answer_notes: usize,
    /// Share of answer notes in the tune's key.
    pub in_key: f64,
    /// Share of answer onsets within [`ON_GRID_BEATS`] of a 16th or triplet point.
    pub on_grid: f64,
    /// Share of the answers' sounding time with two or more notes.
    pub chord_time: f64,
    /// Mean answer pitch minus mean prompt pitch, in semitones (mean over answers).
    pub pitch_offset: f64,
    /// Mean of answer density over prompt density.
    pub density_ratio: f64,
    /// Share of the answers' off-beat 8ths at the swung place (NaN when there are none).
    pub swung_offbeats: f64,
    /// Share of answers whose heard tempo is within 3 % of the player's (free tempo only).
    pub tempo_within_3_percent: f64,
    /// Share of answers whose heard tempo is within 3 % of the player's, or of twice or half
    /// of it (the same beat grid at another level: 8ths heard as beats, or beats as 8ths).
    pub tempo_within_3_percent_or_octave: f64,
    /// [`ListeningRow::on_grid`] over the answers whose tempo was heard within 3 %.
    pub on_grid_when_heard: f64,
    /// Share of the takes whose tempo was heard within 3 % in which the phrase was heard to
    /// begin where it does in the player's bar (on the downbeat, or a pickup before it), within
    /// a 16th: the engines read the phrase in the player's bars.
    pub bar_heard: f64,
    /// [`ListeningRow::bar_heard`] for the player's next phrase: the tune's next bars, played
    /// from a bar line of theirs after the answer (over the takes with one).
    pub next_bar_heard: f64,
    /// Share of the player's own onsets within [`ON_GRID_BEATS`] of their 16th or triplet grid:
    /// how closely the answers could follow a grid the player only shows this closely.
    pub player_on_grid: f64,
    /// The takes whose tempo was not heard within 3 % (free tempo only), in prompt order.
    pub tempo_misses: Vec<TempoMiss>,
}

/// A free-tempo take whose tempo the plugin heard more than 3 % off the player's.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TempoMiss {
    pub tune: String,
    /// Bar length of the tune, in beats.
    pub bar_beats: f64,
    /// The prompt's commonest time from one onset to the next, in beats (0.25: it is written
    /// in 16ths): the level the notes alone cannot tell from another.
    pub commonest_step_beats: f64,
    pub take: u32,
    pub played_bpm: f64,
    /// 0 if none was heard.
    pub heard_bpm: f64,
}

/// The commonest time from one onset of `notes` to the next, in beats (on a 1/48-beat raster;
/// the shortest of equally common ones), or 0 for fewer than two onsets.
fn commonest_step(notes: &[Note]) -> f64 {
    let mut counts = std::collections::BTreeMap::new();
    for pair in notes.windows(2) {
        let step = ((pair[1].onset_beats - pair[0].onset_beats) * 48.0).round() as i64;
        if step > 0 {
            *counts.entry(step).or_insert(0usize) += 1;
        }
    }
    // NOTE: max_by_key keeps the last of equal counts; the steps go longest first for it.
    counts
        .iter()
        .rev()
        .max_by_key(|(_, &count)| count)
        .map_or(0.0, |(&step, _)| step as f64 / 48.0)
}

/// `count` melodies (tunes without overlapping notes) of the MIDI files under `dir`, spread
/// evenly through their sorted list: (name, notes in beats, the first bar's length in beats).
///
/// # Errors
/// If `dir` cannot be listed.
pub fn melodies(dir: &Path, count: usize) -> Result<Vec<(String, Vec<Note>, f64)>, EvalError> {
    let vocabulary = Vocabulary::default();
    let corpus = load_folder(dir, &vocabulary)?;
    let mut tunes = corpus.tunes;
    tunes.retain(|t| t.is_monophonic(&vocabulary));
    if tunes.is_empty() {
        return Err(EvalError::NoTunes {
            dir: dir.to_path_buf(),
            skipped: corpus.skipped.len(),
        });
    }
    let stride = (tunes.len() as f64 / count.max(1) as f64).max(1.0);
    Ok((0..count.min(tunes.len()))
        .map(|i| &tunes[(i as f64 * stride) as usize])
        .map(|t| {
            let bar_beats = f64::from(t.meter.bar_ticks(0)) / f64::from(TICKS_PER_BEAT);
            (t.name.clone(), vocabulary.decode_ids(&t.tokens), bar_beats)
        })
        .collect())
}

/// The prompts of `tunes` ((name, notes in beats, bar length in beats)): each tune's first
/// [`PROMPT_BARS`] bars, if they hold 8 notes or more.
pub fn prompts(tunes: &[(String, Vec<Note>, f64)]) -> Vec<Prompt> {
    tunes
        .iter()
        .filter_map(|(name, notes, bar_beats)| {
            let end = f64::from(PROMPT_BARS) * bar_beats;
            let bars = |from: f64| -> Vec<Note> {
                notes
                    .iter()
                    .filter(|n| (from..from + end).contains(&n.onset_beats))
                    .map(|n| Note {
                        onset_beats: n.onset_beats - from,
                        duration_beats: n.duration_beats.min(from + end - n.onset_beats),
                        ..*n
                    })
                    .collect()
            };
            let head = bars(0.0);
            (head.len() >= 8).then(|| Prompt {
                name: name.clone(),
                notes: head,
                next: bars(end),
                bar_beats: *bar_beats,
                key: find_key(notes),
            })
        })
        .collect()
}

/// What the plugin played and heard in one take.
struct Take {
    /// The notes played.
    played: Vec<Note>,
    /// The answer's notes: onsets in the player's beats from their first bar line, as the
    /// played ones.
    answer: Vec<Note>,
    /// The tempo the plugin heard (BPM, 0 if none), and where in the player's bar it heard the
    /// phrase begin (their beats after its bar line).
    heard_bpm: f64,
    heard_start_in_bar: f64,
    /// Where the plugin heard the player's next phrase begin in their bar (free tempo, a tune
    /// with a next phrase of four notes or more).
    next_heard_start_in_bar: Option<f64>,
}

/// `prompt` played `playing` (seeded by `seed`) into a fresh plugin at default settings (Thru
/// off) but its seed parameter at `plugin_seed`.
fn answer(prompt: &Prompt, playing: Playing, seed: u64, plugin_seed: u32) -> Take {
    let mut host = Host::new(SAMPLE_RATE_HZ, BLOCK, true);
    host.set_param("thru", 0.0);
    host.set_param("seed", plugin_seed as f32);
    host.transport.tempo_bpm = HOST_BPM;
    host.transport.time_signature = time_signature(prompt.bar_beats);
    host.transport.playing = !matches!(playing, Playing::FreeTempo(_));
    let bpm = playing.bpm();
    let played = match playing {
        Playing::AsWritten => prompt.notes.clone(),
        Playing::Live | Playing::FreeTempo(_) => played_live(&prompt.notes, bpm, seed),
        Playing::Chords => with_chords(&prompt.notes, prompt.bar_beats),
        Playing::Swung => swung(&prompt.notes),
    };
    // Player beats ↔ samples: free players start off the clock's beats.
    let start = if host.transport.playing {
        0.0
    } else {
        FREE_START_SECONDS
    };
    let sample_rate = f64::from(SAMPLE_RATE_HZ);
    let to_sample = |beats: f64| ((start + beats.max(0.0) * 60.0 / bpm) * sample_rate).round();
    // Queues `notes` (the player's beats) on the host; where the last one ends.
    let play = |host: &mut Host, notes: &[Note]| {
        for n in notes {
            host.note_on(
                to_sample(n.onset_beats) as u64,
                n.pitch,
                f32::from(n.velocity) / 127.0,
            );
            host.note_off(to_sample(n.end_beats()) as u64, n.pitch);
        }
        notes.iter().map(Note::end_beats).fold(0.0, f64::max)
    };
    let phrase_end = play(&mut host, &played);
    // Wait + grid + the answer (2 bars) + its tail, in the player's beats.
    let until = phrase_end + 2.0 + 4.0 * prompt.bar_beats;
    host.run(to_sample(until) as u64, BLOCK);
    let status = host.plugin.status();
    let heard_bpm = status.heard_tempo_bpm.load(Ordering::Relaxed);
    let heard_start_in_bar = status.heard_start_in_bar.load(Ordering::Relaxed);
    // The recorded notes come from their first note-on; put them back in the player's beats.
    let first_on = host.notes.iter().find(|e| e.velocity.is_some());
    let from_first = first_on.map_or(0.0, |e| {
        (e.sample as f64 / sample_rate - start) * bpm / 60.0
    });
    let mut notes = notes_from_events(&host.notes, 0, sample_rate * 60.0 / bpm);
    for n in &mut notes {
        n.onset_beats += from_first;
    }
    // The player comes back in on their next bar line with the tune's next bars.
    let next_heard_start_in_bar = (!host.transport.playing && prompt.next.len() >= 4).then(|| {
        let from = (until / prompt.bar_beats).ceil() * prompt.bar_beats;
        let next: Vec<Note> = prompt
            .next
            .iter()
            .map(|n| Note {
                onset_beats: n.onset_beats + from,
                ..*n
            })
            .collect();
        let next_end = play(&mut host, &played_live(&next, bpm, seed + 1));
        host.run(to_sample(next_end + 2.0) as u64 - host.position(), BLOCK);
        host.plugin
            .status()
            .heard_start_in_bar
            .load(Ordering::Relaxed)
    });
    Take {
        played,
        answer: notes,
        heard_bpm,
        heard_start_in_bar,
        next_heard_start_in_bar,
    }
}

/// The host time signature of bars of `bar_beats` quarter-note beats.
fn time_signature(bar_beats: f64) -> (i32, i32) {
    if bar_beats.fract() == 0.0 {
        (bar_beats as i32, 4)
    } else {
        ((bar_beats * 2.0).round() as i32, 8)
    }
}

/// Distance from `beat` to the nearest 16th or 8th-triplet point, in beats.
fn off_grid(beat: f64) -> f64 {
    let in_beat = beat.rem_euclid(1.0);
    [4.0, 3.0]
        .iter()
        .map(|per_beat| {
            let scaled = in_beat * per_beat;
            (scaled - scaled.round()).abs() / per_beat
        })
        .fold(f64::INFINITY, f64::min)
}

/// What `answer` to the `played` notes did against `prompt` (notes as written).
fn hear(prompt: &Prompt, played: &[Note], answer: &[Note], tempo_ratio: f64) -> Heard {
    let on_grid = |n: &&Note| off_grid(n.onset_beats) <= ON_GRID_BEATS;
    let mut heard = Heard {
        notes: answer.len(),
        tempo_ratio,
        played: played.len(),
        played_on_grid: played.iter().filter(on_grid).count(),
        ..Heard::default()
    };
    for n in answer {
        heard.in_key += usize::from(prompt.key.contains(n.pitch));
        heard.on_grid += usize::from(on_grid(&n));
        heard.pitch_sum += f64::from(n.pitch);
        let in_beat = n.onset_beats.rem_euclid(1.0);
        // Between the straight off-beat and the swung one, not as late as the last 16th.
        if (5.0 / 12.0..0.7).contains(&in_beat) {
            heard.offbeats += 1;
            heard.swung_offbeats += usize::from((in_beat - 2.0 / 3.0).abs() <= ON_GRID_BEATS);
        }
    }
    // Sounding time, on a 1/96-beat raster.
    if let (Some(first), Some(last)) = (
        answer.first().map(|n| n.onset_beats),
        answer.iter().map(Note::end_beats).reduce(f64::max),
    ) {
        let step = 1.0 / 96.0;
        let mut t = first;
        while t < last {
            let count = answer
                .iter()
                .filter(|n| n.onset_beats <= t && t < n.end_beats())
                .count();
            heard.sounding_beats += step * f64::from(u8::from(count >= 1));
            heard.chord_beats += step * f64::from(u8::from(count >= 2));
            t += step;
        }
    }
    let prompt_beats = f64::from(PROMPT_BARS) * prompt.bar_beats;
    let answer_beats = 2.0 * prompt.bar_beats;
    heard.density_ratio = (answer.len() as f64 / answer_beats)
        / (prompt.notes.len() as f64 / prompt_beats).max(f64::MIN_POSITIVE);
    heard.prompt_mean_pitch =
        prompt.notes.iter().map(|n| f64::from(n.pitch)).sum::<f64>() / prompt.notes.len() as f64;
    heard
}

/// The figures of `playing` over the `prompts` it changes, each played `takes` times (take `k`
/// of prompt `i`: performance seed `i + 1 + 1000 (k − 1)`, plugin seed `k`, from 1).
fn row(playing: Playing, prompts: &[Prompt], takes: u32) -> ListeningRow {
    let takes: Vec<(&Prompt, u32, Heard)> = prompts
        .iter()
        .enumerate()
        .filter(|(_, prompt)| playing.changes(prompt))
        .flat_map(|(i, prompt)| (1..=takes).map(move |take| (i, prompt, take)))
        .map(|(i, prompt, take)| {
            let performance = i as u64 + 1 + 1000 * u64::from(take - 1);
            let outcome = answer(prompt, playing, performance, take);
            let mut heard = hear(
                prompt,
                &outcome.played,
                &outcome.answer,
                outcome.heard_bpm / playing.bpm(),
            );
            let start = prompt
                .notes
                .iter()
                .map(|n| n.onset_beats)
                .fold(f64::MAX, f64::min);
            let in_bar = |heard: f64, start: f64| {
                let miss = (heard - start).rem_euclid(prompt.bar_beats);
                miss.min(prompt.bar_beats - miss) <= 0.25
            };
            heard.bar_heard = in_bar(outcome.heard_start_in_bar, start);
            let next_start = prompt.next.first().map_or(0.0, |n| n.onset_beats);
            heard.next_bar_heard = outcome
                .next_heard_start_in_bar
                .map(|heard| in_bar(heard, next_start));
            (prompt, take, heard)
        })
        .collect();
    let heard: Vec<Heard> = takes.iter().map(|(_, _, heard)| *heard).collect();
    let near = |ratio: f64, target: f64| (ratio / target - 1.0).abs() <= 0.03;
    let tempo_misses = takes
        .iter()
        .filter(|(_, _, heard)| {
            matches!(playing, Playing::FreeTempo(_)) && !near(heard.tempo_ratio, 1.0)
        })
        .map(|(prompt, take, heard)| TempoMiss {
            tune: prompt.name.clone(),
            bar_beats: prompt.bar_beats,
            commonest_step_beats: commonest_step(&prompt.notes),
            take: *take,
            played_bpm: playing.bpm(),
            heard_bpm: heard.tempo_ratio * playing.bpm(),
        })
        .collect();
    let sum = |f: fn(&Heard) -> f64| heard.iter().map(f).sum::<f64>();
    let notes = sum(|h| h.notes as f64);
    let answered: Vec<&Heard> = heard.iter().filter(|h| h.notes > 0).collect();
    let mean_over_answers = |f: &dyn Fn(&Heard) -> f64| {
        answered.iter().map(|h| f(h)).sum::<f64>() / answered.len().max(1) as f64
    };
    let heard_right: Vec<&Heard> = heard.iter().filter(|h| near(h.tempo_ratio, 1.0)).collect();
    let within_octave = heard
        .iter()
        .filter(|h| [0.5, 1.0, 2.0].iter().any(|t| near(h.tempo_ratio, *t)))
        .count();
    let right_notes: f64 = heard_right.iter().map(|h| h.notes as f64).sum();
    let right_on_grid: f64 = heard_right.iter().map(|h| h.on_grid as f64).sum();
    let bar_heard = heard_right.iter().filter(|h| h.bar_heard).count();
    let next_bars: Vec<bool> = heard_right
        .iter()
        .filter_map(|h| h.next_bar_heard)
        .collect();
    let next_bar_heard = next_bars.iter().filter(|h| **h).count();
    ListeningRow {
        playing: playing.label(),
        answers: answered.len(),
        answer_notes: notes as usize,
        in_key: sum(|h| h.in_key as f64) / notes.max(1.0),
        on_grid: sum(|h| h.on_grid as f64) / notes.max(1.0),
        chord_time: sum(|h| h.chord_beats) / sum(|h| h.sounding_beats).max(f64::MIN_POSITIVE),
        pitch_offset: mean_over_answers(&|h| h.pitch_sum / h.notes as f64 - h.prompt_mean_pitch),
        density_ratio: mean_over_answers(&|h| h.density_ratio),
        swung_offbeats: sum(|h| h.swung_offbeats as f64) / sum(|h| h.offbeats as f64),
        tempo_within_3_percent: heard_right.len() as f64 / heard.len().max(1) as f64,
        tempo_within_3_percent_or_octave: within_octave as f64 / heard.len().max(1) as f64,
        on_grid_when_heard: right_on_grid / right_notes.max(1.0),
        bar_heard: bar_heard as f64 / heard_right.len() as f64,
        next_bar_heard: next_bar_heard as f64 / next_bars.len() as f64,
        player_on_grid: sum(|h| h.played_on_grid as f64) / sum(|h| h.played as f64).max(1.0),
        tempo_misses,
    }
}

/// Every way of playing `prompts`, one row each (in [`Playing::all`]'s order), each prompt
/// played `takes` times, each take by another seeded performance into the plugin at another
/// seed: the figures are over that many takes.
pub fn listening_checks(prompts: &[Prompt], ways: &[Playing], takes: u32) -> Vec<ListeningRow> {
    ways.iter()
        .map(|&playing| row(playing, prompts, takes.max(1)))
        .collect()
}

/// Share of `tunes` ((notes, bar length in beats)) whose first [`PROMPT_BARS`] bars are in the
/// key found in the whole tune (the Scale parameter's *Auto* hears a session's phrases so).
pub fn key_from_the_start(tunes: &[(String, Vec<Note>, f64)]) -> f64 {
    let found = tunes
        .iter()
        .filter(|(_, notes, bar_beats)| {
            let end = f64::from(PROMPT_BARS) * bar_beats;
            let head: Vec<Note> = notes
                .iter()
                .copied()
                .filter(|n| n.onset_beats < end)
                .collect();
            !head.is_empty() && find_key(&head) == find_key(notes)
        })
        .count();
    found as f64 / tunes.len().max(1) as f64
}

/// The rows as a Markdown table.
pub fn listening_table(rows: &[ListeningRow]) -> String {
    let mut out = String::from(
        "| played | answers | in key | on grid (±1/48 beat) | time with 2+ notes | pitch vs prompt (st) | density ÷ prompt | off-beats swung | tempo heard ±3% (or ×2, ×½) | on grid when heard (player's own) | phrase start in bar heard (next phrase) |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let swung = if r.swung_offbeats.is_finite() {
            format!("{:.3}", r.swung_offbeats)
        } else {
            "–".into()
        };
        let (tempo, heard_grid, bar) = if r.playing.starts_with("free") {
            (
                format!(
                    "{:.2} ({:.2})",
                    r.tempo_within_3_percent, r.tempo_within_3_percent_or_octave
                ),
                format!("{:.3} ({:.3})", r.on_grid_when_heard, r.player_on_grid),
                format!("{:.3} ({:.3})", r.bar_heard, r.next_bar_heard),
            )
        } else {
            ("–".into(), "–".into(), "–".into())
        };
        out.push_str(&format!(
            "| {} | {} | {:.3} | {:.3} | {:.3} | {:+.1} | {:.2} | {} | {} | {} | {} |\n",
            r.playing,
            r.answers,
            r.in_key,
            r.on_grid,
            r.chord_time,
            r.pitch_offset,
            r.density_ratio,
            swung,
            tempo,
            heard_grid,
            bar
        ));
    }
    out
}

/// The free-tempo takes heard more than 3 % off, one line per tune and tempo, as a Markdown
/// table: the tune's bar, its commonest step, and the tempo heard in each of its missed takes.
pub fn tempo_misses_table(rows: &[ListeningRow]) -> String {
    let mut out = String::from(
        "| played (BPM) | tune | bar (beats) | commonest step (beats) | heard (BPM), take by take |\n|---|---|---|---|---|\n",
    );
    let misses: Vec<&TempoMiss> = rows.iter().flat_map(|r| &r.tempo_misses).collect();
    // The misses come tune by tune: a tune's takes at one tempo make one line.
    for line in misses.chunk_by(|a, b| a.tune == b.tune && a.played_bpm == b.played_bpm) {
        let first = line[0];
        let heard: Vec<String> = line
            .iter()
            .map(|miss| format!("{:.1} ({})", miss.heard_bpm, miss.take))
            .collect();
        out.push_str(&format!(
            "| {:.0} | {} | {} | {} | {} |\n",
            first.played_bpm,
            first.tune,
            first.bar_beats,
            first.commonest_step_beats,
            heard.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_kit::melody;

    /// A folder with no melody (here a chorale only) is an error, not an empty table of NaNs.
    #[test]
    fn a_folder_without_melodies_is_an_error() {
        let dir = crate::test_kit::TempDir::new("no-melodies");
        let chorale = crate::test_kit::chorale();
        let bytes = crate::music::midi_file::to_smf_bytes(&chorale, 90.0, 0, &[]);
        std::fs::write(dir.0.join("c.mid"), bytes).unwrap();
        assert!(matches!(
            melodies(&dir.0, 10),
            Err(EvalError::NoTunes { skipped: 0, .. })
        ));
    }

    #[test]
    fn the_commonest_step_is_the_level_a_tune_is_written_at() {
        let in_16ths = melody(
            0.0,
            &[(60, 0.25), (62, 0.25), (64, 0.25), (65, 0.75), (67, 1.0)],
        );
        assert_eq!(commonest_step(&in_16ths), 0.25);
        let in_quarters = melody(
            0.0,
            &[(60, 0.5), (62, 1.0), (64, 1.0), (65, 1.0), (67, 1.0)],
        );
        assert_eq!(commonest_step(&in_quarters), 1.0);
        let even = melody(0.0, &[(60, 0.5), (62, 1.0), (64, 1.0)]);
        assert_eq!(
            commonest_step(&even),
            0.5,
            "the shorter of equally common steps"
        );
        assert_eq!(commonest_step(&in_16ths[..1]), 0.0);
    }

    #[test]
    fn the_misses_are_listed_a_line_per_tune_and_tempo() {
        let miss = |tune: &str, take: u32, played_bpm: f64, heard_bpm: f64| TempoMiss {
            tune: tune.into(),
            bar_beats: 2.0,
            commonest_step_beats: 0.25,
            take,
            played_bpm,
            heard_bpm,
        };
        let row = |misses: Vec<TempoMiss>| ListeningRow {
            playing: "free".into(),
            answers: 0,
            answer_notes: 0,
            in_key: 0.0,
            on_grid: 0.0,
            chord_time: 0.0,
            pitch_offset: 0.0,
            density_ratio: 0.0,
            swung_offbeats: 0.0,
            tempo_within_3_percent: 0.0,
            tempo_within_3_percent_or_octave: 0.0,
            on_grid_when_heard: 0.0,
            bar_heard: 0.0,
            next_bar_heard: 0.0,
            player_on_grid: 0.0,
            tempo_misses: misses,
        };
        let table = tempo_misses_table(&[
            row(vec![
                miss("reel", 1, 70.0, 140.1),
                miss("reel", 3, 70.0, 139.8),
            ]),
            row(vec![
                miss("reel", 2, 140.0, 70.2),
                miss("air", 2, 140.0, 104.7),
            ]),
        ]);
        let lines: Vec<&str> = table.lines().skip(2).collect();
        assert_eq!(
            lines,
            [
                "| 70 | reel | 2 | 0.25 | 140.1 (1), 139.8 (3) |",
                "| 140 | reel | 2 | 0.25 | 70.2 (2) |",
                "| 140 | air | 2 | 0.25 | 104.7 (2) |",
            ]
        );
    }

    #[test]
    fn grid_distance_counts_16ths_and_triplets() {
        assert_eq!(off_grid(3.0), 0.0);
        assert!(off_grid(2.25) < 1e-12);
        assert!(off_grid(2.0 + 2.0 / 3.0) < 1e-12);
        assert!((off_grid(0.125) - 0.125).abs() < 1e-12);
        assert!(off_grid(0.625) > ON_GRID_BEATS);
    }

    /// Hand-computed figures of a small answer: a chord over half its time, one note out of
    /// key, one swung off-beat of two.
    #[test]
    fn an_answer_is_heard_against_its_prompt() {
        let prompt = Prompt {
            name: "t".into(),
            notes: melody(0.0, &[(60, 1.0); 16]),
            next: Vec::new(),
            bar_beats: 4.0,
            key: Key {
                tonic: 0,
                minor: false,
            },
        };
        let mut answer = melody(0.0, &[(62, 0.5), (64, 0.5), (61, 1.0)]);
        answer[1].onset_beats = 2.0 / 3.0;
        answer[1].duration_beats = 1.0 / 3.0;
        answer.push(Note {
            onset_beats: 1.5,
            ..answer[0]
        });
        let mut played = prompt.notes.clone();
        played[0].onset_beats = 0.1;
        let heard = hear(&prompt, &played, &answer, 1.0);
        assert_eq!(heard.notes, 4);
        assert_eq!(heard.in_key, 3);
        assert_eq!(heard.on_grid, 4);
        assert_eq!((heard.played, heard.played_on_grid), (16, 15));
        assert_eq!((heard.offbeats, heard.swung_offbeats), (2, 1));
        assert!(
            (heard.chord_beats - 0.5).abs() < 0.02,
            "{}",
            heard.chord_beats
        );
        // Silent from 0.5 to 2/3.
        assert!((heard.sounding_beats - 11.0 / 6.0).abs() < 0.02);
        // 4 notes in 8 beats over 16 in 16.
        assert!((heard.density_ratio - 0.5).abs() < 1e-12);
    }
}
