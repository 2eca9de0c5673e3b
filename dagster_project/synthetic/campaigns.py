"""Synthetic campaigns with a true effect, random control groups, and the truth to measure them against.

Each campaign draws its audience among the marketing platform's people who are not inside another campaign's
attribution window (a contact-pressure rule: a person is in at most one campaign's window at a time, so the
effects of two campaigns never mix), holds out a random control group (not contacted), and contacts the rest.
A contact changes what the customer would have bought anyway (the base purchases of the BG/NBD process):
- with probability `effect` it brings one extra purchase of the campaign's product type inside the attribution
  window; `effect` = the medium's effect x the campaign's multiplier (0 for a campaign without effect) x a
  factor of the customer's recency (recently active customers move, lapsed ones hardly) x the person's
  inclination to the campaign's product type (behaviour.PERSONAS: inclined persons move, the others hardly);
- a customer with an open complaint at contact time gets no extra purchase, and with probability `PUT_OFF`
  is put off: their base purchases in the window do not happen.

The truth of a campaign is the expected value of what it measures, over the random split into contacted and
control and the contact's own draws, given the base purchases (docs/metrics.md, "Campaign lift"):
conversion without contact b (a base purchase in the window), with contact b (1 - put_off) + (1 - b) effect;
revenue effect = effect x the customer's expected spend - put_off x the base revenue in the window.
A contact's true uplift (truth/contact_uplift.csv) is what the contact changes in the chance of a purchase in
the window: effect - put_off x (1 if the customer would have bought anyway, else 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dagster_project.synthetic.behaviour import (
    PRODUCT_TYPES,
    STORE_TYPES,
    PurchaseModel,
    business_hours,
    inclination,
)

ATTRIBUTION_DAYS = 30
PUT_OFF = 0.3  # chance a contact puts a customer with an open complaint off buying in the window
SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class Medium:
    cost_per_contact: float  # R$
    effect: float  # extra purchase probability in the window, for a recently active customer
    reach: float  # relative audience size (e-mail and push go to many, telemarketing to few)
    declines: float  # share of the contacted who say no (recorded as a declined response)
    tracked: float  # share of the extra purchases made through the campaign's link, code or call
    online: bool  # a tracked purchase is made on the web shop


MEDIA = {
    "catalog": Medium(4.50, 0.100, 0.6, 0.0, 0.3, False),
    "direct_mail": Medium(2.20, 0.070, 0.8, 0.0, 0.3, False),
    "email": Medium(0.01, 0.030, 2.0, 0.01, 0.7, True),
    "sms": Medium(0.06, 0.040, 1.5, 0.01, 0.7, True),
    "push": Medium(0.002, 0.020, 2.0, 0.0, 0.8, True),
    "whatsapp": Medium(0.09, 0.060, 1.0, 0.03, 0.7, True),
    "telemarketing": Medium(5.00, 0.120, 0.3, 0.35, 1.0, True),
}
OBJECTIVES = ("acquisition", "cross_sell", "up_sell", "retention", "recovery")
RECENCY_FACTORS = ((90, 1.5), (365, 0.7))  # (days since the last purchase at most, factor); beyond: LAPSED
LAPSED = 0.05
SUBJECTS = {
    "acquisition": "Bem-vindo! {tipo} com frete grátis na primeira compra",
    "cross_sell": "Você também vai gostar: {tipo} selecionados para você",
    "up_sell": "Chegou a hora de trocar: {tipo} com condições especiais",
    "retention": "Obrigado por estar com a gente: {tipo} com 15% de desconto",
    "recovery": "Sentimos sua falta! Volte e ganhe 20% em {tipo}",
}
MESSAGE = (
    "Olá! Preparamos ofertas de {tipo} para você, válidas de {inicio} a {fim}. "
    "Aproveite nas lojas, no site ou no app."
)


def simulate_campaigns(rng: np.random.Generator, window_days: float, per_month: int = 2) -> pd.DataFrame:
    """Campaigns over the window (each ends an attribution window before the data does), with their planned
    control share, reach and true effect multiplier."""
    count = max(1, int(window_days / 30.4 * per_month))
    media = np.array(list(MEDIA))[rng.integers(0, len(MEDIA), count)]
    last_start = window_days - ATTRIBUTION_DAYS - 32
    start = np.floor(np.sort(rng.uniform(0, last_start, count)))
    end = start + rng.integers(7, 31, count)
    objective = np.array(OBJECTIVES)[rng.integers(0, len(OBJECTIVES), count)]
    type_index = rng.integers(0, len(PRODUCT_TYPES), count)
    type_names = np.array([entry[1] for entry in PRODUCT_TYPES])[type_index]
    control_share = np.where(rng.random(count) < 0.06, 0.0, np.round(rng.uniform(0.05, 0.20, count), 2))
    multiplier = np.where(rng.random(count) < 0.12, 0.0, rng.lognormal(0.0, 0.3, count))
    reach = rng.lognormal(0.0, 0.8, count) * np.array([MEDIA[name].reach for name in media])
    return pd.DataFrame(
        {
            "campaign_id": [f"CMP{index + 1:05d}" for index in range(count)],
            "name": [
                f"{objective[index].replace('_', ' ').title()} {type_names[index]} via {media[index]}"
                for index in range(count)
            ],
            "media": media,
            "objective": objective,
            "product_type": np.array([entry[0] for entry in PRODUCT_TYPES])[type_index],
            "product_type_index": type_index,
            "subject": [SUBJECTS[objective[index]].format(tipo=type_names[index]) for index in range(count)],
            "start_day": start,
            "end_day": end,
            "cost_per_contact": [MEDIA[name].cost_per_contact for name in media],
            "planned_control_share": control_share,
            "effect_multiplier": multiplier,
            "reach": reach,
        }
    )


def _sorted_keys(person: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    return person.astype(np.int64) * 10**10 + seconds.astype(np.int64)


def _seconds(days: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(days, dtype=float) * SECONDS_PER_DAY).astype(np.int64)


def draw_audiences(
    rng: np.random.Generator, campaigns: pd.DataFrame, audience: np.ndarray, person_count: int,
    contacts_per_person: float,
) -> pd.DataFrame:  # fmt: skip
    """Campaign by campaign in start order: the members (people not inside another campaign's window), each
    with a contact day in the campaign's period, and the random control group."""
    busy_until = np.full(person_count, -np.inf)
    target = len(audience) * contacts_per_person * campaigns["reach"] / campaigns["reach"].sum()
    frames = []
    for index, campaign in enumerate(campaigns.itertuples()):
        eligible = audience[busy_until[audience] < campaign.start_day]
        size = min(len(eligible), max(20, round(target.iloc[index])))
        members = np.sort(rng.choice(eligible, size, replace=False))
        day = business_hours(
            rng, campaign.start_day + rng.random(size) * (campaign.end_day - campaign.start_day)
        )
        busy_until[members] = day + ATTRIBUTION_DAYS
        frames.append(
            pd.DataFrame(
                {
                    "campaign": index,
                    "person": members,
                    "day": day,
                    "is_control": rng.random(size) < campaign.planned_control_share,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _open_complaints(service: pd.DataFrame, person: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """Complaints of each person made before `seconds` and not resolved by then."""
    complaints = service[service["interaction_type"] == "Reclamação"]
    opened = np.sort(_sorted_keys(complaints["person"].to_numpy(), _seconds(complaints["day"])))
    resolved = complaints[complaints["resolved_day"].notna()]
    closed = np.sort(_sorted_keys(resolved["person"].to_numpy(), _seconds(resolved["resolved_day"])))
    start, moment = _sorted_keys(person, np.zeros(len(person))), _sorted_keys(person, seconds)
    opened_before = np.searchsorted(opened, moment) - np.searchsorted(opened, start)
    closed_before = np.searchsorted(closed, moment) - np.searchsorted(closed, start)
    return opened_before - closed_before


def simulate_contacts(
    rng: np.random.Generator, campaigns: pd.DataFrame, audience: np.ndarray, orders: pd.DataFrame,
    latent: pd.DataFrame, service: pd.DataFrame, persona: np.ndarray, model: PurchaseModel,
    contacts_per_person: float = 6.0,
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:  # fmt: skip
    """The contacts (with their truth), the purchases the campaigns added (person, day, amount, forced product
    type and store, the contact that caused it) and the mask of base orders the campaigns put off.

    `orders` are the base purchases (person, day, amount) sorted by person and day."""
    contacts = draw_audiences(rng, campaigns, audience, len(latent), contacts_per_person)
    count = len(contacts)
    person, campaign = contacts["person"].to_numpy(), contacts["campaign"].to_numpy()
    moment = _seconds(contacts["day"])
    medium = [MEDIA[name] for name in campaigns["media"].to_numpy()[campaign]]

    # The base purchases around each contact: the last before it, and those inside its window.
    keys = _sorted_keys(orders["person"].to_numpy(), _seconds(orders["day"]))
    revenue_to = np.concatenate([[0.0], np.cumsum(orders["amount"].to_numpy())])
    before = np.searchsorted(keys, _sorted_keys(person, moment)) - 1
    had_purchase = (before >= 0) & (orders["person"].to_numpy()[np.maximum(before, 0)] == person)
    days_since = np.where(
        had_purchase, contacts["day"] - orders["day"].to_numpy()[np.maximum(before, 0)], np.inf
    )
    window_first = np.searchsorted(keys, _sorted_keys(person, moment), side="right")
    window_end = np.searchsorted(
        keys, _sorted_keys(person, moment + ATTRIBUTION_DAYS * SECONDS_PER_DAY), side="right"
    )
    base_converts = window_end > window_first
    base_revenue = revenue_to[window_end] - revenue_to[window_first]

    recency_factor = np.full(count, LAPSED)
    for days, factor in reversed(RECENCY_FACTORS):
        recency_factor[days_since <= days] = factor
    open_complaint = _open_complaints(service, person, moment) > 0
    multiplier = campaigns["effect_multiplier"].to_numpy()[campaign]
    inclined = inclination(persona[person], campaigns["product_type_index"].to_numpy()[campaign])
    effect = (
        np.array([entry.effect for entry in medium])
        * multiplier
        * recency_factor
        * inclined
        * ~open_complaint
    )
    put_off_chance = np.where(open_complaint & (multiplier > 0), PUT_OFF, 0.0)
    expected_spend = model.p / latent["spend_rate"].to_numpy()[person]

    contacted = ~contacts["is_control"].to_numpy()
    induced = contacted & (rng.random(count) < effect)
    put_off = contacted & (rng.random(count) < put_off_chance) & base_converts
    removed = np.zeros(len(orders), dtype=bool)
    lengths = (window_end - window_first)[put_off]
    removed[np.repeat(window_first[put_off], lengths) + _ranges(lengths)] = True

    tracked = induced & (rng.random(count) < np.array([entry.tracked for entry in medium]))
    online = tracked & np.array([entry.online for entry in medium])
    extra_day = business_hours(
        rng, contacts["day"].to_numpy()[induced] + 1 + rng.uniform(0, ATTRIBUTION_DAYS - 2, induced.sum())
    )
    spend_rate = latent["spend_rate"].to_numpy()[person[induced]]
    extra = pd.DataFrame(
        {
            "person": person[induced],
            "day": extra_day,
            "amount": np.clip(np.round(rng.gamma(model.p, 1 / spend_rate), 2), 1.0, 50_000.0),
            "product_type_index": campaigns["product_type_index"].to_numpy()[campaign[induced]],
            "store_index": np.where(online[induced], STORE_TYPES.index("ecommerce"), -1),
            "induced_by": np.flatnonzero(induced),
        }
    )

    decline_share = np.array([entry.declines for entry in medium])
    declined = contacted & ~tracked & (rng.random(count) > 1 - decline_share)
    responded_day = np.full(count, np.nan)
    responded_day[induced] = np.where(tracked[induced], extra_day, np.nan)
    responded_day[declined] = contacts["day"].to_numpy()[declined] + rng.exponential(2.0, declined.sum())
    contacts = contacts.assign(
        response=np.where(tracked, "accepted", np.where(declined, "declined", np.array(None, dtype=object))),
        responded_day=responded_day,
        conversion_without_contact=base_converts.astype(float),
        conversion_with_contact=base_converts * (1 - put_off_chance) + ~base_converts * effect,
        revenue_effect=effect * expected_spend - put_off_chance * base_revenue,
        true_uplift=effect - put_off_chance * base_converts,
        tracked=tracked,
    )
    return contacts, extra, removed


def _ranges(lengths: np.ndarray) -> np.ndarray:
    """[2, 3] -> [0, 1, 0, 1, 2]."""
    ends = np.cumsum(lengths)
    return np.arange(ends[-1] if len(ends) else 0) - np.repeat(ends - lengths, lengths)


def contact_uplift_truth(
    campaigns: pd.DataFrame, contacts: pd.DataFrame, person_ids: np.ndarray
) -> pd.DataFrame:
    """truth/contact_uplift.csv: per campaign and person drawn for it (contacted or control), the true uplift
    of contacting them: the change in the chance of a purchase in the attribution window."""
    return pd.DataFrame(
        {
            "campaign_id": campaigns["campaign_id"].to_numpy()[contacts["campaign"]],
            "person_id": person_ids[contacts["person"]],
            "is_control": contacts["is_control"].to_numpy(),
            "true_uplift": contacts["true_uplift"].round(6).to_numpy(),
        }
    )


def campaign_truth(campaigns: pd.DataFrame, contacts: pd.DataFrame) -> pd.DataFrame:
    """truth/campaign_effects.csv: per campaign, the expected conversion of the contacted and of the control
    group (means over the whole drawn audience: what a random split measures on average), and the expected
    incremental conversions and revenue of the contacted."""
    grouped = contacts.groupby("campaign")
    contacted = grouped["is_control"].agg(lambda control: int((~control).sum()))
    treated = grouped["conversion_with_contact"].mean()
    control = grouped["conversion_without_contact"].mean()
    truth = pd.DataFrame(
        {
            "campaign_id": campaigns["campaign_id"].to_numpy()[contacted.index],
            "media": campaigns["media"].to_numpy()[contacted.index],
            "contacted": contacted.to_numpy(),
            "control": grouped["is_control"].sum().astype(int).to_numpy(),
            "true_conversion_treated": treated.round(6).to_numpy(),
            "true_conversion_control": control.round(6).to_numpy(),
            "true_lift_abs": (treated - control).round(6).to_numpy(),
            "true_incremental_conversions": ((treated - control) * contacted).round(3).to_numpy(),
            "true_incremental_revenue": (grouped["revenue_effect"].mean() * contacted).round(2).to_numpy(),
            "has_effect": campaigns["effect_multiplier"].to_numpy()[contacted.index] > 0,
        }
    )
    return truth
