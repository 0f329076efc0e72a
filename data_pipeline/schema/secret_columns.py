"""Which columns hold secrets: their values are never sampled, so never reach a document.

A column is secret when its name contains (case-insensitively) one of SECRET_NAME_PARTS or one
of the operator's extra patterns (`DATA_PIPELINE_MASK_COLUMNS`, e.g. `phone,id_card,email`), or
when its type is binary. A secret column keeps its name, type and comment in every DDL and MD
file; only its values — samples and enum values — are withheld, in the sampler (the source) and
wherever documents are read back from files a user may have uploaded (qa documents, vector
documents).

Matching is by substring on purpose: `user_password_hash`, `api_token_v2` and `pwd2` are caught
without listing every spelling; a false positive only costs a column its example values.
"""
from __future__ import annotations

from dataclasses import dataclass

SECRET_NAME_PARTS = ("password", "passwd", "pwd", "secret", "token", "salt", "hash", "api_key", "apikey",
                     "credential", "private_key")
SECRET_TYPES = frozenset({"bytea"})


@dataclass(frozen=True)
class ColumnMask:
    """The secret-column rule: the built-in name parts plus `extra_patterns` (lower case)."""
    extra_patterns: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings) -> "ColumnMask":
        return cls(tuple(pattern.lower() for pattern in settings.mask_columns if pattern.strip()))

    def hides(self, name: str, data_type: str | None = None) -> bool:
        """Whether the values of column `name` (of type `data_type`, modifiers allowed) are withheld."""
        if data_type and data_type.split("(", 1)[0].strip().lower() in SECRET_TYPES:
            return True
        lowered = name.lower()
        return any(part in lowered for part in SECRET_NAME_PARTS) or \
            any(pattern in lowered for pattern in self.extra_patterns)


BUILTIN_MASK = ColumnMask()
