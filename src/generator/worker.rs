//! The generator's logic, free of threads so it is tested synchronously: it follows the player's
//! phrase from observations and turns answer requests into notes.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::assets::{
    default_brains, default_long_term, default_wavenet, long_term_if_ready, warming_brains,
};
use crate::audio::clock::next_grid_point;
use crate::generator::continuation::continue_phrase;
use crate::generator::event_answer::{answer_phrases, EventAnswerer, Layout};
use crate::generator::sampling::stream_seed;
use crate::generator::shape::play_with_groove;
use crate::listen::bar::{find_bar_phase, BarPrior};
use crate::listen::tempo::find_beat;
use crate::listen::transcribe::{transcribe, Groove};
use crate::models::choice::{
    describe, restore, ModelChoice, ModelChoiceState, ModelLine, DEFAULT_MODEL_MESSAGE,
};
use crate::models::continuator::Continuator;
use crate::models::engines::{Brains, EngineKind};
use crate::models::step_model::StepModel;
use crate::models::EventModel;
use crate::music::encoding::Vocabulary;
use crate::music::key::{find_key, Key, PitchSet};
use crate::music::meter::Meter;
use crate::music::{beats_to_ticks, Note};
use crate::params::{ScaleLock, WaveJamParams};
use crate::persist::{Session, SessionState, MAX_SAVED_NOTES};
use crate::protocol::{Observation, PlayerTime, Request, Scheduled, Source, MAX_ANSWER_NOTES};
use crate::status::Status;

/// The panel's model line if the embedded model does not load (a test checks it does).
const EMBEDDED_MODEL_BROKEN: &str = "the embedded model failed to load";
/// Most notes of a phrase the generator follows; longer phrases keep their latest notes.
pub const MAX_PHRASE_NOTES: usize = MAX_SAVED_NOTES;
/// Most earlier phrases the corpus-trained engines read before the one they answer (the tune so
/// far, whose motifs the short-term memory picks up).
pub const MAX_CONTEXT_PHRASES: usize = 8;

/// A note of the phrase in progress, in absolute beats; `end` is `None` while the key is held.
#[derive(Debug, Clone, Copy)]
struct HeardNote {
    pitch: u8,
    velocity: u8,
    start: f64,
    end: Option<f64>,
}

/// Notes in time: onsets from `origin_beat`, a host beat (a phrase's first note, or where an
/// answer started).
#[derive(Debug, Clone, PartialEq, Default)]
struct Placed {
    origin_beat: f64,
    notes: Vec<Note>,
}

impl Placed {
    /// The notes with onsets from the bar line before `origin_beat`, in bars of `bar_beats`
    /// through `bar_origin_beat` (see [`offset_in_bar`]), so they keep their place in the bar.
    fn in_bar(&self, bar_beats: f64, bar_origin_beat: f64) -> Vec<Note> {
        let offset = offset_in_bar(self.origin_beat - bar_origin_beat, bar_beats);
        self.notes
            .iter()
            .map(|n| Note {
                onset_beats: n.onset_beats + offset,
                ..*n
            })
            .collect()
    }
}

/// Where `beat` (beats after a bar line) falls in its bar, in beats after that bar's line, with
/// bars of `bar_beats` (a positive length).
fn offset_in_bar(beat: f64, bar_beats: f64) -> f64 {
    let offset = beat.rem_euclid(bar_beats);
    // NOTE: a beat a rounding error before a bar line is on it.
    if offset.is_finite() && bar_beats - offset > 1e-6 {
        offset
    } else {
        0.0
    }
}

/// A player's first onset this little (in beats) before one of their beats is on it: the bar
/// they start is that beat's.
const EARLY_ON_BEAT: f64 = 0.125;
/// A free player's next phrase is in the bars of the last one (and of its answer) if it comes
/// at that tempo within this share, its beat lines on an 8th of those bars within
/// [`KEPT_GRID_SLIP`] (beats; in 9/8 a bar's quarter-note beats are not the next bar's),
/// and its first note a bar or more (the answer's bars heard) but no more than the answer's
/// length and [`KEPT_GRID_BARS`] after the last phrase ends. A player who comes back in sooner
/// goes on with their own phrase, cut by a pause (at 70 BPM an 8th rest is longer than the
/// clock's beat that ends a phrase before their tempo is heard): its bars are heard afresh, for
/// the cut piece before gives less to go on (`wavejam listen-checks`, whose phrases are cut so
/// at 70 and 95 BPM: the phrase start in the bar heard 0.569 and 0.625 of the time with the
/// piece's bars kept, against 0.612 and 0.650 afresh).
const KEPT_TEMPO_SHARE: f64 = 0.03;
const KEPT_GRID_SLIP: f64 = 0.125;
const KEPT_GRID_BARS: f64 = 4.0;

/// An answer, ready to schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// Onsets in clock beats from the answer's start, in onset order.
    pub notes: Vec<Note>,
    /// Its length, in clock beats.
    pub length_beats: f64,
    /// The player's time it is in (free tempo), if any.
    pub player: Option<PlayerTime>,
}

impl Answer {
    /// The messages that hand it to the audio thread as answer `serial`: its notes, then its end.
    pub fn messages(&self, serial: u64) -> impl Iterator<Item = Scheduled> + '_ {
        self.notes
            .iter()
            .map(move |&note| Scheduled::Note { serial, note })
            .chain(std::iter::once(Scheduled::End {
                serial,
                length_beats: self.length_beats,
                player: self.player,
            }))
    }
}

/// Follows the player and answers.
pub struct Worker {
    /// What the Continuator has learned from the phrases committed since playback started.
    memory: Continuator,
    /// The corpus-trained engines' models; `None` only if the embedded ones failed to load
    /// (then every engine answers as the Continuator).
    brains: Option<Brains>,
    /// The engine of the latest answer, kept for the next one of the same kind (building one
    /// copies the WaveNet's weights); dropped when the WaveNet changes.
    engine: Option<(EngineKind, Box<dyn EventModel + Send>)>,
    answerer: EventAnswerer,
    /// The latest phrases committed since playback started, oldest first.
    phrases: Vec<Placed>,
    /// Where the latest answer was due to start, in host beats (0 before the first).
    last_answer_start_beat: f64,
    heard: Vec<HeardNote>,
    /// Latest beat seen, used to close notes whose release was lost.
    latest_beat: f64,
    /// The groove of the latest phrase heard: the answers play with it (Feel).
    groove: Groove,
    /// The chord the player last struck under the latest phrase's melody (`None`: none): the
    /// answer prefers its tones on strong beats.
    chord: Option<PitchSet>,
    /// The player's own time, heard in the latest phrase with the transport stopped (free
    /// tempo); `None` while the host's tempo rules.
    player: Option<PlayerTime>,
    /// Free tempo: the player's tempo heard in the phrase in progress (BPM).
    phrase_bpm: Option<f64>,
    /// Free tempo: the tempo heard in the last committed phrase (BPM), which the next phrase's
    /// reading leans to.
    kept_bpm: Option<f64>,
    /// Free tempo: the time the last committed phrase was heard (and answered) in, and the
    /// clock beat it ended on: the next phrase's bars lean to its bars.
    kept_time: Option<(PlayerTime, f64)>,
    session: Arc<SessionState>,
    /// Whether the phrase model playing is the embedded default (else a file's).
    playing_default: bool,
    /// The project's model choice (a loaded project may change it) and the choice in use.
    model_choice: Arc<ModelChoiceState>,
    choice_in_use: ModelChoice,
    status: Arc<Status>,
}

impl Worker {
    /// A worker that starts from the session saved in `params` (the last phrase and answer),
    /// with the embedded default models (the first worker in a process builds the long-term
    /// memory: seconds, on the caller's thread).
    pub fn new(params: &WaveJamParams, status: Arc<Status>) -> Self {
        Self::with_brains(params, status, default_brains().ok())
    }

    /// A worker that answers at once: until the long-term memory is built (in the background,
    /// see [`crate::assets::prepare_long_term_in_background`]) its engines answer without it,
    /// and the panel says "warming up".
    pub fn warming(params: &WaveJamParams, status: Arc<Status>) -> Self {
        Self::with_brains(params, status, warming_brains().ok())
    }

    fn with_brains(params: &WaveJamParams, status: Arc<Status>, brains: Option<Brains>) -> Self {
        let choice_in_use = params
            .model
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut worker = Self {
            memory: Continuator::default(),
            brains,
            engine: None,
            answerer: EventAnswerer::new(Vocabulary::default()),
            phrases: Vec::with_capacity(MAX_CONTEXT_PHRASES + 1),
            last_answer_start_beat: 0.0,
            heard: Vec::with_capacity(MAX_PHRASE_NOTES),
            latest_beat: 0.0,
            groove: Groove::default(),
            player: None,
            phrase_bpm: None,
            kept_bpm: None,
            kept_time: None,
            chord: None,
            session: params.session.clone(),
            playing_default: true,
            model_choice: params.model.clone(),
            choice_in_use,
            status,
        };
        if worker.choice_in_use.path.is_some() || worker.brains.is_none() {
            worker.restore_model();
        } else {
            // The brains hold the embedded model already.
            worker
                .status
                .model_slot
                .set_line(ModelLine::playing(DEFAULT_MODEL_MESSAGE));
        }
        worker.follow_long_term(false);
        worker
    }

    /// Plays the model the project names (`choice_in_use`), or the default, and says which; a
    /// file that cannot play leaves the model playing as it is.
    fn restore_model(&mut self) {
        let choice = &self.choice_in_use;
        let line = match (restore(choice), &mut self.brains) {
            (Ok(Some(kernel)), Some(brains)) => {
                let text = describe(&kernel, choice.path.as_deref().unwrap_or_default());
                brains.wavenet = kernel;
                self.playing_default = false;
                ModelLine::playing(text)
            }
            (Ok(None), Some(brains)) => match default_wavenet() {
                Ok(kernel) => {
                    brains.wavenet = kernel;
                    self.playing_default = true;
                    ModelLine::playing(DEFAULT_MODEL_MESSAGE)
                }
                Err(_) => ModelLine::playing(EMBEDDED_MODEL_BROKEN),
            },
            (Err(error), _) if self.playing_default => {
                ModelLine::failed(error, "playing the default model")
            }
            (Err(error), _) => ModelLine::failed(error, "still playing the model loaded before"),
            (_, None) => ModelLine::playing(
                "the embedded models failed to load: answering as the Continuator",
            ),
        };
        self.engine = None;
        self.status.model_slot.set_line(line);
    }

    /// Takes the long-term memory once it is built (waiting for it to be if `wait`); publishes
    /// whether the engines still wait.
    fn follow_long_term(&mut self, wait: bool) {
        if let Some(brains) = self.brains.as_mut().filter(|b| b.long_term.is_none()) {
            let ready = if wait {
                Some(default_long_term())
            } else {
                long_term_if_ready()
            };
            if let Some(memory) = ready {
                brains.long_term = Some(memory);
                self.engine = None;
            }
        }
        let warming = self.brains.as_ref().is_some_and(|b| b.long_term.is_none());
        self.status.warming_up.store(warming, Ordering::Relaxed);
    }

    /// A model the panel offered, or a project loaded since the last answer that names another
    /// model file, takes over.
    fn follow_model_choice(&mut self) {
        if let (Some(offer), Some(brains)) = (self.status.model_slot.take(), &mut self.brains) {
            self.playing_default = offer.is_none();
            match offer.or_else(|| default_wavenet().ok()) {
                Some(kernel) => {
                    brains.wavenet = kernel;
                    self.engine = None;
                }
                None => self
                    .status
                    .model_slot
                    .set_line(ModelLine::playing(EMBEDDED_MODEL_BROKEN)),
            }
            // The panel stores its choice in the project.
            if let Ok(choice) = self.model_choice.try_lock() {
                self.choice_in_use = choice.clone();
            }
            return;
        }
        let changed = match self.model_choice.try_lock() {
            Ok(choice) if *choice != self.choice_in_use => Some(choice.clone()),
            _ => None,
        };
        if let Some(choice) = changed {
            self.choice_in_use = choice;
            self.restore_model();
        }
    }

    /// The session as saved (the last phrase and answer).
    pub fn session_snapshot(&self) -> Session {
        // NOTE: a poisoned lock only means a panic elsewhere; the data is still valid.
        let guard = self.session.lock().unwrap_or_else(|e| e.into_inner());
        guard.clone().sanitized()
    }

    fn update_session(&self, update: impl FnOnce(&mut Session)) {
        let mut guard = self.session.lock().unwrap_or_else(|e| e.into_inner());
        update(&mut guard);
        self.status.session_revision.fetch_add(1, Ordering::Relaxed);
    }

    /// The phrase in progress as notation (see [`transcribe`]: one line, on its grid), onsets
    /// from its first note (no notes and origin 0 if there is none); held notes end at the latest
    /// beat. In the player's time, if it is followed, else in the clock's.
    fn current_phrase(&self) -> (Placed, Groove, Option<PitchSet>) {
        let clock = PlayerTime {
            origin_beat: 0.0,
            clock_beats: 1.0,
        };
        let played = self.played(self.player.unwrap_or(clock));
        // The engines read notation: the line the player played, on its grid.
        let heard = transcribe(&played);
        let Some(first) = heard.melody.first().map(|n| n.onset_beats) else {
            return (Placed::default(), heard.groove, None);
        };
        let chord = last_chord(&heard.harmony, &heard.melody);
        let placed = Placed {
            origin_beat: first,
            notes: heard
                .melody
                .into_iter()
                .map(|n| Note {
                    onset_beats: n.onset_beats - first,
                    ..n
                })
                .collect(),
        };
        (placed, heard.groove, chord)
    }

    /// The phrase in progress as played, in beats of `time` from its origin; held notes end at
    /// the latest beat.
    fn played(&self, time: PlayerTime) -> Vec<Note> {
        self.heard
            .iter()
            .map(|n| Note {
                pitch: n.pitch,
                velocity: n.velocity,
                onset_beats: time.to_player(n.start),
                duration_beats: ((n.end.unwrap_or(self.latest_beat) - n.start) / time.clock_beats)
                    .max(1.0 / 24.0),
            })
            .collect()
    }

    /// Handle one observation; returns the answer for a request.
    pub fn handle(&mut self, observation: Observation) -> Option<(Request, Answer)> {
        match observation {
            Observation::NoteOn {
                pitch,
                velocity,
                beat,
            } => {
                self.latest_beat = self.latest_beat.max(beat);
                if self.heard.len() == MAX_PHRASE_NOTES {
                    self.heard.remove(0);
                }
                self.heard.push(HeardNote {
                    pitch,
                    velocity,
                    start: beat,
                    end: None,
                });
            }
            Observation::NoteOff { pitch, beat } => {
                self.latest_beat = self.latest_beat.max(beat);
                if let Some(note) = self
                    .heard
                    .iter_mut()
                    .rev()
                    .find(|n| n.pitch == pitch && n.end.is_none())
                {
                    note.end = Some(beat);
                }
            }
            Observation::Commit => {
                let (phrase, groove, chord) = self.current_phrase();
                if !phrase.notes.is_empty() {
                    (self.groove, self.chord) = (groove, chord);
                }
                self.heard.clear();
                if let Some(bpm) = self.phrase_bpm.take() {
                    self.kept_bpm = Some(bpm);
                    self.kept_time = self.player.map(|time| (time, self.latest_beat));
                }
                if !phrase.notes.is_empty() {
                    self.memory.learn(&phrase.notes);
                    if self.phrases.len() == MAX_CONTEXT_PHRASES {
                        self.phrases.remove(0);
                    }
                    let notes = phrase.notes.clone();
                    self.phrases.push(phrase);
                    self.update_session(|s| s.last_phrase = notes);
                }
            }
            Observation::ResetMemory => {
                self.memory.clear_memory();
                self.phrases.clear();
                self.forget_player();
            }
            Observation::Discontinuity => {
                self.heard.clear();
                // The clock may have gone back: a note held on is not held to the old time.
                self.latest_beat = 0.0;
                self.forget_player();
            }
            Observation::Answer(request) => return Some((request, self.answer(&request))),
        }
        None
    }

    /// Hear the player's time as [`Worker::answer`] does for `request`, without answering it
    /// (a request the generator skips for a later one).
    pub fn follow(&mut self, request: &Request) {
        self.follow_player(request);
    }

    /// Generate the answer to `request`: in the host's time, or with the transport stopped in
    /// the player's, if their beat is heard (see [`Worker::follow_player`]).
    pub fn answer(&mut self, request: &Request) -> Answer {
        // The panel's answer time counts hearing the player's beat too.
        let started = Instant::now();
        let player = self.follow_player(request);
        let (mut notes, length_beats) = match player {
            Some(player) => {
                let local = in_player_time(request, player);
                let mut notes = self.answer_in_time(&local, player.bpm(request.tempo_bpm));
                for note in &mut notes {
                    note.onset_beats *= player.clock_beats;
                    note.duration_beats *= player.clock_beats;
                }
                (notes, local.length_beats * player.clock_beats)
            }
            None => (
                self.answer_in_time(request, request.tempo_bpm),
                request.length_beats,
            ),
        };
        notes.truncate(MAX_ANSWER_NOTES);
        self.status
            .last_answer_micros
            .store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        Answer {
            notes,
            length_beats,
            player,
        }
    }

    /// The host's time rules again (or the timeline jumped): no player's time, no tempo to keep.
    fn forget_player(&mut self) {
        self.player = None;
        self.phrase_bpm = None;
        self.kept_bpm = None;
        self.kept_time = None;
    }

    /// With the transport stopped, the player's time as heard in the phrase in progress (kept
    /// from the last phrase if this one gives nothing to go on); with it playing, none. Shown in
    /// the panel.
    fn follow_player(&mut self, request: &Request) -> Option<PlayerTime> {
        let seconds_per_beat = 60.0 / request.tempo_bpm;
        if !request.free_tempo || !seconds_per_beat.is_finite() || seconds_per_beat <= 0.0 {
            self.forget_player();
        } else if request.source == Source::Phrase {
            let onsets: Vec<f64> = self
                .heard
                .iter()
                .map(|n| n.start * seconds_per_beat)
                .collect();
            if let Some(beat) = find_beat(&onsets, self.kept_bpm) {
                self.phrase_bpm = Some(beat.bpm);
                let clock_beats = beat.seconds() / seconds_per_beat;
                let phase = beat.phase_seconds / seconds_per_beat;
                let first = self.heard.iter().map(|n| n.start).fold(f64::MAX, f64::min);
                let beats_before = ((first - phase) / clock_beats + EARLY_ON_BEAT).floor();
                let on_beat = PlayerTime {
                    origin_beat: phase + beats_before * clock_beats,
                    clock_beats,
                };
                let prior = self.bar_prior(request, on_beat, first);
                let into_bar = self.bar_phase(request, on_beat, prior);
                let player = PlayerTime {
                    origin_beat: on_beat.origin_beat - into_bar * clock_beats,
                    clock_beats,
                };
                self.status
                    .heard_start_in_bar
                    .store(player.to_player(first), Ordering::Relaxed);
                self.player = Some(player);
            }
        }
        let bpm = self.player.map_or(0.0, |p| p.bpm(request.tempo_bpm));
        self.status.heard_tempo_bpm.store(bpm, Ordering::Relaxed);
        self.player
    }

    /// What the jam so far says of where the bars of the phrase whose beat lines are `on_beat`
    /// and whose first note is at clock beat `first` fall: the last phrase's bars, if the player
    /// comes back in at its tempo, on its beats, after hearing its answer; else nothing.
    fn bar_prior(&self, request: &Request, on_beat: PlayerTime, first: f64) -> BarPrior {
        let bars = request.bar_beats.is_finite() && request.bar_beats > 0.0;
        let Some((kept, end)) = self.kept_time.filter(|_| bars) else {
            return BarPrior::Opening;
        };
        let same_tempo = (on_beat.clock_beats / kept.clock_beats - 1.0).abs() <= KEPT_TEMPO_SHARE;
        let gap = (first - end) / kept.clock_beats;
        let after_the_answer = gap >= request.bar_beats
            && gap <= request.length_beats + KEPT_GRID_BARS * request.bar_beats;
        let in_bar = kept
            .to_player(on_beat.origin_beat)
            .rem_euclid(request.bar_beats);
        let eighth = (in_bar * 2.0).round() / 2.0;
        let on_kept_grid = (in_bar - eighth).abs() <= KEPT_GRID_SLIP;
        if same_tempo && after_the_answer && on_kept_grid {
            BarPrior::Kept(eighth.rem_euclid(request.bar_beats))
        } else {
            BarPrior::Opening
        }
    }

    /// How far into the player's bar their beat line `on_beat` falls (in their beats, bars of
    /// `request`'s length): where the engine of `request` finds the phrase in progress likeliest
    /// with `prior` (see [`find_bar_phase`]), so a player who starts with a pickup is heard with
    /// it, not with a bar line on its first note. Without a corpus-trained engine, the kept
    /// bars' phase, or 0 (the bar starts on the phrase's first beat).
    fn bar_phase(&mut self, request: &Request, on_beat: PlayerTime, prior: BarPrior) -> f64 {
        let (Some(kind), Some(brains)) = (request.engine.event_engine(), &self.brains) else {
            return prior.guess();
        };
        if !(request.bar_beats.is_finite() && request.bar_beats > 0.0) {
            return 0.0;
        }
        let played = self.played(on_beat);
        let engine = cached_engine(&mut self.engine, brains, kind);
        let meter = Meter::constant(ticks(request.bar_beats));
        find_bar_phase(engine, brains.wavenet.vocabulary(), &played, &meter, prior)
    }

    /// The answer to `request`, whose beats are those the phrases are heard in and play at
    /// `tempo_bpm` (kept with it in the session).
    fn answer_in_time(&mut self, request: &Request, tempo_bpm: f64) -> Vec<Note> {
        self.follow_model_choice();
        self.follow_long_term(request.offline);
        let (current, groove, chord) = self.current_phrase();
        if !current.notes.is_empty() {
            (self.groove, self.chord) = (groove, chord);
        }
        let session = self.session_snapshot();
        // The phrase being played is answered speculatively: it is committed (learned, kept as
        // context) only if it really ends. A saved phrase's place in the bar is not known: it
        // starts on a bar line.
        let (prompt, speculative) = match request.source {
            Source::Phrase if !current.notes.is_empty() => (current, true),
            // NOTE: a phrase saved with the project starts on a bar line.
            Source::Phrase => (
                Placed {
                    origin_beat: request.bar_origin_beat,
                    notes: session.last_phrase,
                },
                false,
            ),
            Source::LastAnswer => (
                Placed {
                    origin_beat: self.last_answer_start_beat,
                    notes: session.last_answer,
                },
                false,
            ),
        };
        // The last committed phrase is already the end of the tune so far.
        let in_context =
            request.source == Source::Phrase && !speculative && !self.phrases.is_empty();
        let mut rng = ChaCha8Rng::seed_from_u64(stream_seed(request, &prompt.notes));
        let mut answer = Vec::with_capacity(MAX_ANSWER_NOTES);
        let scale = self.scale_for(request.scale, &prompt);
        let event_engine = request
            .engine
            .event_engine()
            .filter(|_| self.brains.is_some());
        match event_engine {
            Some(kind) => {
                self.answerer.set_scale(scale);
                self.answerer.set_chord(self.chord);
                self.answer_with_events(kind, request, &prompt, in_context, &mut rng, &mut answer)
            }
            None => self.answer_as_continuator(
                request,
                &prompt,
                speculative,
                scale,
                &mut rng,
                &mut answer,
            ),
        }
        answer.truncate(MAX_ANSWER_NOTES);
        self.status
            .heard_grid
            .store(self.groove.grid() as u8 + 1, Ordering::Relaxed);
        // The event engines play at the phrase's level; the Continuator copies its velocities.
        play_with_groove(
            &mut answer,
            request.start_beat,
            &self.groove,
            f64::from(request.feel),
            event_engine.is_some(),
            request.length_beats,
        );
        let saved = answer.clone();
        self.update_session(|s| {
            s.last_answer = saved;
            s.answer_tempo_bpm = Some(tempo_bpm).filter(|bpm| bpm.is_finite() && *bpm > 0.0);
        });
        self.last_answer_start_beat = request.start_beat;
        answer
    }

    /// The answer of the corpus-trained engine `kind` (the brains are loaded): it reads the
    /// phrases of the tune so far and `prompt` (unless it is the last of them), each in the
    /// host's bars, then writes the answer from where in its bar it will start.
    fn answer_with_events(
        &mut self,
        kind: EngineKind,
        request: &Request,
        prompt: &Placed,
        in_context: bool,
        rng: &mut ChaCha8Rng,
        answer: &mut Vec<Note>,
    ) {
        let Some(brains) = &self.brains else {
            return;
        };
        let bar_beats = Some(request.bar_beats)
            .filter(|b| b.is_finite() && *b > 0.0)
            .unwrap_or(4.0);
        let origin = Some(request.bar_origin_beat)
            .filter(|b| b.is_finite())
            .unwrap_or(0.0);
        let mut placed: Vec<Vec<Note>> = self
            .phrases
            .iter()
            .map(|p| p.in_bar(bar_beats, origin))
            .collect();
        if !in_context {
            placed.push(prompt.in_bar(bar_beats, origin));
        }
        let context: Vec<&[Note]> = placed.iter().map(Vec::as_slice).collect();
        let engine = cached_engine(&mut self.engine, brains, kind);
        let layout = Layout {
            meter: Meter::constant(ticks(bar_beats)),
            answer_offset_ticks: ticks(offset_in_bar(request.start_beat - origin, bar_beats)),
        };
        answer_phrases(
            &mut self.answerer,
            engine,
            &context,
            &layout,
            request.length_beats,
            request.temperature,
            rng,
            answer,
        );
    }

    /// The Continuator's answer to `prompt`, from what it learned since playback started (and,
    /// speculatively, the prompt itself, on a copy).
    fn answer_as_continuator(
        &mut self,
        request: &Request,
        prompt: &Placed,
        speculative: bool,
        scale: Option<PitchSet>,
        rng: &mut ChaCha8Rng,
        answer: &mut Vec<Note>,
    ) {
        let mut memory = self.memory.clone();
        if speculative || memory.is_empty() {
            // Speculatively, on a copy; or, after reopening a project, the saved phrase.
            memory.learn(&prompt.notes);
        }
        continue_phrase(
            &mut memory,
            &prompt.notes,
            request.length_beats,
            request.temperature,
            scale,
            rng,
            answer,
        );
    }

    /// The pitch classes an answer keeps to under `lock`: none, a fixed scale, or the key heard
    /// in the tune so far and `prompt` (which the panel shows, whatever the lock).
    fn scale_for(&self, lock: ScaleLock, prompt: &Placed) -> Option<PitchSet> {
        let heard: Vec<Note> = self
            .phrases
            .iter()
            .chain(std::iter::once(prompt))
            .flat_map(|p| p.notes.iter().copied())
            .collect();
        let key = (!heard.is_empty()).then(|| find_key(&heard));
        self.status
            .heard_key
            .store(key.map_or(0, |k| k.index() + 1), Ordering::Relaxed);
        match lock {
            ScaleLock::Off => None,
            ScaleLock::Fixed(set) => Some(set),
            ScaleLock::Auto => key.map(Key::pitch_set),
        }
    }
}

/// The pitch classes of the last chord struck under `melody`: the `harmony` notes with the
/// latest onset and the melody note struck with them (`None` without harmony).
fn last_chord(harmony: &[Note], melody: &[Note]) -> Option<PitchSet> {
    let onset = harmony.iter().map(|n| n.onset_beats).reduce(f64::max)?;
    let classes: Vec<u8> = harmony
        .iter()
        .chain(melody)
        .filter(|n| n.onset_beats == onset)
        .map(|n| n.pitch % 12)
        .collect();
    Some(PitchSet::from_intervals(0, &classes))
}

/// `request`, made in the clock's beats, in `player`'s beats: bars from their bar line, the
/// answer due on their grid.
fn in_player_time(request: &Request, player: PlayerTime) -> Request {
    let trigger = player.to_player(request.trigger_beat);
    Request {
        bar_origin_beat: 0.0,
        start_beat: next_grid_point(trigger, request.step_beats, 0.0),
        trigger_beat: trigger,
        ..*request
    }
}

/// The engine of `kind`: `cache`'s if it holds one of that kind, else one built from `brains`
/// and kept there (building one copies the WaveNet's weights).
fn cached_engine<'a>(
    cache: &'a mut Option<(EngineKind, Box<dyn EventModel + Send>)>,
    brains: &Brains,
    kind: EngineKind,
) -> &'a mut (dyn EventModel + Send) {
    let (_, engine) = match cache.take() {
        Some((cached, engine)) if cached == kind => cache.insert((cached, engine)),
        _ => cache.insert((kind, brains.engine(kind))),
    };
    engine.as_mut()
}

/// `beats` in event ticks, as a bar length or a place in a bar.
fn ticks(beats: f64) -> u32 {
    beats_to_ticks(beats).min(u64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::choice::ModelFileError;
    use crate::params::{EngineChoice, ScaleLock};
    use crate::test_kit::{random_kernel, request};

    /// The phrase most tests play: 8 eighth notes.
    const PHRASE: [u8; 8] = [62, 64, 66, 67, 69, 71, 69, 67];

    /// The player plays `pitches` as eighth notes from beat `from`.
    fn play(worker: &mut Worker, from: f64, pitches: impl IntoIterator<Item = u8>) {
        for (i, pitch) in pitches.into_iter().enumerate() {
            let beat = from + i as f64 * 0.5;
            worker.handle(Observation::NoteOn {
                pitch,
                velocity: 90,
                beat,
            });
            worker.handle(Observation::NoteOff {
                pitch,
                beat: beat + 0.5,
            });
        }
    }

    /// After the timeline jumps back (a loop, a restart), a note held on ends at the new time,
    /// not at the latest beat before the jump.
    #[test]
    fn a_jump_back_does_not_stretch_a_held_note_to_the_old_time() {
        let mut worker = Worker::new(&WaveJamParams::default(), Arc::new(Status::default()));
        play(&mut worker, 1000.0, PHRASE);
        worker.handle(Observation::Discontinuity);
        play(&mut worker, 0.0, [62, 64]);
        worker.handle(Observation::NoteOn {
            pitch: 66,
            velocity: 90,
            beat: 1.0,
        });
        let (phrase, _, _) = worker.current_phrase();
        let held = phrase.notes.last().unwrap();
        assert!(held.duration_beats <= 1.0, "{held:?}");
    }

    /// The player plays `notes` (onsets in host beats), note-ons and note-offs in time order.
    fn perform(worker: &mut Worker, notes: &[Note]) {
        let mut events: Vec<(f64, Observation)> = Vec::new();
        for n in notes {
            let (pitch, velocity) = (n.pitch, n.velocity);
            let on = n.onset_beats;
            events.push((
                on,
                Observation::NoteOn {
                    pitch,
                    velocity,
                    beat: on,
                },
            ));
            let off = n.end_beats();
            events.push((off, Observation::NoteOff { pitch, beat: off }));
        }
        events.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (_, event) in events {
            worker.handle(event);
        }
    }

    /// A tune played legato with loose timing, or with chords under it, is answered as the
    /// written tune is: every engine reads the line the player meant (the corpus-trained ones
    /// also lean to the last chord's tones on strong beats: there, one line).
    #[test]
    fn loose_legato_and_chords_are_answered_as_the_written_tune() {
        let tune = crate::test_kit::folk_tune(0);
        let legato = crate::lab::performance::played_legato(&tune, 120.0, 9);
        let chords = crate::lab::performance::with_chords(&tune, 4.0);
        for engine in [EngineChoice::Hybrid, EngineChoice::Continuator] {
            let answer = |played: &[Note]| {
                let mut worker =
                    Worker::new(&WaveJamParams::default(), Arc::new(Status::default()));
                perform(&mut worker, played);
                worker
                    .answer(&Request {
                        start_beat: 30.0,
                        ..request(engine)
                    })
                    .notes
            };
            let written = answer(&tune);
            assert!(!written.is_empty());
            assert_eq!(answer(&legato), written, "{engine:?}, legato");
            let over_chords = answer(&chords);
            if engine == EngineChoice::Continuator {
                assert_eq!(over_chords, written, "{engine:?}, chords");
            }
            assert!(over_chords
                .windows(2)
                .all(|w| w[0].end_beats() <= w[1].onset_beats + 1e-9));
        }
    }

    /// Over the player's chords, the answers' strong beats (beats 1 and 3 of 4/4) fall on the
    /// last chord's tones more often than after the melody alone (same seeds).
    #[test]
    fn over_chords_strong_beats_lean_to_the_chord() {
        let tune = crate::test_kit::folk_tune(0);
        let chords = crate::lab::performance::with_chords(&tune, 4.0);
        let heard = crate::listen::transcribe::transcribe(&chords);
        let chord = last_chord(&heard.harmony, &heard.melody).unwrap();
        let share = |played: &[Note]| {
            let (mut on_chord, mut strong) = (0, 0);
            for seed in 1..=16 {
                let mut worker =
                    Worker::new(&WaveJamParams::default(), Arc::new(Status::default()));
                perform(&mut worker, played);
                let answer = worker.answer(&Request {
                    seed,
                    start_beat: 32.0,
                    feel: 0.0,
                    ..request(EngineChoice::Hybrid)
                });
                for n in answer.notes.iter().filter(|n| n.onset_beats % 2.0 == 0.0) {
                    strong += 1;
                    on_chord += usize::from(chord.contains(n.pitch));
                }
            }
            on_chord as f64 / strong as f64
        };
        let (alone, over_chords) = (share(&tune), share(&chords));
        // Measured: 0.80 → 0.89.
        assert!(over_chords > alone + 0.05, "{alone:.2} → {over_chords:.2}");
    }

    /// After a swung phrase the answer swings too (Feel at its default): its off-beat 8ths come
    /// at two thirds of the beat; with Feel 0 they are straight.
    #[test]
    fn answers_to_a_swung_phrase_swing() {
        // The tune's first phrase, up to beat 10, unfinished.
        let mut tune = crate::lab::performance::swung(&crate::test_kit::folk_tune(0));
        tune.retain(|n| n.onset_beats < 10.0);
        for engine in [EngineChoice::Hybrid, EngineChoice::Continuator] {
            let offbeats = |feel: f32| {
                let mut worker =
                    Worker::new(&WaveJamParams::default(), Arc::new(Status::default()));
                perform(&mut worker, &tune);
                let answer = worker.answer(&Request {
                    feel,
                    start_beat: 11.0,
                    ..request(engine)
                });
                answer
                    .notes
                    .iter()
                    .map(|n| n.onset_beats.fract())
                    .filter(|f| (0.4..0.8).contains(f))
                    .collect::<Vec<f64>>()
            };
            let swung = offbeats(WaveJamParams::default().feel.value());
            assert!(!swung.is_empty(), "{engine:?}: no off-beats to check");
            assert!(
                swung.iter().all(|f| (f - 2.0 / 3.0).abs() < 1.0 / 48.0),
                "{engine:?}: {swung:?}"
            );
            assert!(offbeats(0.0).iter().all(|f| *f == 0.5 || *f == 0.75));
        }
    }

    /// A fixed scale keeps every answer note in it, on every engine at every temperature; Auto
    /// keeps them in the key heard (which the panel is told), here D major.
    #[test]
    fn a_scale_lock_keeps_every_note_in_the_scale() {
        let blues_e = PitchSet::from_intervals(4, crate::params::ScaleType::Blues.intervals());
        let tune = crate::test_kit::folk_tune(0);
        let status = Arc::new(Status::default());
        let mut worker = Worker::new(&WaveJamParams::default(), status.clone());
        perform(&mut worker, &tune);
        let d_major = Key {
            tonic: 2,
            minor: false,
        };
        for engine in [
            EngineChoice::Hybrid,
            EngineChoice::WaveNet,
            EngineChoice::Markov,
            EngineChoice::Continuator,
        ] {
            for temperature in [0.5, 1.0, 1.5] {
                for (lock, set) in [
                    (ScaleLock::Fixed(blues_e), blues_e),
                    (ScaleLock::Auto, d_major.pitch_set()),
                ] {
                    let answer = worker.answer(&Request {
                        temperature,
                        scale: lock,
                        start_beat: 30.0,
                        ..request(engine)
                    });
                    assert!(
                        !answer.notes.is_empty(),
                        "{engine:?} at {temperature}, {lock:?}"
                    );
                    let outside: Vec<u8> = answer
                        .notes
                        .iter()
                        .map(|n| n.pitch)
                        .filter(|p| !set.contains(*p))
                        .collect();
                    assert!(
                        outside.is_empty(),
                        "{engine:?} at {temperature}: {outside:?}"
                    );
                }
            }
        }
        assert_eq!(
            Key::from_index(status.heard_key.load(Ordering::Relaxed) - 1),
            Some(d_major)
        );
    }

    /// Every engine answers the phrase, the same again with its kept engine; a model offered by
    /// the panel is used from the next answer on, and going back to the default gives the
    /// default's answer again.
    #[test]
    fn engines_answer_and_offered_models_take_over() {
        let params = WaveJamParams::default();
        let status = Arc::new(Status::default());
        let mut worker = Worker::new(&params, status.clone());
        assert_eq!(
            status.model_slot.line(),
            ModelLine::playing(DEFAULT_MODEL_MESSAGE)
        );
        play(&mut worker, 0.0, PHRASE);
        let mut answers = Vec::new();
        for engine in [
            EngineChoice::Hybrid,
            EngineChoice::WaveNet,
            EngineChoice::Markov,
        ] {
            let answer = worker.answer(&request(engine));
            assert!(!answer.notes.is_empty(), "{engine:?}");
            // The second answer reuses the first one's engine: it answers as a new one.
            assert_eq!(answer, worker.answer(&request(engine)), "{engine:?}");
            answers.push(answer);
        }
        // Coming back to an engine after another answers as before, too.
        assert_eq!(worker.answer(&request(EngineChoice::Hybrid)), answers[0]);
        let default = worker.answer(&request(EngineChoice::WaveNet));
        status.model_slot.offer(Some(random_kernel(4)));
        let other = worker.answer(&request(EngineChoice::WaveNet));
        assert_ne!(other, default);
        assert_eq!(other, worker.answer(&request(EngineChoice::WaveNet)));
        status.model_slot.offer(None);
        assert_eq!(worker.answer(&request(EngineChoice::WaveNet)), default);
    }

    /// The answer is generated in the host's bars: after a phrase of 12 beats (whole bars of
    /// both 3/4 and 4/4, so the context's events are the same), the WaveNet answers otherwise in
    /// 3/4 than in 4/4, as it reads other bar positions, and the same again in 3/4.
    #[test]
    fn answers_follow_the_hosts_meter() {
        let mut worker = Worker::new(&WaveJamParams::default(), Arc::new(Status::default()));
        play(&mut worker, 0.0, [62, 64, 66, 67, 69, 71].repeat(4));
        let mut answer = |bar_beats| {
            worker.answer(&Request {
                bar_beats,
                start_beat: 12.0,
                ..request(EngineChoice::WaveNet)
            })
        };
        let common = answer(4.0);
        let waltz = answer(3.0);
        assert!(!waltz.notes.is_empty());
        assert_ne!(waltz, common);
        assert_eq!(waltz, answer(3.0));
    }

    /// A phrase keeps its place in the bar: played a bar later it gets the same answer (due a
    /// bar later), played two beats later (a pickup) another one; so does an answer due on
    /// another beat. Bars are the host's: where they run from beat 2 (after a 2/4 bar), a
    /// phrase from beat 2 is on the bar line.
    #[test]
    fn answers_follow_where_in_the_bar_the_phrase_and_the_answer_fall() {
        let answer = |from: f64, due: f64, bar_origin_beat: f64| {
            let mut worker = Worker::new(&WaveJamParams::default(), Arc::new(Status::default()));
            play(&mut worker, from, PHRASE);
            worker.answer(&Request {
                start_beat: due,
                bar_origin_beat,
                ..request(EngineChoice::WaveNet)
            })
        };
        let on_the_bar = answer(0.0, 4.0, 0.0);
        assert_eq!(answer(4.0, 8.0, 0.0), on_the_bar);
        assert_ne!(answer(2.0, 8.0, 0.0), on_the_bar);
        assert_ne!(answer(0.0, 5.0, 0.0), on_the_bar);
        assert_eq!(answer(2.0, 6.0, 2.0), on_the_bar);
        assert_eq!(answer(2.0, 6.0, 10.0), on_the_bar);
    }

    /// A project whose model file is gone reopens with the default and says why.
    #[test]
    fn a_missing_model_file_is_reported_and_the_default_plays() {
        let params = WaveJamParams::default();
        *params.model.lock().unwrap() = crate::models::choice::ModelChoice {
            path: Some("/nonexistent/wavejam/model.safetensors".into()),
            hash: Some("0123456789abcdef".into()),
        };
        let status = Arc::new(Status::default());
        let mut worker = Worker::new(&params, status.clone());
        let line = status.model_slot.line();
        assert!(
            matches!(line.error, Some(ModelFileError::Unreadable { .. })),
            "{line:?}"
        );
        assert!(line.text.contains("default"), "{line:?}");
        play(&mut worker, 0.0, PHRASE);
        let mut reference = Worker::new(&WaveJamParams::default(), Arc::new(Status::default()));
        play(&mut reference, 0.0, PHRASE);
        let request = request(EngineChoice::Hybrid);
        assert_eq!(worker.answer(&request), reference.answer(&request));
    }

    /// A project loaded into a playing instance that names a model file that is gone leaves the
    /// model loaded before playing, and the panel says so (not that the default plays).
    #[test]
    fn a_missing_model_file_leaves_the_model_playing_as_it_was() {
        let params = WaveJamParams::default();
        let status = Arc::new(Status::default());
        let mut worker = Worker::new(&params, status.clone());
        play(&mut worker, 0.0, PHRASE);
        status.model_slot.offer(Some(random_kernel(4)));
        let request = request(EngineChoice::WaveNet);
        let loaded = worker.answer(&request);
        *params.model.lock().unwrap() = crate::models::choice::ModelChoice {
            path: Some("/nonexistent/wavejam/model.safetensors".into()),
            hash: Some("0123456789abcdef".into()),
        };
        assert_eq!(worker.answer(&request), loaded);
        let line = status.model_slot.line();
        assert!(line.error.is_some(), "{line:?}");
        assert!(line.text.contains("before"), "{line:?}");
    }

    const FRESH_PROCESS_ENV: &str = "WAVEJAM_FRESH_PROCESS_CHILD";

    /// In a process where the long-term memory is still being built (a DAW's first seconds
    /// after the first activation), a bounce's answer waits for it, so it is the answer every
    /// later bounce gives. Runs in a fresh process: the tests before it built the memory.
    #[test]
    fn a_bounce_right_after_the_first_activation_answers_as_later_ones() {
        if std::env::var_os(FRESH_PROCESS_ENV).is_none() {
            let output = crate::test_kit::run_in_fresh_process(
                "generator::worker::tests::a_bounce_right_after_the_first_activation_answers_as_later_ones",
                FRESH_PROCESS_ENV,
            );
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(output.status.success(), "{stdout}");
            assert!(stdout.contains("1 passed"), "{stdout}");
            return;
        }
        let params = WaveJamParams::default();
        let tune = crate::test_kit::folk_tune(0);
        let bounce = Request {
            offline: true,
            start_beat: 32.0,
            ..request(EngineChoice::Hybrid)
        };
        let mut first = Worker::warming(&params, Arc::new(Status::default()));
        assert!(first.brains.as_ref().unwrap().long_term.is_none());
        crate::assets::prepare_long_term_in_background();
        perform(&mut first, &tune);
        let first = first.answer(&bounce).notes;
        let mut later = Worker::new(&params, Arc::new(Status::default()));
        perform(&mut later, &tune);
        assert_eq!(first, later.answer(&bounce).notes);
    }
}
