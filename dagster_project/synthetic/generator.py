"""Generate a whole dataset: ``<out>/raw`` in the raw extract contract and ``<out>/truth`` with the answers.

Source systems (each knows the same people under its own ids):
  ecommerce  web shop: customers, orders (gzipped CSV), consents; canonical dialect
  loja       store POS + loyalty card: customers and sales in a legacy dialect (see writer.LEGACY_DIALECT)
  sac        service desk: customers and contacts on every channel, vocabulary in Portuguese
  crm        marketing platform: contacts, campaigns, campaign contacts, consents
  erp        product catalogue (Parquet)
  clube      (with no_key_share > 0) an old store chain's loyalty club: members and the sales made with its
             card, keeping no e-mail, phone or CPF - a name typed at the till, a birth date, an address
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from dagster_project.synthetic.behaviour import (
    INCLINED,
    NOT_INCLINED,
    PERSONA_PURCHASE_SHARE,
    PERSONAS,
    PRODUCT_TYPES,
    PurchaseModel,
    decorate_orders,
    draw_personas,
    products_catalogue,
    simulate_consents,
    simulate_purchases,
    simulate_service,
    to_timestamps,
)
from dagster_project.synthetic.campaigns import (
    ATTRIBUTION_DAYS,
    MEDIA,
    MESSAGE,
    PUT_OFF,
    campaign_truth,
    contact_uplift_truth,
    simulate_campaigns,
    simulate_contacts,
)
from dagster_project.synthetic.people import make_people, no_key_records, source_records
from dagster_project.synthetic.writer import LEGACY_DIALECT, write_csv, write_legacy_csv, write_parquet

CUSTOMER_COLUMNS = [
    "source_customer_id", "full_name", "document_id", "email", "phone", "birth_date", "city", "state",
    "postal_code", "address", "loyalty_id", "created_at", "updated_at",
]  # fmt: skip
LEGACY_CUSTOMER_NAMES = {
    "source_customer_id": "cod_cliente", "full_name": "nome", "document_id": "cpf", "email": "email",
    "phone": "telefone", "birth_date": "data_nascimento", "city": "cidade", "state": "uf", "postal_code": "cep",
    "loyalty_id": "cartao_fidelidade", "created_at": "data_cadastro", "updated_at": "data_atualizacao",
    "address": "endereco",
}  # fmt: skip
LEGACY_SALE_NAMES = {
    "order_id": "num_cupom", "source_customer_id": "cod_cliente", "purchased_at": "data_venda",
    "amount": "valor_total", "product_id": "cod_produto", "product_type": "categoria", "quantity": "qtde",
    "cost": "custo", "store_type": "tipo_loja", "store_id": "cod_loja",
}  # fmt: skip
CAMPAIGN_COLUMNS = [
    "campaign_id", "name", "media", "objective", "product_type", "subject", "message", "start_date", "end_date",
    "cost_per_contact", "planned_control_share",
]  # fmt: skip
LEGACY_STORE_TYPES = {"own_store": "Loja Própria", "partner_store": "Loja Parceira"}


@dataclass(frozen=True)
class Window:
    start: np.datetime64
    days: float

    def timestamps(self, days: np.ndarray | pd.Series) -> np.ndarray:
        return to_timestamps(self.start, np.asarray(days, dtype=float))


class RecordBook:
    """One source system's customer records and which person each is."""

    def __init__(
        self, rng: np.random.Generator, people: pd.DataFrame, members: np.ndarray, duplicate_share: float
    ) -> None:
        duplicated = members[rng.random(len(members)) < duplicate_share]
        self.person = np.concatenate([members, duplicated])
        self.first_record = np.full(len(people), -1)
        self.first_record[members] = np.arange(len(members))
        self.second_record = np.full(len(people), -1)
        self.second_record[duplicated] = np.arange(len(members), len(self.person))

    def record_of(self, rng: np.random.Generator, person: np.ndarray) -> np.ndarray:
        """The record an event of each person is filed under (a duplicated person uses either)."""
        record = self.first_record[person]
        second = self.second_record[person]
        use_second = (second >= 0) & (rng.random(len(person)) < 0.3)
        return np.where(use_second, second, record)


def _created_days(rng: np.random.Generator, book: RecordBook, event_record: np.ndarray, event_day: np.ndarray,
                  window: Window) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """A record is created up to 30 days before its first event (or any time, without events)."""
    first_event = pd.Series(event_day).groupby(event_record).min()
    created = rng.uniform(0, window.days, len(book.person))
    created[first_event.index.to_numpy()] = np.maximum(
        first_event.to_numpy() - rng.uniform(0, 30, len(first_event)), 0
    )
    updated = created + rng.random(len(created)) * (window.days - created)
    return created, updated


def _customers_frame(
    rng: np.random.Generator, people: pd.DataFrame, book: RecordBook, ids: np.ndarray,
    created: np.ndarray, updated: np.ndarray, window: Window, noise: dict[str, float], **options: object,
) -> pd.DataFrame:  # fmt: skip
    records = source_records(
        rng, people, book.person, noise, upper_case_names=bool(options.get("upper_case"))
    )
    records.insert(0, "source_customer_id", ids)
    loyalty_share = float(str(options.get("loyalty_share", 0.0)))
    loyalty = np.char.add("FID", np.char.zfill(rng.integers(0, 10**8, len(ids)).astype(str), 8))
    records["loyalty_id"] = np.where(
        rng.random(len(ids)) < loyalty_share, loyalty, np.array(None, dtype=object)
    )
    records["created_at"] = window.timestamps(created)
    records["updated_at"] = window.timestamps(updated)
    return records


def _dated(relative: str, day: np.datetime64) -> str:
    """`purchases/ecommerce/orders.csv.gz` delivered on 2025-12-30 -> `purchases/ecommerce/orders_2025-12-30.csv.gz`."""
    folder, _, name = relative.rpartition("/")
    stem, _, extension = name.partition(".")
    return f"{folder}/{stem}_{day}.{extension}"


class Delivery:
    """Writes the raw files: rows of the window's last day go to the next day's dated file when that day is held
    back (`<out>/next_day/raw`); remembers the rows written per file."""

    def __init__(self, out: Path, window: Window, end: np.datetime64, hold_back_last_day: bool) -> None:
        self.out, self.window, self.hold_back_last_day = out, window, hold_back_last_day
        self.last_day = end - np.timedelta64(1, "D")
        self.files: dict[str, int] = {}
        self.next_day_files: dict[str, int] = {}

    def __call__(
        self,
        relative: str,
        frame: pd.DataFrame,
        write: Callable[[pd.DataFrame, Path], None],
        day: np.ndarray | pd.Series | None = None,
    ) -> None:
        """Write `frame` to raw/<relative>; rows whose `day` is the window's last go to the next day's file
        when the last day is held back (no file when the day has none)."""
        held = np.zeros(len(frame), dtype=bool)
        if self.hold_back_last_day and day is not None:
            held = np.asarray(day, dtype=float) >= self.window.days - 1
        if held.any():
            relative_next = _dated(relative, self.last_day)
            self.next_day_files[relative_next] = int(held.sum())
            write(frame[held].reset_index(drop=True), self.out / "next_day" / "raw" / relative_next)
        self.files[relative] = int((~held).sum())
        write(frame[~held].reset_index(drop=True), self.out / "raw" / relative)


@dataclass(frozen=True)
class SourceRecords:
    """Each source system's customer records: who they are (a RecordBook), their ids, and which record each
    order, service contact and campaign contact was made under."""

    books: dict[str, RecordBook]
    ids: dict[str, np.ndarray]
    online: np.ndarray  # per order: made in the web shop (else in a store)
    order_record: np.ndarray
    service_record: np.ndarray
    contact_record: np.ndarray


# How each source system keeps its customer records: share of values missing or written badly.
RECORD_NOISE = {
    "ecommerce": {
        "cpf_missing": 0.1,
        "email_missing": 0.0,
        "phone_missing": 0.15,
        "email_placeholder": 0.005,
        "address_missing": 0.1,
    },
    "loja": {
        "cpf_missing": 0.05,
        "email_missing": 0.5,
        "email_upper": 0.3,
        "cpf_formatted": 0.2,
        "address_missing": 0.4,
    },
    "sac": {
        "cpf_missing": 0.3,
        "email_missing": 0.3,
        "email_placeholder": 0.05,
        "birth_date_missing": 0.8,
        "address_missing": 0.7,
    },
    "crm": {"cpf_missing": 0.7, "email_missing": 0.05, "phone_missing": 0.3, "address_missing": 0.3},
}
RECORD_OPTIONS = {"loja": {"upper_case": True, "loyalty_share": 0.6}}
# The loyalty club without shared keys: how its records are written, where its files go, and the share of a
# member's store sales made with the club card (the rest stay in the store system under its own record).
NO_KEY_SYSTEM = "clube"
NO_KEY_NOISE = {
    "middle_initial": 0.4, "drop_middle_name": 0.2, "name_typo": 0.1, "upper_case": 0.6,
    "birth_date_swapped": 0.1, "birth_date_missing": 0.1, "postal_code_missing": 0.05, "address_missing": 0.15,
}  # fmt: skip
NO_KEY_CUSTOMER_FILE = "customers/clube/socios.csv"
NO_KEY_PURCHASE_FILE = "purchases/clube/compras.csv"
NO_KEY_CARD_SHARE = 0.5
NO_KEY_STREAM = 22  # its draws come from their own stream: every other file is the same with or without it
CUSTOMER_FILES = {
    "ecommerce": "customers/ecommerce/customers.csv", "loja": "customers/loja/clientes.csv",
    "sac": "customers/sac/clientes_sac.csv", "crm": "customers/crm/contacts.csv",
}  # fmt: skip


@dataclass(frozen=True)
class NoKeyRecords:
    """The loyalty club's records (a RecordBook), their card numbers, and per order the club record it was
    filed under (-1: not a club sale)."""

    book: RecordBook
    ids: np.ndarray
    order_record: np.ndarray


def _no_key_records(
    rng: np.random.Generator, people: pd.DataFrame, orders: pd.DataFrame, online: np.ndarray, share: float
) -> NoKeyRecords:
    """A `share` of the stores' buyers are club members; NO_KEY_CARD_SHARE of their store sales use the card."""
    store_buyers = np.unique(orders["person"].to_numpy()[~online])
    book = RecordBook(rng, people, store_buyers[rng.random(len(store_buyers)) < share], 0.0)
    ids = np.char.add("CLB", np.char.zfill(rng.permutation(len(book.person)).astype(str), 7))
    member_record = book.first_record[orders["person"].to_numpy()]
    with_card = ~online & (member_record >= 0) & (rng.random(len(orders)) < NO_KEY_CARD_SHARE)
    return NoKeyRecords(book, ids, np.where(with_card, member_record, -1))


def _deliver_no_key_customers(
    rng: np.random.Generator,
    deliver: Delivery,
    people: pd.DataFrame,
    club: NoKeyRecords,
    orders: pd.DataFrame,
) -> None:
    """The club's member file, in the canonical dialect (a record is delivered the day it is created)."""
    sales = club.order_record >= 0
    created, updated = _created_days(
        rng, club.book, club.order_record[sales], orders["day"].to_numpy()[sales], deliver.window
    )
    members = no_key_records(rng, people, club.book.person, NO_KEY_NOISE)
    members.insert(0, "source_customer_id", club.ids)
    members["loyalty_id"] = None
    members["created_at"] = deliver.window.timestamps(created)
    members["updated_at"] = deliver.window.timestamps(updated)
    deliver(NO_KEY_CUSTOMER_FILE, members[CUSTOMER_COLUMNS], write_csv, created)


def _source_records(
    rng: np.random.Generator,
    people: pd.DataFrame,
    crm_book: RecordBook,
    orders: pd.DataFrame,
    service: pd.DataFrame,
    contacts: pd.DataFrame,
) -> SourceRecords:
    """Who has a record in which system (the web shop: its buyers and a fifth of everyone; the stores: their
    buyers; the service desk: who contacted it; the CRM: drawn before), their ids, and the record of each event."""
    customers = len(people)
    online = orders["store_type"].to_numpy() == "ecommerce"
    ecommerce_members = np.union1d(
        np.unique(orders["person"].to_numpy()[online]), np.flatnonzero(rng.random(customers) < 0.2)
    )
    books = {
        "ecommerce": RecordBook(rng, people, ecommerce_members, 0.03),
        "loja": RecordBook(rng, people, np.unique(orders["person"].to_numpy()[~online]), 0.0),
        "sac": RecordBook(rng, people, np.unique(service["person"].to_numpy()), 0.02),
        "crm": crm_book,
    }
    ids = {
        "ecommerce": (100_000 + rng.permutation(len(books["ecommerce"].person))).astype(str),
        "loja": np.char.add("L", np.char.zfill(rng.permutation(len(books["loja"].person)).astype(str), 7)),
        "sac": np.char.add("SAC-", np.char.zfill(rng.permutation(len(books["sac"].person)).astype(str), 8)),
        "crm": np.array(
            [f"{value:012x}" for value in rng.choice(2**48, len(books["crm"].person), replace=False)]
        ),
    }
    order_record = np.where(
        online,
        books["ecommerce"].record_of(rng, orders["person"].to_numpy()),
        books["loja"].record_of(rng, orders["person"].to_numpy()),
    )
    service_record = books["sac"].record_of(rng, service["person"].to_numpy())
    contact_record = books["crm"].record_of(rng, contacts["person"].to_numpy())
    return SourceRecords(books, ids, online, order_record, service_record, contact_record)


def _deliver_customers(
    rng: np.random.Generator,
    deliver: Delivery,
    people: pd.DataFrame,
    records: SourceRecords,
    orders: pd.DataFrame,
    service: pd.DataFrame,
    contacts: pd.DataFrame,
) -> tuple[dict[str, pd.DataFrame], dict[str, np.ndarray]]:
    """Each system's customer file (a record is delivered the day it is created); the frames and their
    creation days, which the consents read."""
    online, window = records.online, deliver.window
    events = {
        "ecommerce": (records.order_record[online], orders["day"].to_numpy()[online]),
        "loja": (records.order_record[~online], orders["day"].to_numpy()[~online]),
        "sac": (records.service_record, service["day"].to_numpy()),
        "crm": (records.contact_record, contacts["day"].to_numpy()),
    }
    frames, created_days = {}, {}
    for system, book in records.books.items():
        created, updated = _created_days(rng, book, *events[system], window)
        created_days[system] = created
        frames[system] = _customers_frame(
            rng, people, book, records.ids[system], created, updated, window, RECORD_NOISE[system],
            **RECORD_OPTIONS.get(system, {}),
        )  # fmt: skip
    for system, relative in CUSTOMER_FILES.items():
        writer = write_csv
        if system == "loja":
            writer = partial(write_legacy_csv, renames=LEGACY_CUSTOMER_NAMES, dates=("birth_date",),
                             timestamps=("created_at", "updated_at"))  # fmt: skip
        deliver(relative, frames[system][CUSTOMER_COLUMNS], writer, created_days[system])
    return frames, created_days


def _deliver_purchases(
    deliver: Delivery, orders: pd.DataFrame, records: SourceRecords, club: NoKeyRecords | None
) -> None:
    """The web shop's orders (gzipped CSV), the stores' sales (legacy dialect) and the club card's sales."""

    def purchases_of(mask: np.ndarray, ids: np.ndarray, record: np.ndarray) -> pd.DataFrame:
        chosen = orders[mask]
        return pd.DataFrame(
            {
                "order_id": chosen["order_id"].to_numpy(),
                "source_customer_id": ids[record[mask]],
                "purchased_at": deliver.window.timestamps(chosen["day"]),
                "amount": chosen["amount"].to_numpy(),
                "product_id": chosen["product_id"].to_numpy(),
                "product_type": chosen["product_type"].to_numpy(),
                "quantity": chosen["quantity"].to_numpy(),
                "cost": chosen["cost"].to_numpy(),
                "store_type": chosen["store_type"].to_numpy(),
                "store_id": chosen["store_id"].to_numpy(),
            }
        )

    online, order_days = records.online, orders["day"].to_numpy()
    club_sale = np.zeros(len(orders), dtype=bool) if club is None else club.order_record >= 0
    in_store = ~online & ~club_sale
    web_orders = purchases_of(online, records.ids["ecommerce"], records.order_record)
    deliver("purchases/ecommerce/orders.csv.gz", web_orders, write_csv, order_days[online])
    store_sales = purchases_of(in_store, records.ids["loja"], records.order_record)
    store_sales["store_type"] = store_sales["store_type"].map(LEGACY_STORE_TYPES)
    deliver(
        "purchases/loja/vendas.csv", store_sales,
        partial(write_legacy_csv, renames=LEGACY_SALE_NAMES, timestamps=("purchased_at",), decimals=("amount", "cost")),
        order_days[in_store],
    )  # fmt: skip
    if club is not None:
        club_sales = purchases_of(club_sale, club.ids, club.order_record)
        deliver(NO_KEY_PURCHASE_FILE, club_sales, write_csv, order_days[club_sale])


def _deliver_service(deliver: Delivery, service: pd.DataFrame, records: SourceRecords) -> None:
    """The service desk's contacts on every channel."""
    window = deliver.window
    interactions = pd.DataFrame(
        {
            "interaction_id": service["interaction_id"],
            "source_customer_id": records.ids["sac"][records.service_record],
            "occurred_at": window.timestamps(service["day"]),
            "channel": service["channel"],
            "interaction_type": service["interaction_type"],
            "reason": service["reason"],
            "handled_by": service["handled_by"],
            "duration_seconds": service["duration_seconds"],
            "is_resolved": service["is_resolved"],
            "resolved_at": pd.Series(window.timestamps(service["resolved_day"].fillna(0))).where(
                service["resolved_day"].notna()
            ),
        }
    )
    deliver("service_interactions/sac/atendimentos.csv", interactions, write_csv, service["day"])


def _deliver_campaigns(
    deliver: Delivery, campaigns: pd.DataFrame, contacts: pd.DataFrame, records: SourceRecords
) -> None:
    """The CRM's campaigns and their contacts (control-group members included)."""
    window = deliver.window
    campaign_starts = pd.Series(window.timestamps(campaigns["start_day"])).dt.date
    campaign_ends = pd.Series(window.timestamps(campaigns["end_day"])).dt.date
    type_names = dict((entry[0], entry[1]) for entry in PRODUCT_TYPES)
    campaign_file = campaigns.assign(
        message=[
            MESSAGE.format(tipo=type_names[kind], inicio=f"{first:%d/%m}", fim=f"{last:%d/%m/%Y}")
            for kind, first, last in zip(
                campaigns["product_type"], campaign_starts, campaign_ends, strict=True
            )
        ],
        start_date=campaign_starts,
        end_date=campaign_ends,
    )[CAMPAIGN_COLUMNS]
    deliver("campaigns/crm/campaigns.csv", campaign_file, write_csv)
    contact_file = pd.DataFrame(
        {
            "campaign_id": campaigns["campaign_id"].to_numpy()[contacts["campaign"]],
            "source_customer_id": records.ids["crm"][records.contact_record],
            "contacted_at": window.timestamps(contacts["day"]),
            "is_control": contacts["is_control"],
            "responded_at": pd.Series(window.timestamps(contacts["responded_day"].fillna(0))).where(
                contacts["responded_day"].notna()
            ),
            "response": contacts["response"],
            "order_id": contacts["order_id"],
        }
    )
    deliver("campaign_contacts/crm/campaign_contacts.csv", contact_file, write_csv, contacts["day"])


def _deliver_consents(
    rng: np.random.Generator,
    deliver: Delivery,
    records: SourceRecords,
    customer_frames: dict[str, pd.DataFrame],
    created_days: dict[str, np.ndarray],
) -> None:
    """The consents the CRM and the web shop record, per channel."""
    for system, channels in {
        "crm": ("email", "sms", "whatsapp", "phone", "direct_mail"),
        "ecommerce": ("email", "push", "sms"),
    }.items():
        frame = customer_frames[system].assign(created_day=created_days[system])
        statements = simulate_consents(rng, frame, channels, deliver.window.days)
        consent_file = pd.DataFrame(
            {
                "source_customer_id": records.ids[system][statements["record"]],
                "channel": statements["channel"],
                "status": statements["status"],
                "recorded_at": deliver.window.timestamps(statements["day"]),
                "legal_basis": statements["legal_basis"],
            }
        )
        deliver(f"consents/{system}/consents.csv", consent_file, write_csv, statements["day"])


def _write_sources_yml(raw: Path) -> None:
    """The legacy store system's dialect and column names, as an operator would declare them."""
    (raw / "sources.yml").write_text(
        "# Source systems whose files differ from the canonical dialect (docs/contracts.md).\n"
        + yaml.safe_dump(
            {"sources": {"loja": {**LEGACY_DIALECT, "columns": {
                "customers": {source: canonical for canonical, source in LEGACY_CUSTOMER_NAMES.items()},
                "purchases": {source: canonical for canonical, source in LEGACY_SALE_NAMES.items()},
            }}}},
            allow_unicode=True, sort_keys=False,
        ),
        encoding="utf-8",
    )  # fmt: skip


def _write_truth(
    truth: Path,
    people: pd.DataFrame,
    records: SourceRecords,
    club: NoKeyRecords | None,
    latent: pd.DataFrame,
    persona: np.ndarray,
    campaigns: pd.DataFrame,
    contacts: pd.DataFrame,
) -> None:
    """The answers: who each source record is, each person's latent behaviour, household and persona, each
    campaign's true effect and each contact's true uplift."""
    truth.mkdir(parents=True, exist_ok=True)
    identity = pd.concat(
        [
            pd.DataFrame(
                {
                    "source_system": system,
                    "source_customer_id": ids,
                    "person_id": people["person_id"].to_numpy()[book.person],
                }
            )
            for system, book, ids in [
                *((system, book, records.ids[system]) for system, book in records.books.items()),
                *([(NO_KEY_SYSTEM, club.book, club.ids)] if club is not None else []),
            ]
        ],
        ignore_index=True,
    )
    identity.to_csv(truth / "identity.csv", index=False)
    # People who share a postal address (CEP, street and number) live together: one household, named by its
    # first person.
    household = people.groupby(["postal_code", "street", "house_number"])["person_id"].transform("min")
    personas = pd.Series(np.array([name for name, _ in PERSONAS])[persona], name="persona")
    pd.concat([people[["person_id"]], latent, household.rename("household_id"), personas], axis=1).to_csv(
        truth / "persons.csv", index=False
    )
    campaign_truth(campaigns, contacts).to_csv(truth / "campaign_effects.csv", index=False)
    contact_uplift_truth(campaigns, contacts, people["person_id"].to_numpy()).to_csv(
        truth / "contact_uplift.csv", index=False
    )


def generate(
    customers: int, seed: int, out: Path, end_date: str = "2025-12-31", years: int = 4,
    hold_back_last_day: bool = False, no_key_share: float = 0.0,
) -> dict:  # fmt: skip
    """Write the dataset; return the summary that is also written to truth/parameters.json.

    With `hold_back_last_day`, the events of the window's last day (and the customer records and consents
    created that day) are not in `<out>/raw` but in `<out>/next_day/raw`, as dated files of the same systems:
    copying them into raw/ is the next day's delivery. The truth describes the whole window.
    With `no_key_share` > 0, that share of the stores' buyers are also members of the loyalty club (source
    system `clube`, no shared key), some of their store sales made with its card; its draws come from a stream
    of their own, so every file but the store sales (less the club's) is the same as without it.
    Every random draw comes from one generator in a fixed order: the same seed gives the same files."""
    rng = np.random.default_rng(seed)
    end = np.datetime64(end_date)
    window = Window(start=end - np.timedelta64(365 * years, "D"), days=365.0 * years)
    model = PurchaseModel()

    people = make_people(rng, customers, end)
    base_orders, latent = simulate_purchases(rng, customers, window.days, model)
    products = products_catalogue(rng)
    service = simulate_service(rng, latent, window.days)
    campaigns = simulate_campaigns(rng, window.days)
    persona = draw_personas(rng, customers)
    crm_book = RecordBook(rng, people, np.flatnonzero(rng.random(customers) < 0.7), 0.0)
    contacts, campaign_orders, put_off = simulate_contacts(
        rng, campaigns, crm_book.person, base_orders, latent, service, persona, model
    )
    orders = pd.concat(
        [base_orders[~put_off].assign(induced_by=-1), campaign_orders], ignore_index=True
    ).sort_values(["person", "day"], ignore_index=True)
    orders = decorate_orders(rng, orders, persona, products, window.days)
    campaign_sales = orders[(orders["induced_by"] >= 0) & (orders["amount"] > 0)]
    contacts["order_id"] = (
        pd.Series(campaign_sales["order_id"].to_numpy(), index=campaign_sales["induced_by"].to_numpy())
        .reindex(contacts.index)
        .where(contacts["tracked"])
    )
    records = _source_records(rng, people, crm_book, orders, service, contacts)
    club_rng = np.random.default_rng([seed, NO_KEY_STREAM])
    club = (
        _no_key_records(club_rng, people, orders, records.online, no_key_share) if no_key_share > 0 else None
    )

    deliver = Delivery(out, window, end, hold_back_last_day)
    customer_frames, created_days = _deliver_customers(
        rng, deliver, people, records, orders, service, contacts
    )
    if club is not None:
        _deliver_no_key_customers(club_rng, deliver, people, club, orders)
    _deliver_purchases(deliver, orders, records, club)
    _deliver_service(deliver, service, records)
    _deliver_campaigns(deliver, campaigns, contacts, records)
    _deliver_consents(rng, deliver, records, customer_frames, created_days)
    deliver("products/erp/products.parquet", products, write_parquet)
    _write_sources_yml(out / "raw")
    _write_truth(out / "truth", people, records, club, latent, persona, campaigns, contacts)

    summary = {
        "seed": seed,
        "customers": customers,
        **({"no_key_share": no_key_share} if club is not None else {}),
        "window_start": str(window.start),
        "window_end": end_date,
        "purchase_model": model.as_dict(),
        "purchase_model_time_unit": "week",
        "campaign_model": {
            "attribution_days": ATTRIBUTION_DAYS,
            "put_off_with_open_complaint": PUT_OFF,
            "effect_by_media": {name: medium.effect for name, medium in MEDIA.items()},
            "effect_by_inclination": {"inclined": INCLINED, "not_inclined": NOT_INCLINED},
        },
        "personas": {name: [PRODUCT_TYPES[index][0] for index in types] for name, types in PERSONAS},
        "persona_purchase_share": PERSONA_PURCHASE_SHARE,
        "files": deliver.files,
        **({"next_day_files": deliver.next_day_files} if hold_back_last_day else {}),
    }
    (out / "truth" / "parameters.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary
