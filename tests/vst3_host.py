"""Real-host test of the built VST3 bundle with Spotify's pedalboard (JUCE's VST3 host).

Run by scripts/test.sh inside the venv it creates:
    python tests/vst3_host.py [path/to/WaveJam.vst3]
"""

import os
import sys
import time
import unittest

import re

import numpy as np
import pedalboard

# nice-plug carries MIDI CCs to a VST3 plugin through 2,080 hidden, read-only parameters ("MIDI
# Ch. 1 CC 64"); pedalboard passes over JUCE's own ("MIDI CC 0|64") but would wrap these one by
# one, a quadratic lookup that takes ~20 s a load. It is told to pass over them too.
pedalboard._pedalboard.PARAMETER_NAME_REGEXES_TO_IGNORE.add(
    re.compile(r"MIDI Ch\. \d+ (CC \d+|Channel Pressure|Pitch Bend)$"))

SAMPLE_RATE = 48_000
TEMPO_BPM = 120.0  # WaveJam's internal clock when the host reports no tempo
SECONDS_PER_BEAT = 60.0 / TEMPO_BPM
BUNDLE = os.path.abspath(
    sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(__file__), "..", "target", "bundled", "WaveJam.vst3"))

# A two-bar phrase: (MIDI key, onset in beats, length in beats).
PHRASE = [(62, 0, 0.45), (66, 0.5, 0.45), (69, 1, 0.9), (66, 2, 0.45), (69, 2.5, 0.45),
          (74, 3, 0.9), (73, 4, 0.45), (71, 4.5, 0.45), (69, 5, 0.9), (66, 6, 0.45),
          (64, 6.5, 0.45), (62, 7, 0.7)]
PHRASE_END_S = max(on + length for _, on, length in PHRASE) * SECONDS_PER_BEAT


def phrase_messages():
    """The phrase as pedalboard's (raw MIDI bytes, time in seconds) messages."""
    messages = []
    for key, onset, length in PHRASE:
        messages.append((bytes([0x90, key, 100]), onset * SECONDS_PER_BEAT))
        messages.append((bytes([0x80, key, 0]), (onset + length) * SECONDS_PER_BEAT))
    return sorted(messages, key=lambda m: m[1])


def transposed_messages(semitones, offset_s=0.0):
    """The phrase moved by `semitones` and starting `offset_s` seconds later."""
    return [(bytes([m[0], m[1] + semitones, m[2]]), t + offset_s)
            for m, t in phrase_messages()]


def load(initialization_timeout=None):
    """WaveJam, with pedalboard's warm-up (`initialization_timeout` seconds of it; None: the
    default) or without it (0)."""
    if initialization_timeout is None:
        plugin = pedalboard.load_plugin(BUNDLE)
    else:
        plugin = pedalboard.load_plugin(BUNDLE, initialization_timeout=initialization_timeout)
    assert plugin.is_instrument, "WaveJam must load as an instrument"
    return plugin


def render(plugin, seconds=12.0, messages=None):
    return plugin(phrase_messages() if messages is None else messages, duration=seconds,
                  sample_rate=SAMPLE_RATE, num_channels=2, buffer_size=512, reset=True)


def first_sound_s(audio, from_s, to_s, threshold=1e-4):
    """Seconds after `from_s` at which the audio first exceeds `threshold` (before `to_s`), or
    None."""
    segment = audio[0, int(from_s * SAMPLE_RATE): int(to_s * SAMPLE_RATE)]
    loud = np.nonzero(np.abs(segment) > threshold)[0]
    return loud[0] / SAMPLE_RATE if loud.size else None


def resident_mb():
    """This process' resident memory now, in MB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def memory_building():
    """Whether a thread of this process builds WaveJam's long-term memory."""
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/comm") as comm:
                if comm.read().strip() == "wavejam-memory":
                    return True
        except OSError:
            pass
    return False


def wait_for_long_term_memory(timeout_s=60.0):
    """Waits until WaveJam's long-term memory is built (its thread names itself once it runs,
    so it gets half a second to show up)."""
    appear_by = time.monotonic() + 0.5
    while not memory_building() and time.monotonic() < appear_by:
        time.sleep(0.002)
    deadline = time.monotonic() + timeout_s
    while memory_building() and time.monotonic() < deadline:
        time.sleep(0.02)


def rms(x):
    return float(np.sqrt(np.mean(np.square(x)))) if x.size else 0.0


class Vst3HostTest(unittest.TestCase):
    def test_the_phrase_is_answered_audibly(self):
        plugin = load()
        plugin.thru = False  # only the answer makes sound
        audio = render(plugin)
        self.assertEqual(audio.shape[0], 2)
        self.assertTrue(np.all(np.isfinite(audio)), "non-finite samples")
        during_phrase = audio[:, : int(PHRASE_END_S * SAMPLE_RATE)]
        answer_from = int((PHRASE_END_S + 1.0 * SECONDS_PER_BEAT) * SAMPLE_RATE)
        answer = audio[:, answer_from:]
        self.assertLess(rms(during_phrase), 1e-4, "sound before the answer with thru off")
        self.assertGreater(rms(answer), 1e-3, "the answer is not audible")
        self.assertLess(float(np.max(np.abs(audio))), 2.0)

    def test_thru_plays_the_phrase(self):
        plugin = load()
        plugin.thru = True
        audio = render(plugin, seconds=PHRASE_END_S)
        self.assertGreater(rms(audio), 1e-3)

    def test_the_sustain_pedal_holds_a_thru_note(self):
        """One note held for a beat; the pedal (CC 64, through VST3's MIDI mapping) down before it
        and lifted two beats after its release keeps it sounding until the lift. Manual mode:
        no answer sounds over it."""
        note = [(bytes([0x90, 62, 100]), 0.0), (bytes([0x80, 62, 0]), SECONDS_PER_BEAT)]
        pedal = [(bytes([0xB0, 64, 127]), 0.0), (bytes([0xB0, 64, 0]), 3 * SECONDS_PER_BEAT)]
        plugin = load()
        plugin.thru = True
        plugin.mode = "Manual"
        held = slice(int(2 * SECONDS_PER_BEAT * SAMPLE_RATE),
                     int(2.9 * SECONDS_PER_BEAT * SAMPLE_RATE))
        after = slice(int(4.5 * SECONDS_PER_BEAT * SAMPLE_RATE), None)
        plain = render(plugin, seconds=6 * SECONDS_PER_BEAT, messages=note)
        pedalled = render(plugin, seconds=6 * SECONDS_PER_BEAT,
                          messages=sorted(pedal + note, key=lambda m: m[1]))
        self.assertLess(rms(plain[:, held]), 1e-4, "the note rang on without the pedal")
        self.assertGreater(rms(pedalled[:, held]), 1e-3, "the pedal did not hold the note")
        self.assertLess(rms(pedalled[:, after]), 1e-4, "the note rang on after the lift")

    def test_a_neural_voice_plays_and_is_saved(self):
        synth = load()
        synth.thru = True
        plugin = load()
        plugin.thru = True
        plugin.voice = "Fiddle"
        fiddle = render(plugin, seconds=PHRASE_END_S)
        self.assertTrue(np.all(np.isfinite(fiddle)), "non-finite samples")
        self.assertGreater(rms(fiddle), 1e-3, "the fiddle is silent")
        self.assertLessEqual(float(np.max(np.abs(fiddle))), 1.0)
        self.assertFalse(np.allclose(fiddle, render(synth, seconds=PHRASE_END_S)),
                         "the synth played, not the fiddle")
        restored = load()
        restored.raw_state = plugin.raw_state
        self.assertEqual(str(restored.voice), "Fiddle")

    def test_state_round_trips(self):
        plugin = load()
        # pedalboard names parameters with their units and sets plain values through a coarse
        # grid, so the seed is set through its exact normalised value.
        plugin.parameters["seed"].raw_value = 1234 / 9999
        plugin.answer_length_bars = 3
        plugin.temperature = 0.5
        saved = (int(plugin.seed), int(plugin.answer_length_bars), float(plugin.temperature))
        self.assertEqual(saved[:2], (1234, 3))
        state = plugin.raw_state
        restored = load()
        self.assertNotEqual(int(restored.seed), saved[0])
        restored.raw_state = state
        self.assertEqual(int(restored.seed), saved[0])
        self.assertEqual(int(restored.answer_length_bars), saved[1])
        self.assertAlmostEqual(float(restored.temperature), saved[2], places=3)
        # A restored instance still answers.
        restored.thru = False
        audio = render(restored, seconds=16.0)
        answer_from = int((PHRASE_END_S + SECONDS_PER_BEAT) * SAMPLE_RATE)
        self.assertGreater(rms(audio[:, answer_from:]), 1e-3)

    def test_garbage_state_is_refused_without_a_crash(self):
        plugin = load()
        plugin.parameters["seed"].raw_value = 77 / 9999
        before = int(plugin.seed)
        self.assertEqual(before, 77)
        try:
            plugin.raw_state = b"\x00garbage" * 10
        except Exception:  # pedalboard may raise; the plugin must not crash
            pass
        self.assertEqual(int(plugin.seed), before)
        self.assertGreater(rms(render(plugin, seconds=PHRASE_END_S)), 1e-3)


# An answer must start within the wait (1 beat) and one grid step (1 beat) of the phrase end.
ANSWER_LIMIT_S = PHRASE_END_S + 2 * SECONDS_PER_BEAT + 0.01


class RunningAheadTest(unittest.TestCase):
    """pedalboard renders far faster than real time; without its warm-up, WaveJam's first
    activation is told real-time mode (nice-plug hands it the previous setupProcessing's mode)."""

    @classmethod
    def setUpClass(cls):
        # The first activation in this process starts the long-term memory build; answers are
        # compared with and without the warm-up, so both must have it.
        warm = load(initialization_timeout=0)
        render(warm, seconds=0.1)
        wait_for_long_term_memory()

    def test_every_phrase_is_answered_on_time_without_warm_up(self):
        cold = load(initialization_timeout=0)
        cold.thru = False
        warm = load(initialization_timeout=0.5)
        warm.thru = False
        for shift in range(-6, 6):
            messages = transposed_messages(shift)
            answer = render(cold, seconds=PHRASE_END_S + 8, messages=messages)
            onset = first_sound_s(answer, 0, PHRASE_END_S + 8)
            self.assertIsNotNone(onset, f"phrase {shift:+}: no answer")
            self.assertGreaterEqual(onset, PHRASE_END_S, f"phrase {shift:+}: sound before its end")
            self.assertLessEqual(onset, ANSWER_LIMIT_S, f"phrase {shift:+}: answered late")
            warmed = render(warm, seconds=PHRASE_END_S + 8, messages=messages)
            np.testing.assert_array_equal(answer, warmed,
                                          f"phrase {shift:+}: the warm-up changed the answer")

    def test_a_long_jam_answers_every_phrase_with_flat_time_and_memory(self):
        plugin = load(initialization_timeout=0)
        plugin.thru = False
        chunk_s, every_s, chunks = 60, 15, 10
        seconds, memory = [], []
        for chunk in range(chunks):
            messages = []
            for k in range(chunk_s // every_s):
                messages += transposed_messages((chunk + k) % 5 - 2, k * every_s)
            started = time.monotonic()
            audio = plugin(messages, duration=chunk_s, sample_rate=SAMPLE_RATE, num_channels=2,
                           buffer_size=512, reset=False)
            seconds.append(time.monotonic() - started)
            memory.append(resident_mb())
            for k in range(chunk_s // every_s):
                start = k * every_s
                onset = first_sound_s(audio, start + PHRASE_END_S, start + every_s)
                self.assertIsNotNone(onset, f"minute {chunk}, phrase {k}: no answer")
                self.assertLessEqual(onset, ANSWER_LIMIT_S - PHRASE_END_S,
                                     f"minute {chunk}, phrase {k}: answered late")
        print(f"\n  render s per minute: {[round(s, 3) for s in seconds]}"
              f"\n  resident MB: {[round(m) for m in memory]}", file=sys.stderr)
        early, late = np.median(seconds[1:4]), np.median(seconds[-3:])
        self.assertLess(late, 2 * early + 0.05, f"render time per minute grew: {seconds}")
        # The first minutes fill the engines' caches; after them memory stays flat.
        self.assertLess(memory[-1] - memory[4], 5, f"memory grew: {memory} MB")


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
