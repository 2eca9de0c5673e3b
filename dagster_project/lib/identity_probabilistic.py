"""The probabilistic pass of identity resolution (issue 22, being built): a Fellegi-Sunter model with Splink on
DuckDB, comparing person records on what a store till or a legacy system keeps when it has no e-mail, phone
or CPF: first name and surname, birth date, postal code (CEP), street address, city, and the partial keys
(a document number or a phone's last eight digits one typo away).

A record is one row of a relation with the columns of FEATURES (absent values null); `record_key` names it.
The model's comparisons and blocking rules are here, once: training (`train`: u by random sampling, m by
expectation maximisation, no labels) and prediction (`predict`) use the same settings.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb
    from splink import SettingsCreator

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
# Pairs are generated only within a block (any of these rules): one rule per way a person's records can still
# agree when others disagree.
BLOCKING_RULES = (
    ("birth_date",),
    ("postal_code",),
    ("surname", "substr(first_name, 1, 1)"),
    ("first_name", "year(birth_date)"),
    ("document",),
    ("phone_tail",),
)
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
        blocking_rules_to_generate_predictions=[block_on(*rule) for rule in BLOCKING_RULES],
        comparisons=[
            cl.NameComparison("first_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            birth_date,
            cl.ExactMatch("postal_code").configure(term_frequency_adjustments=True),
            cl.LevenshteinAtThresholds("address", [1, 3]),
            cl.JaroWinklerAtThresholds("city", [0.9]).configure(term_frequency_adjustments=True),
            cl.DamerauLevenshteinAtThresholds("document", [1]),
            cl.ExactMatch("phone_tail"),
        ],
        retain_intermediate_calculation_columns=False,
    )


def _quiet() -> None:
    """Splink reports every EM iteration at INFO: keep its log to warnings (it names no person)."""
    logging.getLogger("splink").setLevel(logging.WARNING)


def train(connection: duckdb.DuckDBPyConnection, records: str, seed: int = 1) -> dict[str, Any]:
    """The model trained on the records of relation `records` (no labels): the prior from CERTAIN_RULES, u by
    random sampling, m by expectation maximisation on TRAINING_BLOCKS. Returns Splink's model (JSON-able)."""
    from splink import DuckDBAPI, Linker, block_on

    _quiet()
    database = DuckDBAPI(connection=connection)
    linker = Linker(database.register(connection.sql(f"select * from {records}")), settings())
    linker.training.estimate_probability_two_random_records_match(
        [block_on(*rule) for rule in CERTAIN_RULES], recall=0.8
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=RANDOM_PAIRS, seed=seed)
    for block in TRAINING_BLOCKS:
        linker.training.estimate_parameters_using_expectation_maximisation(block_on(*block))
    return linker.misc.save_model_to_json()


def predict(
    connection: duckdb.DuckDBPyConnection, records: str, model: dict[str, Any], threshold: float
) -> duckdb.DuckDBPyRelation:
    """The record pairs of relation `records` the model gives a match probability of at least `threshold`:
    record_key_l, record_key_r, match_weight, match_probability."""
    from splink import DuckDBAPI, Linker

    _quiet()
    database = DuckDBAPI(connection=connection)
    linker = Linker(database.register(connection.sql(f"select * from {records}")), model)
    scored = linker.inference.predict(threshold_match_probability=threshold)
    return connection.sql(
        f"select {RECORD_KEY}_l, {RECORD_KEY}_r, match_weight, match_probability from {scored.physical_name}"
    )
