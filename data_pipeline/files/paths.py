"""Turning a file name from a request into a file inside a task directory, safely.

A name is accepted only as a plain relative path (`x.json`, `vector_bak/x.csv`) whose every
decoding — percent-encoding applied once or several times, Unicode compatibility forms — is still
such a path; anything else (`..`, `%2e%2e%2f`, `%252e%252e%252f`, `．．／`, absolute paths, drive
letters, backslashes, NUL and control characters, hidden names) is refused before the file system
is touched. Uploads name their file with the same rule (`check_file_name`), so whatever an upload
stores can be listed and downloaded. The
resolved path must then still lie inside the task directory, which catches symlinks pointing out.
"""
from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote

from config import PROJECT_ROOT
from data_pipeline.errors import NotFoundError, ValidationError

MAX_NAME_LENGTH = 1024
MAX_SEGMENT_BYTES = 255
_MAX_VARIANTS = 12  # ~4 layers of encoding, each possibly in compatibility forms
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"[A-Za-z]:")


def invalid_path(name: object, reason: str) -> ValidationError:
    shown = repr(name)[:120]
    return ValidationError(f"非法的文件路径 {shown}: {reason}", invalid_params=["file_name"],
                           error_code="INVALID_FILE_PATH")


def check_relative_name(name: object) -> list[str]:
    """The path segments of a safe relative name; ValidationError(INVALID_FILE_PATH) otherwise."""
    _checked_variants(name)
    return name.split("/")


def _checked_variants(name: object) -> list[str]:
    """Every decoding of `name`, each checked to be a plain relative path."""
    if not isinstance(name, str) or not name:
        raise invalid_path(name, "文件名为空")
    if len(name) > MAX_NAME_LENGTH:
        raise invalid_path(name, "文件名过长")
    variants, pending = [name], [name]
    while pending and len(variants) < _MAX_VARIANTS:
        for decoded in _decodings(name, pending.pop()):
            if decoded not in variants:
                variants.append(decoded)
                pending.append(decoded)
    if pending:
        raise invalid_path(name, "编码层数过多")
    for variant in variants:
        _check_variant(name, variant)
    return variants


def _decodings(name: str, text: str) -> list[str]:
    """What `text` could become in a lenient layer: one percent-decoding, compatibility normalisation."""
    try:
        decoded = unquote(text, errors="strict")
    except UnicodeDecodeError:  # e.g. %c0%ae, an overlong "."
        raise invalid_path(name, "包含无效的百分号编码") from None
    return [decoded, unicodedata.normalize("NFKC", text)]


def _check_variant(name: str, variant: str) -> None:
    if _CONTROL.search(variant):
        raise invalid_path(name, "包含控制字符或空字符")
    if "\\" in variant:
        raise invalid_path(name, "包含反斜杠")
    if variant.startswith("/") or _DRIVE.match(variant):
        raise invalid_path(name, "不允许绝对路径")
    for segment in variant.split("/"):
        if segment in ("", ".", ".."):
            raise invalid_path(name, "路径只能由普通的文件名和目录名组成（不允许 . 、.. 或空段）")
        if segment.startswith("."):
            raise invalid_path(name, "不允许隐藏文件（以 . 开头的名称）")
        if len(segment.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES:
            raise invalid_path(name, "文件名过长")


def check_file_name(name: object) -> str:
    """A name for a file directly in a task directory (an upload's): by the rule above, and one
    segment in every decoding (`x／y`, `x%2Fy` included)."""
    if any("/" in variant for variant in _checked_variants(name)):
        raise invalid_path(name, "文件名不能包含路径")
    return name


def resolve_task_file(directory: Path, name: object) -> Path:
    """The regular file `name` denotes inside `directory`, with every symlink resolved.

    ValidationError(INVALID_FILE_PATH) when the name is not a safe relative path or resolves
    outside the directory; NotFoundError(FILE_NOT_FOUND) when there is no such file."""
    segments = check_relative_name(name)
    root = Path(os.path.realpath(directory))
    resolved = Path(os.path.realpath(root.joinpath(*segments)))
    if root not in resolved.parents:
        raise invalid_path(name, "路径位于任务目录之外")
    if not resolved.is_file():
        raise NotFoundError(f"文件不存在: {name[:200]}", invalid_params=["file_name"], error_code="FILE_NOT_FOUND",
                            message="文件不存在")
    return resolved


def display_path(path: Path) -> str:
    """A path as responses show it: `./...` relative to the project root when inside it."""
    absolute = Path(os.path.abspath(path))
    try:
        return "./" + absolute.relative_to(PROJECT_ROOT).as_posix()
    except ValueError:
        return str(absolute)
