"""The raw extract contract (docs/contracts.md): families, their canonical columns, types and required columns."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ColumnType(StrEnum):
    TEXT = "text"
    INTEGER = "integer"
    DECIMAL = "decimal"
    DATE = "date"
    TIMESTAMP = "timestamp"
    BOOLEAN = "boolean"

    @property
    def sql(self) -> str:
        return {
            ColumnType.TEXT: "varchar",
            ColumnType.INTEGER: "bigint",
            ColumnType.DECIMAL: "decimal(18, 4)",
            ColumnType.DATE: "date",
            ColumnType.TIMESTAMP: "timestamp",
            ColumnType.BOOLEAN: "boolean",
        }[self]


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType = ColumnType.TEXT
    required: bool = False


@dataclass(frozen=True)
class Family:
    """One family of extracts: every file under ``<raw_dir>/<name>/<source_system>/`` loads into raw.<name>."""

    name: str
    description: str
    columns: tuple[Column, ...]
    # Freshness: a new file of this family is expected at least this often (a daily extract, with a
    # 12-hour grace; weekly for slowly changing reference data). Older than that, the freshness check warns.
    # None: files come when they come (erasure requests), no freshness check.
    fresh_within_hours: int | None = 36

    @property
    def required_columns(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns if column.required)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)


# Short names for the tables below.
T, INT, D, DT, TS, B = (
    ColumnType.TEXT,
    ColumnType.INTEGER,
    ColumnType.DECIMAL,
    ColumnType.DATE,
    ColumnType.TIMESTAMP,
    ColumnType.BOOLEAN,
)


def _columns(*specs: tuple[str, ColumnType] | tuple[str, ColumnType, bool]) -> tuple[Column, ...]:
    return tuple(Column(*spec) for spec in specs)


FAMILIES: tuple[Family, ...] = (
    Family(
        "customers",
        "Customer records as each source system knows them.",
        _columns(
            ("source_customer_id", T, True),
            ("full_name", T),
            ("document_id", T),
            ("email", T),
            ("phone", T),
            ("birth_date", DT),
            ("city", T),
            ("state", T),
            ("postal_code", T),
            ("address", T),
            ("loyalty_id", T),
            ("created_at", TS),
            ("updated_at", TS),
        ),
    ),
    Family(
        "service_interactions",
        "Service contacts on any channel, typed compliment / information / complaint / suggestion.",
        _columns(
            ("interaction_id", T, True),
            ("source_customer_id", T, True),
            ("occurred_at", TS, True),
            ("channel", T, True),
            ("interaction_type", T, True),
            ("reason", T),
            ("handled_by", T),
            ("duration_seconds", INT),
            ("is_resolved", B),
            ("resolved_at", TS),
        ),
    ),
    Family(
        "purchases",
        "Orders and returns (negative amount) at own stores, partner stores and e-commerce.",
        _columns(
            ("order_id", T, True),
            ("source_customer_id", T, True),
            ("purchased_at", TS, True),
            ("amount", D, True),
            ("product_id", T),
            ("product_type", T),
            ("quantity", INT),
            ("unit_cost", D),
            ("cost", D),
            ("store_type", T),
            ("store_id", T),
        ),
    ),
    Family(
        "campaigns",
        "Marketing campaigns by media.",
        _columns(
            ("campaign_id", T, True),
            ("name", T),
            ("media", T, True),
            ("objective", T),
            ("product_type", T),
            ("start_date", DT),
            ("end_date", DT),
            ("cost_per_contact", D),
            ("subject", T),
            ("message", T),
            ("planned_control_share", D),
        ),
        fresh_within_hours=7 * 24 + 12,
    ),
    Family(
        "campaign_contacts",
        "One contact of a customer by a campaign, with the response.",
        _columns(
            ("campaign_id", T, True),
            ("source_customer_id", T, True),
            ("contacted_at", TS, True),
            ("is_control", B),
            ("responded_at", TS),
            ("response", T),
            ("order_id", T),
        ),
    ),
    Family(
        "consents",
        "Consent statements per customer and channel (opt-in / opt-out).",
        _columns(
            ("source_customer_id", T, True),
            ("channel", T, True),
            ("status", T, True),
            ("recorded_at", TS, True),
            ("legal_basis", T),
        ),
    ),
    Family(
        "products",
        "The product catalogue: type, family, list price and unit cost.",
        _columns(
            ("product_id", T, True),
            ("product_type", T),
            ("family", T),
            ("name", T),
            ("list_price", D),
            ("unit_cost", D),
        ),
        fresh_within_hours=7 * 24 + 12,
    ),
    Family(
        "erasure_requests",
        "Requests to erase a person (LGPD Art. 18): a request id and at least one key naming them - a source "
        "system with its customer id, a CPF/CNPJ, an e-mail or a phone (docs/privacy.md).",
        _columns(
            ("request_id", T, True),
            ("source_system", T),
            ("source_customer_id", T),
            ("document_id", T),
            ("email", T),
            ("phone", T),
            ("requested_at", TS, True),
            ("legal_basis", T),
        ),
        fresh_within_hours=None,
    ),
)

FAMILIES_BY_NAME: dict[str, Family] = {family.name: family for family in FAMILIES}

# Lineage columns every raw row carries, after the canonical columns.
LINEAGE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("_source_system", "varchar"),
    ("_source_file", "varchar"),
    ("_file_hash", "varchar"),
    ("_row_number", "bigint"),
    ("_loaded_at", "timestamp"),
)
