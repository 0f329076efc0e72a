"""Identifiers as the task's `.ddl` / `_detail.md` files write them: plain (folded to lower case
when ASCII) or double-quoted, dotted into paths, listed with commas (or 、)."""
from __future__ import annotations

import re


def read_identifier(text: str) -> tuple[str, str]:
    """The leading identifier (plain or double-quoted) and the rest of `text`."""
    text = text.lstrip()
    if text.startswith('"'):
        position, chars = 1, []
        while position < len(text):
            char = text[position]
            if char == '"':
                if text[position + 1:position + 2] == '"':
                    chars.append('"')
                    position += 2
                    continue
                return "".join(chars), text[position + 1:]
            chars.append(char)
            position += 1
        return "".join(chars), ""
    match = re.match(r"[^\s(),.;，]+", text)
    word = match.group(0) if match else ""
    return word.lower() if word.isascii() else word, text[len(word):]


def split_identifier_path(text: str) -> list[str]:
    """`a.b."C.d"` -> ["a", "b", "C.d"]."""
    parts, rest = [], text.strip()
    while rest:
        name, rest = read_identifier(rest)
        parts.append(name)
        rest = rest.strip()
        if not rest.startswith("."):
            break
        rest = rest[1:]
    return parts


def identifier_list(text: str) -> list[str]:
    names, rest = [], text.strip()
    while rest:
        name, rest = read_identifier(rest.replace("\u3001", ","))
        if name:
            names.append(name)
        rest = rest.strip().lstrip(",，").strip()
    return names
