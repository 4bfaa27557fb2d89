"""The client's identity in export headers, and what --anonymize takes out."""

from __future__ import annotations

import datetime

import pytest

from biofeed.record.export.identity import ClientIdentity, edf_ascii, exported_meta


def test_edf_patient_field_follows_edf_plus() -> None:
    identity = ClientIdentity("p-01", "Zoë van Dijk", datetime.date(1951, 8, 2), "F")
    assert identity.edf_patient_field() == "p-01 F 02-AUG-1951 Zoe_van_Dijk"
    assert ClientIdentity().edf_patient_field() == "X X X X"
    assert ClientIdentity("only pseudonym").edf_patient_field() == "only_pseudonym X X X"
    with pytest.raises(ValueError, match="sex must be one of F, M"):
        ClientIdentity(sex="female")


def test_from_meta_reads_the_pseudonym_and_an_optional_patient() -> None:
    meta = {"client": "p-01", "patient": {"name": "Ann Lee", "birth_date": "1990-12-31", "sex": "M"}}
    assert ClientIdentity.from_meta(meta) == ClientIdentity("p-01", "Ann Lee", datetime.date(1990, 12, 31), "M")
    damaged = {"client": 7, "patient": {"name": "", "birth_date": "31.12.1990", "sex": "?"}}
    assert ClientIdentity.from_meta(damaged) == ClientIdentity()
    assert ClientIdentity.from_meta({}) == ClientIdentity()


def test_redact_replaces_whole_words_of_the_identity_only() -> None:
    identity = ClientIdentity("jo", "Anna Maria Lee", datetime.date(1980, 2, 3))
    text = "jo told the major: Anna maria LEE (Anna_Maria_Lee), born 1980-02-03 / 03-FEB-1980; jo_b, annalise"
    assert identity.redact(text) == "X told the major: X (X_X_X), born X / X; X_b, annalise"


def test_exported_meta_drops_the_client_when_anonymized() -> None:
    identity = ClientIdentity("p-01", "Ann Lee")
    meta = {"client": "p-01", "patient": {"name": "Ann Lee"}, "source_url": "replay:///home/Ann Lee/r1", "device": None}
    assert exported_meta(meta, identity, anonymize=False) == meta
    assert exported_meta(meta, identity, anonymize=True) == {"source_url": "replay:///home/X/r1", "device": None}


def test_edf_ascii_keeps_printable_ascii_only() -> None:
    assert edf_ascii("Müller\tµV") == "Muller?uV"
