"""The probabilistic pass of identity resolution (docs/identity.md): a Fellegi-Sunter model with Splink on DuckDB,
comparing person records on what a store till or a legacy system keeps when it has no e-mail, phone or CPF:
first name and surname, birth date, postal code (CEP), street address, city, and the partial keys (a document
number or a phone's last eight digits one typo away).

A record is one row of a relation with the columns of FEATURES (absent values null); `record_key` names it.
The model's comparisons and blocking rules are here, once: training (`train`: u by random sampling, m by
expectation maximisation, no labels), prediction (`predict`) and the pipeline's pass (`link`: the records of
intermediate.int_identity_person_features compared with the committed model, incrementally, with the guards)
use the same settings.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from dagster_project.lib.warehouse import has_table, scalar, sql_literal, transaction

if TYPE_CHECKING:
    import duckdb
    from splink import SettingsCreator

    from dagster_project.lib.settings import Settings

RECORD_KEY = "record_key"
# What a record holds for the comparisons (text unless said): lower case, accents stripped, blanks trimmed.
FEATURES = {
    "first_name": "the first word of the name",
    "surname": "the last word of the name",
    "birth_date": "the birth date (DATE)",
    "postal_code": "the CEP, eight digits",
    "address": "street and number, normalised",
    "city": "the city",
    "document": "the digits of the document (CPF / CNPJ), valid or not",
    "phone_tail": "the last eight digits of the phone",
}
# Pairs are compared only within a block: records that agree on every expression of one of these rules, one rule
# per way a person's records can still agree when others disagree. A value shared by more than
# MAX_BLOCK_RECORDS records (a birth date at a million customers, a common surname with an initial) says too
# little to compare everyone holding it: that block is left out, and the narrower rules after it take over. So
# the pairs grow with the records, not with their square: measured in docs/identity.md.
BLOCKING_RULES = (
    ("birth_date",),
    (  # the same birth date, or day and month swapped, and the same surname initial
        "year(birth_date)",
        "least(month(birth_date), day(birth_date))",
        "greatest(month(birth_date), day(birth_date))",
        "substr(surname, 1, 1)",
    ),
    ("birth_date", "substr(first_name, 1, 1)"),
    (  # the same birth date and initials, first name and surname possibly swapped
        "birth_date",
        "least(substr(first_name, 1, 1), substr(surname, 1, 1))",
        "greatest(substr(first_name, 1, 1), substr(surname, 1, 1))",
    ),
    ("postal_code",),
    ("surname", "substr(first_name, 1, 1)"),
    ("surname", "first_name", "year(birth_date)"),
    ("first_name", "year(birth_date)"),
    ("surname", "first_name", "city"),
    ("address",),
    ("document",),
    ("phone_tail",),
)
MAX_BLOCK_RECORDS = 10
BLOCK_COLUMNS = tuple(f"block_{index}" for index in range(len(BLOCKING_RULES)))
# Pairs that are the same person without doubt, for the prior (the share of pairs that match).
CERTAIN_RULES = (("document",), ("first_name", "surname", "birth_date"))
# Blocks on which m is estimated by expectation maximisation (each leaves its own columns' m unestimated).
TRAINING_BLOCKS = (("birth_date",), ("postal_code",))
RANDOM_PAIRS = 1_000_000  # pairs sampled to estimate u


def settings() -> SettingsCreator:
    """The model: its comparisons (each with the levels that decide a pair) and blocking rules."""
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    birth_date = cl.CustomComparison(
        output_column_name="birth_date",
        comparison_levels=[
            cll.NullLevel("birth_date"),
            cll.ExactMatchLevel("birth_date"),
            cll.CustomLevel(
                "year(birth_date_l) = year(birth_date_r) and month(birth_date_l) = day(birth_date_r) "
                "and day(birth_date_l) = month(birth_date_r)",
                label_for_charts="day and month swapped",
            ),
            cll.CustomLevel(
                "damerau_levenshtein(birth_date_l::varchar, birth_date_r::varchar) <= 1",
                label_for_charts="one typo apart",
            ),
            cll.AbsoluteDateDifferenceLevel("birth_date", input_is_string=False, threshold=1, metric="year"),
            cll.ElseLevel(),
        ],
    )
    return SettingsCreator(
        unique_id_column_name=RECORD_KEY,
        link_type="dedupe_only",
        blocking_rules_to_generate_predictions=[block_on(column) for column in BLOCK_COLUMNS],
        comparisons=[
            cl.NameComparison("first_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            birth_date,
            cl.ExactMatch("postal_code").configure(term_frequency_adjustments=True),
            cl.LevenshteinAtThresholds("address", [1, 3]),
            cl.ExactMatch("city").configure(term_frequency_adjustments=True),
            cl.DamerauLevenshteinAtThresholds("document", [1]),
            cl.ExactMatch("phone_tail"),
        ],
        retain_intermediate_calculation_columns=False,
    )


def _blocked(
    connection: duckdb.DuckDBPyConnection, relation: str, table: str, extra_columns: str = ""
) -> None:
    """Temp table `table`: the records of SQL `relation` (RECORD_KEY, FEATURES and `extra_columns`) with, per
    blocking rule, the hash of its expressions in BLOCK_COLUMNS (null where one is null, or where more than
    MAX_BLOCK_RECORDS records share it)."""
    hashes = ", ".join(
        f"case when {' and '.join(f'({expression}) is not null' for expression in rule)} "
        f"then hash({', '.join(rule)}) end as {column}"
        for rule, column in zip(BLOCKING_RULES, BLOCK_COLUMNS, strict=True)
    )
    selected = ", ".join([RECORD_KEY, *FEATURES] + ([extra_columns] if extra_columns else []))
    connection.execute(f"create or replace temp table {table} as select {selected}, {hashes} from {relation}")
    for column in BLOCK_COLUMNS:
        _forget_values_held_by_more_than(connection, table, column, MAX_BLOCK_RECORDS)


def _forget_values_held_by_more_than(
    connection: duckdb.DuckDBPyConnection, table: str, column: str, records: int
) -> None:
    """Null `column` of temp table `table` where more than `records` rows hold its value."""
    connection.execute(
        f"update {table} set {column} = null where {column} in (select {column} from {table} "
        f"where {column} is not null group by 1 having count(*) > {int(records)})"
    )


def _with_blocking(model: dict[str, Any], condition: str = "") -> dict[str, Any]:
    """The model blocking on BLOCK_COLUMNS (whatever rules it was saved with), each pair also meeting the SQL
    `condition` on (l., r.) if given."""
    from splink import block_on

    rules = []
    for column in BLOCK_COLUMNS:
        rule = dict(block_on(column).create_blocking_rule_dict("duckdb"))
        if condition:
            rule["blocking_rule"] = f"({rule['blocking_rule']}) and {condition}"
        rules.append(rule)
    return {**copy.deepcopy(model), "blocking_rules_to_generate_predictions": rules}  # Splink edits its model


def _linker(frames: Any, model: dict[str, Any] | SettingsCreator) -> Any:
    """Splink's linker, logging warnings only (it reports every EM iteration and timing at INFO; it names no
    person)."""
    from splink import Linker

    return Linker(frames, model, log_level=logging.WARNING)


def train(connection: duckdb.DuckDBPyConnection, records: str, seed: int = 1) -> dict[str, Any]:
    """The model trained on the records of relation `records` (no labels): the prior from CERTAIN_RULES, u by
    random sampling, m by expectation maximisation on TRAINING_BLOCKS. Returns Splink's model (JSON-able)."""
    from splink import DuckDBAPI, block_on

    _blocked(connection, records, "_training_records")
    linker = _linker(DuckDBAPI(connection=connection).register("_training_records"), settings())
    linker.training.estimate_probability_two_random_records_match(
        [block_on(*rule) for rule in CERTAIN_RULES], recall=0.8
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=RANDOM_PAIRS, seed=seed)
    for block in TRAINING_BLOCKS:
        linker.training.estimate_parameters_using_expectation_maximisation(block_on(*block))
    model = linker.misc.save_model_to_json()
    linker.table_management.delete_tables_created_by_splink_from_db()
    connection.execute("drop table _training_records")
    return model


def predict(
    connection: duckdb.DuckDBPyConnection, records: str, model: dict[str, Any], threshold: float
) -> list[tuple[str, str, float, float]]:
    """The record pairs of relation `records` the model gives a match probability of at least `threshold`:
    record_key_l, record_key_r, match_weight, match_probability."""
    from splink import DuckDBAPI

    _blocked(connection, records, "_predict_records")
    linker = _linker(DuckDBAPI(connection=connection).register("_predict_records"), _with_blocking(model))
    scored = linker.inference.predict(threshold_match_probability=threshold)
    pairs = connection.execute(
        f"select {RECORD_KEY}_l, {RECORD_KEY}_r, match_weight, match_probability from {scored.physical_name}"
    ).fetchall()
    linker.table_management.delete_tables_created_by_splink_from_db()
    connection.execute("drop table _predict_records")
    return pairs


# ------------------------------------------------------------------------------------- the pipeline's pass

FEATURES_RELATION = "intermediate.int_identity_person_features"
LINKS_TABLE = "intermediate.int_identity_probabilistic_links"
STATE_TABLE = "intermediate.identity_probabilistic_state"
CLUSTERS_RELATION = "intermediate.int_identity_clusters"
# The exact pass's keys (int_identity_keys): the columns of FEATURES_RELATION that hold them; the first three
# link two records alone, a phone or a CEP with the surname only records with compatible names.
EXACT_KEYS = ("document_key", "email_key", "loyalty_key", "phone_key", "postal_code_surname")
KEYS_LINKING_ALONE = EXACT_KEYS[:3]
NOT_JOINED_BY_A_KEY = " and ".join(f"not coalesce(l.{key} = r.{key}, false)" for key in KEYS_LINKING_ALONE)
DECISIONS = ("link", "review", "household", "namesake", "capped", "conflicting_document")
# Two people of one household share surname, address, CEP, city and often the phone: evidence a Fellegi-Sunter
# model counts as independent, so their pairs score high. As in the exact pass (compatible names), a pair links
# only if the first names are close (Jaro-Winkler >= 0.88: levels exact, >= 0.92, >= 0.88; or one is missing)
# and the birth dates do not disagree beyond the comparison's levels (equal, day and month swapped, one typo,
# within a year, or missing).
HOUSEHOLD_CONDITION = "(gamma_first_name in (0, 1) or gamma_birth_date = 0)"
# Two people of one name at one CEP (a mother and daughter, say), told apart by their birth dates: a pair in
# which a record has no birth date (WITHOUT_BIRTH_DATE) cannot say which of them it is, however high it scores.
WITHOUT_BIRTH_DATE = "gamma_birth_date = -1"
HISTOGRAM_BINS = 10  # the match-probability histogram of the scored pairs, in tenths


@dataclass(frozen=True)
class LinkOptions:
    """A pair links at `match_probability` or above; from `review_probability` up to it, it waits for a data
    steward; a record whose links reach records of more than `max_clusters` existing clusters links to none."""

    match_probability: float
    review_probability: float
    max_clusters: int
    max_records_per_key: (
        int  # C360_IDENTITY_MAX_RECORDS_PER_KEY: an exact key held by more records is blocked
    )

    @classmethod
    def of(cls, settings: Settings) -> LinkOptions:
        return cls(
            match_probability=settings.identity_match_probability,
            review_probability=settings.identity_review_probability,
            max_clusters=settings.identity_max_probabilistic_clusters,
            max_records_per_key=settings.identity_max_records_per_key,
        )


@dataclass
class LinkRun:
    """What one pass did (counts only: no record is named)."""

    mode: str  # full (every record) or incremental (the records loaded since; possibly none)
    records_compared: int = 0
    pairs_kept: int = 0
    decisions: dict[str, int] = field(default_factory=dict)
    histogram: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def _fingerprint(model: dict[str, Any], options: LinkOptions) -> str:
    return hashlib.sha256(json.dumps([model, asdict(options)], sort_keys=True).encode()).hexdigest()


def ensure_tables(connection: duckdb.DuckDBPyConnection) -> None:
    connection.execute("create schema if not exists intermediate")
    connection.execute(
        f"""
        create table if not exists {LINKS_TABLE} (
            record_key varchar, linked_record_key varchar, match_weight double, match_probability double,
            decision varchar, evidence varchar, linked_at timestamp
        )
        """
    )
    connection.execute(
        f"create table if not exists {STATE_TABLE} (fingerprint varchar, compared_to timestamp, run_at timestamp)"
    )


def forget_links(connection: duckdb.DuckDBPyConnection) -> None:
    """No model: no probabilistic link stands (the next pass with a model compares every record)."""
    ensure_tables(connection)
    with transaction(connection):
        connection.execute(f"delete from {LINKS_TABLE}")
        connection.execute(f"delete from {STATE_TABLE}")


def _evidence_sql(model: dict[str, Any]) -> str:
    """An SQL expression naming, for a scored pair, the level of each comparison that decided it (labels of
    the model's levels, never values): 'first_name: Exact match on first_name; ...'."""
    parts = []
    for comparison in model["comparisons"]:
        name = comparison["output_column_name"]
        levels = [level for level in comparison["comparison_levels"] if not level.get("is_null_level")]
        cases = " ".join(
            f"when {len(levels) - 1 - index} then {sql_literal(level['label_for_charts'])}"
            for index, level in enumerate(levels)
        )
        parts.append(f"{sql_literal(name + ': ')} || case gamma_{name} when -1 then 'missing' {cases} end")
    return " || '; ' || ".join(parts)


def link(
    connection: duckdb.DuckDBPyConnection, model: dict[str, Any], options: LinkOptions, at: datetime
) -> LinkRun:
    """Compare the records of FEATURES_RELATION with the committed model and keep, in LINKS_TABLE, every pair
    of at least options.review_probability with its decision: `link`, `review`, `household` (first names not
    close, or birth dates far apart: HOUSEHOLD_CONDITION), `namesake` (a record has no birth date, and the
    name is held at the CEP by people of two birth dates), `capped` (one side's links reach
    too many existing clusters) or `conflicting_document` (both hold valid documents, and they differ).
    The first pass, and a pass with another model or options, compares every record; later ones compare the
    records loaded since (a new version or a new record) with all, replacing their pairs."""
    from splink import DuckDBAPI

    started = time.perf_counter()
    ensure_tables(connection)
    fingerprint = _fingerprint(model, options)
    state = connection.execute(
        f"select fingerprint, compared_to from {STATE_TABLE} order by run_at desc limit 1"
    ).fetchone()
    full = state is None or state[0] != fingerprint
    compared_to = scalar(connection, f"select max(loaded_at) from {FEATURES_RELATION}")
    changed = "true" if full else "loaded_at > $since"
    since = {} if state is None or full else {"since": state[1]}
    changed_count = scalar(connection, f"select count(*) from {FEATURES_RELATION} where {changed}", since)
    run = LinkRun("full" if full else "incremental", records_compared=changed_count)
    if not (full or changed_count):  # nothing delivered since the last pass: its pairs stand
        with transaction(connection):
            connection.execute(
                f"insert into {STATE_TABLE} values ($fingerprint, $compared_to, $at)",
                {"fingerprint": fingerprint, "compared_to": compared_to, "at": at},
            )
        run.seconds = round(time.perf_counter() - started, 3)
        return run
    # Each record's features, blocks, and the keys that link records alone where they do (held by no more
    # than max_records_per_key records; a key held by more is blocked and links nothing): pairs sharing one
    # are the exact pass's, and are not compared (NOT_JOINED_BY_A_KEY).
    _blocked(connection, FEATURES_RELATION, "_records", ", ".join(["loaded_at", *KEYS_LINKING_ALONE]))
    for key in KEYS_LINKING_ALONE:
        _forget_values_held_by_more_than(connection, "_records", key, options.max_records_per_key)
    model = _with_blocking(model, NOT_JOINED_BY_A_KEY)
    compared = ", ".join([RECORD_KEY, *FEATURES, *KEYS_LINKING_ALONE, *BLOCK_COLUMNS])
    database = DuckDBAPI(connection=connection)
    linker = _linker(database.register(connection.sql(f"select {compared} from _records")), model)
    if changed_count and full:
        scored = linker.inference.predict(threshold_match_probability=options.review_probability)
        pairs = [scored.physical_name]
    elif changed_count:
        for comparison in model["comparisons"]:
            for level in comparison["comparison_levels"]:
                if level.get("tf_adjustment_column"):
                    linker.table_management.compute_tf_table(level["tf_adjustment_column"])
        new = database.register(
            connection.sql(f"select {compared} from _records where {changed}", params=since)
        )
        # Only the records sharing a block with a new one can pair with it.
        in_a_new_block = " or ".join(
            f"{column} in (select {column} from _records where {changed})" for column in BLOCK_COLUMNS
        )
        old = database.register(
            connection.sql(
                f"select {compared} from _records where not ({changed}) and ({in_a_new_block})", params=since
            )
        )
        pairs = [
            linker.inference.predict_between(
                new, old, threshold_match_probability=options.review_probability
            ).physical_name,
            linker.inference.predict_within(
                new, threshold_match_probability=options.review_probability
            ).physical_name,
        ]
    else:
        pairs = []
    scored_pairs = " union all ".join(
        f"select {RECORD_KEY}_l as record_key, {RECORD_KEY}_r as linked_record_key, match_weight, "
        f"match_probability, {HOUSEHOLD_CONDITION} as household, {WITHOUT_BIRTH_DATE} as without_birth_date, "
        f"{_evidence_sql(model)} as evidence "
        f"from {name}"
        for name in pairs
    ) or (
        "select null::varchar as record_key, null::varchar as linked_record_key, null::double as match_weight, "
        "null::double as match_probability, null::boolean as household, null::boolean as without_birth_date, "
        "null::varchar as evidence "
        "where false"
    )
    connection.execute(f"create or replace temp table _scored as {scored_pairs}")
    linker.table_management.delete_tables_created_by_splink_from_db()
    _decide(connection, options)
    _write_pass(connection, full, changed, since, fingerprint, compared_to, at)
    run.pairs_kept = scalar(connection, "select count(*) from _decided")
    run.decisions = dict(connection.execute("select decision, count(*) from _decided group by 1").fetchall())
    run.histogram = {
        f"{low / HISTOGRAM_BINS:.1f}-{(low + 1) / HISTOGRAM_BINS:.1f}": count
        for low, count in connection.execute(
            f"select least(floor(match_probability * {HISTOGRAM_BINS}), {HISTOGRAM_BINS - 1})::int, count(*) "
            "from _scored group by 1 order by 1"
        ).fetchall()
    }
    for table in ("_records", "_scored", "_decided"):
        connection.execute(f"drop table {table}")
    run.seconds = round(time.perf_counter() - started, 3)
    return run


def _decide(connection: duckdb.DuckDBPyConnection, options: LinkOptions) -> None:
    """_scored -> _decided: each pair's decision, the guards applied (a conflicting document first, then the
    household and namesake rules, then the cap on the customers a record's links reach: a linked record's customer is its cluster as the last build
    left it; for a record the last build did not see, the records it shares an exact key (EXACT_KEYS, held by
    no more than max_records_per_key records) with, named by the smallest of them; else the record alone)."""
    clusters = (
        f"select record_key, cluster_key from {CLUSTERS_RELATION}"
        if has_table(connection, "intermediate", "int_identity_clusters")
        else "select null::varchar as record_key, null::varchar as cluster_key where false"
    )
    keys = " union all ".join(
        f"select record_key, '{key}' as key_type, {key} as key_value from {FEATURES_RELATION} "
        f"where {key} is not null"
        for key in EXACT_KEYS
    )
    connection.execute(
        f"""
        create or replace temp table _decided as
        with documents as (
            select record_key, document_key from {FEATURES_RELATION} where document_key is not null
        ),
        namesakes as (
            -- A name at a CEP held by records with two or more birth dates: two people.
            select first_name, surname, postal_code
            from _records
            where birth_date is not null and first_name is not null and surname is not null
                and postal_code is not null
            group by all
            having count(distinct birth_date) >= 2
        ),
        records_of_namesakes as (
            select _records.record_key
            from _records
            semi join namesakes using (first_name, surname, postal_code)
        ),
        judged as (
            select
                scored.*,
                left_document.document_key is not null and right_document.document_key is not null
                    and left_document.document_key != right_document.document_key as conflicting_document,
                scored.without_birth_date and (
                    scored.record_key in (select record_key from records_of_namesakes)
                    or scored.linked_record_key in (select record_key from records_of_namesakes)
                ) as namesake
            from _scored as scored
            left join documents as left_document on scored.record_key = left_document.record_key
            left join documents as right_document on scored.linked_record_key = right_document.record_key
        ),
        links as (
            select record_key, linked_record_key from judged
            where match_probability >= $match and not conflicting_document and not household and not namesake
        ),
        directed as (
            select record_key, linked_record_key from links
            union all
            select linked_record_key, record_key from links
        ),
        linked_records as (select distinct record_key from directed),
        clustered as (
            select clusters.record_key, clusters.cluster_key
            from ({clusters}) as clusters
            semi join linked_records on clusters.record_key = linked_records.record_key
        ),
        unclustered as (select record_key from linked_records anti join clustered using (record_key)),
        keys as ({keys}),
        unclustered_keys as (select keys.* from keys semi join unclustered using (record_key)),
        shared_keys as (
            select keys.*
            from keys semi join unclustered_keys using (key_type, key_value)
            qualify count(*) over (partition by key_type, key_value) between 2 and $max_records
        ),
        exact_groups as (
            select own.record_key, min(other.record_key) as group_key
            from shared_keys as own
            inner join shared_keys as other on own.key_type = other.key_type and own.key_value = other.key_value
            semi join unclustered on own.record_key = unclustered.record_key
            group by own.record_key
        ),
        reach as (
            select
                directed.record_key,
                count(distinct coalesce(clustered.cluster_key, exact_groups.group_key, directed.linked_record_key))
                    as clusters_reached
            from directed
            left join clustered on directed.linked_record_key = clustered.record_key
            left join exact_groups on directed.linked_record_key = exact_groups.record_key
            group by directed.record_key
        ),
        capped as (
            select record_key from reach where clusters_reached > $max_clusters
        )
        select
            judged.record_key,
            judged.linked_record_key,
            judged.match_weight,
            judged.match_probability,
            case
                when judged.conflicting_document then 'conflicting_document'
                when judged.household then 'household'
                when judged.match_probability < $match then 'review'
                when judged.namesake then 'namesake'
                when judged.record_key in (select record_key from capped)
                    or judged.linked_record_key in (select record_key from capped) then 'capped'
                else 'link'
            end as decision,
            judged.evidence
        from judged
        """,
        {
            "match": options.match_probability,
            "max_clusters": options.max_clusters,
            "max_records": options.max_records_per_key,
        },
    )


def _write_pass(
    connection: duckdb.DuckDBPyConnection,
    full: bool,
    changed: str,
    since: dict[str, Any],
    fingerprint: str,
    compared_to: datetime | None,
    at: datetime,
) -> None:
    """Replace the pairs of the compared records (all of them in a full pass) and record the state, at once."""
    with transaction(connection):
        if full:
            connection.execute(f"delete from {LINKS_TABLE}")
        else:
            connection.execute(
                f"""
                delete from {LINKS_TABLE} where record_key in (
                    select record_key from {FEATURES_RELATION} where {changed}
                ) or linked_record_key in (select record_key from {FEATURES_RELATION} where {changed})
                """,
                since,
            )
        connection.execute(
            f"insert into {LINKS_TABLE} select record_key, linked_record_key, match_weight, match_probability, "
            "decision, evidence, $at from _decided",
            {"at": at},
        )
        connection.execute(
            f"insert into {STATE_TABLE} values ($fingerprint, $compared_to, $at)",
            {"fingerprint": fingerprint, "compared_to": compared_to, "at": at},
        )
