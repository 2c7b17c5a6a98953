"""Registered sources and their schemas, tables and columns."""

from catalog.catalog import Catalog, TableRef

__all__ = ["Catalog", "TableRef"]
