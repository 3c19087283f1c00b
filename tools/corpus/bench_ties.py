"""Time music21's ``stripTies`` against the extractor's own tie merging, on real corpus parts.

    .venv-corpus/bin/python tools/corpus/bench_ties.py [--files N] [--chorales N]

Both sides start from the same flattened, sorted part (a deep copy each: ``stripTies`` changes
the notes themselves, which a flattened stream shares with its part) and end with the part's notes as ``(onset, duration, pitch)``:

* ``stripTies()``: music21 merges the ties as usually called, copying the part first, then the notes
  are read off the result; ``stripTies(inPlace=True)``, its cheapest form, skips the copy.
* ours: ``part_events`` reads the events with their tie types, ``merge_tied`` merges them.

It prints one table row per collection (parts, notes, milliseconds for each side, the ratio), and
how many parts give different notes (on folk tunes ``stripTies`` also merges "ties" between
different pitches, which ours leaves as two notes). Parsing is not timed.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import extract  # noqa: E402
from music21 import chord, note, stream  # noqa: E402


def stripped_notes(flat: stream.Stream, in_place: bool) -> list[tuple[Fraction, Fraction, int]]:
    """The notes of a flattened part after music21 merges its ties."""
    if in_place:
        flat.stripTies(inPlace=True)
    else:
        flat = flat.stripTies()
    out = []
    for el in flat.elements:
        if not isinstance(el, (note.Note, chord.Chord)) or el.duration.isGrace:
            continue
        duration = extract.exact(el.duration.quarterLength)
        if duration <= 0:
            continue
        onset = extract.exact(flat.elementOffset(el))
        for n in (el,) if isinstance(el, note.Note) else el.notes:
            out.append((onset, duration, n.pitch.midi))
    return out


def our_notes(flat: stream.Stream) -> list[tuple[Fraction, Fraction, int]]:
    """The notes of a flattened part after the extractor merges its ties."""
    return extract.merge_tied(extract.part_events(flat))


def sample_parts(source_set: str, files: int) -> list[stream.Stream]:
    """Every part the extractor reads from the first ``files`` corpus files of a source set."""
    sources, _ = extract.corpus_sources([source_set])
    parts = []
    for _, source in sources[:files]:
        parsed = extract.parse_source(source)
        if source_set == "bach":
            satb = extract.find_satb(parsed)
            if not isinstance(satb, str):
                parts.extend(satb[voice] for voice in extract.VOICES)
        else:
            scores = list(parsed.scores) if isinstance(parsed, stream.Opus) else [parsed]
            parts.extend((list(s.parts) or [s])[0] for s in scores)
    return parts


def timed(merge, parts: list[stream.Stream]) -> tuple[float, list]:
    """Seconds ``merge`` takes over sorted flat deep copies of ``parts``, and its results (each
    a sorted set of notes, compared untimed)."""
    flats = [copy.deepcopy(p).flatten() for p in parts]
    for f in flats:
        f.sort()
    start = time.perf_counter()
    results = [merge(f) for f in flats]
    seconds = time.perf_counter() - start
    return seconds, [sorted(set(r)) for r in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=2, help="ABC files per folk collection (each holds many tunes)")
    parser.add_argument("--chorales", type=int, default=60, help="chorale files (four parts each)")
    args = parser.parse_args()
    print("| collection | parts | notes | stripTies() | stripTies(inPlace=True) | ours "
          "| ratios | parts that differ |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")

    def row(name: str, parts: int, notes: int, copied: float, in_place: float, ours: float, differ: str) -> None:
        print(f"| {name} | {parts} | {notes} | {copied * 1e3:.0f} ms | {in_place * 1e3:.0f} ms | {ours * 1e3:.0f} ms "
              f"| {copied / ours:.1f}× / {in_place / ours:.1f}× | {differ} |")

    totals = [0, 0, 0.0, 0.0, 0.0]
    for source_set in extract.FOLK_COLLECTIONS + ("bach",):
        parts = sample_parts(source_set, args.chorales if source_set == "bach" else args.files)
        copied_s, copied = timed(lambda f: stripped_notes(f, in_place=False), parts)
        in_place_s, in_place = timed(lambda f: stripped_notes(f, in_place=True), parts)
        ours_s, ours = timed(our_notes, parts)
        assert copied == in_place
        notes = sum(len(n) for n in ours)
        differ = sum(a != b for a, b in zip(in_place, ours))
        row(source_set, len(parts), notes, copied_s, in_place_s, ours_s, str(differ))
        for i, value in enumerate((len(parts), notes, copied_s, in_place_s, ours_s)):
            totals[i] += value
    row("all", *totals, "")


if __name__ == "__main__":
    main()
