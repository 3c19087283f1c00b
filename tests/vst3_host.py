"""Real-host test of the built VST3 bundle with Spotify's pedalboard (JUCE's VST3 host).

Run by scripts/test.sh inside the venv it creates:
    python tests/vst3_host.py [path/to/WaveJam.vst3]
"""

import os
import sys
import unittest

import numpy as np
import pedalboard

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


def load():
    plugin = pedalboard.load_plugin(BUNDLE)
    assert plugin.is_instrument, "WaveJam must load as an instrument"
    return plugin


def render(plugin, seconds=12.0):
    return plugin(phrase_messages(), duration=seconds, sample_rate=SAMPLE_RATE,
                  num_channels=2, buffer_size=512, reset=True)


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


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
