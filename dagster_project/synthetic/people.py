"""Synthetic Brazilian people and how each source system writes them down (vectorised with NumPy).

A person is the truth; a source record is one system's noisy view of a person: its own id, the name
with typos or in capitals, a formatted or bare CPF (sometimes with a wrong digit), a phone written one of
the ways Brazilian systems write phones, a missing or placeholder e-mail.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from faker.providers.person.pt_BR import Provider as PersonNames

# (city, state, area code, weight ~ metropolitan population in millions)
CITIES: tuple[tuple[str, str, int, float], ...] = (
    ("São Paulo", "SP", 11, 21.0),
    ("Rio de Janeiro", "RJ", 21, 12.0),
    ("Belo Horizonte", "MG", 31, 5.5),
    ("Brasília", "DF", 61, 4.5),
    ("Porto Alegre", "RS", 51, 4.0),
    ("Recife", "PE", 81, 4.0),
    ("Fortaleza", "CE", 85, 4.0),
    ("Salvador", "BA", 71, 3.9),
    ("Curitiba", "PR", 41, 3.6),
    ("Campinas", "SP", 19, 3.2),
    ("Goiânia", "GO", 62, 2.6),
    ("Manaus", "AM", 92, 2.6),
    ("Belém", "PA", 91, 2.5),
    ("Vitória", "ES", 27, 2.0),
    ("São Luís", "MA", 98, 1.6),
    ("Natal", "RN", 84, 1.5),
    ("Maceió", "AL", 82, 1.3),
    ("João Pessoa", "PB", 83, 1.3),
    ("Florianópolis", "SC", 48, 1.2),
    ("Teresina", "PI", 86, 1.2),
    ("Cuiabá", "MT", 65, 1.0),
    ("Campo Grande", "MS", 67, 0.9),
    ("Aracaju", "SE", 79, 0.9),
    ("Ribeirão Preto", "SP", 16, 1.2),
    ("Uberlândia", "MG", 34, 0.7),
    ("Londrina", "PR", 43, 0.6),
    ("Joinville", "SC", 47, 0.6),
    ("São José dos Campos", "SP", 12, 0.7),
)
STREET_KINDS = ("Rua ", "Avenida ", "Travessa ", "Alameda ")
EMAIL_DOMAINS = ("gmail.com", "hotmail.com", "outlook.com", "yahoo.com.br", "uol.com.br", "bol.com.br")
PLACEHOLDER_EMAILS = ("naotem@naotem.com", "teste@teste.com", "sem@email.com", "nao@informado.com")


def cpf_check_digits(first_nine: np.ndarray) -> np.ndarray:
    """Append the two CPF check digits to rows of nine digits (array of shape (n, 9)) -> (n, 11)."""
    first_weights = np.arange(10, 1, -1)
    first = (first_nine @ first_weights * 10 % 11) % 10
    with_first = np.column_stack([first_nine, first])
    second = (with_first @ np.arange(11, 1, -1) * 10 % 11) % 10
    return np.column_stack([with_first, second])


def digits_to_text(digits: np.ndarray) -> np.ndarray:
    """Rows of digits -> zero-padded strings ([[0, 1, 2]] -> ['012'])."""
    width = digits.shape[1]
    numbers = digits.astype(np.int64) @ (10 ** np.arange(width - 1, -1, -1, dtype=np.int64))
    return np.char.zfill(numbers.astype(str), width)


def strip_accents(values: pd.Series) -> pd.Series:
    return values.str.normalize("NFKD").str.encode("ascii", "ignore").str.decode("ascii")


def make_people(rng: np.random.Generator, count: int, end: np.datetime64) -> pd.DataFrame:
    """One row per person: names, CPF, birth date, city, phone and e-mail as the person really has them."""
    female = rng.random(count) < 0.52
    female_names = np.array(list(PersonNames.first_names_female))
    male_names = np.array(list(PersonNames.first_names_male))
    surnames = np.array(list(PersonNames.last_names))
    first = np.where(
        female,
        female_names[rng.integers(0, len(female_names), count)],
        male_names[rng.integers(0, len(male_names), count)],
    )
    middle = surnames[rng.integers(0, len(surnames), count)]
    last = surnames[rng.integers(0, len(surnames), count)]

    nine = rng.integers(0, 10, (count, 9))
    nine[:, 0] = rng.integers(1, 10, count)  # never a run of one repeated digit
    cpf = digits_to_text(cpf_check_digits(nine))

    weights = np.array([city[3] for city in CITIES])
    city_index = rng.choice(len(CITIES), count, p=weights / weights.sum())
    area_code = np.array([city[2] for city in CITIES])[city_index]
    subscriber = rng.integers(0, 100_000_000, count)
    phone = np.char.add(
        np.char.add("+55", area_code.astype(str)), np.char.add("9", np.char.zfill(subscriber.astype(str), 8))
    )

    postal_code = np.char.zfill(rng.integers(1_000_000, 99_999_999, count).astype(str), 8)
    street = np.char.add(
        np.array(STREET_KINDS)[rng.integers(0, len(STREET_KINDS), count)],
        surnames[rng.integers(0, len(surnames), count)],
    )
    house_number = rng.integers(1, 3000, count)

    # Households: about one person in twenty lives with another: same phone, surname, city, CEP and address.
    sharing = np.flatnonzero(rng.random(count) < 0.05)
    relatives = rng.integers(0, count, len(sharing))
    phone[sharing] = phone[relatives]
    last[sharing] = last[relatives]
    city_index[sharing] = city_index[relatives]
    postal_code[sharing] = postal_code[relatives]
    street[sharing] = street[relatives]
    house_number[sharing] = house_number[relatives]

    age_days = rng.integers(18 * 365, 80 * 365, count)
    people = pd.DataFrame(
        {
            "person_id": np.char.add("P", np.char.zfill(np.arange(1, count + 1).astype(str), 8)),
            "first_name": first,
            "middle_name": middle,
            "last_name": last,
            "cpf": cpf,
            "birth_date": (end - age_days.astype("timedelta64[D]")).astype("datetime64[D]"),
            "city": np.array([city[0] for city in CITIES])[city_index],
            "state": np.array([city[1] for city in CITIES])[city_index],
            "phone": phone,
            "postal_code": postal_code,
            "street": street,
            "house_number": house_number,
        }
    )
    local_part = (
        strip_accents(people["first_name"].str.lower().str.replace(" ", ""))
        + np.where(rng.random(count) < 0.5, ".", "_")
        + strip_accents(people["last_name"].str.lower().str.replace(" ", ""))
        + pd.Series(rng.integers(1, 999, count).astype(str)).where(rng.random(count) < 0.6, "")
    )
    email = local_part + "@" + np.array(EMAIL_DOMAINS)[rng.integers(0, len(EMAIL_DOMAINS), count)]
    # A mailbox belongs to one person: a name that is taken gets the person's number appended.
    taken = email.duplicated().to_numpy()
    numbered = (
        local_part + "." + people["person_id"].str[1:].str.lstrip("0") + "@" + email.str.split("@").str[1]
    )
    people["email"] = email.where(~taken, numbered)
    return people


# ------------------------------------------------------------------------------------ source records


def _typo(rng: np.random.Generator, values: pd.Series, share: float) -> pd.Series:
    """Drop or double one inner character in a share of the values."""
    # Edit a NumPy copy: writing cells of an Arrow-backed Series one by one is quadratic.
    edited = values.to_numpy(dtype=object).copy()
    chosen = np.flatnonzero((rng.random(len(values)) < share) & (values.str.len().to_numpy() > 4))
    for index in chosen:
        text = edited[index]
        position = int(rng.integers(1, len(text) - 1))
        edited[index] = (
            text[:position] + text[position + 1 :]
            if rng.random() < 0.5
            else text[: position + 1] + text[position:]
        )
    return pd.Series(edited, index=values.index, dtype=values.dtype)


def _missing(rng: np.random.Generator, values: pd.Series, share: float) -> pd.Series:
    return values.where(rng.random(len(values)) >= share, None)


def write_cpf(
    rng: np.random.Generator, cpf: pd.Series, formatted_share: float, wrong_share: float
) -> pd.Series:
    """CPFs as a system writes them: bare or 000.000.000-00, a share with one wrong digit."""
    edited = cpf.to_numpy(dtype=object).copy()
    for index in np.flatnonzero(rng.random(len(cpf)) < wrong_share):
        text = edited[index]
        position = int(rng.integers(0, 9))
        edited[index] = text[:position] + str((int(text[position]) + 1) % 10) + text[position + 1 :]
    cpf = pd.Series(edited, index=cpf.index, dtype=cpf.dtype)
    formatted = cpf.str[:3] + "." + cpf.str[3:6] + "." + cpf.str[6:9] + "-" + cpf.str[9:]
    return formatted.where(rng.random(len(cpf)) < formatted_share, cpf)


def write_phone(rng: np.random.Generator, e164: pd.Series) -> pd.Series:
    """Phones (+55AA9XXXXXXXX) written the ways Brazilian systems write them."""
    area, first, last = e164.str[3:5], e164.str[5:10], e164.str[10:]
    styles = [
        "+55 (" + area + ") " + first + "-" + last,
        "(" + area + ") " + first + "-" + last,
        area + first + last,
        "0" + area + " " + first + " " + last,
        e164,
        "55" + area + first + last,
        first + "-" + last,  # no area code: not enough to identify anyone
    ]
    choice = rng.choice(len(styles), len(e164), p=[0.25, 0.25, 0.2, 0.08, 0.12, 0.05, 0.05])
    written = styles[0].copy()
    for index, style in enumerate(styles[1:], start=1):
        written = written.where(choice != index, style)
    return written


def write_email(
    rng: np.random.Generator, email: pd.Series, upper_share: float, placeholder_share: float
) -> pd.Series:
    email = email.where(rng.random(len(email)) >= upper_share, email.str.upper())
    email = email.where(rng.random(len(email)) >= 0.02, email.str.replace("gmail", "gmial", regex=False))
    placeholder = pd.Series(
        np.array(PLACEHOLDER_EMAILS)[rng.integers(0, len(PLACEHOLDER_EMAILS), len(email))]
    )
    return email.where(rng.random(len(email)) >= placeholder_share, placeholder.to_numpy())


def source_records(
    rng: np.random.Generator,
    people: pd.DataFrame,
    person_index: np.ndarray,
    noise: dict[str, float],
    upper_case_names: bool = False,
) -> pd.DataFrame:
    """One system's records of the given people (an index may repeat: a person registered twice)."""
    chosen = people.iloc[person_index].reset_index(drop=True)
    count = len(chosen)
    with_middle = rng.random(count) >= noise.get("drop_middle_name", 0.1)
    name = (
        chosen["first_name"]
        + pd.Series(np.where(with_middle, " " + chosen["middle_name"], ""))
        + " "
        + chosen["last_name"]
    )
    name = _typo(rng, name, noise.get("name_typo", 0.04))
    if upper_case_names:
        name = strip_accents(name).str.upper().where(rng.random(count) < 0.5, name.str.upper())
    document = _missing(
        rng,
        write_cpf(rng, chosen["cpf"], noise.get("cpf_formatted", 0.5), noise.get("cpf_wrong", 0.01)),
        noise.get("cpf_missing", 0.2),
    )
    email = _missing(
        rng,
        write_email(
            rng, chosen["email"], noise.get("email_upper", 0.05), noise.get("email_placeholder", 0.02)
        ),
        noise.get("email_missing", 0.15),
    )
    phone = _missing(rng, write_phone(rng, chosen["phone"]), noise.get("phone_missing", 0.1))
    # Systems require at least one way to reach the customer: a record with none gets its e-mail back.
    unreachable = document.isna() & email.isna() & phone.isna()
    email = email.where(~unreachable, chosen["email"])
    records = pd.DataFrame(
        {
            "person_id": chosen["person_id"],
            "full_name": name,
            "document_id": document,
            "email": email,
            "phone": phone,
            "birth_date": _missing(rng, chosen["birth_date"].dt.date, noise.get("birth_date_missing", 0.3)),
            "city": chosen["city"],
            "state": chosen["state"],
            "postal_code": (chosen["postal_code"].str[:5] + "-" + chosen["postal_code"].str[5:]),
            "address": _missing(
                rng,
                write_address(rng, chosen["street"], chosen["house_number"]),
                noise.get("address_missing", 0.3),
            ),
        }
    )
    return records


def write_address(rng: np.random.Generator, street: pd.Series, number: pd.Series) -> pd.Series:
    """Street and number as systems write them: 'Rua Silva, 123', 'R. Silva 123', 'RUA SILVA, Nº 123'."""
    number = number.astype(str)
    abbreviated = street.str.replace("Rua ", "R. ", regex=False).str.replace("Avenida ", "Av. ", regex=False)
    styles = [
        street + ", " + number,
        abbreviated + " " + number,
        strip_accents(street).str.upper() + ", Nº " + number,
    ]
    choice = rng.choice(len(styles), len(street), p=[0.6, 0.25, 0.15])
    written = styles[0].copy()
    for index, style in enumerate(styles[1:], start=1):
        written = written.where(choice != index, style)
    return written


def _abbreviated_middle_name(rng: np.random.Generator, chosen: pd.DataFrame, share: float) -> pd.Series:
    """First, middle and last name, the middle one cut to its initial ('Maria S. Costa') in a share."""
    initial = chosen["middle_name"].str[0] + "."
    middle = chosen["middle_name"].where(rng.random(len(chosen)) >= share, initial)
    return chosen["first_name"] + " " + middle + " " + chosen["last_name"]


def _day_and_month_swapped(rng: np.random.Generator, dates: pd.Series, share: float) -> pd.Series:
    """Birth dates with day and month swapped in a share of those where both read as a month (day <= 12)."""
    stamps = pd.to_datetime(dates)
    year, month, day = stamps.dt.year, stamps.dt.month, stamps.dt.day
    swap = ((day <= 12) & (day != month)).to_numpy() & (rng.random(len(dates)) < share)
    swapped = pd.to_datetime(
        pd.DataFrame({"year": year, "month": day.where(swap, month), "day": month.where(swap, day)})
    )
    return swapped.dt.date


def no_key_records(
    rng: np.random.Generator, people: pd.DataFrame, person_index: np.ndarray, noise: dict[str, float]
) -> pd.DataFrame:
    """Records of a system that keeps no shared key (an old store chain's loyalty club: a name typed at the
    till, a birth date, an address; no e-mail, phone or CPF): the name with typos, its middle name cut to an
    initial or left out, in capitals; the birth date sometimes with day and month swapped; the CEP written
    with or without its dash."""
    chosen = people.iloc[person_index].reset_index(drop=True)
    count = len(chosen)
    name = _abbreviated_middle_name(rng, chosen, noise["middle_initial"])
    name = name.where(
        rng.random(count) >= noise["drop_middle_name"], chosen["first_name"] + " " + chosen["last_name"]
    )
    name = _typo(rng, name, noise["name_typo"])
    name = strip_accents(name).str.upper().where(rng.random(count) < noise["upper_case"], name)
    birth_date = _day_and_month_swapped(rng, chosen["birth_date"], noise["birth_date_swapped"])
    postal_code = chosen["postal_code"].where(
        rng.random(count) < 0.5, chosen["postal_code"].str[:5] + "-" + chosen["postal_code"].str[5:]
    )
    return pd.DataFrame(
        {
            "person_id": chosen["person_id"],
            "full_name": name,
            "document_id": None,
            "email": None,
            "phone": None,
            "birth_date": _missing(rng, birth_date, noise["birth_date_missing"]),
            "city": chosen["city"],
            "state": chosen["state"],
            "postal_code": _missing(rng, postal_code, noise["postal_code_missing"]),
            "address": _missing(
                rng, write_address(rng, chosen["street"], chosen["house_number"]), noise["address_missing"]
            ),
        }
    )
