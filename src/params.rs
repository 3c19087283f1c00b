//! Host parameters (IDs frozen forever: hosts store automation and projects by them) and the
//! non-parameter state saved with the DAW project.

use std::sync::Arc;

use nice_plug::prelude::*;

use crate::models::choice::ModelChoiceState;
use crate::music::key::PitchSet;
use crate::persist::SessionState;

/// Largest seed a musician can dial in; the seed is an integer parameter so hosts can automate it.
pub const MAX_SEED: i32 = 9999;
/// The Gain parameter's top, in dB.
pub const MAX_GAIN_DB: f32 = 6.0;

/// `param`'s value within its range. A restored state sets each value as it was saved, so a
/// hand-edited project or one from a newer WaveJam may hold a value outside it.
pub fn within_range<P: Param>(param: &P) -> P::Plain {
    param.preview_plain(param.preview_normalized(param.modulated_plain_value()))
}

/// Whether each phrase is answered from the same seed or from a fresh one.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedMode {
    /// Same seed + same phrase ⇒ the same answer (for bounces and retakes).
    #[id = "fixed"]
    #[name = "Fixed"]
    Fixed,
    /// The seed advances with every answered phrase (still reproducible from the start of playback).
    #[id = "new-each-phrase"]
    #[name = "New each phrase"]
    NewEachPhrase,
}

/// The grid an answer starts on.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantize {
    #[id = "sixteenth"]
    #[name = "1/16"]
    Sixteenth,
    #[id = "beat"]
    #[name = "Beat"]
    Beat,
    #[id = "bar"]
    #[name = "Bar"]
    Bar,
}

impl Quantize {
    /// Grid step in beats for a bar of `bar_beats` beats.
    pub fn step_beats(self, bar_beats: f64) -> f64 {
        match self {
            Quantize::Sixteenth => 0.25,
            Quantize::Beat => 1.0,
            Quantize::Bar => bar_beats,
        }
    }
}

/// When WaveJam answers.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Answer every phrase after `wait` beats of silence.
    #[id = "answer"]
    #[name = "Answer"]
    Answer,
    /// Answer only when `generate` is triggered.
    #[id = "manual"]
    #[name = "Manual"]
    Manual,
    /// Answer every phrase, then keep continuing its own answers until the player plays again.
    #[id = "continuous"]
    #[name = "Continuous"]
    Continuous,
}

/// Where generated notes go.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    #[id = "midi-audio"]
    #[name = "MIDI + audio"]
    MidiAndAudio,
    #[id = "midi"]
    #[name = "MIDI only"]
    MidiOnly,
    #[id = "audio"]
    #[name = "Audio only"]
    AudioOnly,
}

impl Output {
    pub fn midi(self) -> bool {
        self != Output::AudioOnly
    }
    pub fn audio(self) -> bool {
        self != Output::MidiOnly
    }
}

/// The answering engine.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineChoice {
    /// The phrase WaveNet mixed with the Markov engine's long- and short-term memories.
    #[id = "hybrid"]
    #[name = "Hybrid"]
    Hybrid,
    /// The phrase WaveNet alone: the idiom of the training corpus.
    #[id = "wavenet"]
    #[name = "WaveNet"]
    WaveNet,
    /// Variable-order Markov models of the corpus and of the tune so far.
    #[id = "markov"]
    #[name = "Markov"]
    Markov,
    /// Pachet's Continuator: learns only from the player's phrases since playback started.
    #[id = "continuator"]
    #[name = "Continuator"]
    Continuator,
}

impl EngineChoice {
    /// The corpus-trained engine it names, or `None` for the Continuator.
    pub fn event_engine(self) -> Option<crate::models::engines::EngineKind> {
        use crate::models::engines::EngineKind;
        match self {
            EngineChoice::Hybrid => Some(EngineKind::Hybrid),
            EngineChoice::WaveNet => Some(EngineKind::WaveNet),
            EngineChoice::Markov => Some(EngineKind::Markov),
            EngineChoice::Continuator => None,
        }
    }
}

/// The instrument WaveJam's notes sound on (its own audio output).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoiceChoice {
    /// The polyphonic subtractive synth.
    #[id = "synth"]
    #[name = "Synth"]
    Synth,
    /// The neural voice trained on a violin: one line, as a fiddler plays.
    #[id = "fiddle"]
    #[name = "Fiddle"]
    Fiddle,
    /// The neural voice trained on a flute: one line.
    #[id = "flute"]
    #[name = "Flute"]
    Flute,
    /// The neural voice file loaded in the panel (the synth while none is).
    #[id = "custom"]
    #[name = "Custom"]
    Custom,
}

/// Whether answers keep to a scale.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleMode {
    /// Every note the engine draws may play.
    #[id = "off"]
    #[name = "Off"]
    Off,
    /// The key WaveJam hears in the session's phrases.
    #[id = "auto"]
    #[name = "Auto"]
    Auto,
    /// The scale set by Scale Root and Scale Type.
    #[id = "fixed"]
    #[name = "Fixed"]
    Fixed,
}

/// The root of a fixed scale.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleRoot {
    #[id = "c"]
    #[name = "C"]
    C,
    #[id = "c-sharp"]
    #[name = "C#/Db"]
    CSharp,
    #[id = "d"]
    #[name = "D"]
    D,
    #[id = "d-sharp"]
    #[name = "D#/Eb"]
    DSharp,
    #[id = "e"]
    #[name = "E"]
    E,
    #[id = "f"]
    #[name = "F"]
    F,
    #[id = "f-sharp"]
    #[name = "F#/Gb"]
    FSharp,
    #[id = "g"]
    #[name = "G"]
    G,
    #[id = "g-sharp"]
    #[name = "G#/Ab"]
    GSharp,
    #[id = "a"]
    #[name = "A"]
    A,
    #[id = "a-sharp"]
    #[name = "A#/Bb"]
    ASharp,
    #[id = "b"]
    #[name = "B"]
    B,
}

/// The mode of a fixed scale.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleType {
    #[id = "major"]
    #[name = "Major"]
    Major,
    #[id = "minor"]
    #[name = "Minor"]
    Minor,
    #[id = "dorian"]
    #[name = "Dorian"]
    Dorian,
    #[id = "mixolydian"]
    #[name = "Mixolydian"]
    Mixolydian,
    #[id = "harmonic-minor"]
    #[name = "Harmonic minor"]
    HarmonicMinor,
    #[id = "major-pentatonic"]
    #[name = "Major pentatonic"]
    MajorPentatonic,
    #[id = "minor-pentatonic"]
    #[name = "Minor pentatonic"]
    MinorPentatonic,
    #[id = "blues"]
    #[name = "Blues"]
    Blues,
}

impl ScaleType {
    /// Semitones above the root.
    pub fn intervals(self) -> &'static [u8] {
        match self {
            ScaleType::Major => &[0, 2, 4, 5, 7, 9, 11],
            ScaleType::Minor => &[0, 2, 3, 5, 7, 8, 10],
            ScaleType::Dorian => &[0, 2, 3, 5, 7, 9, 10],
            ScaleType::Mixolydian => &[0, 2, 4, 5, 7, 9, 10],
            ScaleType::HarmonicMinor => &[0, 2, 3, 5, 7, 8, 11],
            ScaleType::MajorPentatonic => &[0, 2, 4, 7, 9],
            ScaleType::MinorPentatonic => &[0, 3, 5, 7, 10],
            ScaleType::Blues => &[0, 3, 5, 6, 7, 10],
        }
    }
}

/// What a scale lock asks of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScaleLock {
    #[default]
    Off,
    /// The key heard in the session.
    Auto,
    /// These pitch classes.
    Fixed(PitchSet),
}

#[derive(Params)]
pub struct WaveJamParams {
    /// Last phrase and answer, saved with the project (see [`SessionState`]).
    #[persist = "session"]
    pub session: Arc<SessionState>,
    /// The user's WaveNet model file (path and content hash), if not the default.
    #[persist = "model"]
    pub model: Arc<ModelChoiceState>,
    /// The user's voice file (path and content hash) that *Custom* plays, if any.
    #[persist = "voice_file"]
    pub voice_file: Arc<ModelChoiceState>,

    /// Which engine answers; a change releases the answer that is playing.
    #[id = "engine"]
    pub engine: EnumParam<EngineChoice>,
    /// Sampling temperature: 0 = always the most likely continuation, 1 = as learned, 2 = wild.
    #[id = "temperature"]
    pub temperature: FloatParam,
    /// Random seed of the sampler.
    #[id = "seed"]
    pub seed: IntParam,
    #[id = "seed_mode"]
    pub seed_mode: EnumParam<SeedMode>,
    /// Silence, in beats, after the last released note that ends a phrase.
    #[id = "wait_beats"]
    pub wait_beats: FloatParam,
    /// Length of an answer in bars.
    #[id = "answer_bars"]
    pub answer_bars: IntParam,
    #[id = "quantize"]
    pub quantize: EnumParam<Quantize>,
    #[id = "mode"]
    pub mode: EnumParam<Mode>,
    /// Trigger: a rising edge answers now from the last phrase (any mode).
    #[id = "generate"]
    pub generate: BoolParam,
    /// Stop the answer at once when the player plays.
    #[id = "barge_in"]
    pub barge_in: BoolParam,
    #[id = "output"]
    pub output: EnumParam<Output>,
    /// Output level, stored as linear gain, shown in dB.
    #[id = "gain"]
    pub gain: FloatParam,
    /// Play the player's own notes through WaveJam's voice and echo them to the MIDI output.
    #[id = "thru"]
    pub thru: BoolParam,
    /// The host's bypass switch: releases every note and outputs silence.
    #[id = "bypass"]
    pub bypass: BoolParam,
    /// Keep answers to a scale: off, the key heard, or a fixed one.
    #[id = "scale_mode"]
    pub scale_mode: EnumParam<ScaleMode>,
    #[id = "scale_root"]
    pub scale_root: EnumParam<ScaleRoot>,
    #[id = "scale_type"]
    pub scale_type: EnumParam<ScaleType>,
    /// How much of the player's groove (swing, how late or early each position in the beat, its
    /// accents) the answers play with: 0 on the grid, 1 all of it.
    #[id = "feel"]
    pub feel: FloatParam,
    /// The instrument the notes sound on: the synth or a neural voice.
    #[id = "voice"]
    pub voice: EnumParam<VoiceChoice>,
}

impl WaveJamParams {
    /// The scale lock the parameters set.
    pub fn scale_lock(&self) -> ScaleLock {
        match self.scale_mode.value() {
            ScaleMode::Off => ScaleLock::Off,
            ScaleMode::Auto => ScaleLock::Auto,
            ScaleMode::Fixed => ScaleLock::Fixed(PitchSet::from_intervals(
                self.scale_root.value() as u8,
                self.scale_type.value().intervals(),
            )),
        }
    }
}

impl Default for WaveJamParams {
    fn default() -> Self {
        Self {
            session: Arc::new(SessionState::default()),
            model: Arc::new(ModelChoiceState::default()),
            voice_file: Arc::new(ModelChoiceState::default()),
            engine: EnumParam::new("Engine", EngineChoice::Hybrid),
            temperature: FloatParam::new(
                "Temperature",
                1.0,
                FloatRange::Linear { min: 0.0, max: 2.0 },
            )
            .with_step_size(0.01)
            .with_value_to_string(formatters::v2s_f32_rounded(2)),
            seed: IntParam::new(
                "Seed",
                1,
                IntRange::Linear {
                    min: 0,
                    max: MAX_SEED,
                },
            ),
            seed_mode: EnumParam::new("Seed Mode", SeedMode::Fixed),
            wait_beats: FloatParam::new(
                "Wait",
                1.0,
                FloatRange::Linear {
                    min: 0.25,
                    max: 8.0,
                },
            )
            .with_step_size(0.25)
            .with_unit(" beats")
            .with_value_to_string(formatters::v2s_f32_rounded(2)),
            answer_bars: IntParam::new("Answer Length", 2, IntRange::Linear { min: 1, max: 8 })
                .with_unit(" bars"),
            quantize: EnumParam::new("Quantize", Quantize::Beat),
            mode: EnumParam::new("Mode", Mode::Answer),
            generate: BoolParam::new("Generate", false),
            barge_in: BoolParam::new("Barge-in", true),
            output: EnumParam::new("Output", Output::MidiAndAudio),
            gain: FloatParam::new(
                "Gain",
                util::db_to_gain(-6.0),
                FloatRange::Skewed {
                    min: util::db_to_gain(-36.0),
                    max: util::db_to_gain(MAX_GAIN_DB),
                    factor: FloatRange::gain_skew_factor(-36.0, MAX_GAIN_DB),
                },
            )
            .with_smoother(SmoothingStyle::Logarithmic(20.0))
            .with_unit(" dB")
            .with_value_to_string(formatters::v2s_f32_gain_to_db(1))
            .with_string_to_value(formatters::s2v_f32_gain_to_db()),
            thru: BoolParam::new("Thru", true),
            bypass: BoolParam::new("Bypass", false).make_bypass(),
            scale_mode: EnumParam::new("Scale", ScaleMode::Off),
            scale_root: EnumParam::new("Scale Root", ScaleRoot::C),
            scale_type: EnumParam::new("Scale Type", ScaleType::Major),
            feel: FloatParam::new("Feel", 1.0, FloatRange::Linear { min: 0.0, max: 1.0 })
                .with_step_size(0.01)
                .with_value_to_string(formatters::v2s_f32_rounded(2)),
            voice: EnumParam::new("Voice", VoiceChoice::Synth),
        }
    }
}

#[cfg(test)]
mod tests {
    use nice_plug::params::InternalParamMut;

    use super::*;

    /// A project saved with values outside the parameters' ranges plays them at the ranges' ends.
    #[test]
    fn values_restored_outside_the_range_are_kept_within_it() {
        let params = WaveJamParams::default();
        // SAFETY: the parameters are alive; this is how a restored state sets them.
        unsafe {
            params.gain._internal_set_plain_value(4.0);
            params.answer_bars._internal_set_plain_value(500);
            params.wait_beats._internal_set_plain_value(-3.0);
        }
        assert_eq!(params.gain.value(), 4.0, "restored as saved");
        assert_eq!(within_range(&params.gain), util::db_to_gain(MAX_GAIN_DB));
        assert_eq!(within_range(&params.answer_bars), 8);
        assert_eq!(within_range(&params.wait_beats), 0.25);
        assert_eq!(
            within_range(&params.temperature),
            params.temperature.value()
        );
    }
}
