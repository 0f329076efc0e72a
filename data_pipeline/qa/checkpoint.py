"""Intermediate results of the LLM generator, kept in the task directory so that a crash loses at
most the themes in flight: the theme plan once it is known, then one file per finished theme.

A run that finds a plan made for the same tables and settings resumes from it and asks the LLM
only for the themes not yet saved. A run that completes every theme removes the directory.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from data_pipeline.qa.model import BusinessScope, QAPair, Theme
from data_pipeline.tasks.directory import write_json_atomic

CHECKPOINT_DIR = "qa_generation_checkpoint"


class ThemeCheckpoint:
    def __init__(self, task_dir: Path, fingerprint: dict):
        self.directory = task_dir / CHECKPOINT_DIR
        self.fingerprint = fingerprint

    def load_plan(self) -> tuple[list[Theme], BusinessScope | None] | None:
        data = self._read("plan.json")
        if not data or data.get("fingerprint") != self.fingerprint:
            return None
        try:
            themes = [Theme.from_dict(item) for item in data["themes"]]
            scope = BusinessScope.from_dict(data["scope"]) if data.get("scope") else None
        except (KeyError, TypeError):
            return None
        return themes, scope

    def save_plan(self, themes: list[Theme], scope: BusinessScope | None) -> None:
        if self.directory.exists():
            shutil.rmtree(self.directory)  # a plan for other tables or settings: start over
        self.directory.mkdir(parents=True)
        write_json_atomic(self.directory / "plan.json", {
            "fingerprint": self.fingerprint, "themes": [t.as_dict() for t in themes],
            "scope": scope.as_dict() if scope else None})

    def load_theme(self, index: int, theme: Theme) -> list[QAPair] | None:
        data = self._read(f"theme_{index:03d}.json")
        if not data or data.get("topic_name") != theme.topic_name:
            return None
        return [QAPair(p["question"], p["sql"], theme.topic_name) for p in data.get("pairs", [])
                if isinstance(p, dict) and isinstance(p.get("question"), str) and isinstance(p.get("sql"), str)]

    def save_theme(self, index: int, theme: Theme, pairs: list[QAPair]) -> None:
        write_json_atomic(self.directory / f"theme_{index:03d}.json",
                          {"topic_name": theme.topic_name, "pairs": [p.as_output() for p in pairs]})

    def clear(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def _read(self, name: str) -> dict | None:
        path = self.directory / name
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None
