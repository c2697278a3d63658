"""Planning a signing-secret rotation: the document, signs_from, the overlap and the refusals."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from hookline.rotation import (
    WRITE_ALLOWANCE_S,
    OverlapTooShortError,
    PreviousStillSigningError,
    RotationError,
    plan_rotation,
)
from hookline.secrets import SECRET_CACHE_TTL_S
from hookline.signing import SigningSecrets, generate_secret, parse_secret_string

NOW = datetime(2026, 11, 28, 8, 0, 0, 400_000, tzinfo=UTC)
OLD = generate_secret()
NEW = generate_secret()


def test_the_document_keeps_the_old_secret_past_signs_from_by_the_overlap() -> None:
    rotation = plan_rotation(SigningSecrets(OLD), now=NOW, overlap=timedelta(hours=1), new_secret=NEW)

    document = json.loads(rotation.secret_string)
    assert (document["current"], document["previous"]) == (NEW, OLD)
    expected = NOW + timedelta(seconds=SECRET_CACHE_TTL_S + WRITE_ALLOWANCE_S, hours=1)
    assert document["previous_expires_at"] == expected.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert parse_secret_string(rotation.secret_string).previous_expires_at == rotation.previous_expires_at
    assert rotation.secret == NEW
    assert NEW not in repr(rotation) and OLD not in repr(rotation)


def test_signs_from_is_the_completed_write_plus_the_cache_age_rounded_up() -> None:
    rotation = plan_rotation(SigningSecrets(OLD), now=NOW, overlap=timedelta(hours=1))

    written_at = NOW + timedelta(seconds=2)
    assert rotation.signs_from(written_at) == datetime(2026, 11, 28, 8, 5, 3, tzinfo=UTC)
    assert rotation.overlap(written_at) >= timedelta(hours=1)
    # A write slower than the allowance eats into the overlap, which the caller can see.
    assert rotation.overlap(NOW + timedelta(seconds=WRITE_ALLOWANCE_S + 30)) < timedelta(hours=1)


def test_the_overlap_is_never_shorter_than_the_cache_age() -> None:
    with pytest.raises(OverlapTooShortError, match=f"at least {SECRET_CACHE_TTL_S} s"):
        plan_rotation(SigningSecrets(OLD), now=NOW, overlap=timedelta(seconds=SECRET_CACHE_TTL_S - 1))
    shortest = plan_rotation(SigningSecrets(OLD), now=NOW, overlap=timedelta(seconds=SECRET_CACHE_TTL_S))
    assert shortest.overlap(NOW) >= timedelta(seconds=SECRET_CACHE_TTL_S)


def test_a_previous_secret_that_still_signs_is_not_cut_short() -> None:
    expires = NOW + timedelta(minutes=3)
    stored = SigningSecrets(OLD, previous=generate_secret(), previous_expires_at=expires)

    with pytest.raises(PreviousStillSigningError) as caught:
        plan_rotation(stored, now=NOW, overlap=timedelta(hours=1))
    assert caught.value.expires_at == expires
    assert isinstance(caught.value, RotationError) and isinstance(caught.value, ValueError)

    after = plan_rotation(stored, now=expires, overlap=timedelta(hours=1), new_secret=NEW)
    dropped = plan_rotation(stored, now=NOW, overlap=timedelta(hours=1), new_secret=NEW, drop_previous=True)
    for rotation in (after, dropped):
        assert json.loads(rotation.secret_string)["previous"] == OLD


def test_a_custom_cache_age_moves_both_times() -> None:
    rotation = plan_rotation(SigningSecrets(OLD), now=NOW, overlap=timedelta(seconds=60), cache_ttl_s=60)

    assert rotation.signs_from(NOW) == datetime(2026, 11, 28, 8, 1, 1, tzinfo=UTC)
    assert rotation.overlap(NOW) >= timedelta(seconds=60)


def test_now_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        plan_rotation(SigningSecrets(OLD), now=NOW.replace(tzinfo=None), overlap=timedelta(hours=1))
