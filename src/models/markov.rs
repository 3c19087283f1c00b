//! The `markov` engine: a multiple-viewpoint PPM system with a long-term memory (trained on a
//! corpus) and a short-term memory (learning the current tune as it reads it), after IDyOM
//! (Pearce 2005).
//!
//! Each [`Viewpoint`] has a PPM model in each memory. Within one memory:
//! 1. the full viewpoints' distributions (each over every event) are combined into one;
//! 2. for each class of events that partial viewpoints see (note-ons, time shifts), that
//!    distribution's share of the class stays, and how it splits inside the class is the
//!    combination of its own split with the partial viewpoints' distributions over the class.
//!
//! Then the two memories' distributions are combined. Every combination is entropy weighted
//! ([`mixing`](crate::models::mixing)), and every step renormalises, so the result is a distribution
//! over all events in which every event has a probability above zero.
//!
//! The defaults were tuned on the monophonic validation tunes of the corpus (O'Neill, Ryan,
//! miscFolk, chorale melodies), each step a clear gain in bits per note:
//! - all six viewpoints; dropping any one costs 0.03–0.12 bits/note;
//! - PPM-C with the PPM* start order in both memories; token-level contexts of 8 events,
//!   note-level ones of 12 in the long-term memory (24 and 12 in the short-term one);
//! - viewpoints within a memory: geometric mean with equal weights (bias 0; bias 2 cost
//!   0.1 bits/note);
//! - memories: arithmetic mean with entropy bias 1. A geometric mean (IDyOM's choice) lost
//!   0.3–1 bit/note here: the short-term memory gives events it has not seen yet (most of them,
//!   early in a tune, and always `END`) only its escape's share, and a product keeps that.

use std::sync::Arc;

use crate::models::mixing::{combine, Combination};
use crate::models::ppm::{Context, InvalidPpm, Ppm, PpmConfig};
use crate::models::viewpoint::{History, Viewpoint};
use crate::models::EventModel;
use crate::music::encoding::{TokenClass, Vocabulary};

/// Most viewpoints in one engine (their distributions are gathered on the stack at every step).
pub const MAX_VIEWPOINTS: usize = 15;

/// One viewpoint and its models' settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ViewpointConfig {
    pub viewpoint: Viewpoint,
    /// The long-term model.
    pub long_term: PpmConfig,
    /// The short-term model.
    pub short_term: PpmConfig,
}

/// What the engine is made of.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MarkovConfig {
    /// The viewpoints; at least one must be full (see [`Viewpoint::class`]).
    pub viewpoints: Vec<ViewpointConfig>,
    /// How viewpoints combine within a memory.
    pub viewpoint_combination: Combination,
    /// Entropy bias of that combination.
    pub viewpoint_bias: f64,
    /// How the long- and short-term memories combine.
    pub memory_combination: Combination,
    /// Entropy bias of that combination.
    pub memory_bias: f64,
    /// Use the long-term memory (when trained).
    pub long_term: bool,
    /// Use the short-term memory.
    pub short_term: bool,
}

impl Default for MarkovConfig {
    /// The settings tuned on the folk-tune validation set (see the module docs).
    fn default() -> Self {
        let vp = |viewpoint, long_order, short_order| ViewpointConfig {
            viewpoint,
            long_term: PpmConfig::new(long_order),
            short_term: PpmConfig::new(short_order),
        };
        Self {
            viewpoints: vec![
                vp(Viewpoint::Token, 8, 24),
                vp(Viewpoint::Relative, 8, 24),
                vp(Viewpoint::Pitch, 12, 12),
                vp(Viewpoint::Interval, 12, 12),
                vp(Viewpoint::FromFirst, 12, 12),
                vp(Viewpoint::ShiftInBeat, 12, 12),
            ],
            viewpoint_combination: Combination::Geometric,
            viewpoint_bias: 0.0,
            memory_combination: Combination::Arithmetic,
            memory_bias: 1.0,
            long_term: true,
            short_term: true,
        }
    }
}

impl MarkovConfig {
    /// Whether the config can make an engine: at least one viewpoint, and a full one.
    pub fn validate(&self) -> Result<(), String> {
        if !self
            .viewpoints
            .iter()
            .any(|v| v.viewpoint.class().is_none())
        {
            return Err("the markov engine needs a full viewpoint (token or relative)".into());
        }
        if self.viewpoints.len() > MAX_VIEWPOINTS {
            return Err(format!(
                "{} viewpoints; the markov engine takes at most {MAX_VIEWPOINTS}",
                self.viewpoints.len()
            ));
        }
        if !(self.viewpoint_bias.is_finite() && self.memory_bias.is_finite()) {
            return Err("entropy biases must be finite".into());
        }
        Ok(())
    }
}

/// The trained long-term models of a [`MarkovConfig`]'s viewpoints (serialisable, to ship as
/// an asset).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LongTermMemory {
    vocabulary: Vocabulary,
    viewpoints: Vec<Viewpoint>,
    models: Vec<Ppm>,
    /// Tunes learned.
    tunes: usize,
}

impl LongTermMemory {
    /// Empty models for `viewpoints`.
    pub fn new(vocabulary: Vocabulary, viewpoints: &[ViewpointConfig]) -> Self {
        Self {
            vocabulary,
            viewpoints: viewpoints.iter().map(|v| v.viewpoint).collect(),
            models: viewpoints
                .iter()
                .map(|v| Ppm::new(v.viewpoint.alphabet_size(&vocabulary), v.long_term))
                .collect(),
            tunes: 0,
        }
    }

    /// Learn one tune (its token ids, from the first event to `END`).
    pub fn train(&mut self, tokens: &[u16]) {
        for (viewpoint, model) in self.viewpoints.iter().zip(&mut self.models) {
            model.train(&viewpoint.sequence(&self.vocabulary, tokens));
        }
        self.tunes += 1;
    }

    /// Lays out every model for reading (see [`Ppm::compact`]); call it once training is done.
    pub fn compact(&mut self) {
        for model in &mut self.models {
            model.compact();
        }
    }

    /// The vocabulary of the events it learned.
    pub fn vocabulary(&self) -> Vocabulary {
        self.vocabulary
    }

    /// Tunes learned.
    pub fn tunes(&self) -> usize {
        self.tunes
    }

    /// Trie nodes over all models.
    pub fn node_count(&self) -> usize {
        self.models.iter().map(Ppm::node_count).sum()
    }

    /// Checks a deserialised memory: one model per viewpoint, of the viewpoint's alphabet, each
    /// structurally sound.
    pub fn validate(&self) -> Result<(), InvalidPpm> {
        if self.models.len() != self.viewpoints.len() {
            return Err(InvalidPpm(format!(
                "{} models for {} viewpoints",
                self.models.len(),
                self.viewpoints.len()
            )));
        }
        for (viewpoint, model) in self.viewpoints.iter().zip(&self.models) {
            let expected = viewpoint.alphabet_size(&self.vocabulary);
            if model.alphabet_size() != expected {
                return Err(InvalidPpm(format!(
                    "{} model of {} symbols, expected {expected}",
                    viewpoint.name(),
                    model.alphabet_size()
                )));
            }
            model.validate()?;
        }
        Ok(())
    }
}

/// The engine (see the module docs).
#[derive(Debug, Clone)]
pub struct Markov {
    vocabulary: Vocabulary,
    config: MarkovConfig,
    name: String,
    /// Trained models, one per viewpoint; shared between clones.
    long_term: Option<Arc<LongTermMemory>>,
    long_contexts: Vec<Context>,
    /// Models of the current tune, one per viewpoint.
    short_term: Vec<Ppm>,
    short_contexts: Vec<Context>,
    history: History,
    scratch: Scratch,
}

/// Buffers reused at every step.
#[derive(Debug, Clone)]
struct Scratch {
    /// A model's distribution over its viewpoint's symbols.
    symbols: Vec<f64>,
    /// Each viewpoint's distribution over events (or over a class of them).
    viewpoints: Vec<Vec<f64>>,
    /// Each memory's combined distribution over events.
    memories: [Vec<f64>; 2],
    /// Within-class distribution: the combination.
    class: Vec<f64>,
    /// Within-class distribution: the full viewpoints' share.
    own: Vec<f64>,
}

impl Markov {
    /// An engine with nothing trained.
    ///
    /// # Panics
    /// If the config does not [`validate`](MarkovConfig::validate).
    pub fn new(vocabulary: Vocabulary, config: MarkovConfig) -> Self {
        if let Err(err) = config.validate() {
            panic!("{err}");
        }
        let v = vocabulary.len();
        let max_alphabet = config
            .viewpoints
            .iter()
            .map(|c| c.viewpoint.alphabet_size(&vocabulary) as usize)
            .max()
            .unwrap_or(0);
        let short_term: Vec<Ppm> = config
            .viewpoints
            .iter()
            .map(|c| Ppm::new(c.viewpoint.alphabet_size(&vocabulary), c.short_term))
            .collect();
        let name = match (config.long_term, config.short_term) {
            (true, true) => "markov",
            (true, false) => "markov-ltm",
            (false, true) => "markov-stm",
            (false, false) => "markov-none",
        }
        .to_string();
        Self {
            vocabulary,
            name,
            long_term: None,
            long_contexts: short_term.iter().map(Ppm::context).collect(),
            short_contexts: short_term.iter().map(Ppm::context).collect(),
            short_term,
            history: History::default(),
            scratch: Scratch {
                symbols: vec![0.0; max_alphabet],
                viewpoints: vec![vec![0.0; v]; config.viewpoints.len()],
                memories: [vec![0.0; v], vec![0.0; v]],
                class: vec![0.0; v],
                own: vec![0.0; v],
            },
            config,
        }
    }

    /// Train the long-term memory on `tunes` (token ids, each from its first event to `END`),
    /// replacing what it knew.
    pub fn train<'a>(&mut self, tunes: impl IntoIterator<Item = &'a [u16]>) {
        let mut memory = LongTermMemory::new(self.vocabulary, &self.config.viewpoints);
        for tune in tunes {
            memory.train(tune);
        }
        memory.compact();
        self.set_long_term(Arc::new(memory));
    }

    /// Use a trained long-term memory (shared; [`LongTermMemory::validate`] one read from a
    /// file first).
    ///
    /// # Panics
    /// If it was trained for other viewpoints or another vocabulary.
    pub fn set_long_term(&mut self, memory: Arc<LongTermMemory>) {
        let viewpoints: Vec<Viewpoint> =
            self.config.viewpoints.iter().map(|c| c.viewpoint).collect();
        assert!(
            memory.vocabulary == self.vocabulary && memory.viewpoints == viewpoints,
            "long-term memory of other viewpoints or vocabulary"
        );
        self.long_term = Some(memory);
        self.reset();
    }

    /// The trained long-term memory, if any.
    pub fn long_term(&self) -> Option<&Arc<LongTermMemory>> {
        self.long_term.as_ref()
    }

    /// The same engine under another name (for reports).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}

impl EventModel for Markov {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn reset(&mut self) {
        for model in &mut self.short_term {
            model.clear();
        }
        for context in self
            .short_contexts
            .iter_mut()
            .chain(&mut self.long_contexts)
        {
            context.reset();
        }
        self.history = History::default();
    }

    fn distribution(&mut self, out: &mut [f64]) {
        assert_eq!(out.len(), self.vocabulary.len(), "distribution length");
        let Self {
            vocabulary,
            config,
            long_term,
            short_term,
            short_contexts,
            long_contexts,
            history,
            scratch,
            ..
        } = self;
        let Scratch {
            symbols,
            viewpoints,
            memories,
            class,
            own,
        } = scratch;
        let [long_out, short_out] = memories;
        let long_term = long_term
            .as_deref()
            .filter(|_| config.long_term)
            .map(|m| &m.models[..]);
        let short = config.short_term.then_some(&short_term[..]);
        let mut memory = Memory {
            vocabulary,
            config,
            history,
            symbols,
            viewpoints,
            class,
            own,
        };
        match (long_term, short) {
            (Some(long), Some(short)) => {
                memory.distribution(long, long_contexts, long_out);
                memory.distribution(short, short_contexts, short_out);
                combine(
                    &[long_out, short_out],
                    config.memory_combination,
                    config.memory_bias,
                    out,
                );
            }
            (Some(models), None) => memory.distribution(models, long_contexts, out),
            (None, Some(models)) => memory.distribution(models, short_contexts, out),
            (None, None) => out.fill(1.0 / out.len() as f64),
        }
    }

    fn observe(&mut self, token: u16) {
        let long_term = self
            .long_term
            .as_deref()
            .filter(|_| self.config.long_term)
            .map(|m| &m.models);
        for (i, c) in self.config.viewpoints.iter().enumerate() {
            let Some(symbol) = c.viewpoint.symbol(&self.history, &self.vocabulary, token) else {
                continue;
            };
            if let Some(models) = long_term {
                models[i].advance(&mut self.long_contexts[i], symbol);
            }
            if self.config.short_term {
                self.short_term[i].learn(&mut self.short_contexts[i], symbol);
            }
        }
        self.history.observe(&self.vocabulary, token);
    }
}

/// One memory's viewpoint models at the current step, with the buffers to combine them.
struct Memory<'a> {
    vocabulary: &'a Vocabulary,
    config: &'a MarkovConfig,
    history: &'a History,
    symbols: &'a mut Vec<f64>,
    viewpoints: &'a mut Vec<Vec<f64>>,
    class: &'a mut Vec<f64>,
    own: &'a mut Vec<f64>,
}

impl Memory<'_> {
    /// The memory's distribution over events into `out` (see the module docs).
    fn distribution(&mut self, models: &[Ppm], contexts: &[Context], out: &mut [f64]) {
        let viewpoints = &self.config.viewpoints;
        // 1. Full viewpoints over every event.
        let mut chosen = [0; MAX_VIEWPOINTS];
        let mut n = 0;
        for (i, c) in viewpoints.iter().enumerate() {
            if c.viewpoint.class().is_none() {
                chosen[n] = i;
                n += 1;
            }
        }
        for &i in &chosen[..n] {
            self.predict(i, models, contexts, &TokenClass::ALL);
        }
        let mut parts: [&[f64]; MAX_VIEWPOINTS] = [&[]; MAX_VIEWPOINTS];
        for (d, &i) in parts.iter_mut().zip(&chosen[..n]) {
            *d = &self.viewpoints[i];
        }
        combine(
            &parts[..n],
            self.config.viewpoint_combination,
            self.config.viewpoint_bias,
            out,
        );
        // 2. Partial viewpoints refine the split within their class.
        for class in [TokenClass::NoteOn, TokenClass::TimeShift] {
            let range = self.vocabulary.class_range(class);
            let first = range.start as u16;
            let mut n = 0;
            for (i, c) in viewpoints.iter().enumerate() {
                let viewpoint = c.viewpoint;
                if viewpoint.class() == Some(class)
                    && viewpoint
                        .symbol(self.history, self.vocabulary, first)
                        .is_some()
                {
                    chosen[n] = i;
                    n += 1;
                }
            }
            if n == 0 {
                continue;
            }
            for &i in &chosen[..n] {
                self.predict(i, models, contexts, &[class]);
            }
            let mass: f64 = out[range.clone()].iter().sum();
            let own = &mut self.own[range.clone()];
            for (o, &p) in own.iter_mut().zip(&out[range.clone()]) {
                *o = p / mass;
            }
            let mut parts: [&[f64]; MAX_VIEWPOINTS + 1] = [&[]; MAX_VIEWPOINTS + 1];
            parts[0] = own;
            for (d, &i) in parts[1..].iter_mut().zip(&chosen[..n]) {
                *d = &self.viewpoints[i][range.clone()];
            }
            let within = &mut self.class[range.clone()];
            combine(
                &parts[..=n],
                self.config.viewpoint_combination,
                self.config.viewpoint_bias,
                within,
            );
            for (o, &p) in out[range.clone()].iter_mut().zip(within.iter()) {
                *o = mass * p;
            }
        }
    }

    /// Viewpoint `i`'s distribution over the events of `classes` (normalised over them) into
    /// `self.viewpoints[i]` at those events' ids.
    fn predict(&mut self, i: usize, models: &[Ppm], contexts: &[Context], classes: &[TokenClass]) {
        let viewpoint = self.config.viewpoints[i].viewpoint;
        let model = &models[i];
        let symbols = &mut self.symbols[..model.alphabet_size() as usize];
        model.distribution(&contexts[i], symbols);
        let dist = &mut self.viewpoints[i];
        let mut sum = 0.0;
        for &class in classes {
            let (first, stride) = viewpoint
                .class_symbols(self.history, self.vocabulary, class)
                .expect("a viewpoint is defined for every event of its class");
            let range = self.vocabulary.class_range(class);
            for (k, p) in dist[range].iter_mut().enumerate() {
                *p = symbols[(first + stride * k as u32) as usize];
                sum += *p;
            }
        }
        for &class in classes {
            for p in &mut dist[self.vocabulary.class_range(class)] {
                *p /= sum;
            }
        }
    }
}
