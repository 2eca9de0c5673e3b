"""The sample-data generator: deterministic, in the raw contract, with the truth it knows."""

from __future__ import annotations

import filecmp
import json

import numpy as np
import pandas as pd

from dagster_project.synthetic import generate
from dagster_project.synthetic.people import cpf_check_digits


def test_cpf_check_digits_match_known_valid_numbers():
    # 529.982.247-25 and 111.444.777-35 are the textbook valid CPFs.
    nine = np.array([[5, 2, 9, 9, 8, 2, 2, 4, 7], [1, 1, 1, 4, 4, 4, 7, 7, 7]])
    assert cpf_check_digits(nine)[:, 9:].tolist() == [[2, 5], [3, 5]]


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    generate(300, seed=3, out=tmp_path / "a")
    generate(300, seed=3, out=tmp_path / "b")
    generate(300, seed=4, out=tmp_path / "c")
    same = filecmp.dircmp(tmp_path / "a" / "raw", tmp_path / "b" / "raw")
    assert not same.diff_files and not same.left_only
    orders = "purchases/ecommerce/orders.csv.gz"
    assert (tmp_path / "a/raw" / orders).read_bytes() == (tmp_path / "b/raw" / orders).read_bytes()
    assert (tmp_path / "a/raw" / orders).read_bytes() != (tmp_path / "c/raw" / orders).read_bytes()


def test_truth_covers_every_customer_record_and_people_overlap_systems(generated_dataset):
    raw, truth = generated_dataset / "raw", generated_dataset / "truth"
    identity = pd.read_csv(truth / "identity.csv", dtype=str)
    records = sum(len(pd.read_csv(path, dtype=str, sep=None, engine="python", encoding="latin-1"
                                  if "loja" in str(path) else "utf-8"))
                  for path in (raw / "customers").rglob("*.csv"))  # fmt: skip
    assert len(identity) == records
    assert not identity.duplicated(["source_system", "source_customer_id"]).any()
    systems_per_person = identity.groupby("person_id")["source_system"].nunique()
    assert systems_per_person.max() >= 3 and (systems_per_person >= 2).mean() > 0.5


def test_legacy_source_is_latin1_with_decimal_comma_and_declared(generated_dataset):
    raw = generated_dataset / "raw"
    text = (raw / "purchases/loja/vendas.csv").read_bytes().decode("latin-1")
    header, first = text.splitlines()[:2]
    assert header.startswith('"num_cupom";"cod_cliente";"data_venda";"valor_total"')
    assert first.split(";")[3].strip('"').replace(".", "").replace(",", "").isdigit()
    assert "," in first.split(";")[3]
    sources = (raw / "sources.yml").read_text(encoding="utf-8")
    assert "latin-1" in sources and "valor_total: amount" in sources


def test_parameters_record_the_purchase_model_and_file_sizes(generated_dataset):
    parameters = json.loads((generated_dataset / "truth" / "parameters.json").read_text())
    assert set(parameters["purchase_model"]) >= {"r", "alpha", "a", "b", "p", "q", "v"}
    assert parameters["files"]["purchases/loja/vendas.csv"] > 0


def test_holding_back_the_last_day_splits_the_same_rows_into_a_dated_next_day_delivery(tmp_path):
    # 600 people (seed 5) have e-commerce orders, store sales, service contacts and consents on the last day.
    whole = generate(600, seed=5, out=tmp_path / "whole")
    split = generate(600, seed=5, out=tmp_path / "split", hold_back_last_day=True)
    held = split["next_day_files"]
    assert {name.split("/")[0] for name in held} >= {"purchases", "service_interactions", "consents"}
    assert all(name.split("/")[-1].split("_")[-1].startswith("2025-12-30.") for name in held)
    for relative, rows in whole["files"].items():  # every row is delivered once: before or on the last day
        stem = relative.rsplit("/", 1)[-1].split(".")[0]
        on_last_day = sum(
            count
            for name, count in held.items()
            if name.startswith(relative.rsplit("/", 1)[0] + "/" + stem + "_")
        )
        assert split["files"][relative] + on_last_day == rows, relative
    purchases = pd.read_csv(tmp_path / "split/next_day/raw/purchases/ecommerce/orders_2025-12-30.csv.gz")
    assert len(purchases) == held["purchases/ecommerce/orders_2025-12-30.csv.gz"]
    assert set(pd.to_datetime(purchases["purchased_at"]).dt.date.astype(str)) == {"2025-12-30"}
    before = pd.read_csv(tmp_path / "split/raw/purchases/ecommerce/orders.csv.gz")
    assert pd.to_datetime(before["purchased_at"]).max() < pd.Timestamp("2025-12-30")


def test_a_loyalty_club_without_shared_keys_is_added_and_leaves_every_other_file_as_it_was(tmp_path):
    """With no_key_share, a share of the stores' buyers are in a loyalty club whose files hold no e-mail,
    phone or CPF: its members (with truth), and the sales made with its card, taken from the store system's."""
    generate(1500, seed=3, out=tmp_path / "plain")
    generate(1500, seed=3, out=tmp_path / "club", no_key_share=0.3)
    plain, club = tmp_path / "plain" / "raw", tmp_path / "club" / "raw"

    compared = filecmp.dircmp(plain, club)
    changed = sorted(
        str(path.relative_to(club))
        for path in club.rglob("*")
        if path.is_file() and (not (plain / path.relative_to(club)).exists()
                               or not filecmp.cmp(path, plain / path.relative_to(club), shallow=False))
    )  # fmt: skip
    assert not compared.left_only
    assert changed == [
        "customers/clube/socios.csv",
        "purchases/clube/compras.csv",
        "purchases/loja/vendas.csv",
    ]

    members = pd.read_csv(club / "customers/clube/socios.csv", dtype=str)
    assert members[["document_id", "email", "phone", "loyalty_id"]].isna().all().all()
    assert members[["full_name", "city", "postal_code"]].notna().mean().min() > 0.9
    identity = pd.read_csv(tmp_path / "club" / "truth" / "identity.csv", dtype=str)
    club_truth = identity[identity["source_system"] == "clube"]
    assert set(club_truth["source_customer_id"]) == set(members["source_customer_id"])
    # Every member is a store buyer: the person also has a store record.
    store_people = set(identity.loc[identity["source_system"] == "loja", "person_id"])
    assert set(club_truth["person_id"]) <= store_people

    # A member's birth date is the person's (as the web shop has it), or it with day and month swapped.
    web = pd.read_csv(club / "customers/ecommerce/customers.csv", dtype=str)
    web_truth = identity[identity["source_system"] == "ecommerce"]
    dates = (
        members.merge(club_truth, on="source_customer_id")[["person_id", "birth_date"]]
        .merge(web.merge(web_truth, on="source_customer_id")[["person_id", "birth_date"]], on="person_id")
        .dropna()
    )
    club_dates, web_dates = pd.to_datetime(dates["birth_date_x"]), pd.to_datetime(dates["birth_date_y"])
    same = club_dates == web_dates
    swapped = (
        (club_dates.dt.year == web_dates.dt.year)
        & (club_dates.dt.month == web_dates.dt.day)
        & (club_dates.dt.day == web_dates.dt.month)
    )
    assert len(dates) > 30 and (same | swapped).all() and swapped.sum() > 0 and not swapped.all()

    def store_sales(raw):
        return pd.read_csv(raw / "purchases/loja/vendas.csv", sep=";", encoding="latin-1", dtype=str)

    card_sales = pd.read_csv(club / "purchases/clube/compras.csv", dtype=str)
    assert len(card_sales) > 0 and set(card_sales["source_customer_id"]) <= set(members["source_customer_id"])
    assert len(store_sales(club)) + len(card_sales) == len(store_sales(plain))
