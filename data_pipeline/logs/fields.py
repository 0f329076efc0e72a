"""Vectorised reading of entry headers and literal search over a segment's bytes.

`header_fields` finds, for many entries at once, where the level, the logger name and the message
begin, with exactly the rule of `entries.HEADER_RE` (`[LEVEL] name: `, ASCII whitespace). Names
too long for the fixed window are read with the regular expression instead, so the result never
depends on the window.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data_pipeline.logs.entries import BOUNDARY_LENGTH, HEADER_BYTES_RE
from data_pipeline.logs.segments import next_newline, positions_of

_LEVEL_WINDOW = 16
_NAME_WINDOW = 48
_BATCH = 2048  # entries per vectorised step: bounds the temporary arrays (< 1 MB)
_WHITESPACE = np.zeros(256, dtype=bool)
_WHITESPACE[[9, 10, 11, 12, 13, 32]] = True
_LETTER = np.zeros(256, dtype=bool)
_LETTER[list(range(65, 91)) + list(range(97, 123))] = True


@dataclass
class HeaderFields:
    """Positions (in the segment) of each entry's parts; `valid` is False where the first line
    has no readable `[LEVEL] name:` (then the other arrays are meaningless)."""
    valid: np.ndarray
    level_end: np.ndarray     # position of "]"
    name_start: np.ndarray
    name_end: np.ndarray      # position of the ":" ending the name
    message_start: np.ndarray

    def select(self, mask: np.ndarray) -> "HeaderFields":
        return HeaderFields(self.valid[mask], self.level_end[mask], self.name_start[mask],
                            self.name_end[mask], self.message_start[mask])


def gather(data: np.ndarray, positions: np.ndarray, width: int) -> np.ndarray:
    """`width` bytes from each position; past the end of the data reads as b"\\n" (the last line
    of a file may lack its line end, and nothing in a header reaches past one)."""
    indexes = positions[:, None] + np.arange(width)
    window = data[np.minimum(indexes, len(data) - 1)]
    window[indexes >= len(data)] = 10
    return window


def header_fields(data: np.ndarray, starts: np.ndarray) -> HeaderFields:
    """The header fields of the entries starting at `starts` (each a boundary line)."""
    parts = [_header_fields(data, starts[i:i + _BATCH]) for i in range(0, len(starts), _BATCH)]
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return HeaderFields(np.zeros(0, dtype=bool), empty, empty, empty, empty)
    return HeaderFields(*(np.concatenate(arrays) for arrays in zip(*(
        (p.valid, p.level_end, p.name_start, p.name_end, p.message_start) for p in parts))))


def _header_fields(data: np.ndarray, starts: np.ndarray) -> HeaderFields:
    count = len(starts)
    level_start = starts + BOUNDARY_LENGTH
    window = gather(data, level_start, _LEVEL_WINDOW)
    closing = window == ord("]")
    level_length = closing.argmax(axis=1)
    letters = _LETTER[window]
    letter_run = np.where(letters.all(axis=1), _LEVEL_WINDOW, (~letters).argmax(axis=1))
    level_ok = closing.any(axis=1) & (level_length >= 1) & (letter_run == level_length)
    after = level_start + level_length + 1
    level_ok &= gather(data, after, 1)[:, 0] == ord(" ")
    names = after + 1
    window = gather(data, names, _NAME_WINDOW + 2)
    space = _WHITESPACE[window]
    first_space = np.where(space.any(axis=1), space.argmax(axis=1), _NAME_WINDOW + 2)
    following, second = window[:, 1:], np.pad(window[:, 2:], ((0, 0), (0, 1)), constant_values=10)
    line_end = (following == ord("\n")) | ((following == ord("\r")) & (second == ord("\n")))
    colon = (window[:, :-1] == ord(":")) & ((following == ord(" ")) | line_end)
    colon[:, 0] = False  # the name has at least one character
    colon &= np.arange(_NAME_WINDOW + 1) < first_space[:, None]
    found = colon.any(axis=1)
    colon_at = colon.argmax(axis=1)
    # Without a colon, a space inside the window settles it: the name cannot reach past a space.
    decided = found | (first_space <= _NAME_WINDOW + 1)
    name_end = names + colon_at
    message_start = np.where(following[np.arange(count), colon_at] == ord(" "), name_end + 2, name_end + 1)
    fields = HeaderFields(level_ok & found, after - 1, names, name_end, message_start)
    undecided = (level_ok & ~decided) | letters.all(axis=1)  # a name or a level longer than the windows
    for index in np.flatnonzero(undecided):
        _read_with_regex(data, int(starts[index]), index, fields)
    return fields


def _read_with_regex(data: np.ndarray, start: int, index: int, fields: HeaderFields) -> None:
    line = bytes(data[start:next_newline(data, start)]).removesuffix(b"\r")
    match = HEADER_BYTES_RE.match(line)
    fields.valid[index] = bool(match)
    if match:
        fields.level_end[index] = start + match.end(2)
        fields.name_start[index] = start + match.start(3)
        fields.name_end[index] = start + match.end(3)
        fields.message_start[index] = start + match.end()


def equals_at(data: np.ndarray, positions: np.ndarray, literal: bytes) -> np.ndarray:
    """Whether `literal` occurs at each position."""
    if len(positions) == 0:
        return np.zeros(0, dtype=bool)
    return (gather(data, positions, len(literal)) == np.frombuffer(literal, dtype=np.uint8)).all(axis=1)


def find_literal(data: np.ndarray, needle: bytes, ignore_ascii_case: bool, frequencies: np.ndarray) -> np.ndarray:
    """Start positions of every occurrence of `needle` (ASCII letters matching either case).

    One pass over the data for the needle's rarest byte, then each candidate is checked at the
    other offsets, rarest first."""
    span = len(data) - len(needle) + 1
    if span <= 0:
        return np.zeros(0, dtype=np.int64)
    folds = [ignore_ascii_case and _LETTER[byte] for byte in needle]
    targets = [byte | 0x20 if fold else byte for byte, fold in zip(needle, folds)]
    rarity = [frequencies[t] + (frequencies[t & ~0x20] if fold else 0) for t, fold in zip(targets, folds)]
    order = sorted(range(len(needle)), key=rarity.__getitem__)
    anchor = order[0]
    window = data[anchor:anchor + span]
    candidates = positions_of(window, targets[anchor], targets[anchor] & ~0x20 if folds[anchor] else None)
    for offset in order[1:]:
        values = data[candidates + offset]
        if folds[offset]:
            values |= 0x20
        candidates = candidates[values == targets[offset]]
    return candidates
