"""The fuzz session: the data set in PostgreSQL, MariaDB, SQLite, Parquet and CSV, a gateway and the reference.

PostgreSQL and MariaDB come from the ``pg_server`` and ``mysql_server`` fixtures (tests/conftest.py: with CI=true
a missing server fails the run; otherwise the run stops with a message).
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def fuzz_session(pg_server, mysql_server):
    from tests.fuzz.runner import FuzzSession

    session = FuzzSession(pg_server, mysql_server)
    yield session
    session.close()
