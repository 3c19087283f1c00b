"""Tests for extract.py on small fixtures built here (no corpus extraction).

Run with the corpus venv:  .venv-corpus/bin/python -m unittest discover -s tools/corpus -v
"""

import hashlib
import json
import sys
import tempfile
import unittest
from fractions import Fraction as F
from pathlib import Path

import mido
from music21 import chord, converter, harmony, key, meter, note, stream, tempo, tie

sys.path.insert(0, str(Path(__file__).resolve().parent))
import extract as ex  # noqa: E402

#: Two tunes in one ABC opus: ties across a bar line, a pickup, a triplet, a grace note, a chord
#: symbol; the second is the first transposed up a tone.
ABC_OPUS = """X:1
T:Fixture Reel
M:4/4
L:1/8
Q:1/4=96
K:G
D|G2 B2-B2 d2|{a}g2 (3fed c2 A2-|A4 G4|]

X:2
T:Fixture Reel Up A Tone
M:4/4
L:1/8
Q:1/4=96
K:A
E|A2 c2-c2 e2|{b}a2 (3gfe d2 B2-|B4 A4|]
"""


def make_note(pitch, quarter_length, tie_type=None):
    n = note.Note(pitch, quarterLength=quarter_length)
    if tie_type:
        n.tie = tie.Tie(tie_type)
    return n


def make_part(name, notes):
    """A part from (pitch, quarter_length, tie) tuples laid end to end; pitch None is a rest."""
    part = stream.Part()
    part.partName = name
    part.insert(0, meter.TimeSignature("3/4"))
    offset = 0.0
    for pitch, ql, tie_type in notes:
        el = note.Rest(quarterLength=ql) if pitch is None else make_note(pitch, ql, tie_type)
        part.insert(offset, el)
        offset += ql
    return part


def make_chorale(soprano, transpose=0):
    """A four-part score (Soprano, Alto, Tenor, Bass) with the given soprano line."""
    score = stream.Score()
    shift = lambda line: [(None if p is None else p + transpose, ql, t) for p, ql, t in line]  # noqa: E731
    score.insert(0, make_part("Soprano", shift(soprano)))
    score.insert(0, make_part("Alto", shift([(60, 3.0, None), (59, 3.0, None)])))
    score.insert(0, make_part("Tenor", shift([(55, 1.5, "start"), (55, 1.5, "stop"), (55, 3.0, None)])))
    score.insert(0, make_part("Bass", shift([(48, 3.0, None), (43, 3.0, None)])))
    score.insert(0, tempo.MetronomeMark(number=72))
    return score


SOPRANO = [(67, 1.0, None), (69, 0.5, "start"), (69, 0.5, "stop"), (71, 1.0, None),
           (72, 2.0, "start"), (72, 1.0, "stop")]


def read_back(path: Path):
    """(ticks per beat, title, {track name: [(pitch, onset tick, duration ticks)]},
    [(tick, conductor meta message)])."""
    mid = mido.MidiFile(path)
    tracks = {}
    conductor = []
    for i, track in enumerate(mid.tracks):
        now, name, sounding, notes = 0, f"track{i}", {}, []
        for msg in track:
            now += msg.time
            if msg.type == "track_name":
                name = msg.name
            elif msg.type == "note_on" and msg.velocity > 0:
                sounding[msg.note] = now
            elif msg.type in ("note_off", "note_on"):
                start = sounding.pop(msg.note)
                notes.append((msg.note, start, now - start))
            elif i == 0:
                conductor.append((now, msg))
        if i == 0:
            title = name
        else:
            tracks[name] = sorted(notes, key=lambda n: (n[1], n[0]))
    return mid.ticks_per_beat, title, tracks, conductor


class TieMerging(unittest.TestCase):
    def test_tied_notes_become_one_note(self):
        part = make_part("melody", [
            (60, 1.0, "start"), (60, 1.0, "stop"),                     # 2 beats
            (62, 0.5, "start"), (62, 1.0, "continue"), (62, 0.5, "stop"),  # 2 beats across 3 pieces
            (None, 1.0, None),
            (64, 1.0, "start"), (65, 1.0, "stop"),                     # a "tie" to another pitch: two notes
            (67, 1.0, "stop"),                                         # a dangling stop: a new note
        ])
        got = ex.part_notes(part)
        self.assertEqual(got, [
            ex.Note(F(0), F(2), 60),
            ex.Note(F(2), F(2), 62),
            ex.Note(F(5), F(1), 64),
            ex.Note(F(6), F(1), 65),
            ex.Note(F(7), F(1), 67),
        ])

    def test_chords_ties_grace_notes_and_chord_symbols(self):
        part = stream.Part()
        c1 = chord.Chord([60, 64], quarterLength=1.0)
        for n in c1.notes:
            n.tie = tie.Tie("start")
        c2 = chord.Chord([60, 64], quarterLength=0.5)
        c2.notes[0].tie = tie.Tie("stop")  # only C is held over; E sounds again
        grace = note.Note(72, quarterLength=1.0).getGrace()
        part.insert(0.0, c1)
        part.insert(0.0, harmony.ChordSymbol("C"))
        part.insert(1.0, grace)
        part.insert(1.0, c2)
        self.assertEqual(ex.part_notes(part), [
            ex.Note(F(0), F(3, 2), 60),
            ex.Note(F(0), F(1), 64),
            ex.Note(F(1), F(1, 2), 64),
        ])

    def test_abc_ties_pickup_and_triplet(self):
        opus = converter.parse(ABC_OPUS, format="abc")
        tunes, skipped = ex.folk_tunes("miscFolk", "miscFolk/fixture.abc", opus)
        self.assertEqual(skipped, [])
        self.assertEqual([t["name"] for t in tunes],
                         ["fixture_1-fixture-reel", "fixture_2-fixture-reel-up-a-tone"])
        reel = tunes[0]
        self.assertEqual(reel["lead_beats"], 3.5)  # a one-eighth pickup in 4/4
        self.assertEqual(reel["notes"], 11)  # 15 written, minus 2 ties, grace note skipped
        self.assertEqual(reel["beats"], 12.5)  # pickup + 3 bars
        self.assertEqual(reel["tempo_bpm"], 96.0)
        self.assertEqual(reel["time_signature"], "4/4")
        self.assertEqual(reel["off_grid_24"], 0)
        self.assertEqual(reel["off_grid_12"], 0)


class Meta(unittest.TestCase):
    def test_meter_shared_between_measures_keeps_its_first_offset(self):
        # music21's ABC import sometimes puts one TimeSignature object into two measures; a
        # flattened stream then reports only the later offset.
        part = stream.Part()
        ts, ks = meter.TimeSignature("2/4"), key.Key("g")
        for i in range(4):
            m = stream.Measure(number=i)
            if i in (0, 2):
                m.insert(0, ts)
            if i == 0:
                m.insert(0, ks)
            if i == 1:
                m.insert(0, meter.TimeSignature("3/4"))
                m.insert(0, tempo.MetronomeMark(number=100))
            m.append(note.Note(60 + i, quarterLength=2 if i != 1 else 3))
            part.append(m)
        score = stream.Score([part])
        meta = ex.score_meta(score, part, "t")
        self.assertEqual(meta.time_signatures, [(0, 2, 4), (2, 3, 4), (5, 2, 4)])
        self.assertEqual(meta.key_signatures, [(0, -2, True)])
        self.assertEqual(meta.tempos, [(2, 100.0)])


class ContentHash(unittest.TestCase):
    def test_transposition_invariant_and_distinct(self):
        tune = ex.part_notes(make_part("s", SOPRANO))
        up = ex.part_notes(make_part("s", [(p + 5, ql, t) for p, ql, t in SOPRANO]))
        later = [ex.Note(n.onset + 3, n.duration, n.pitch) for n in tune]
        self.assertNotEqual(tune, up)
        self.assertEqual(ex.content_hash(tune), ex.content_hash(up))
        self.assertEqual(ex.content_hash(tune), ex.content_hash(later))
        other_pitch = tune[:2] + [ex.Note(tune[2].onset, tune[2].duration, tune[2].pitch + 1)] + tune[3:]
        other_rhythm = tune[:-1] + [ex.Note(tune[-1].onset, tune[-1].duration / 2, tune[-1].pitch)]
        hashes = {ex.content_hash(x) for x in (tune, other_pitch, other_rhythm, tune[:-1])}
        self.assertEqual(len(hashes), 4)

    def test_abc_transposed_variant_hashes_equally(self):
        tunes, _ = ex.folk_tunes("miscFolk", "miscFolk/fixture.abc", converter.parse(ABC_OPUS, format="abc"))
        self.assertEqual(tunes[0]["content_hash"], tunes[1]["content_hash"])
        kept, dropped = ex.dedup(tunes)
        self.assertEqual(len(kept), 1)
        self.assertEqual(dropped[0]["reason"], "exact duplicate")


class Split(unittest.TestCase):
    def test_rule_is_fixed(self):
        self.assertEqual(ex.split_for("0" * 64), "train")
        self.assertEqual(ex.split_for(format(189, "064x")), "train")       # 89
        self.assertEqual(ex.split_for(format(190, "064x")), "validation")  # 90
        self.assertEqual(ex.split_for(format(194, "064x")), "validation")
        self.assertEqual(ex.split_for(format(195, "064x")), "test")
        self.assertEqual(ex.split_for(format(99, "064x")), "test")
        # A known melody's hash and split never change: (interval, duration, onset delta) in
        # 24ths of a beat, the two tied A's already merged into one quarter note.
        tune = ex.part_notes(make_part("s", SOPRANO))
        want = hashlib.sha256(b"0,24,0;2,24,24;2,24,24;1,72,24").hexdigest()
        self.assertEqual(ex.content_hash(tune), want)
        self.assertEqual(want, "1fc1e7f2eca53e86eacb6560b7ea5688f1109b44fd4da76ba3dc4644ba37a333")
        self.assertEqual(ex.split_for(want), "train")  # bucket 7

    def test_soprano_and_satb_share_a_split_and_output_is_deterministic(self):
        manifests = []
        for _ in range(2):
            tunes = []
            for i in range(12):  # enough chorales that they spread over splits
                line = [(p + (i % 3 == 0) * (i % 7), ql, t) for p, ql, t in SOPRANO]
                line[0] = (line[0][0] + i, line[0][1], None)  # a different first interval each
                got, skipped = ex.chorale_tunes(f"bach/bwv{i}.mxl", make_chorale(line))
                self.assertEqual(skipped, [])
                tunes += got
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp)
                summary = ex.write_corpus(out, tunes, [])
                manifest = json.loads((out / "manifest.json").read_text())
                for t in manifest["tunes"]:
                    self.assertTrue((out / t["path"]).is_file(), t["path"])
            manifests.append(manifest)
        self.assertEqual(manifests[0], manifests[1])
        by_name = {}
        for t in manifests[0]["tunes"]:
            by_name.setdefault(t["name"], {})[t["collection"]] = t
        self.assertEqual(len(by_name), 12)
        for name, pair in by_name.items():
            mel, satb = pair[ex.CHORALE_MELODY], pair[ex.CHORALE_SATB]
            self.assertEqual(mel["content_hash"], satb["content_hash"], name)
            self.assertEqual(mel["split"], satb["split"], name)
            self.assertTrue(satb["polyphonic"] and not mel["polyphonic"])
            self.assertEqual(satb["parts"], ["Soprano", "Alto", "Tenor", "Bass"])
        splits = {t["split"] for t in manifests[0]["tunes"]}
        self.assertGreater(len(splits), 1, "fixture chorales all landed in one split")
        self.assertEqual(summary["splits"]["train"]["total"]["tunes"]
                         + summary["splits"]["validation"]["total"]["tunes"]
                         + summary["splits"]["test"]["total"]["tunes"], 24)

    def test_settings_of_one_tune_share_a_split(self):
        tunes = []
        for i, title in enumerate(["The Brown Thorn", "Brown Thorn (2nd setting)", "The brown thorn",
                                   "Another Tune", "The Blackbird", "Blackbird, The -- Hornpipe"]):
            line = [(p + (k == 2) * i, ql, t) for k, (p, ql, t) in enumerate(SOPRANO)]
            tunes.append({"collection": "oneills1850", "source": f"oneills1850/{i}.abc", "title": title,
                          "content_hash": ex.content_hash(ex.part_notes(make_part("s", line)))})
        tunes.append({"collection": ex.CHORALE_MELODY, "source": "bach/bwv248.9-1.mxl", "title": "x",
                      "content_hash": "f" * 64})
        tunes.append({"collection": ex.CHORALE_SATB, "source": "bach/bwv248.9-s.mxl", "title": "y",
                      "content_hash": "0" * 64})
        self.assertEqual(len({t["content_hash"] for t in tunes}), len(tunes))
        ex.assign_splits(tunes)
        groups = [t["variant_group"] for t in tunes]
        self.assertEqual(groups[:3], ["folk:brown thorn"] * 3)
        self.assertEqual(groups[3:6], ["folk:another tune", "folk:blackbird", "folk:blackbird hornpipe"])
        self.assertEqual(groups[6:], ["bach:bwv248.9"] * 2)
        self.assertEqual(len({t["split_key"] for t in tunes[:3]}), 1)
        self.assertEqual(tunes[0]["split_key"], min(t["content_hash"] for t in tunes[:3]))
        self.assertEqual(tunes[6]["split_key"], "0" * 64)
        self.assertEqual(tunes[6]["split"], tunes[7]["split"])

    def test_transposed_chorale_lands_in_the_same_split(self):
        a, _ = ex.chorale_tunes("bach/a.mxl", make_chorale(SOPRANO))
        b, _ = ex.chorale_tunes("bach/b.mxl", make_chorale(SOPRANO, transpose=-3))
        self.assertEqual({t["content_hash"] for t in a + b}, {a[0]["content_hash"]})

    def test_non_satb_score_is_skipped_with_a_reason(self):
        score = stream.Score()
        score.insert(0, make_part("Piano", SOPRANO))
        score.insert(0, make_part("Piano", SOPRANO))
        tunes, skipped = ex.chorale_tunes("bach/bwv846.mxl", score)
        self.assertEqual(tunes, [])
        self.assertEqual({s["reason"] for s in skipped}, {"not a four-part chorale"})


class MidiRoundTrip(unittest.TestCase):
    def test_notes_and_meta_round_trip_on_the_24_grid(self):
        melody = [
            ex.Note(F(0), F(1, 3), 60), ex.Note(F(1, 3), F(1, 3), 62), ex.Note(F(2, 3), F(1, 3), 64),  # triplet
            ex.Note(F(1), F(1, 8), 65), ex.Note(F(9, 8), F(7, 8), 67),  # a 32nd, then the rest of the beat
            ex.Note(F(3), F(5, 2), 127), ex.Note(F(11, 2), F(1, 24), 0),
        ]
        bass = [ex.Note(F(0), F(2), 36), ex.Note(F(0), F(2), 43), ex.Note(F(2), F(4), 38)]  # a chord
        meta = ex.Meta(title="Round Trip", time_signatures=[(F(0), 6, 8), (F(3), 3, 4)],
                       key_signatures=[(F(0), -2, True)], tempos=[(F(0), 90.0), (F(3), 120.0)])
        lead = F(5, 2)
        data, grid = ex.write_midi([("melody", melody), ("bass", bass)], meta, lead)
        # Off a 12-tick grid: the 32nd, the note after it, and the 1/24-beat note.
        self.assertEqual(grid, ex.GridStats(off_grid_24=0, off_grid_12=3, rounded_to_tick=0))
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "t.mid"
            path.write_bytes(data)
            ppq, title, tracks, conductor = read_back(path)
        self.assertEqual(ppq, 480)
        self.assertEqual(ppq % ex.GRID_TICKS_PER_BEAT, 0)
        for name, notes in (("melody", melody), ("bass", bass)):
            want = sorted((n.pitch, (n.onset + lead) * ppq, n.duration * ppq) for n in notes)
            got = sorted(tracks[name])
            self.assertEqual(got, [(p, int(o), int(d)) for p, o, d in want], name)
            for _, onset, duration in got:  # exact on the 24-per-beat grid
                self.assertEqual(onset % (ppq // 24), 0)
                self.assertEqual(duration % (ppq // 24), 0)
        self.assertEqual(title, "Round Trip")
        msgs = [(t, m.type) for t, m in conductor]
        ts = [(t, m.numerator, m.denominator) for t, m in conductor if m.type == "time_signature"]
        self.assertEqual(ts, [(0, 6, 8), (int((3 + lead) * ppq), 3, 4)])
        tempos = [(t, round(mido.tempo2bpm(m.tempo), 3)) for t, m in conductor if m.type == "set_tempo"]
        self.assertEqual(tempos, [(0, 90.0), (int((3 + lead) * ppq), 120.0)])
        keys = [m.key for t, m in conductor if m.type == "key_signature"]
        self.assertEqual(keys, ["Gm"])
        self.assertIn((0, "time_signature"), msgs)

    def test_unrepresentable_times_are_rounded_and_counted(self):
        data, grid = ex.write_midi([("m", [ex.Note(F(1, 7), F(1, 7), 60)]), ("n", [ex.Note(F(1, 10), F(1), 60)])], ex.Meta())
        self.assertEqual(grid, ex.GridStats(off_grid_24=2, off_grid_12=2, rounded_to_tick=1))
        self.assertTrue(data.startswith(b"MThd"))

    def test_unison_overlap_in_one_track_is_made_unambiguous(self):
        notes = ex.merge_tied([(F(0), F(2), 60, None), (F(1), F(2), 60, None), (F(1), F(2), 60, None)])
        self.assertEqual(notes, [ex.Note(F(0), F(1), 60), ex.Note(F(1), F(2), 60)])


if __name__ == "__main__":
    unittest.main()
