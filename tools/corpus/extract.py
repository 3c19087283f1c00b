"""Extract WaveJam's licence-clean training corpus from music21's bundled corpus.

Collections (and only these — Essen is non-commercial, Palestrina forbids derived formats):

* ``oneills1850``, ``ryansMammoth``, ``miscFolk``: monophonic ABC tunes (multi-tune opus files).
* Bach chorales: the soprano line as a melody (``bach-chorales``) and all four voices as
  polyphony (``bach-chorales-satb``).

Each tune becomes one standard MIDI file (format 1, 480 PPQ, so every 1/24-beat time is an exact
tick) under ``OUT/{train,validation,test}/<collection>/<name>.mid``, plus ``OUT/manifest.json``
(one entry per tune, deterministic) and ``OUT/summary.json`` (counts per split and collection,
grid statistics, wall time).

The split comes from a transposition-invariant hash of the melody line (the soprano for both
chorale sets), so transposed copies of a tune, and the soprano and SATB versions of one chorale,
always land in the same split; settings of one tune (same title, or same BWV number) share the
smallest hash of their group, so they land together too.

Run it through ``tools/corpus/run.sh``, which builds the pinned venv first.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import multiprocessing
import os
import re
import shutil
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import music21
from music21 import chord, corpus, harmony, key, meter, stream, tempo

# NOTE: bump when the output of the same music21 version would change (names, hashes, MIDI).
FORMAT_VERSION = 1

#: MIDI ticks per quarter note. Divisible by 24 (the encoder's grid) and by 5 and 16.
PPQ = 480
#: The phrase model's grid, in ticks per beat (quarter note).
GRID_TICKS_PER_BEAT = 24
assert PPQ % GRID_TICKS_PER_BEAT == 0 and PPQ % 12 == 0
#: Note-on velocity written for every note (none of these sources carries dynamics).
VELOCITY = 80

#: Split by ``hash % 100``: below TRAIN_BELOW is train, below VALIDATION_BELOW validation, else test.
TRAIN_BELOW = 90
VALIDATION_BELOW = 95
SPLITS = ("train", "validation", "test")

#: Melody collections read from ABC files, in dedup priority order.
FOLK_COLLECTIONS = ("oneills1850", "ryansMammoth", "miscFolk")
CHORALE_MELODY = "bach-chorales"
CHORALE_SATB = "bach-chorales-satb"
#: Output collections, in dedup priority order.
COLLECTIONS = FOLK_COLLECTIONS + (CHORALE_MELODY, CHORALE_SATB)
#: What ``--collections`` accepts: the folk sets and ``bach`` (which yields both chorale sets).
SOURCE_SETS = FOLK_COLLECTIONS + ("bach",)

VOICES = ("soprano", "alto", "tenor", "bass")
CHORALE_SUFFIXES = (".mxl", ".xml", ".krn")


# ----------------------------------------------------------------------------------------------
# Notes: tie merging, melody line, hashing, split


class Note(NamedTuple):
    """One sounding note, times in beats (quarter notes), exact."""

    onset: Fraction
    duration: Fraction
    pitch: int

    @property
    def end(self) -> Fraction:
        return self.onset + self.duration


_FRACTIONS: dict[float, Fraction] = {}


def exact(x) -> Fraction:
    """A music21 offset or quarterLength (a float when it is dyadic, else a Fraction) as a
    Fraction; floats repeat a lot, so they are memoised."""
    if type(x) is Fraction:
        return x
    f = _FRACTIONS.get(x)
    if f is None:
        f = _FRACTIONS[x] = Fraction(x)
    return f


def _time_key(t: Fraction) -> float:
    # NOTE: sorting on floats is much cheaper than on Fractions and keeps the order: distinct
    # times here differ by far more than a float's rounding.
    return t.numerator / t.denominator


def merge_tied(events) -> list[Note]:
    """Merge tied events into notes.

    ``events`` are ``(onset, duration, pitch, tie_type)`` with ``tie_type`` one of None, 'start',
    'continue', 'stop' (music21's ``Tie.type``). They are walked in offset order; a 'continue' or
    'stop' extends the open note of the same pitch if that note ends exactly where it starts,
    otherwise (a dangling tie) it starts a new note. This replaces music21's ``stripTies``: on
    this corpus it gives the same notes for all 1,628 chorale voices, and it does not merge a
    "tie" between different pitches, which ``stripTies`` does (O'Neill's ABC often ties a note to
    a different one). The merged notes are then made unambiguous as one MIDI track
    (:func:`_normalize_units`). Times are exact integers over one denominator while merging: Fraction
    arithmetic and hashing would cost more than everything else here.
    ``tools/corpus/bench_ties.py`` compares the two.
    """
    den = math.lcm(1, *{t.denominator for e in events for t in e[:2]})
    units = sorted(
        ((_in_units(o, den), _in_units(d, den), p, tie) for o, d, p, tie in events),
        key=lambda e: (e[0], e[2]),
    )
    out: list[list[int]] = []  # [onset, end, pitch], mutable while ties extend them
    open_by_pitch: dict[int, int] = {}
    for onset, duration, pitch, tie_type in units:
        idx = open_by_pitch.get(pitch)
        if tie_type in ("continue", "stop") and idx is not None and out[idx][1] == onset:
            out[idx][1] = onset + duration
            if tie_type == "stop":
                del open_by_pitch[pitch]
            continue
        out.append([onset, onset + duration, pitch])
        if tie_type in ("start", "continue"):
            open_by_pitch[pitch] = len(out) - 1
        else:
            open_by_pitch.pop(pitch, None)
    return _notes(_normalize_units([(o, e - o, p) for o, e, p in out]), den)


def _in_units(t: Fraction, den: int) -> int:
    """``t`` in units of ``1 / den`` beat (``den`` a multiple of its denominator)."""
    return t.numerator * (den // t.denominator)


_BEATS: dict[tuple[int, int], Fraction] = {}


def _notes(units: list[tuple[int, int, int]], den: int) -> list[Note]:
    """``(onset, duration, pitch)`` in units of ``1 / den`` beat as Notes (the Fractions
    memoised: tunes share most of their times)."""

    def beat(n: int) -> Fraction:
        f = _BEATS.get((n, den))
        if f is None:
            f = _BEATS[(n, den)] = Fraction(n, den)
        return f

    return [Note(beat(o), beat(d), p) for o, d, p in units]


def _normalize_units(notes: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Sort notes (``(onset, duration, pitch)`` in integer units) and make one track unambiguous
    as MIDI: per pitch, drop exact duplicates and cut a note short where the next note of the
    same pitch starts (a doubled unison inside a part)."""
    notes = sorted(set(notes), key=lambda n: (n[0], n[2], n[1]))
    last_by_pitch: dict[int, int] = {}
    out: list[tuple[int, int, int]] = []
    for n in notes:
        onset, duration, pitch = n
        idx = last_by_pitch.get(pitch)
        if idx is not None:
            prev = out[idx]
            if prev[0] == onset:  # same onset, keep the longer one
                if duration > prev[1]:
                    out[idx] = n
                continue
            if prev[0] + prev[1] > onset:
                out[idx] = (prev[0], onset - prev[0], pitch)
        last_by_pitch[pitch] = len(out)
        out.append(n)
    out.sort(key=lambda n: (n[0], n[2]))
    return out


def _tie_type(element) -> str | None:
    return element.tie.type if element.tie is not None else None


def part_events(flat: stream.Stream):
    """``(onset, duration, pitch, tie_type)`` for every sounding pitch in a flattened part;
    grace notes, rests, unpitched notes and chord symbols (ABC's "Am") are skipped."""
    events = []
    offset_in_flat = flat.elementOffset
    # NOTE: `.elements` is in the order iterating gives (sorted), without an iterator's
    # per-element bookkeeping; `elementOffset` is the offset in `flat` itself.
    for el in flat.elements:
        # NOTE: `isNote` (a class attribute) answers for most elements faster than isinstance.
        if getattr(el, "isNote", False):
            sounding = (el,)
        elif isinstance(el, chord.Chord) and not isinstance(el, harmony.Harmony):
            # NOTE: a chord's ties live on its notes (Chord.tie only mirrors the first note's).
            sounding = el.notes
        else:
            continue
        if el.duration.isGrace:
            continue
        duration = exact(el.duration.quarterLength)
        if duration <= 0:
            continue
        onset = exact(offset_in_flat(el))
        for n in sounding:
            events.append((onset, duration, n.pitch.midi, _tie_type(n)))
    return events


def part_notes(part: stream.Stream) -> list[Note]:
    """The merged notes of a music21 part (or any stream)."""
    return merge_tied(part_events(part.flatten()))


def melody_line(notes: list[Note]) -> tuple[list[Note], int]:
    """The top voice: the highest pitch at each onset, cut short where the next onset starts.
    Returns the line and how many notes were dropped or shortened to make it."""
    by_onset: dict[Fraction, Note] = {}
    for n in notes:
        cur = by_onset.get(n.onset)
        if cur is None or n.pitch > cur.pitch:
            by_onset[n.onset] = n
    line = [by_onset[o] for o in sorted(by_onset)]
    changed = len(notes) - len(line)
    for i in range(len(line) - 1):
        nxt = line[i + 1].onset
        if line[i].end > nxt:
            line[i] = Note(line[i].onset, nxt - line[i].onset, line[i].pitch)
            changed += 1
    return line, changed


def _frac(x: Fraction) -> str:
    return str(Fraction(x))


def content_hash(melody: list[Note]) -> str:
    """SHA-256 over (interval to previous pitch, duration, onset delta) of the melody line, times
    in 24ths of a beat. Independent of transposition and of where the tune starts."""
    tokens = []
    prev = None
    for n in melody:
        interval = 0 if prev is None else n.pitch - prev.pitch
        delta = 0 if prev is None else (n.onset - prev.onset) * GRID_TICKS_PER_BEAT
        tokens.append(f"{interval},{_frac(n.duration * GRID_TICKS_PER_BEAT)},{_frac(delta)}")
        prev = n
    return hashlib.sha256(";".join(tokens).encode()).hexdigest()


def full_hash(tracks: list[list[Note]], reference: list[Note]) -> str:
    """Transposition-invariant hash of every voice (for exact-duplicate detection of polyphony):
    pitches and onsets relative to the first note of ``reference``."""
    if not reference:
        return hashlib.sha256(b"").hexdigest()
    ref_pitch, ref_onset = reference[0].pitch, reference[0].onset
    parts = []
    for track in tracks:
        parts.append(";".join(
            f"{n.pitch - ref_pitch},{_frac(n.onset - ref_onset)},{_frac(n.duration)}" for n in track))
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def split_for(hash_hex: str) -> str:
    """The split a content hash belongs to (90 / 5 / 5)."""
    bucket = int(hash_hex, 16) % 100
    if bucket < TRAIN_BELOW:
        return "train"
    if bucket < VALIDATION_BELOW:
        return "validation"
    return "test"


def variant_group(collection: str, source: str, title: str) -> str | None:
    """Which tunes are settings of one tune: chorales by BWV number without the version suffix
    (``bwv248.9-1`` and ``bwv248.9-s``), folk tunes by title without articles, punctuation and
    "2nd setting"-style tags (O'Neill and Ryan print several settings of many tunes)."""
    if collection in (CHORALE_MELODY, CHORALE_SATB):
        return "bach:" + Path(source).stem.split("-")[0].lower()
    t = title.lower()
    t = re.sub(r"\(.*?\)|\[.*?\]", " ", t)
    t = re.sub(r"\b(\d+(st|nd|rd|th)|first|second|third|fourth|fifth)\s+(setting|version)\b", " ", t)
    t = re.sub(r"\b(setting|version|no\.?)\s*\d+\b", " ", t)
    t = re.sub(r"^\s*(the|a|an)\s+|,\s*(the|a|an)\b", " ", t)  # "The X" and "X, The"
    t = re.sub(r"[^a-z0-9]+", " ", t).strip()
    return "folk:" + t if t else None


def assign_splits(tunes: list[dict]) -> None:
    """Set ``split_key`` (the smallest content hash of the tune's variant group, so every setting
    of a tune, and a chorale's soprano and SATB versions, share it) and ``split``."""
    smallest: dict[str, str] = {}
    for tune in tunes:
        group = (variant_group(tune["collection"], tune["source"], tune["title"])
                 or "hash:" + tune["content_hash"])
        tune["variant_group"] = group
        smallest[group] = min(smallest.get(group, tune["content_hash"]), tune["content_hash"])
    for tune in tunes:
        tune["split_key"] = smallest[tune["variant_group"]]
        tune["split"] = split_for(tune["split_key"])


# ----------------------------------------------------------------------------------------------
# Standard MIDI writer


@dataclass
class Meta:
    """Conductor-track events, times in beats from the start of the score (before the lead)."""

    title: str = ""
    #: (offset, numerator, denominator)
    time_signatures: list = field(default_factory=list)
    #: (offset, sharps, is_minor)
    key_signatures: list = field(default_factory=list)
    #: (offset, quarter-note BPM)
    tempos: list = field(default_factory=list)


def _vlq(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _meta(kind: int, data: bytes) -> bytes:
    return bytes([0xFF, kind]) + _vlq(len(data)) + data


def _track_chunk(events: list[tuple[int, int, bytes]]) -> bytes:
    """``events`` are (tick, order, bytes); order breaks ties: meta, then note-off, then note-on."""
    body = bytearray()
    now = 0
    for tick, _, data in sorted(events, key=lambda e: (e[0], e[1])):
        body += _vlq(tick - now) + data
        now = tick
    body += _vlq(0) + _meta(0x2F, b"")
    return b"MTrk" + len(body).to_bytes(4, "big") + bytes(body)


def to_tick(beats: Fraction) -> tuple[int, bool]:
    """Ticks for a time in beats, and whether it was exact at PPQ."""
    exact = beats * PPQ
    return round(exact), exact.denominator == 1


class GridStats(NamedTuple):
    """How many written notes (onset or end) are off a grid."""

    #: off the encoder's 24-ticks-per-beat grid
    off_grid_24: int
    #: off a coarser 12-ticks-per-beat grid (32nd notes and 16th triplets fall off it)
    off_grid_12: int
    #: not exact at PPQ, so rounded to the nearest tick (quintuplets of 32nds, nonuplets, ...)
    rounded_to_tick: int


def write_midi(tracks: list[tuple[str, list[Note]]], meta: Meta, lead: Fraction = Fraction(0)) -> tuple[bytes, GridStats]:
    """Encode a format-1 SMF: track 0 is the conductor (title, time and key signatures, tempo),
    then one track per part on its own channel. Notes are shifted by ``lead`` beats so a pickup
    sits at the end of a silent first bar (bar lines stay where the time signature says).
    Returns the bytes and grid statistics of the notes."""

    def meta_tick(offset: Fraction) -> int:
        return to_tick(offset + lead if offset > 0 else Fraction(0))[0]

    conductor = [(0, 0, _meta(0x03, meta.title.encode("utf-8")[:127]))]
    for offset, num, den in meta.time_signatures:
        if den <= 0 or den & (den - 1) or not 0 < num < 256:
            continue  # not expressible in SMF
        compound = num % 3 == 0 and num > 3
        clocks = (96 // den) * (3 if compound else 1)
        conductor.append((meta_tick(offset), 0, _meta(0x58, bytes([num, den.bit_length() - 1, min(clocks, 255), 8]))))
    for offset, sharps, minor in meta.key_signatures:
        if -7 <= sharps <= 7:
            conductor.append((meta_tick(offset), 0, _meta(0x59, bytes([sharps & 0xFF, 1 if minor else 0]))))
    for offset, bpm in meta.tempos:
        if bpm and bpm > 0:
            us = max(1, min(0xFFFFFF, round(60_000_000 / bpm)))
            conductor.append((meta_tick(offset), 0, _meta(0x51, us.to_bytes(3, "big"))))

    chunks = [_track_chunk(conductor)]
    rounded = off24 = off12 = 0
    step24, step12 = PPQ // 24, PPQ // 12
    for channel, (name, notes) in enumerate(tracks):
        channel &= 0x0F
        events = [(0, 0, _meta(0x03, name.encode("utf-8")[:127]))]
        for n in notes:
            on, on_exact = to_tick(n.onset + lead)
            off, off_exact = to_tick(n.end + lead)
            if on_exact and off_exact:
                off24 += bool(on % step24 or off % step24)
                off12 += bool(on % step12 or off % step12)
            else:
                rounded += 1
                off24 += 1
                off12 += 1
            off = max(off, on + 1)
            events.append((on, 2, bytes([0x90 | channel, n.pitch, VELOCITY])))
            events.append((off, 1, bytes([0x80 | channel, n.pitch, 0])))
        chunks.append(_track_chunk(events))
    header = b"MThd" + (6).to_bytes(4, "big") + (1).to_bytes(2, "big") + len(chunks).to_bytes(2, "big") + PPQ.to_bytes(2, "big")
    return header + b"".join(chunks), GridStats(off24, off12, rounded)


# ----------------------------------------------------------------------------------------------
# music21 scores -> tunes


def placed(container: stream.Stream, classes) -> list[tuple[Fraction, object]]:
    """(offset, element) for ``classes`` directly in a part or score and in its measures.

    NOTE: not ``flatten()``: music21's ABC import puts one TimeSignature object into two measures
    of some tunes (~5% of O'Neill's), and a flattened stream then keeps only its later offset,
    losing the tune's opening meter. Each measure's own offset for the element is used here.
    """
    out = [(exact(container.elementOffset(el)), el) for el in container.getElementsByClass(classes)]
    for m in container.getElementsByClass(stream.Measure):
        base = exact(container.elementOffset(m))
        out += [(base + exact(m.elementOffset(el)), el) for el in m.getElementsByClass(classes)]
    out.sort(key=lambda item: _time_key(item[0]))
    return out


def score_meta(score: stream.Score, ref: stream.Stream, title: str) -> Meta:
    """Time signatures and keys from the reference part, tempo marks from any part."""
    meta = Meta(title=title)
    for offset, ts in placed(ref, meter.TimeSignature):
        item = (offset, ts.numerator, ts.denominator)
        if not meta.time_signatures or meta.time_signatures[-1][1:] != item[1:]:
            meta.time_signatures.append(item)
    for offset, ks in placed(ref, key.KeySignature):
        minor = isinstance(ks, key.Key) and ks.mode == "minor"
        item = (offset, ks.sharps, minor)
        if not meta.key_signatures or meta.key_signatures[-1][1:] != item[1:]:
            meta.key_signatures.append(item)
    marks = placed(score, tempo.MetronomeMark)
    for part in score.parts:
        marks += placed(part, tempo.MetronomeMark)
    seen = set()
    for offset, mm in sorted(marks, key=lambda item: _time_key(item[0])):
        bpm = mm.getQuarterBPM()
        if bpm and offset not in seen:
            seen.add(offset)
            meta.tempos.append((offset, float(bpm)))
    return meta


def pickup_lead(ref: stream.Stream) -> Fraction:
    """Beats of silence to put before the tune so a pickup bar ends on a bar line."""
    measures = ref.getElementsByClass(stream.Measure)
    if not measures:
        return Fraction(0)
    m0 = measures[0]
    if m0.paddingLeft:
        return Fraction(m0.paddingLeft)
    bar = Fraction(m0.barDuration.quarterLength)
    length = Fraction(m0.duration.quarterLength)
    if m0.number == 0 and 0 < length < bar:
        return bar - length
    return Fraction(0)


def slug(text: str, limit: int = 48) -> str:
    text = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()
    return text[:limit].strip("-") or "untitled"


def _skip(collection, source, index, name, reason, detail=None) -> dict:
    """A tune left out: ``reason`` is a short category (summed in summary.json), ``detail`` says more."""
    return {"collection": collection, "source": source, "index": index, "name": name,
            "reason": reason, "detail": detail}


def _tune(collection, source, index, name, title, tracks, melody, lead, meta, polyphonic, reduced):
    midi, grid = write_midi(tracks, meta, lead)
    all_notes = [n for _, notes in tracks for n in notes]
    return {
        "collection": collection,
        "source": source,
        "index": index,
        "name": name,
        "title": title,
        "polyphonic": polyphonic,
        "parts": [part for part, _ in tracks],
        "notes": len(all_notes),
        "beats": float(max(n.end for n in all_notes)),
        "lead_beats": float(lead),
        "content_hash": content_hash(melody),
        "full_hash": full_hash([notes for _, notes in tracks], melody),
        "time_signature": (f"{meta.time_signatures[0][1]}/{meta.time_signatures[0][2]}"
                           if meta.time_signatures else None),
        "tempo_bpm": meta.tempos[0][1] if meta.tempos else None,
        **grid._asdict(),
        "melody_notes_reduced": reduced,
        "midi": midi,
    }


def folk_tunes(collection: str, source: str, parsed) -> tuple[list[dict], list[dict]]:
    """Tunes from one ABC file (a Score or an Opus of Scores): the first part's top voice."""
    scores = list(parsed.scores) if isinstance(parsed, stream.Opus) else [parsed]
    stem = Path(source).stem
    tunes, skipped = [], []
    for index, score in enumerate(scores):
        md = score.metadata
        title = (md.title if md and md.title else "") or stem
        number = str(md.number) if md and md.number is not None else str(index + 1)
        name = stem if len(scores) == 1 else f"{stem}_{number}-{slug(title)}"
        parts = list(score.parts) or [score]
        ref = parts[0]
        flat = ref.flatten()
        line, reduced = melody_line(merge_tied(part_events(flat)))
        if not line:
            if len(parts) > 1:
                # NOTE: music21 9.1 turns each interleaved V: block of a multi-voice ABC tune into
                # its own part, so the voices cannot be told apart reliably; skip these few.
                skipped.append(_skip(collection, source, index, name, "multi-voice ABC",
                                     f"first of {len(parts)} parts (one per V: block) is empty"))
            else:
                skipped.append(_skip(collection, source, index, name, "no notes"))
            continue
        if len(parts) > 1:
            reduced += sum(len(part_events(p.flatten())) for p in parts[1:])
        meta = score_meta(score, ref, title)
        tunes.append(_tune(collection, source, index, name, title, [("melody", line)], line,
                           pickup_lead(ref), meta, False, reduced))
    return tunes, skipped


def find_satb(score: stream.Score) -> dict[str, stream.Part] | str:
    """The four vocal parts of a chorale by part name ("Soprano", or "Soprano Oboe 1 Violin1"
    where instruments double a voice), or a reason why there aren't exactly four."""
    parts = list(score.parts)
    names = [(p.partName or "").strip().lower() for p in parts]
    if not any(names) and len(parts) == 4:
        return dict(zip(VOICES, parts))
    found = {}
    for voice in VOICES:
        exact = [p for p, n in zip(parts, names) if n == voice]
        prefix = [p for p, n in zip(parts, names) if re.split(r"[\s\d,]+", n)[0] == voice]
        pick = exact or prefix
        if len(pick) != 1:
            return (f"{'no' if not pick else len(pick)} '{voice}' parts "
                    f"(parts: {', '.join(p.partName or '?' for p in parts)})")
        found[voice] = pick[0]
    return found


def chorale_tunes(source: str, score: stream.Score) -> tuple[list[dict], list[dict]]:
    """A chorale's soprano line (melody set) and its four voices (polyphony set)."""
    name = Path(source).stem
    md = score.metadata
    title = (md.title if md and md.title else "") or name
    satb = find_satb(score)
    if isinstance(satb, str):
        return [], [_skip(c, source, 0, name, "not a four-part chorale", satb)
                    for c in (CHORALE_MELODY, CHORALE_SATB)]
    flats = {voice: satb[voice].flatten() for voice in VOICES}
    tracks = [(voice.capitalize(), merge_tied(part_events(flats[voice]))) for voice in VOICES]
    soprano, reduced = melody_line(tracks[0][1])
    if not soprano:
        return [], [_skip(c, source, 0, name, "no notes") for c in (CHORALE_MELODY, CHORALE_SATB)]
    ref = satb["soprano"]
    meta = score_meta(score, ref, title)
    lead = pickup_lead(ref)
    return [
        _tune(CHORALE_MELODY, source, 0, name, title, [("Soprano", soprano)], soprano, lead, meta, False, reduced),
        _tune(CHORALE_SATB, source, 0, name, title, tracks, soprano, lead, meta, True, 0),
    ], []


@contextlib.contextmanager
def no_beaming():
    """Skip music21's beaming (and the stem directions it sets) while importing ABC.

    Beams are engraving only: they change no pitch, onset or duration, yet ``makeBeams`` is about
    two thirds of music21 9.1's ABC import time on this corpus.
    """
    original = stream.Stream.makeBeams
    stream.Stream.makeBeams = lambda self, *args, **kwargs: None if kwargs.get("inPlace") else self
    try:
        yield
    finally:
        stream.Stream.makeBeams = original


def parse_source(path: str):
    # NOTE: forceSource=True neither reads nor writes music21's pickle cache, so a run touches
    # nothing outside --out and does not depend on earlier runs.
    with no_beaming() if path.endswith(".abc") else contextlib.nullcontext():
        return corpus.parse(path, forceSource=True)


def extract_source(task: tuple[str, str]) -> tuple[list[dict], list[dict], float]:
    """Worker: every tune of one corpus file. Never raises; a parse failure becomes a skip."""
    source_set, source = task
    start = time.perf_counter()
    try:
        parsed = parse_source(source)
        if source_set == "bach":
            tunes, skipped = chorale_tunes(source, parsed)
        else:
            tunes, skipped = folk_tunes(source_set, source, parsed)
    except Exception as exc:  # noqa: BLE001 — report every failure, keep going
        collections = (CHORALE_MELODY, CHORALE_SATB) if source_set == "bach" else (source_set,)
        tunes = []
        skipped = [_skip(c, source, None, Path(source).stem, "parse error", f"{type(exc).__name__}: {exc}")
                   for c in collections]
    return tunes, skipped, time.perf_counter() - start


# ----------------------------------------------------------------------------------------------
# Sources, dedup, output


def corpus_root() -> Path:
    """music21's bundled corpus folder (paths in the manifest are relative to it)."""
    return Path(corpus.__file__).resolve().parent


def corpus_sources(source_sets) -> tuple[list[tuple[str, str]], list[dict]]:
    """(source set, corpus-relative path) for every file to read, and files left out on purpose."""
    root = corpus_root()
    sources, excluded = [], []
    for source_set in source_sets:
        if source_set == "bach":
            paths = sorted(Path(p) for p in corpus.getComposer("bach"))
            stems_with_xml = {p.stem for p in paths if p.suffix in (".mxl", ".xml")}
            for p in paths:
                rel = p.relative_to(root).as_posix()
                if p.suffix not in CHORALE_SUFFIXES:
                    continue  # e.g. the Roman-numeral analyses in choraleAnalyses/
                if p.suffix == ".krn" and p.stem in stems_with_xml:
                    for c in (CHORALE_MELODY, CHORALE_SATB):
                        excluded.append(_skip(c, rel, None, p.stem, "Humdrum copy",
                                              "the same chorale is read from its MusicXML file"))
                    continue
                sources.append((source_set, rel))
        else:
            for p in sorted(Path(p) for p in corpus.getCorePaths()):
                if p.parent.name == source_set and p.suffix == ".abc":
                    sources.append((source_set, p.relative_to(root).as_posix()))
    return sources, excluded


def _order(tune: dict) -> tuple:
    return (COLLECTIONS.index(tune["collection"]), tune["source"], tune["index"] or 0)


def dedup(tunes: list[dict]) -> tuple[list[dict], list[dict]]:
    """Drop exact (transposition-invariant) duplicates, keeping the first in collection order:
    melodies by their melody hash across all melody sets, polyphony by the hash of all voices."""
    kept, dropped, first = [], [], {}
    for tune in sorted(tunes, key=_order):
        dup_key = ("poly", tune["full_hash"]) if tune["polyphonic"] else ("melody", tune["content_hash"])
        if dup_key in first:
            orig = first[dup_key]
            dropped.append(_skip(tune["collection"], tune["source"], tune["index"], tune["name"],
                                 "exact duplicate", f"of {orig['collection']}/{orig['name']} ({orig['source']})"))
            continue
        first[dup_key] = tune
        kept.append(tune)
    return kept, dropped


def unique_names(tunes: list[dict]) -> None:
    """Make file names unique within each collection (a suffix, in deterministic order)."""
    used: dict[str, set] = defaultdict(set)
    for tune in tunes:
        base = tune["name"]
        name, k = base, 2
        while name.lower() in used[tune["collection"]]:
            name, k = f"{base}-{k}", k + 1
        used[tune["collection"]].add(name.lower())
        tune["name"] = name


def summarize(tunes: list[dict]) -> dict:
    per = {split: {c: {"tunes": 0, "notes": 0, "beats": 0.0} for c in COLLECTIONS} for split in SPLITS}
    for tune in tunes:
        row = per[tune["split"]][tune["collection"]]
        row["tunes"] += 1
        row["notes"] += tune["notes"]
        row["beats"] += tune["beats"]
    summary = {}
    for split in SPLITS:
        rows = {c: r for c, r in per[split].items() if r["tunes"]}
        total = {k: sum(r[k] for r in rows.values()) for k in ("tunes", "notes", "beats")}
        melody = {k: sum(r[k] for c, r in rows.items() if c != CHORALE_SATB) for k in ("tunes", "notes", "beats")}
        summary[split] = {"total": total, "melody": melody, "polyphony": rows.get(CHORALE_SATB, {"tunes": 0, "notes": 0, "beats": 0.0}),
                          "collections": rows}
    return summary


def write_corpus(out: Path, tunes: list[dict], skipped: list[dict]) -> dict:
    """Dedup, name, split and write the tunes; write manifest.json; return the summary (which
    the caller completes with timings and writes to summary.json)."""
    tunes, dropped = dedup(tunes)
    skipped += dropped
    unique_names(tunes)
    assign_splits(tunes)
    for tune in tunes:
        tune["path"] = f"{tune['split']}/{tune['collection']}/{tune['name']}.mid"

    out.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:  # only what this tool writes, so a re-run leaves no stale tunes
        shutil.rmtree(out / split, ignore_errors=True)
    for tune in tunes:
        path = out / tune["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(tune.pop("midi"))

    keys = ("path", "collection", "name", "title", "source", "index", "split", "polyphonic", "parts",
            "notes", "beats", "lead_beats", "content_hash", "full_hash", "variant_group", "split_key",
            "time_signature", "tempo_bpm",
            "off_grid_24", "off_grid_12", "rounded_to_tick", "melody_notes_reduced")
    manifest = {
        "format_version": FORMAT_VERSION,
        "music21_version": music21.__version__,
        "ppq": PPQ,
        "split_rule": (f"int(split_key, 16) % 100: <{TRAIN_BELOW} train, <{VALIDATION_BELOW} validation, else test; "
                       "split_key = smallest content_hash in the tune's variant_group"),
        "tunes": [{k: t[k] for k in keys} for t in tunes],
        "skipped": sorted(skipped, key=lambda s: (s["collection"], s["source"], s["index"] or 0)),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")

    notes = sum(t["notes"] for t in tunes)
    grid = {
        "notes": notes,
        "off_grid_24": sum(t["off_grid_24"] for t in tunes),
        "off_grid_12": sum(t["off_grid_12"] for t in tunes),
        "rounded_to_tick": sum(t["rounded_to_tick"] for t in tunes),
        "melody_notes_reduced": sum(t["melody_notes_reduced"] for t in tunes),
    }
    grid["off_grid_24_pct"] = round(100 * grid["off_grid_24"] / max(notes, 1), 3)
    grid["off_grid_12_pct"] = round(100 * grid["off_grid_12"] / max(notes, 1), 3)
    summary = {
        "format_version": FORMAT_VERSION,
        "music21_version": music21.__version__,
        "splits": summarize(tunes),
        "grid": grid,
        "skipped": dict(sorted(Counter(f"{s['collection']}: {s['reason']}" for s in skipped).items())),
    }
    return summary


def run(out: Path, source_sets, workers: int, limit: int | None, quiet: bool) -> dict:
    started = time.perf_counter()
    log = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    sources, skipped = corpus_sources(source_sets)
    if limit is not None:
        per_set = Counter()
        kept = []
        for s in sources:
            if per_set[s[0]] < limit:
                per_set[s[0]] += 1
                kept.append(s)
        sources = kept
    root = corpus_root()
    # Biggest files first so the two workers finish together.
    tasks = sorted(sources, key=lambda t: -(root / t[1]).stat().st_size)
    log(f"music21 {music21.__version__}: {len(tasks)} files from {', '.join(source_sets)}, {workers} worker(s)")

    tunes: list[dict] = []
    parse_s = 0.0
    # NOTE: fork (where there is one) shares the already-imported music21 with the workers.
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
    with ctx.Pool(workers) if workers > 1 else contextlib.nullcontext() as pool:
        results = pool.imap_unordered(extract_source, tasks, chunksize=1) if pool else map(extract_source, tasks)
        for done, (got, skip, secs) in enumerate(results, 1):
            tunes += got
            skipped += skip
            parse_s += secs
            if done % 50 == 0 or done == len(tasks):
                log(f"  [{done}/{len(tasks)}] files, {len(tunes)} tunes, {time.perf_counter() - started:.0f}s")

    summary = write_corpus(out, tunes, skipped)
    summary.update({"files": len(tasks), "workers": workers, "worker_s": round(parse_s, 1),
                    "wall_s": round(time.perf_counter() - started, 1)})
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def print_summary(summary: dict) -> None:
    print(f"{'split':<11}{'collection':<20}{'tunes':>7}{'notes':>10}{'beats':>11}")
    for split, data in summary["splits"].items():
        for c, r in data["collections"].items():
            print(f"{split:<11}{c:<20}{r['tunes']:>7}{r['notes']:>10}{r['beats']:>11.0f}")
        t = data["total"]
        print(f"{split:<11}{'(all)':<20}{t['tunes']:>7}{t['notes']:>10}{t['beats']:>11.0f}")
    g = summary["grid"]
    print(f"notes off the 24-tick grid: {g['off_grid_24']} ({g['off_grid_24_pct']}%), "
          f"off a 12-tick grid: {g['off_grid_12']} ({g['off_grid_12_pct']}%), rounded to a tick: {g['rounded_to_tick']}")
    for reason, n in sorted(summary["skipped"].items()):
        print(f"skipped {n:>4}  {reason}")
    print(f"wall time {summary['wall_s']}s ({summary['workers']} workers, {summary['worker_s']}s in workers)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder (train/, validation/, test/, manifest.json, summary.json)")
    parser.add_argument("--collections", default=",".join(SOURCE_SETS),
                        help=f"comma-separated subset of {','.join(SOURCE_SETS)} (default: all)")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="parallel workers (default: min(2, CPUs))")
    parser.add_argument("--limit", type=int, default=None, help="read at most N files per collection (smoke tests)")
    parser.add_argument("--quiet", action="store_true", help="print only the summary")
    args = parser.parse_args(argv)
    source_sets = [s.strip() for s in args.collections.split(",") if s.strip()]
    unknown = [s for s in source_sets if s not in SOURCE_SETS]
    if unknown:
        parser.error(f"unknown collection(s) {unknown}; allowed: {', '.join(SOURCE_SETS)}")
    summary = run(args.out, source_sets, max(1, args.workers), args.limit, args.quiet)
    print_summary(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
