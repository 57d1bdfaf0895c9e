"""Workflow tests reuse the fixtures of tests/conftest.py (svc on SQLite and PostgreSQL, clock, pg_url).

Seeding the demo staff hashes six passwords with scrypt (about 0.25 s per database); no workflow test signs
in, so the demo accounts get a cheap stand-in hash here to keep the suite fast.
"""

import hashlib

import pytest

from bot.services import staff


@pytest.fixture(autouse=True)
def _cheap_staff_password_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(staff, "hash_password",
                        lambda password, salt=None: "sha256$test$" + hashlib.sha256(password.encode()).hexdigest())
