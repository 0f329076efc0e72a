"""What qa_generation produces, whichever generator made it: themes, question/SQL pairs and the
database's business scope (the block of `db_query_decision_prompt.txt`)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Theme:
    topic_name: str
    description: str
    related_tables: list[str]
    biz_entities: list[str] = field(default_factory=list)
    biz_metrics: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Theme":
        return cls(topic_name=data["topic_name"], description=data.get("description", ""),
                   related_tables=list(data.get("related_tables", [])),
                   biz_entities=list(data.get("biz_entities", [])), biz_metrics=list(data.get("biz_metrics", [])))


@dataclass
class QAPair:
    question: str
    sql: str
    theme: str = ""

    def as_output(self) -> dict:
        return {"question": self.question, "sql": self.sql}


@dataclass
class ScopeItem:
    name: str
    description: str
    fields: list[str] = field(default_factory=list)


@dataclass
class BusinessScope:
    summary: str
    entities: list[ScopeItem] = field(default_factory=list)
    metrics: list[ScopeItem] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "BusinessScope":
        return cls(summary=data["summary"],
                   entities=[ScopeItem(**item) for item in data.get("entities", [])],
                   metrics=[ScopeItem(**item) for item in data.get("metrics", [])])
