"""Every knob of customer360 in one place (docs/architecture.md).

Each setting is read from the environment variable ``C360_<NAME>`` when `Settings.load` is called,
never at import time; an explicit override (Dagster resource config, a test) wins over the environment.
Relative paths are resolved against the current working directory at load time, so that dbt, which runs
in ``dbt/``, receives the same absolute locations.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveInt,
    ValidationError,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from dagster_project.paths import IDENTITY_MODEL

ENV_PREFIX = "C360_"


# The repeat-purchase models lib/clv.py fits (lib/lifetimes_fitters.py holds a lifetimes class for each).
ClvModel = Literal["bgnbd", "paretonbd", "mbgnbd"]
CLV_MODELS: tuple[str, ...] = get_args(ClvModel)


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the variable."""


def _lower_word(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


def _empty_is_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


ResolvedPath = Annotated[Path, AfterValidator(lambda path: path.expanduser().resolve())]
Share = Annotated[float, Field(ge=0.0, le=1.0)]
Word = Annotated[str, BeforeValidator(lambda value: value.strip() if isinstance(value, str) else value)]


def _memory_size(size: str) -> str:
    if not re.fullmatch(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", size, flags=re.IGNORECASE):
        raise ValueError("must be a size such as 2GB or 1536MiB")
    return size


MemorySize = Annotated[Word, AfterValidator(_memory_size)]


def _spark_conf(text: str) -> str:
    for pair in text.split():
        key, equals, value = pair.partition("=")
        if not key.startswith("spark.") or not equals or not value:
            raise ValueError(f"{pair!r} is not a spark.<key>=<value> pair")
    return text


class Settings(BaseSettings):
    """Every knob of customer360, each from ``C360_<NAME>`` (or an override), else its default. A value that
    cannot be used is an error naming its variable (SettingsError), never silently changed."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, extra="forbid", validate_default=True
    )

    raw_dir: ResolvedPath = Field(
        Path("data/raw"), description="Folder of the raw extracts: <family>/<source_system>/<file>."
    )
    warehouse: ResolvedPath = Field(
        Path("data/warehouse.duckdb"), description="The DuckDB warehouse file the pipeline writes."
    )
    export_dir: ResolvedPath = Field(
        Path("exports"), description="Where segment exports are written: <export_dir>/<as_of>/."
    )
    retention_days: NonNegativeInt = Field(
        180,
        description="Export folders (the newest excepted), validation reports, gate log rows and Dagster runs "
        "older than this many days are removed by the daily run (logged in raw._retention_log); 0: kept.",
    )
    serving: ResolvedPath = Field(
        Path("data/serving.duckdb"), description="The published file BI tools read."
    )
    portal_port: Annotated[int, Field(ge=1, le=65535)] = Field(
        8360, description="The port of the download page (make portal), on 127.0.0.1."
    )
    portal_users: ResolvedPath = Field(
        Path("data/portal/users.json"),
        description="The download page's users: names, password hashes (argon2) and the segments each may take.",
    )
    portal_audit_log: ResolvedPath = Field(
        Path("data/portal/audit.jsonl"),
        description="Every login and download of the download page, one JSON line each (never a file's contents).",
    )
    as_of: Annotated[date | None, BeforeValidator(_empty_is_none)] = Field(
        None, description="Observation end (YYYY-MM-DD); empty = latest event date loaded."
    )
    clv_model: Annotated[ClvModel, BeforeValidator(_lower_word)] = Field(
        "bgnbd", description="Repeat-purchase model: bgnbd, paretonbd or mbgnbd."
    )
    clv_time_unit: Annotated[Literal["day", "week"], BeforeValidator(_lower_word)] = Field(
        "week", description="Time unit of the CLV models: day or week."
    )
    clv_holdout: PositiveInt = Field(26, description="Backtest holdout length, in CLV time units.")
    clv_horizon: PositiveInt = Field(52, description="CLV prediction horizon, in CLV time units.")
    clv_min_repeat_buyers: PositiveInt = Field(
        30,
        description="Fewest repeat buyers (customers with two or more purchase days and positive spend) the CLV "
        "models are fitted on; below it CLV is not computed this run (clv_status says why) and everything else "
        "is built.",
    )
    discount_rate: NonNegativeFloat = Field(0.10, description="Annual discount rate for CLV.")
    default_margin: Share = Field(0.30, description="Margin used where product or purchase cost is unknown.")
    max_order_amount: NonNegativeFloat = Field(
        1_000_000.0, description="Largest plausible order amount (gates)."
    )
    identity_max_records_per_key: PositiveInt = Field(
        10,
        description="A match key shared by more source records than this is blocked as an over-merge risk.",
    )
    identity_model: Annotated[ResolvedPath | None, BeforeValidator(_empty_is_none)] = Field(
        IDENTITY_MODEL,
        description="The probabilistic identity model (Splink's JSON) runs predict with: the committed "
        "identity/model.json unless set (make train-identity writes one); empty: exact keys only.",
    )
    identity_match_probability: Share = Field(
        0.999,
        description="A record pair the probabilistic pass scores at least this likely to be one person links "
        "(docs/identity.md: chosen by measurement).",
    )
    identity_review_probability: Share = Field(
        0.5,
        description="Pairs from this probability up to C360_IDENTITY_MATCH_PROBABILITY wait in "
        "marts.identity_review_queue for a data steward.",
    )
    identity_max_probabilistic_clusters: PositiveInt = Field(
        2,
        description="A record whose probabilistic links reach records of more than this many existing "
        "customers links to none (an over-merge risk, reported).",
    )
    identity_truth: Annotated[ResolvedPath | None, BeforeValidator(_empty_is_none)] = Field(
        None,
        description="Truth file (source_system, source_customer_id, person_id) to score matching against; "
        "empty = <raw_dir>/../truth/identity.csv when it exists.",
    )
    rfm_window_days: NonNegativeInt = Field(
        0, description="RFM over the last N days to as_of; 0 = all history."
    )
    value_window_months: PositiveInt = Field(
        12, description="Trailing window of the value columns (customer_value, customer_360), in months."
    )
    service_style_human_share: Share = Field(
        0.70,
        description="customer_360.service_style is human when agents handled at least this share of the "
        "customer's service contacts.",
    )
    service_style_self_service_share: Share = Field(
        0.30,
        description="... and self_service when agents handled at most this share (else mixed); below the human "
        "share.",
    )
    most_valuable_share: Share = Field(
        0.20, description="Share of customers with profit >= 0 tiered most_valuable."
    )
    most_growable_share: Share = Field(
        0.20, description="Share of the remaining customers tiered most_growable."
    )
    attribution_days: PositiveInt = Field(
        30,
        description="A campaign converts a customer who buys (any channel or store) within N days after the "
        "contact date.",
    )
    service_attribution_days: PositiveInt = Field(
        14, description="Sales attributed to a service contact: within N days after it."
    )
    promotions_skip_open_complaints: bool = Field(
        True,
        description="Promotional segments leave out customers with an open complaint (service recovery first); "
        "false turns the rule off.",
    )
    contact_cooldown_days: NonNegativeInt = Field(
        14,
        description="No offer to a customer a campaign contacted in the last N days (customer_next_best_offer).",
    )
    offer_holdout_share: Share = Field(
        0.10,
        description="Share of customers held out of the offers each month (by a hash of customer and month), so "
        "the next period can measure what the offers brought.",
    )
    offer_training_max_contacts: PositiveInt = Field(
        300_000,
        description="The uplift model learns on every past campaign member up to this many; above, on a hash "
        "sample: every control-group member up to half of it, the contacted the rest.",
    )
    service_desk_recent_days: PositiveInt = Field(
        30,
        description="The service desk's offer list (service_desk_offers) holds the customers with a service "
        "contact in the last N days or an open complaint.",
    )
    schedule_cron: Word = Field(
        "0 6 * * *", description="When the daily schedule materializes everything (cron)."
    )
    schedule_timezone: Word = Field("America/Sao_Paulo", description="Timezone of C360_SCHEDULE_CRON.")
    duckdb_memory_limit: MemorySize = Field(
        "3GB",
        description="Most memory DuckDB may take in each process of a run (ours and dbt's); past it, DuckDB "
        "spills to disk beside the warehouse. A size such as 2GB or 1536MiB.",
    )
    engine: Annotated[Literal["duckdb", "spark"], BeforeValidator(_lower_word)] = Field(
        "duckdb",
        description="What runs the dbt models: duckdb (in the warehouse file) or spark (Apache Spark through "
        "Spark Connect; docs/spark.md). Ingest, the Python steps, the gates, the exports and the serving file "
        "work on the warehouse file either way.",
    )
    spark_remote: Annotated[str | None, BeforeValidator(_empty_is_none)] = Field(
        None,
        description="The Spark Connect address of a cluster (sc://host:15002/;token=...). Empty: the run starts "
        "a Spark Connect server of its own on C360_SPARK_MASTER.",
    )
    spark_master: Word = Field(
        "local[2]",
        description="The master of the run's own Spark server: local[N] (N cores of this machine), or a "
        "cluster's (spark://host:7077, yarn, k8s://...).",
    )
    spark_dir: Annotated[ResolvedPath | None, BeforeValidator(_empty_is_none)] = Field(
        None,
        description="Where the run's own Spark server keeps its tables and catalog (a Derby metastore). Empty: "
        "beside the warehouse, <warehouse>_spark/.",
    )
    spark_driver_memory: MemorySize = Field(
        "4GB", description="Memory of the run's own Spark server (its driver JVM), e.g. 4GB."
    )
    spark_conf: Annotated[Word, AfterValidator(_spark_conf)] = Field(
        "",
        description="More Spark configuration for the run's own server: key=value pairs separated by spaces "
        "(spark.ui.enabled=true spark.executor.memory=8g).",
    )
    max_quarantine_share: Share = Field(
        0.05,
        description="Largest share of a file's rows that may be quarantined before the file is rejected.",
    )

    @model_validator(mode="after")
    def _identity_probabilities_in_order(self) -> Settings:
        if self.identity_review_probability > self.identity_match_probability:
            raise ValueError(
                f"{env_name('identity_review_probability')} ({self.identity_review_probability}) must not be "
                f"above {env_name('identity_match_probability')} ({self.identity_match_probability})"
            )
        return self

    @model_validator(mode="after")
    def _service_style_shares_in_order(self) -> Settings:
        if self.service_style_self_service_share >= self.service_style_human_share:
            raise ValueError(
                f"{env_name('service_style_self_service_share')} ({self.service_style_self_service_share}) must be "
                f"below {env_name('service_style_human_share')} ({self.service_style_human_share})"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Overrides, then the C360_ variables of the process (or of the mapping Settings.load was given)."""
        given = _GIVEN_ENVIRONMENT.get()
        return (init_settings, env_settings if given is None else _Variables(settings_cls, given))

    @classmethod
    def load(
        cls, overrides: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Read every knob: override, else ``C360_<NAME>`` (of `environ` if given, else the process's), else
        the default."""
        overrides = dict(overrides or {})
        unknown = set(overrides) - set(cls.model_fields)
        if unknown:
            raise SettingsError(f"unknown setting(s) {sorted(unknown)}; known: {sorted(cls.model_fields)}")
        with _given_environment(environ):
            try:
                return cls(**overrides)  # type: ignore[arg-type]  # texts, parsed by pydantic
            except ValidationError as error:
                raise _named(error, overrides, environ) from None

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
            "service_style_human_share": self.service_style_human_share,
            "service_style_self_service_share": self.service_style_self_service_share,
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

    def build_inputs(self) -> dict[str, object]:
        """What a dbt build's result depends on besides the code (lib/dbt_builds.fingerprint): the dbt vars, and
        the probabilistic identity pass's model and settings, whose links the identity graph reads."""
        return {**self.dbt_vars(), "identity_links": self.identity_links_fingerprint(), "engine": self.engine}

    def identity_links_fingerprint(self) -> str:
        """The probabilistic pass's model file and settings, hashed: what its links depend on."""
        model = (
            self.identity_model.read_bytes() if self.identity_model and self.identity_model.is_file() else b""
        )
        options = f"{self.identity_match_probability}|{self.identity_review_probability}|"
        options += str(self.identity_max_probabilistic_clusters)
        return hashlib.sha256(model + options.encode()).hexdigest()[:16]

    def dbt_environment(self) -> dict[str, str]:
        """The ``C360_*`` variables dbt reads (dbt/profiles.yml): the engine (its target), the warehouse and
        DuckDB's memory limit; the models' settings reach dbt as vars (dbt_vars). On Spark, the address of the
        Spark Connect server is added by lib/spark.py, which starts or finds it."""
        return {
            env_name("engine"): self.engine,
            env_name("warehouse"): str(self.warehouse),
            env_name("duckdb_memory_limit"): self.duckdb_memory_limit,
        }

    @property
    def spark_configuration(self) -> dict[str, str]:
        """C360_SPARK_CONF as a mapping."""
        return dict(pair.split("=", 1) for pair in self.spark_conf.split())

    @property
    def spark_home(self) -> Path:
        """Where the run's own Spark server keeps its tables and catalog."""
        return self.spark_dir or self.warehouse.with_name(self.warehouse.stem + "_spark")


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


_GIVEN_ENVIRONMENT: ContextVar[Mapping[str, str] | None] = ContextVar("given_environment", default=None)


@contextmanager
def _given_environment(environ: Mapping[str, str] | None) -> Iterator[None]:
    token = _GIVEN_ENVIRONMENT.set(environ)
    try:
        yield
    finally:
        _GIVEN_ENVIRONMENT.reset(token)


class _Variables(PydanticBaseSettingsSource):
    """The C360_ variables of a given mapping, in place of the process environment."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.environ = environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.environ.get(env_name(field_name)), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {
            name: self.environ[env_name(name)]
            for name in self.settings_cls.model_fields
            if env_name(name) in self.environ
        }


def _named(
    error: ValidationError, overrides: Mapping[str, str], environ: Mapping[str, str] | None
) -> SettingsError:
    """pydantic's complaint about the first bad value, naming its variable and the text it held."""
    first = error.errors()[0]
    if not first["loc"]:  # a rule between settings (a model validator): its message names them
        return SettingsError(f"settings not valid: {str(first['msg']).removeprefix('Value error, ')}")
    name = str(first["loc"][0])
    variables = os.environ if environ is None else environ
    text = overrides.get(name, variables.get(env_name(name), first.get("input")))
    return SettingsError(f"{env_name(name)}={text!r} is not valid: {first['msg']}")
