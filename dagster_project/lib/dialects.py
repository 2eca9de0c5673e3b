"""Per-source file dialects, declared in ``<raw_dir>/sources.yml`` (docs/contracts.md).

A source system (the folder name under ``<raw_dir>/<family>/``) with no entry is read as canonical:
UTF-8 CSV, comma separator, ``.`` decimal point, ISO dates, canonical column names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dagster_project.lib.contracts import FAMILIES_BY_NAME

SOURCES_FILE = "sources.yml"
# Encodings DuckDB's CSV reader decodes without extensions.
SUPPORTED_ENCODINGS = ("utf-8", "latin-1", "utf-16")


class DialectError(ValueError):
    """sources.yml cannot be used; the message names the file and the offending entry."""


class SourceDialect(BaseModel):
    """How one source system writes its files."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    encoding: str = "utf-8"
    delimiter: str = ","
    quote: str = '"'
    decimal_separator: Literal[".", ","] = "."
    thousands_separator: Literal["", ".", ",", " "] = ""
    date_formats: tuple[str, ...] = ()
    timestamp_formats: tuple[str, ...] = ()
    # family -> {column name in the source's files -> canonical column name}
    columns: dict[str, dict[str, str]] = Field(default_factory=dict)

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        normalised = value.strip().lower().replace("_", "-")
        aliases = {"utf8": "utf-8", "latin1": "latin-1", "iso-8859-1": "latin-1", "utf16": "utf-16"}
        normalised = aliases.get(normalised, normalised)
        if normalised not in SUPPORTED_ENCODINGS:
            raise ValueError(f"encoding {value!r} is not supported; use one of {SUPPORTED_ENCODINGS}")
        return normalised

    @field_validator("delimiter", "quote")
    @classmethod
    def _single_character(cls, value: str) -> str:
        if len(value) != 1:
            raise ValueError(f"must be a single character, got {value!r}")
        return value

    @field_validator("date_formats", "timestamp_formats", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> SourceDialect:
        if self.thousands_separator == self.decimal_separator:
            raise ValueError("thousands_separator and decimal_separator must differ")
        for family, mapping in self.columns.items():
            if family not in FAMILIES_BY_NAME:
                raise ValueError(f"columns: unknown family {family!r}; known: {sorted(FAMILIES_BY_NAME)}")
            canonical = set(FAMILIES_BY_NAME[family].column_names)
            for source_name, target in mapping.items():
                if target not in canonical:
                    raise ValueError(
                        f"columns.{family}.{source_name}: {target!r} is not a {family} column; "
                        f"known: {sorted(canonical)}"
                    )
        return self

    @property
    def is_canonical_numbers(self) -> bool:
        return self.decimal_separator == "." and self.thousands_separator == ""

    def canonical_name(self, family: str, source_name: str) -> str:
        """The canonical column a source column maps to (headers match case- and space-insensitively)."""
        wanted = _header_key(source_name)
        for mapped_from, target in self.columns.get(family, {}).items():
            if _header_key(mapped_from) == wanted:
                return target
        return wanted


CANONICAL = SourceDialect()


class SourcesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sources: dict[str, SourceDialect] = Field(default_factory=dict)


def _header_key(name: str) -> str:
    return name.strip().lower().replace(" ", "_")


def load_dialects(raw_dir: Path) -> dict[str, SourceDialect]:
    """Read ``<raw_dir>/sources.yml``; no file means every source is canonical."""
    path = raw_dir / SOURCES_FILE
    if not path.exists():
        return {}
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return SourcesFile.model_validate(document).sources
    except yaml.YAMLError as error:
        raise DialectError(f"{path}: not valid YAML: {error}") from error
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in issue['loc'])}: {issue['msg']}" for issue in error.errors()
        )
        raise DialectError(f"{path}: {problems}") from error


def dialect_for(dialects: dict[str, SourceDialect], source_system: str) -> SourceDialect:
    return dialects.get(source_system, CANONICAL)
