"""The fuzz session over the session's one data world (``world``, tests/conftest.py: with CI=true a missing
server fails the run; otherwise the run stops with a message): a gateway over its five sources and the
reference."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def fuzz_session(world):
    from tests.fuzz.runner import FuzzSession

    session = FuzzSession(world=world)
    yield session
    session.close()
