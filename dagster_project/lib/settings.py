"""Every knob of customer360 in one place (docs/architecture.md).

Each setting is read from the environment variable ``C360_<NAME>`` when `Settings.load` is called,
never at import time; an explicit override (Dagster resource config, a test) wins over the environment.
Relative paths are resolved against the current working directory at load time, so that dbt, which runs
in ``dbt/``, receives the same absolute locations.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path
from typing import Any

ENV_PREFIX = "C360_"


# The repeat-purchase models of lib/clv.py (TRANSACTION_MODELS), named here so settings need not import lifetimes.
CLV_MODELS = ("bgnbd", "paretonbd", "mbgnbd")


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the variable."""


def _path(text: str) -> Path:
    return Path(text).expanduser().resolve()


def _optional_date(text: str) -> date | None:
    return date.fromisoformat(text) if text.strip() else None


def _time_unit(text: str) -> str:
    unit = text.strip().lower()
    if unit not in {"day", "week"}:
        raise ValueError("must be 'day' or 'week'")
    return unit


def _clv_model(text: str) -> str:
    model = text.strip().lower()
    if model not in CLV_MODELS:
        raise ValueError(f"must be one of {', '.join(CLV_MODELS)}")
    return model


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise ValueError("must be a share between 0 and 1")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError("must be a positive whole number")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _boolean(text: str) -> bool:
    word = text.strip().lower()
    if word in ("true", "1", "yes", "on"):
        return True
    if word in ("false", "0", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _memory_size(text: str) -> str:
    size = text.strip()
    if not re.fullmatch(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", size, flags=re.IGNORECASE):
        raise ValueError("must be a size such as 2GB or 1536MiB")
    return size


@dataclass(frozen=True)
class Knob:
    """One setting: its default (as the text an environment variable would hold), parser and meaning."""

    default: str
    parse: Callable[[str], Any]
    doc: str


KNOBS: dict[str, Knob] = {
    "raw_dir": Knob("data/raw", _path, "Folder of the raw extracts: <family>/<source_system>/<file>."),
    "warehouse": Knob("data/warehouse.duckdb", _path, "The DuckDB warehouse file the pipeline writes."),
    "export_dir": Knob("exports", _path, "Where segment exports are written: <export_dir>/<as_of>/."),
    "serving": Knob("data/serving.duckdb", _path, "The published file BI tools read."),
    "as_of": Knob("", _optional_date, "Observation end (YYYY-MM-DD); empty = latest event date loaded."),
    "clv_model": Knob("bgnbd", _clv_model, "Repeat-purchase model: bgnbd, paretonbd or mbgnbd."),
    "clv_time_unit": Knob("week", _time_unit, "Time unit of the CLV models: day or week."),
    "clv_holdout": Knob("26", _positive_int, "Backtest holdout length, in CLV time units."),
    "clv_horizon": Knob("52", _positive_int, "CLV prediction horizon, in CLV time units."),
    "clv_min_repeat_buyers": Knob(
        "30",
        _positive_int,
        "Fewest repeat buyers (customers with two or more purchase days and positive spend) the CLV models are "
        "fitted on; below it CLV is not computed this run (clv_status says why) and everything else is built.",
    ),
    "discount_rate": Knob("0.10", _non_negative_float, "Annual discount rate for CLV."),
    "default_margin": Knob("0.30", _share, "Margin used where product or purchase cost is unknown."),
    "max_order_amount": Knob("1000000", _non_negative_float, "Largest plausible order amount (gates)."),
    "identity_max_records_per_key": Knob(
        "10",
        _positive_int,
        "A match key shared by more source records than this is blocked as an over-merge risk.",
    ),
    "identity_truth": Knob(
        "",
        lambda text: _path(text) if text.strip() else None,
        "Truth file (source_system, source_customer_id, person_id) to score matching against; "
        "empty = <raw_dir>/../truth/identity.csv when it exists.",
    ),
    "rfm_window_days": Knob(
        "0", lambda text: max(int(text), 0), "RFM over the last N days to as_of; 0 = all history."
    ),
    "value_window_months": Knob("12", _positive_int, "Trailing window of customer_value, in months."),
    "most_valuable_share": Knob("0.20", _share, "Share of customers with profit >= 0 tiered most_valuable."),
    "most_growable_share": Knob("0.20", _share, "Share of the remaining customers tiered most_growable."),
    "attribution_days": Knob(
        "30",
        _positive_int,
        "A campaign converts a customer who buys (any channel or store) within N days after the contact date.",
    ),
    "service_attribution_days": Knob(
        "14", _positive_int, "Sales attributed to a service contact: within N days after it."
    ),
    "promotions_skip_open_complaints": Knob(
        "true",
        _boolean,
        "Promotional segments leave out customers with an open complaint (service recovery first); false "
        "turns the rule off.",
    ),
    "contact_cooldown_days": Knob(
        "14",
        lambda text: max(int(text), 0),
        "No offer to a customer a campaign contacted in the last N days (customer_next_best_offer).",
    ),
    "offer_holdout_share": Knob(
        "0.10",
        _share,
        "Share of customers held out of the offers each month (by a hash of customer and month), so the next "
        "period can measure what the offers brought.",
    ),
    "offer_training_max_contacts": Knob(
        "300000",
        _positive_int,
        "The uplift model learns on every past campaign member up to this many; above, on a hash sample: every "
        "control-group member up to half of it, the contacted the rest.",
    ),
    "service_desk_recent_days": Knob(
        "30",
        _positive_int,
        "The service desk's offer list (service_desk_offers) holds the customers with a service contact in the "
        "last N days or an open complaint.",
    ),
    "schedule_cron": Knob("0 6 * * *", str.strip, "When the daily schedule materializes everything (cron)."),
    "schedule_timezone": Knob("America/Sao_Paulo", str.strip, "Timezone of C360_SCHEDULE_CRON."),
    "duckdb_memory_limit": Knob(
        "3GB",
        _memory_size,
        "Most memory DuckDB may take in each process of a run (ours and dbt's); past it, DuckDB spills to "
        "disk beside the warehouse.",
    ),
    "max_quarantine_share": Knob(
        "0.05", _share, "Largest share of a file's rows that may be quarantined before the file is rejected."
    ),
}


@dataclass(frozen=True)
class Settings:
    raw_dir: Path
    warehouse: Path
    export_dir: Path
    serving: Path
    as_of: date | None
    clv_model: str
    clv_time_unit: str
    clv_holdout: int
    clv_horizon: int
    clv_min_repeat_buyers: int
    discount_rate: float
    default_margin: float
    max_order_amount: float
    identity_max_records_per_key: int
    identity_truth: Path | None
    rfm_window_days: int
    value_window_months: int
    most_valuable_share: float
    most_growable_share: float
    attribution_days: int
    service_attribution_days: int
    promotions_skip_open_complaints: bool
    contact_cooldown_days: int
    offer_holdout_share: float
    offer_training_max_contacts: int
    service_desk_recent_days: int
    schedule_cron: str
    schedule_timezone: str
    duckdb_memory_limit: str
    max_quarantine_share: float

    @classmethod
    def load(
        cls, overrides: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Read every knob: override, else ``C360_<NAME>``, else the default."""
        overrides = dict(overrides or {})
        environ = os.environ if environ is None else environ
        unknown = set(overrides) - set(KNOBS)
        if unknown:
            raise SettingsError(f"unknown setting(s) {sorted(unknown)}; known: {sorted(KNOBS)}")
        values: dict[str, Any] = {}
        for name, knob in KNOBS.items():
            variable = env_name(name)
            text = overrides.get(name, environ.get(variable, knob.default))
            try:
                values[name] = knob.parse(str(text))
            except ValueError as error:
                raise SettingsError(f"{variable}={text!r} is not valid: {error}") from error
        return cls(**values)

    @property
    def identity_truth_file(self) -> Path | None:
        """The truth file to score identity matching against, if any."""
        if self.identity_truth is not None:
            return self.identity_truth
        beside_raw = self.raw_dir.parent / "truth" / "identity.csv"
        return beside_raw if beside_raw.exists() else None

    def dbt_vars(self) -> dict[str, object]:
        """The settings dbt models read with var() (declared, with the same defaults, in dbt_project.yml)."""
        return {
            "as_of": self.as_of.isoformat() if self.as_of else "",
            "identity_max_records_per_key": self.identity_max_records_per_key,
            "rfm_window_days": self.rfm_window_days,
            "value_window_months": self.value_window_months,
            "default_margin": self.default_margin,
            "most_valuable_share": self.most_valuable_share,
            "most_growable_share": self.most_growable_share,
            "clv_time_unit": self.clv_time_unit,
            "clv_holdout": self.clv_holdout,
            "attribution_days": self.attribution_days,
            "service_attribution_days": self.service_attribution_days,
            "contact_cooldown_days": self.contact_cooldown_days,
            "offer_holdout_share": self.offer_holdout_share,
            "offer_training_max_contacts": self.offer_training_max_contacts,
            "service_desk_recent_days": self.service_desk_recent_days,
        }

    def as_environment(self) -> dict[str, str]:
        """The settings as ``C360_*`` variables, for processes such as dbt that read the environment."""
        environment = {}
        for field in fields(self):
            value = getattr(self, field.name)
            environment[env_name(field.name)] = "" if value is None else str(value)
        return environment


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()
