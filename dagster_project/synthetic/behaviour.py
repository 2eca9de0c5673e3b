"""Synthetic behaviour: purchases (BG/NBD + Gamma-Gamma), service contacts, campaigns and consents.

Times are float days since the start of the observation window; `to_timestamps` turns them into datetimes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

PRODUCT_TYPES = (
    ("eletronicos", "Eletrônicos", 0.78),
    ("eletrodomesticos", "Eletrodomésticos", 0.72),
    ("moda", "Moda", 0.45),
    ("calcados", "Calçados", 0.5),
    ("casa", "Casa e Decoração", 0.55),
    ("beleza", "Beleza e Perfumaria", 0.4),
    ("esporte", "Esporte e Lazer", 0.55),
    ("brinquedos", "Brinquedos", 0.5),
    ("livros", "Livros", 0.65),
    ("mercado", "Mercado", 0.8),
)  # (id, name, cost as a share of the price)
# The catalogue's product families and each type's typical list price (R$): an up-sell offers a pricier type of
# a family the customer already buys from.
CATALOGUE = {
    "eletronicos": ("tecnologia", 1500.0),
    "eletrodomesticos": ("lar", 1800.0),
    "moda": ("moda", 120.0),
    "calcados": ("moda", 200.0),
    "casa": ("lar", 250.0),
    "beleza": ("moda", 80.0),
    "esporte": ("lazer", 300.0),
    "brinquedos": ("lazer", 150.0),
    "livros": ("tecnologia", 60.0),
    "mercado": ("lar", 40.0),
}
# Personas: what a person is inclined to buy (indexes into PRODUCT_TYPES). Most of a person's purchases are of
# their persona's types, and a campaign for one of them moves them far more than one for another type: the
# structure product affinity and the uplift model are there to find.
PERSONAS = (
    ("tecnologia", (0, 1, 8)),  # eletronicos, eletrodomesticos, livros
    ("familia", (7, 4, 9)),  # brinquedos, casa, mercado
    ("estilo", (2, 3, 5)),  # moda, calcados, beleza
    ("ativo", (6, 3, 0)),  # esporte, calcados, eletronicos
    ("lar", (4, 1, 9)),  # casa, eletrodomesticos, mercado
)
PERSONA_PURCHASE_SHARE = 0.7  # of a person's purchases of their persona's types; the rest of any type
INCLINED, NOT_INCLINED = 2.0, 0.35  # a campaign's effect on a person inclined to its product type, or not
STORE_TYPES = ("own_store", "partner_store", "ecommerce")
SERVICE_CHANNELS = {  # channel as the service desk writes it: (canonical, share, handled_by choices)
    "Telefone": ("call_center", 0.30, ("agent",)),
    "E-mail": ("email", 0.14, ("agent",)),
    "Chat": ("chat", 0.14, ("bot", "agent")),
    "WhatsApp": ("whatsapp", 0.16, ("bot", "agent")),
    "Redes Sociais": ("social", 0.05, ("agent",)),
    "App": ("app", 0.11, ("self_service",)),
    "Loja": ("store", 0.10, ("agent",)),
}
INTERACTION_TYPES = {"Informação": 0.5, "Reclamação": 0.24, "Sugestão": 0.1, "Elogio": 0.16}
REASONS = {
    "Informação": ("Prazo de entrega", "Segunda via de boleto", "Horário da loja", "Programa de fidelidade"),
    "Reclamação": ("Atraso na entrega", "Produto com defeito", "Cobrança indevida", "Atendimento na loja"),
    "Sugestão": ("Novos produtos", "Melhorias no app", "Formas de pagamento"),
    "Elogio": ("Atendimento", "Entrega rápida", "Qualidade do produto"),
}


@dataclass(frozen=True)
class PurchaseModel:
    """The generative parameters, in lifetimes' names (BG/NBD per week; Gamma-Gamma in R$)."""

    r: float = 0.75
    alpha: float = 5.0
    a: float = 0.6
    b: float = 5.0
    p: float = 6.0
    q: float = 4.0
    v: float = 60.0
    buyer_share: float = 0.8
    return_share: float = 0.04

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def to_timestamps(start: np.datetime64, days: np.ndarray) -> np.ndarray:
    return start.astype("datetime64[s]") + np.round(days * 86400).astype("timedelta64[s]")


def business_hours(rng: np.random.Generator, days: np.ndarray) -> np.ndarray:
    """Move each event to a time of day between 08:00 and 22:00 of its day."""
    return np.floor(days) + rng.uniform(8 / 24, 22 / 24, len(days))


def simulate_purchases(
    rng: np.random.Generator, person_count: int, window_days: float, model: PurchaseModel
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Transactions of the BG/NBD process (first purchase at the customer's birth, then Poisson at rate
    lambda until the customer drops out with probability p after a repeat purchase: as in BG/NBD, the first
    purchase never ends a life, so a customer makes min(K, Geometric(p)) repeat purchases), with Gamma-Gamma
    spend.
    Returns (orders with person index, day and amount; latent per-person parameters)."""
    buyer = rng.random(person_count) < model.buyer_share
    purchase_rate = rng.gamma(model.r, 1 / model.alpha, person_count) / 7  # per day
    dropout = rng.beta(model.a, model.b, person_count)
    spend_rate = rng.gamma(model.q, 1 / model.v, person_count)
    birth = rng.uniform(0, window_days, person_count)

    # Repeat purchases within the window: K ~ Poisson(lambda * remaining) events, of which the customer
    # lives through the first min(K, N), N ~ Geometric(p) on 1, 2, ... repeat purchases before dropping
    # out. The first m of K uniform order statistics on [0, remaining] are remaining * S_j / (S_m + Gamma(K + 1 - m)), S_j sums of
    # exponentials: exact, and sized to what is kept.
    buyers = np.flatnonzero(buyer)
    remaining = window_days - birth[buyers]
    events = rng.poisson(purchase_rate[buyers] * remaining)
    repeats_before_dropout = rng.geometric(dropout[buyers])
    repeats = np.minimum(events, repeats_before_dropout)
    owner = np.repeat(buyers, repeats)
    spacing = rng.exponential(1.0, len(owner))
    ends = np.cumsum(repeats)
    starts = ends - repeats
    cumulative = np.cumsum(spacing)
    before = np.concatenate([[0.0], cumulative])[starts]
    partial = cumulative - np.repeat(before, repeats)
    total = partial[ends - 1][repeats > 0] if len(owner) else np.array([])
    group_total = np.zeros(len(buyers))
    group_total[repeats > 0] = total + rng.gamma(np.maximum(events - repeats + 1, 1), 1.0)[repeats > 0]
    repeat_days = birth[owner] + np.repeat(remaining, repeats) * partial / np.repeat(group_total, repeats)

    person = np.concatenate([buyers, owner])
    days = np.concatenate([birth[buyers], repeat_days])
    order = np.lexsort((days, person))
    person, days = person[order], business_hours(rng, days[order])
    keep = days < window_days
    person, days = person[keep], days[keep]
    amount = np.round(rng.gamma(model.p, 1 / spend_rate[person]), 2)
    orders = pd.DataFrame({"person": person, "day": days, "amount": np.clip(amount, 1.0, 50_000.0)})
    latent = pd.DataFrame(
        {
            "is_buyer": buyer,
            "purchase_rate_per_week": purchase_rate * 7,
            "dropout_probability": dropout,
            "spend_rate": spend_rate,
            "first_purchase_day": np.where(buyer, birth, np.nan),
        }
    )
    return orders, latent


def clv_summary(orders: pd.DataFrame, window_days: float, days_per_unit: int = 7) -> pd.DataFrame:
    """The answer key for the CLV inputs of simulated orders (person, day, amount), computed here apart from
    int_clv_inputs: per person at day grain, frequency, recency and T in units of `days_per_unit` days, and
    the mean spend of the repeat purchase days."""
    days = (
        orders.assign(day=np.floor(orders["day"]).astype(int))
        .groupby(["person", "day"], as_index=False)["amount"]
        .sum()
    )
    grouped = days.groupby("person")
    first, last, count = grouped["day"].min(), grouped["day"].max(), grouped["day"].size()
    repeat_spend = days[days["day"] > days["person"].map(first)].groupby("person")["amount"].mean()
    return pd.DataFrame(
        {
            "customer_id": first.index,
            "frequency": (count - 1).to_numpy(),
            "recency": ((last - first) / days_per_unit).to_numpy(),
            "T": ((np.floor(window_days) - first) / days_per_unit).to_numpy(),
            "monetary_value": repeat_spend.reindex(first.index, fill_value=0.0).to_numpy(),
        }
    )


def products_catalogue(rng: np.random.Generator, per_type: int = 20) -> pd.DataFrame:
    rows = []
    for type_index, (type_id, type_name, cost_share) in enumerate(PRODUCT_TYPES):
        family, typical_price = CATALOGUE[type_id]
        prices = np.round(rng.lognormal(np.log(typical_price), 0.6, per_type), 2)
        for number, price in enumerate(prices, start=1):
            rows.append(
                {
                    "product_id": f"SKU-{type_index + 1:02d}{number:03d}",
                    "product_type": type_id,
                    "family": family,
                    "name": f"{type_name} modelo {number}",
                    "list_price": price,
                    "unit_cost": round(price * cost_share * rng.uniform(0.9, 1.1), 2),
                }
            )
    return pd.DataFrame(rows)


def decorate_orders(
    rng: np.random.Generator,
    orders: pd.DataFrame,
    persona: np.ndarray,
    products: pd.DataFrame,
    window_days: float,
) -> pd.DataFrame:
    """Give orders an id, a store type (each person has a preferred one), a product (mostly of the person's
    persona's types) and a cost; add returns."""
    orders = orders.copy()
    count = len(orders)
    preferred_store = rng.choice(len(STORE_TYPES), len(persona), p=[0.45, 0.2, 0.35])
    store = np.where(
        rng.random(count) < 0.8, preferred_store[orders["person"]], rng.integers(0, len(STORE_TYPES), count)
    )
    persona_types = np.array([types for _, types in PERSONAS])[persona[orders["person"].to_numpy()]]
    inclined_type = persona_types[np.arange(count), rng.integers(0, persona_types.shape[1], count)]
    product_type = np.where(
        rng.random(count) < PERSONA_PURCHASE_SHARE, inclined_type, rng.integers(0, len(PRODUCT_TYPES), count)
    )
    # An order a campaign brought is of the campaign's product type (and on the web shop when bought
    # through its link): the columns product_type_index and store_index, -1 where free.
    for column, drawn in (("product_type_index", product_type), ("store_index", store)):
        if column in orders:
            forced = orders.pop(column).to_numpy()
            drawn[forced >= 0] = forced[forced >= 0]
    per_type = len(products) // len(PRODUCT_TYPES)
    product_index = product_type * per_type + rng.integers(0, per_type, count)
    cost_share = np.array([entry[2] for entry in PRODUCT_TYPES])[product_type]
    orders = orders.assign(
        order_id=np.char.add("PED", np.char.zfill(np.arange(1, count + 1).astype(str), 9)),
        store_type=np.array(STORE_TYPES)[store],
        store_id=np.char.add("LJ", np.char.zfill(rng.integers(1, 60, count).astype(str), 3)),
        product_id=products["product_id"].to_numpy()[product_index],
        product_type=products["product_type"].to_numpy()[product_index],
        quantity=rng.choice([1, 2, 3], count, p=[0.7, 0.2, 0.1]),
    )
    orders["cost"] = np.round(orders["amount"] * cost_share * rng.uniform(0.9, 1.1, count), 2)
    orders.loc[orders["store_type"] == "ecommerce", "store_id"] = "SITE"

    returned = orders[rng.random(count) < 0.04].copy()
    returned["day"] = returned["day"] + rng.uniform(1, 20, len(returned))
    share = np.where(rng.random(len(returned)) < 0.7, 1.0, rng.uniform(0.2, 0.8, len(returned)))
    returned["amount"] = -np.round(returned["amount"] * share, 2)
    returned["cost"] = -np.round(returned["cost"] * share, 2)
    returned["order_id"] = returned["order_id"] + "-DEV"
    returned = returned[returned["day"] < window_days]
    return pd.concat([orders, returned], ignore_index=True).sort_values(["person", "day"], ignore_index=True)


def draw_personas(rng: np.random.Generator, person_count: int) -> np.ndarray:
    """Each person's persona (index into PERSONAS), equally likely."""
    return rng.integers(0, len(PERSONAS), person_count)


def inclination(persona: np.ndarray, product_type_index: np.ndarray) -> np.ndarray:
    """INCLINED where the product type is one of the persona's, NOT_INCLINED elsewhere."""
    persona_types = np.array([types for _, types in PERSONAS])[persona]
    inclined = (persona_types == np.asarray(product_type_index)[:, None]).any(axis=1)
    return np.where(inclined, INCLINED, NOT_INCLINED)


def simulate_service(rng: np.random.Generator, latent: pd.DataFrame, window_days: float) -> pd.DataFrame:
    """Service contacts: buyers call more; complaints are resolved less often."""
    person_count = len(latent)
    per_person = rng.poisson(np.where(latent["is_buyer"], 3.0, 1.2))
    person = np.repeat(np.arange(person_count), per_person)
    count = len(person)
    first_day = np.nan_to_num(latent["first_purchase_day"].to_numpy(), nan=0.0)[person]
    day = business_hours(rng, first_day + rng.random(count) * (window_days - first_day))
    channels = list(SERVICE_CHANNELS)
    channel = np.array(channels)[
        rng.choice(len(channels), count, p=[SERVICE_CHANNELS[name][1] for name in channels])
    ]
    types = list(INTERACTION_TYPES)
    interaction_type = np.array(types)[rng.choice(len(types), count, p=list(INTERACTION_TYPES.values()))]
    reason = np.empty(count, dtype=object)
    handled_by = np.empty(count, dtype=object)
    for name in types:
        mask = interaction_type == name
        reason[mask] = np.array(REASONS[name])[rng.integers(0, len(REASONS[name]), mask.sum())]
    for name, (_, _, handlers) in SERVICE_CHANNELS.items():
        mask = channel == name
        handled_by[mask] = np.array(handlers)[rng.integers(0, len(handlers), mask.sum())]
    resolved = rng.random(count) < np.where(interaction_type == "Reclamação", 0.7, 0.95)
    duration = np.round(rng.gamma(2.0, 240, count)).astype(int)
    resolved_day = np.where(resolved, day + rng.exponential(1.5, count), np.nan)
    service = pd.DataFrame(
        {
            "person": person,
            "day": day,
            "interaction_id": np.char.add("ATD", np.char.zfill(np.arange(1, count + 1).astype(str), 10)),
            "channel": channel,
            "interaction_type": interaction_type,
            "reason": reason,
            "handled_by": handled_by,
            "duration_seconds": duration,
            "is_resolved": resolved,
            "resolved_day": np.where(resolved_day < window_days, resolved_day, np.nan),
        }
    )
    return service.sort_values("day", ignore_index=True)


def simulate_consents(
    rng: np.random.Generator, records: pd.DataFrame, channels: tuple[str, ...], window_days: float
) -> pd.DataFrame:
    """Consent statements per record and channel: most opt in at sign-up; some opt out later."""
    record = np.repeat(np.arange(len(records)), len(channels))
    channel = np.tile(np.array(channels), len(records))
    created = records["created_day"].to_numpy()[record]
    count = len(record)
    opted_in = rng.random(count) < 0.75
    opted_out_later = opted_in & (rng.random(count) < 0.1)
    opted_out_only = ~opted_in & (rng.random(count) < 0.05)
    in_day = created + rng.uniform(0, 2, count)
    out_day = in_day + rng.random(count) * (window_days - in_day)
    statements = [
        (opted_in, in_day, "opt_in"),
        (opted_out_later | opted_out_only, out_day, "opt_out"),
    ]
    frames = [
        pd.DataFrame(
            {
                "record": record[mask],
                "channel": channel[mask],
                "status": status,
                "day": np.minimum(day[mask], window_days - 0.01),
                "legal_basis": np.where(rng.random(mask.sum()) < 0.9, "consent", "legitimate_interest"),
            }
        )
        for mask, day, status in statements
    ]
    return pd.concat(frames, ignore_index=True).sort_values(["record", "day"], ignore_index=True)
