"""The fuzz session: the data set in PostgreSQL, MariaDB, SQLite, Parquet and CSV, a gateway and the reference.

PostgreSQL comes from the ``pg_server`` fixture (tests/conftest.py); MariaDB must answer at
``GATEWAY_TEST_MYSQL``. With CI=true a missing server fails the run; otherwise the run stops with a message.
"""

from __future__ import annotations

import pytest

from tests.conftest import IN_CI, MYSQL_URI, _mysql_params


@pytest.fixture(scope="session")
def fuzz_session(pg_server):
    import pymysql

    from tests.fuzz.runner import FuzzSession

    try:
        pymysql.connect(**_mysql_params(MYSQL_URI)).close()
    except pymysql.Error as exc:
        message = f"MariaDB/MySQL does not answer at {MYSQL_URI}: {exc}"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: .ci/run must start it)", pytrace=False)
        pytest.exit(f"{message}; install MariaDB or set GATEWAY_TEST_MYSQL", returncode=3)
    session = FuzzSession(pg_server, MYSQL_URI)
    yield session
    session.close()
