"""The ``[[sources]]`` entries of the config: ``SourceConfig``, the options each source kind takes
(``SOURCE_OPTIONS``; any other key is a config error) and ``build_connectors`` (settings -> connectors)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from connectors import CONNECTOR_CLASSES, Connector, connector_class

URI_KINDS = ("postgresql", "mysql", "iceberg", "flightsql")

#: object-store settings of a source whose ``path`` is ``s3://bucket/prefix`` (``connectors.objectstore``)
OBJECT_STORE_KEYS = frozenset({"endpoint", "region", "access_key_id", "secret_access_key", "session_token"})
#: Azure settings of a source whose ``path`` (Iceberg: ``warehouse``) is ``az://container/prefix``
AZURE_STORE_KEYS = frozenset({"account_name", "account_key", "sas_token", "client_id", "client_secret", "tenant_id"})
#: Google Cloud Storage settings of a Parquet or CSV source whose ``path`` is ``gs://bucket/prefix``
GCS_STORE_KEYS = frozenset({"credentials_file", "anonymous"})
#: keys every ``[[sources]]`` entry may have, whatever its kind
COMMON_SOURCE_KEYS = frozenset({"name", "kind", "cache_ttl_s", "cache_fingerprint"})
#: the options each source kind takes (besides ``COMMON_SOURCE_KEYS``); any other key is a config error.
#: Keep in step with the connectors: ``pool_size`` (ADBC pools), ``partition_*`` (``connectors.partitioning``,
#: database kinds), ``session_settings``/``parallel_*`` (PostgreSQL, MySQL scans), ``has_header``/``delimiter``
#: (CSV), ``follow_symlinks`` (file kinds, ``connectors.files``).
SOURCE_OPTIONS: dict[str, frozenset[str]] = {
    "postgresql": frozenset({"uri", "pool_size", "partition_column", "partition_granularity", "session_settings",
                             "parallel_readers", "parallel_min_rows", "connect_timeout_s"}),
    "mysql": frozenset({"uri", "partition_column", "partition_granularity", "parallel_readers",
                        "parallel_min_rows"}),
    "sqlite": frozenset({"path", "pool_size", "partition_column", "partition_granularity"}),
    "parquet": frozenset({"path", "follow_symlinks", *OBJECT_STORE_KEYS, *AZURE_STORE_KEYS, *GCS_STORE_KEYS}),
    "csv": frozenset({"path", "has_header", "delimiter", "follow_symlinks", *OBJECT_STORE_KEYS, *AZURE_STORE_KEYS,
                      *GCS_STORE_KEYS}),
    "delta": frozenset({"path", *OBJECT_STORE_KEYS, *AZURE_STORE_KEYS}),
    "iceberg": frozenset({"uri", "warehouse", "catalog_name", *OBJECT_STORE_KEYS, *AZURE_STORE_KEYS}),
    "flightsql": frozenset({"uri", "username", "password", "token", "dialect", "pool_size", "tls_skip_verify"}),
}


class KeyProblem(ValueError):
    """A model-level check's complaint about one of the model's keys (the loader adds it to the key path)."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(reason)
        self.key = key


class SourceConfig(BaseModel):
    """One ``[[sources]]`` entry. ``uri`` for database kinds, ``path`` for file kinds and SQLite; the other
    options a kind takes are listed in ``SOURCE_OPTIONS`` (others are rejected, also those of another kind)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    kind: str
    uri: str | None = Field(default=None, validate_default=True)
    path: str | None = Field(default=None, validate_default=True)
    pool_size: int = Field(default=4, ge=1, le=64)
    cache_ttl_s: float | None = Field(default=None, ge=0, description="cached partitions older than this are refetched")
    cache_fingerprint: bool = Field(default=False, description="check the source's fingerprint before serving")
    partition_column: str | None = Field(default=None, description="database tables: cache by ranges of this")
    partition_granularity: str = Field(default="month", pattern=r"^(day|month|year|[0-9]+)$")
    session_settings: dict[str, str | int | float | bool] | None = Field(
        default=None, description="PostgreSQL: settings (SET name = value) of the gateway's own sessions")
    parallel_readers: int | None = Field(default=None, ge=1, le=64,
                                         description="database kinds: connections reading one large scan")
    parallel_min_rows: int | None = Field(default=None, ge=0,
                                          description="database kinds: scans of tables this large are split")
    connect_timeout_s: int | None = Field(
        default=None, ge=1, le=3600, description="PostgreSQL: seconds to establish a connection (default 10)")
    has_header: bool | None = Field(default=None, description="CSV: the first line names the columns (default)")
    delimiter: str | None = Field(default=None, min_length=1, max_length=1, description="CSV: default ','")
    sensitive_columns: list[str] | None = Field(
        default=None, description="gateway mock: columns (name or table.column) whose real values are never copied")
    warehouse: str | None = Field(default=None, description="iceberg: where the catalog's new tables' files go")
    catalog_name: str | None = Field(default=None, description="iceberg: the catalog's name (default: the source's)")
    username: str | None = Field(default=None, description="flightsql: user of a Basic handshake")
    password: str | None = Field(default=None, description="flightsql: ${VAR}, with username")
    token: str | None = Field(default=None, description="flightsql: ${VAR}, sent as a bearer token")
    dialect: str | None = Field(default=None, description="flightsql: sqlglot dialect of pushed SQL (default postgres)")
    tls_skip_verify: bool | None = Field(default=None, description="flightsql: do not check the server's certificate")
    endpoint: str | None = Field(default=None, pattern=r"^https?://",
                                 description="object stores: S3-compatible server, Azure Blob or GCS emulator URL")
    region: str | None = Field(default=None, description="object stores: the bucket's region (else AWS_REGION)")
    access_key_id: str | None = Field(default=None, description="object stores: else AWS_ACCESS_KEY_ID")
    secret_access_key: str | None = Field(default=None, description="object stores: ${VAR}; else the environment")
    session_token: str | None = Field(default=None, description="object stores: else AWS_SESSION_TOKEN")
    account_name: str | None = Field(default=None, description="az:// paths: storage account (else "
                                                               "AZURE_STORAGE_ACCOUNT_NAME)")
    account_key: str | None = Field(default=None, description="az:// paths: ${VAR}; else AZURE_STORAGE_ACCOUNT_KEY")
    sas_token: str | None = Field(default=None, description="az:// paths: ${VAR}; else AZURE_STORAGE_SAS_TOKEN")
    client_id: str | None = Field(default=None, description="az:// paths: service principal (else AZURE_CLIENT_ID)")
    client_secret: str | None = Field(default=None, description="az:// paths: ${VAR}; else AZURE_CLIENT_SECRET")
    tenant_id: str | None = Field(default=None, description="az:// paths: else AZURE_TENANT_ID")
    credentials_file: str | None = Field(default=None, description="gs:// paths: a service-account key file (else "
                                                                   "GOOGLE_APPLICATION_CREDENTIALS)")
    anonymous: bool | None = Field(default=None, description="gs:// paths: send no credentials (public buckets)")
    follow_symlinks: bool | None = Field(
        default=None, description="file kinds: read symbolic links leading outside the folder (default false)")

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        if kind not in CONNECTOR_CLASSES:
            raise ValueError(f"unknown source kind '{kind}'; expected one of {', '.join(sorted(CONNECTOR_CLASSES))}")
        return kind

    @field_validator("uri", "path")
    @classmethod
    def _location(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("kind")
        needs = "uri" if kind in URI_KINDS else "path"
        if kind is not None and info.field_name == needs and value is None:
            raise ValueError(f"required for a '{kind}' source")
        gcs = ("gs://",) if kind in ("parquet", "csv") else ()
        if info.field_name == "path" and value and "://" in value and not value.startswith(
                ("s3://", "s3a://", "az://", "azure://", "abfs://", "abfss://", *gcs)):
            raise ValueError(f"'{value.split('://', 1)[0]}://' is not a supported location; use a local path, "
                             "s3://bucket/prefix (AWS S3 or an S3-compatible server given as endpoint), "
                             "az://container/prefix" + (" or gs://bucket/prefix" if gcs else ""))
        return value

    @model_validator(mode="after")
    def _options_of_kind(self) -> SourceConfig:
        allowed = COMMON_SOURCE_KEYS | SOURCE_OPTIONS.get(self.kind, frozenset())
        foreign = sorted(self.model_fields_set - allowed)
        if foreign:
            raise KeyProblem(foreign[0], f"not an option of a '{self.kind}' source; "
                                         f"it takes: {', '.join(source_keys(self.kind))}")
        return self

    def options(self) -> dict[str, Any]:
        """The options handed to the connector (everything but name and kind)."""
        return self.model_dump(exclude={"name", "kind"}, exclude_none=True)



def source_keys(kind: str) -> list[str]:
    """The keys a ``[[sources]]`` entry of ``kind`` may have, in the model's order."""
    allowed = COMMON_SOURCE_KEYS | SOURCE_OPTIONS.get(kind, frozenset())
    return [name for name in SourceConfig.model_fields if name in allowed]



class HasSources(Protocol):
    """What ``build_connectors`` reads of the whole configuration (``gateway.settings.Settings``), named here so
    that this module does not import the one that imports it."""

    sources: Sequence[SourceConfig]


def build_connectors(settings: HasSources) -> dict[str, Connector]:
    """A connector for every ``[[sources]]`` entry, by source name: the first step of settings -> connectors ->
    catalog -> engine (``gateway.server.build_engine``; ``QueryEngine(settings)`` takes the same step itself).
    It lives here, beside the source options it reads, so that the catalog never reads settings."""
    return {source.name: connector_class(source.kind)(source.name, source.options()) for source in settings.sources}
