"""Listing tables through the SQL standard's ``information_schema`` (PostgreSQL, MySQL/MariaDB)."""

from __future__ import annotations

from connectors.adbc_base import sql_literal


class InformationSchemaTables:
    """``list_tables`` and ``table_type`` for connectors whose source has ``information_schema.TABLES`` and a
    ``fetch_table(sql)`` method. Names are upper case, as the standard gives them (both engines accept it)."""

    def list_tables(self, schema: str) -> list[str]:
        rows = self.fetch_table(
            "SELECT TABLE_NAME AS t FROM information_schema.TABLES "
            f"WHERE TABLE_SCHEMA = {sql_literal(schema)} ORDER BY 1"
        )
        return rows.column(0).to_pylist()

    def table_type(self, schema: str, table: str) -> str:
        rows = self.fetch_table(
            "SELECT TABLE_TYPE AS t FROM information_schema.TABLES "
            f"WHERE TABLE_SCHEMA = {sql_literal(schema)} AND TABLE_NAME = {sql_literal(table)}"
        )
        return "VIEW" if rows.num_rows and rows.column(0)[0].as_py() == "VIEW" else "TABLE"
