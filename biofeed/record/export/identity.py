"""Who a recording is about, as exports write it, and how ``--anonymize`` removes it.

A recording folder names its client by pseudonym only (``recording.json`` ``client``); a real name,
birth date and sex can come from the caller (the sessions catalogue) or from an optional
``patient`` object in ``recording.json`` (``name``, ``birth_date`` as ``YYYY-MM-DD``, ``sex`` ``F`` or
``M``). EDF+ keeps them in the local patient identification field; ``--anonymize`` writes it as
``X X X X`` (EDF+ section 2.1.3.3: unknown or anonymised subfields are ``X``), leaves the pseudonym
out of every column and copy of ``recording.json``, and replaces the name and pseudonym wherever
they appear in event texts: written as given, without accents, transliterated (``ü`` -> ``ue``), in
any case, split at spaces and hyphens, and the birth date in the usual numeric and written forms
(:meth:`ClientIdentity.redact`).
"""

from __future__ import annotations

import datetime
import functools
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["IDENTITY_META_KEYS", "ClientIdentity", "edf_ascii", "edf_date", "exported_meta"]

IDENTITY_META_KEYS: tuple[str, ...] = ("client", "patient")
"""Keys of ``recording.json`` that name the client; an anonymized export keeps none of them."""

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_TRANSLITERATION = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"})
_NAME_SEPARATORS = re.compile(r"[\s\-_'\u2019.,]+")
_MIN_NAME_PART = 3
"""Name parts shorter than this are not redacted on their own (``Li`` would take ``li`` out of every word)."""
_SEXES = ("F", "M")


def edf_ascii(text: str) -> str:
    """Return ``text`` as printable ASCII (EDF header fields allow bytes 32..126 only).

    Accents are dropped (``Zoë`` -> ``Zoe``), the micro sign is ``u`` (``µV`` -> ``uV``, as EDF
    writes it); other characters become ``?``.
    """
    folded = unicodedata.normalize("NFKD", text.replace("\u00b5", "u").replace("\u03bc", "u"))
    out = []
    for char in folded:
        if unicodedata.combining(char):
            continue
        out.append(char if 32 <= ord(char) <= 126 else "?")
    return "".join(out)


def edf_date(date: datetime.date) -> str:
    """Return a date as EDF+ writes it in header subfields, e.g. ``02-AUG-1951``."""
    return f"{date.day:02d}-{_MONTHS[date.month - 1]}-{date.year:04d}"


def _without_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _name_forms(name: str) -> set[str]:
    """A name as people write it: with accents or not, ``ü`` as ``ue``, whole or in parts."""
    spelled = unicodedata.normalize("NFC", name.strip())
    forms: set[str] = set()
    for variant in (spelled, _without_accents(spelled), _without_accents(spelled.translate(_TRANSLITERATION))):
        forms.add(variant)
        forms |= {part for part in _NAME_SEPARATORS.split(variant) if len(part) >= _MIN_NAME_PART}
    return {f for f in forms if f}


def _date_forms(date: datetime.date) -> set[str]:
    """A date in the numeric and written forms it is commonly typed in (day first, month first, ISO, EDF)."""
    y, m, d = date.year, date.month, date.day
    forms = {
        f"{y:04d}-{m:02d}-{d:02d}",
        f"{y:04d}/{m:02d}/{d:02d}",
        f"{y:04d}.{m:02d}.{d:02d}",
        f"{y:04d}{m:02d}{d:02d}",
    }
    forms.add(edf_date(date))
    for day in {f"{d:02d}", str(d)}:
        for month in {f"{m:02d}", str(m)}:
            for sep in "-./":
                forms |= {f"{day}{sep}{month}{sep}{y:04d}", f"{month}{sep}{day}{sep}{y:04d}"}
        for month in (_MONTHS[m - 1], _MONTH_NAMES[m - 1]):
            forms |= {f"{day} {month} {y:04d}", f"{day}. {month} {y:04d}", f"{day}-{month}-{y:04d}"}
            forms |= {f"{month} {day}, {y:04d}", f"{month} {day} {y:04d}"}
    for sep in "-./":  # two-digit years only zero-padded: 3.2.80 would take pieces out of version numbers
        forms |= {f"{d:02d}{sep}{m:02d}{sep}{y % 100:02d}", f"{m:02d}{sep}{d:02d}{sep}{y % 100:02d}"}
    return forms


def _subfield(text: str | None) -> str:
    """One EDF+ subfield: ASCII, spaces as underscores, ``X`` when unknown."""
    if not text:
        return "X"
    return re.sub(r"\s+", "_", edf_ascii(text).strip()) or "X"


@dataclass(frozen=True)
class ClientIdentity:
    """The client a recording is about.

    Attributes
    ----------
    pseudonym : str or None
        The pseudonym the recording carries.
    name : str or None
        Real name, when the caller knows it.
    birth_date : datetime.date or None
        Birth date, when known.
    sex : str or None
        ``F`` or ``M``, when known.
    """

    pseudonym: str | None = None
    name: str | None = None
    birth_date: datetime.date | None = None
    sex: str | None = None

    def __post_init__(self) -> None:
        if self.sex is not None and self.sex not in _SEXES:
            raise ValueError(f"sex must be one of {', '.join(_SEXES)} or None, got {self.sex!r}")

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> ClientIdentity:
        """Return the identity ``recording.json`` holds (fields that do not parse are left out)."""
        pseudonym = meta.get("client")
        patient = meta.get("patient")
        patient = patient if isinstance(patient, Mapping) else {}
        name = patient.get("name")
        sex = patient.get("sex")
        birth_date = None
        if isinstance(patient.get("birth_date"), str):
            try:
                birth_date = datetime.date.fromisoformat(patient["birth_date"])
            except ValueError:
                birth_date = None
        return cls(
            pseudonym if isinstance(pseudonym, str) and pseudonym else None,
            name if isinstance(name, str) and name else None,
            birth_date,
            sex if sex in _SEXES else None,
        )

    def edf_patient_field(self) -> str:
        """Return the EDF+ local patient identification: ``code sex birthdate name`` (80 characters at most)."""
        birth = "X" if self.birth_date is None else edf_date(self.birth_date)
        field = " ".join((_subfield(self.pseudonym), self.sex or "X", birth, _subfield(self.name)))
        return field[:80]

    @functools.cached_property
    def _secrets(self) -> re.Pattern[str] | None:
        secrets: set[str] = set()
        if self.name:
            secrets |= _name_forms(self.name)
        if self.pseudonym:
            secrets.add(self.pseudonym)
        if self.birth_date is not None:
            secrets |= _date_forms(self.birth_date)
        if not secrets:
            return None
        # longest first, so that a whole name goes before its parts; any run of spaces where one is
        alternatives = "|".join(re.escape(s).replace(r"\ ", r"\s+") for s in sorted(secrets, key=len, reverse=True))
        return re.compile(rf"(?<![^\W_])(?:{alternatives})(?![^\W_])", re.IGNORECASE)

    def redact(self, text: str) -> str:
        """Return ``text`` with the name, the pseudonym and the birth date replaced by ``X``.

        The name is matched as written, without accents and transliterated (``Müller``, ``Muller``,
        ``Mueller``), whole or by its parts of three letters or more (split at spaces, hyphens,
        apostrophes); the birth date in ISO, EDF, day-first and month-first numeric forms and with
        the month written out. Matching ignores case and takes whole words only (a pseudonym ``jo``
        leaves ``major`` alone); the text is compared in Unicode NFC.
        """
        pattern = self._secrets
        text = unicodedata.normalize("NFC", text)
        return text if pattern is None else pattern.sub("X", text)


def exported_meta(meta: Mapping[str, Any], identity: ClientIdentity, *, anonymize: bool) -> dict[str, Any]:
    """Return the copy of ``recording.json`` an export embeds: without the client's keys when anonymized.

    An anonymized copy also has the identity redacted from every text in it (a source URL may hold
    a folder named after the client).
    """
    if not anonymize:
        return dict(meta)
    kept = {key: value for key, value in meta.items() if key not in IDENTITY_META_KEYS}
    redacted: dict[str, Any] = json.loads(identity.redact(json.dumps(kept, ensure_ascii=False)))
    return redacted
