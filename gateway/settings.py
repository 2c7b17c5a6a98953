"""The gateway's config: ``config/gateway.toml``, validated by pydantic models.

Secrets are never written in the file: any string may contain ``${VAR}``, read from the environment at
load time (a ``${`` that does not start such a reference is an error). Relative paths are relative to the
config file's folder. A bad config raises ``ConfigError`` naming the key path (``sources[1].kind``) and the
reason. Unknown keys are rejected at every level, with the nearest valid name; each source kind takes the
options listed in ``SOURCE_OPTIONS``.

A source whose file or folder does not exist is not a config error: ``prepare`` logs a warning naming it,
and the gateway starts with that source unavailable until the path appears.
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from connectors import CONNECTOR_CLASSES, Connector, connector_class
from gateway.errors import ConfigError, nearest_names
from planner.limits import InputLimits

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config" / "gateway.toml"
URI_KINDS = ("postgresql", "mysql", "iceberg", "flightsql")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
log = logging.getLogger("gateway.settings")

#: object-store settings of a source whose ``path`` is ``s3://bucket/prefix`` (``connectors.objectstore``)
OBJECT_STORE_KEYS = frozenset({"endpoint", "region", "access_key_id", "secret_access_key", "session_token"})
#: Azure settings of a Parquet or CSV source whose ``path`` is ``az://container/prefix``
AZURE_STORE_KEYS = frozenset({"account_name", "account_key", "sas_token", "client_id", "client_secret", "tenant_id"})
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
    "parquet": frozenset({"path", "follow_symlinks", *OBJECT_STORE_KEYS, *AZURE_STORE_KEYS}),
    "csv": frozenset({"path", "has_header", "delimiter", "follow_symlinks", *OBJECT_STORE_KEYS, *AZURE_STORE_KEYS}),
    "delta": frozenset({"path", *OBJECT_STORE_KEYS}),
    "iceberg": frozenset({"uri", "warehouse", "catalog_name", *OBJECT_STORE_KEYS}),
    "flightsql": frozenset({"uri", "username", "password", "token", "dialect", "pool_size", "tls_skip_verify"}),
}


class _KeyProblem(ValueError):
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
    endpoint: str | None = Field(default=None, pattern=r"^https?://", description="object stores: S3-compatible URL")
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
        azure = ("az://", "azure://", "abfs://", "abfss://") if kind in ("parquet", "csv") else ()
        if info.field_name == "path" and value and "://" in value and not value.startswith(("s3://", "s3a://",
                                                                                           *azure)):
            raise ValueError(f"'{value.split('://', 1)[0]}://' is not a supported location; use a local path, "
                             "s3://bucket/prefix (AWS S3 or an S3-compatible server given as endpoint)"
                             + (" or az://container/prefix" if azure else ""))
        return value

    @model_validator(mode="after")
    def _options_of_kind(self) -> SourceConfig:
        allowed = COMMON_SOURCE_KEYS | SOURCE_OPTIONS.get(self.kind, frozenset())
        foreign = sorted(self.model_fields_set - allowed)
        if foreign:
            raise _KeyProblem(foreign[0], f"not an option of a '{self.kind}' source; "
                                          f"it takes: {', '.join(source_keys(self.kind))}")
        return self

    def options(self) -> dict[str, Any]:
        """The options handed to the connector (everything but name and kind)."""
        return self.model_dump(exclude={"name", "kind"}, exclude_none=True)


class ServerConfig(BaseModel):
    """Listen addresses. With ``tls_cert`` and ``tls_key`` (PEM files) both Flight SQL (``grpc+tls``) and REST
    (``https``) are served over TLS."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    flight_port: int = Field(default=8815, ge=0, le=65535)
    http_port: int = Field(default=8080, ge=0, le=65535)
    tls_cert: str | None = None
    tls_key: str | None = None

    @model_validator(mode="after")
    def _tls_pair(self) -> ServerConfig:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be given together")
        return self

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None


class UserConfig(BaseModel):
    """A user: ``password_hash`` (an argon2 hash, e.g. from ``gateway hash-password``) or ``password`` (the
    clear text, which must come from the environment as ``${VAR}``; it is hashed at start and not kept).
    ``sources``: the sources this user may see and query (default: all)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    password: str | None = None
    password_hash: str | None = None
    sources: list[str] | None = None

    @model_validator(mode="after")
    def _one_secret(self) -> UserConfig:
        if (self.password is None) == (self.password_hash is None):
            raise ValueError("give exactly one of password (from ${VAR}) or password_hash")
        if self.password_hash is not None and not self.password_hash.startswith("$argon2"):
            raise ValueError("password_hash must be an argon2 hash ($argon2id$...); see `gateway hash-password`")
        return self


class ApiTokenConfig(BaseModel):
    """A long-lived API token (its value from the environment, ``${VAR}``) acting as user ``name``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    token: str = Field(min_length=16)
    sources: list[str] | None = None


class AuthConfig(BaseModel):
    """Users and API tokens. A successful Basic handshake returns a bearer token valid ``token_ttl_s``.

    Password checks (argon2id, 19 MiB each) run on ``login_workers`` threads, with at most ``login_queue``
    waiting (more are answered 429 at once). After ``login_max_failures`` failed logins for one user name
    (a success starts its count again), or ``login_max_failures_per_address`` from one client address (many
    users may share one behind a NAT), within ``login_window_s`` seconds, further attempts are answered 429
    (Flight: UNAVAILABLE) with a retry-after, without checking the password, until the window has passed."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    users: list[UserConfig] = Field(default_factory=list)
    api_tokens: list[ApiTokenConfig] = Field(default_factory=list)
    token_ttl_s: float = Field(default=3600.0, gt=0)
    login_workers: int = Field(default=2, ge=1, le=32, description="threads verifying passwords")
    login_queue: int = Field(default=16, ge=0, description="password checks waiting for a worker, at most")
    login_max_failures: int = Field(default=10, ge=1, description="failed logins per user name ...")
    login_max_failures_per_address: int = Field(default=30, ge=1, description="... per client address ...")
    login_window_s: float = Field(default=60.0, gt=0, description="... within this many seconds")
    public_metrics: bool = Field(default=False, description="/metrics open to anyone while auth is on")

    @model_validator(mode="after")
    def _users_when_enabled(self) -> AuthConfig:
        if self.enabled and not self.users and not self.api_tokens:
            raise ValueError("auth is enabled but no users or api_tokens are configured")
        names = [u.name for u in self.users] + [t.name for t in self.api_tokens]
        duplicate = next((n for n in names if names.count(n) > 1), None)
        if duplicate is not None:
            raise ValueError(f"duplicate user or api token name '{duplicate}'")
        return self


class CatalogConfig(BaseModel):
    """The catalog's in-memory copy of every source's schemas, tables and columns."""

    model_config = ConfigDict(extra="forbid")

    refresh_interval_s: float = Field(default=300.0, ge=0, description="0 turns background refresh off")
    state_path: str | None = Field(
        default=None, description="SQLite file of table schema versions (drift history), relative to the config "
                                  "folder; default: in memory only")


class LimitsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    memory_bytes: int = Field(default=2 << 30, gt=0)
    spill_path: str | None = None
    prefetch_batches: int = Field(default=8, ge=1)
    statement_ttl_s: float = Field(default=600.0, gt=0)
    query_timeout_s: float = Field(
        default=300.0, ge=0, description="a query running longer is cancelled at its sources (0: no limit)")
    dynamic_filters: bool = True
    fragment_memory_bytes: int = Field(default=256 << 20, gt=0, description="a fragment beyond this spills to disk")
    read_files_in_place: bool = Field(
        default=True, description="file sources (without a cache rule) are scanned by the residual plan itself")
    in_place_min_rows: int = Field(
        default=1_000_000, ge=0,
        description="file fragments estimated below this many rows are fetched, overlapping other sources' reads")
    # admission control (gateway.execution.admission): light queries and heavy ones run in separate bounded lanes
    admission_control: bool = Field(
        default=True, description="false: every query is admitted at once (the lanes are only counted)")
    max_heavy_queries: int = Field(
        default_factory=lambda: os.cpu_count() or 1, ge=1, le=1024,
        description="heavy queries (large scans, residual DataFusion plans) running at once")
    max_light_queries: int = Field(
        default=64, ge=1, le=4096, description="light queries (key lookups, small estimates) running at once")
    max_queued_queries: int = Field(
        default=256, ge=0, description="queries waiting per lane, at most; more are refused at once (429)")
    queue_timeout_s: float = Field(
        default=30.0, gt=0, description="a query waiting longer for a slot is refused (429 / RESOURCE_EXHAUSTED)")
    light_query_max_rows: int = Field(
        default=10_000, ge=0,
        description="a query pushed whole to one source and estimated at this many rows or fewer is light")
    light_residual_plans: bool = Field(
        default=False, description="residual plans over fragments within light_query_max_rows rows are light too")
    # the process-wide memory budget and result caps (gateway.execution.memory)
    process_memory_bytes: int = Field(
        default_factory=lambda: os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2, gt=0,
        description="bytes all running queries may hold together: fragment buffers (spilled beyond) and residual "
                    "plans' pools (default: half the machine's memory)")
    min_query_memory_bytes: int = Field(
        default=64 << 20, gt=0, description="a residual plan that cannot get this much of the budget fails (507)")
    max_result_rows: int = Field(default=0, ge=0, description="a result with more rows fails (413); 0: no cap")
    max_result_bytes: int = Field(default=0, ge=0, description="a result of more Arrow bytes fails (413); 0: no cap")
    # input limits, checked before planning (planner.limits.InputLimits has the defaults and their reasons)
    max_statement_bytes: int = Field(default=InputLimits.statement_bytes, gt=0)
    max_nesting_depth: int = Field(default=InputLimits.nesting_depth, gt=0)
    max_set_operations: int = Field(default=InputLimits.set_operations, ge=0)
    max_boolean_terms: int = Field(default=InputLimits.boolean_terms, gt=0)
    max_in_list: int = Field(default=InputLimits.in_list, gt=0)
    max_parameters: int = Field(default=InputLimits.parameters, ge=0)
    max_tables: int = Field(default=InputLimits.tables, gt=0)

    def input_limits(self) -> InputLimits:
        """The ``max_*`` settings as the planner's ``InputLimits``."""
        return InputLimits(
            statement_bytes=self.max_statement_bytes, nesting_depth=self.max_nesting_depth,
            set_operations=self.max_set_operations, boolean_terms=self.max_boolean_terms,
            in_list=self.max_in_list, parameters=self.max_parameters, tables=self.max_tables,
        )


class CacheConfig(BaseModel):
    """The hot-partition cache: budgets in bytes; ``disk_path`` (relative to the config folder) keeps cached
    partitions across restarts; a partition is admitted after ``admit_after`` uses in ``admission_window_s``."""

    model_config = ConfigDict(extra="forbid")

    memory_bytes: int = Field(default=512 << 20, ge=0)
    disk_path: str | None = None
    disk_bytes: int = Field(default=2 << 30, ge=0)
    admit_after: int = Field(default=2, ge=1)
    admission_window_s: float = Field(default=300.0, gt=0)


class LineageConfig(BaseModel):
    """Trust: freshness manifests of answers and OpenLineage run events (``gateway.trust``).

    ``transport`` is an openlineage-python transport config (``{type = "http", url = "..."}``, ``file``,
    ``console``, ``kafka``); without it the client's own environment (``OPENLINEAGE_URL``,
    ``OPENLINEAGE_CONFIG``) is used, and without either no events are sent (manifests are still kept)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="emit OpenLineage events when a transport is configured")
    namespace: str = Field(default="federated-sql-gateway", min_length=1, description="OpenLineage job namespace")
    job_prefix: str = Field(default="query", min_length=1, description="job name: <prefix>.<query fingerprint>")
    transport: dict[str, Any] | None = None
    queue_size: int = Field(default=1000, ge=1, description="events waiting to be sent; more are dropped")
    manifests_kept: int = Field(default=1000, ge=1, description="recent answers whose manifest is kept")


class ExecutionConfig(BaseModel):
    """Where queries run (``gateway.distributed``). ``engine = "ray"``: queries estimated at ``min_rows`` rows
    or ``min_bytes`` bytes or more (over all their fragments; 0 distributes everything) read their fragments as
    Ray tasks, each fragment split into up to ``max_splits`` splits of at least ``split_min_rows`` rows;
    smaller ones run locally. ``ray_address``: absent starts a local Ray runtime in the process; ``"auto"``,
    ``"ray://host:10001"`` or ``"host:6379"`` joins a cluster. A task lost with its worker is submitted again
    up to ``max_retries`` times; ``task_timeout_s`` bounds one task (0: only the query's time limit). An inner
    equi-join of two distributed fragments each estimated at ``join_min_rows`` rows or more runs as a hash join
    stage on the workers (``join_partitions`` partitions; 0: the cluster's CPU count)."""

    model_config = ConfigDict(extra="forbid")

    engine: str = Field(default="local", pattern=r"^(local|ray)$", description='"local" or "ray"')
    ray_address: str | None = Field(default=None, description='absent: a local runtime; "auto", "ray://...", '
                                                              '"host:port"')
    min_rows: int = Field(default=1_000_000, ge=0, description="queries estimated below this stay local ...")
    min_bytes: int = Field(default=256 << 20, ge=0, description="... and below this many bytes")
    max_splits: int = Field(default=8, ge=1, le=1024, description="Ray tasks per fragment, at most")
    split_min_rows: int = Field(default=250_000, ge=0, description="estimated rows per split, at least")
    max_retries: int = Field(default=2, ge=0, le=100, description="resubmissions of a task whose worker died")
    task_timeout_s: float = Field(default=0.0, ge=0, description="seconds one task may run (0: no own limit)")
    num_cpus: int | None = Field(default=None, ge=1, description="a local runtime's CPUs (default: all)")
    join_min_rows: int = Field(default=1_000_000, ge=0, description="an inner equi-join of two distributed "
                               "fragments each estimated at this many rows or more runs as a hash join stage")
    join_partitions: int = Field(default=0, ge=0, le=1024, description="hash partitions (and join tasks) of a "
                                 "join stage; 0: the cluster's CPU count")


class Settings(BaseModel):
    """The whole config file."""

    model_config = ConfigDict(extra="forbid")

    sources: list[SourceConfig] = Field(default_factory=list)
    server: ServerConfig = Field(default_factory=ServerConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    catalog: CatalogConfig = Field(default_factory=CatalogConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    lineage: LineageConfig = Field(default_factory=LineageConfig)
    demo: bool = False
    config_dir: str | None = Field(default=None, description="set by the loader: the config file's folder")

    @model_validator(mode="after")
    def _unique_names(self) -> Settings:
        seen: set[str] = set()
        for i, source in enumerate(self.sources):
            if source.name in seen:
                raise ValueError(f"sources[{i}].name: duplicate source name '{source.name}'")
            seen.add(source.name)
        principals = [("users", u) for u in self.auth.users] + [("api_tokens", t) for t in self.auth.api_tokens]
        counters = {"users": 0, "api_tokens": 0}
        for kind, principal in principals:
            i = counters[kind]
            counters[kind] += 1
            for name in principal.sources or []:
                if name not in seen:
                    raise ValueError(f"auth.{kind}[{i}].sources: unknown source '{name}'; "
                                     f"expected one of {', '.join(sorted(seen)) or '(none)'}")
        return self


def load_settings(path: str | os.PathLike | None = None) -> Settings:
    """Read, expand and validate a config file (default ``config/gateway.toml``).

    Raises ConfigError naming the file, the key path and the reason.
    """
    config_path = Path(path) if path else DEFAULT_CONFIG
    try:
        raw = tomllib.loads(config_path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {config_path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_path}: not valid TOML: {exc}") from exc
    return settings_from_dict(raw, base_dir=config_path.resolve().parent, origin=str(config_path))


def settings_from_dict(raw: dict[str, Any], base_dir: Path, origin: str = "config") -> Settings:
    """Validate an already-parsed config. ``${VAR}`` references are expanded; paths made absolute.

    Raises ConfigError ``"{origin}: {key path}: {reason}"`` for the first problem (further problems on the
    following lines); ``details["key"]`` is the first key path."""
    expanded = _expand(raw, origin, "")
    try:
        settings = Settings.model_validate(expanded)
    except ValidationError as exc:
        # unknown keys first: a misspelled key is usually also why a required one is "missing"
        errors = sorted(exc.errors(), key=lambda error: error["type"] != "extra_forbidden")
        problems = [_problem(error, expanded) for error in errors]
        where = problems[0][0]
        lines = [f"{origin}: {w}: {r}" for w, r in dict.fromkeys(problems)]
        raise ConfigError("\n".join(lines), key=where) from None
    settings.config_dir = str(base_dir)
    for source in settings.sources:
        if source.path is not None and not os.path.isabs(source.path) and "://" not in source.path:
            source.path = str((base_dir / source.path).resolve())
    if settings.cache.disk_path and not os.path.isabs(settings.cache.disk_path):
        settings.cache.disk_path = str((base_dir / settings.cache.disk_path).resolve())
    if settings.catalog.state_path and not os.path.isabs(settings.catalog.state_path):
        settings.catalog.state_path = str((base_dir / settings.catalog.state_path).resolve())
    if settings.limits.spill_path and not os.path.isabs(settings.limits.spill_path):
        settings.limits.spill_path = str((base_dir / settings.limits.spill_path).resolve())
    for key in ("tls_cert", "tls_key"):
        value = getattr(settings.server, key)
        if value is not None:
            path = value if os.path.isabs(value) else str((base_dir / value).resolve())
            if not os.path.isfile(path):
                raise ConfigError(f"{origin}: server.{key}: file {path} does not exist", key=f"server.{key}")
            setattr(settings.server, key, path)
    return settings


def prepare(settings: Settings) -> Settings:
    """Create the bundled demo data when the config asks for it (``demo = true``); then, when logging is set
    up (``gateway serve``), log a warning for each source whose file or folder is missing (``missing_paths``):
    the gateway starts anyway, and that source answers "unavailable" until the path appears (it is looked for
    again on each use and on each catalog refresh)."""
    if settings.demo and settings.config_dir:
        from gateway.demo import ensure_demo_data

        ensure_demo_data(Path(settings.config_dir) / "demo_data")
    if logging.getLogger().handlers:  # a server's log (gateway serve); one-shot commands report it as their error
        for name, reason in missing_paths(settings).items():
            source = next(s for s in settings.sources if s.name == name)
            log.warning(f"source '{name}' is unavailable at start: {reason}; starting without it",
                        extra={"source": name, "path": source.path})
    return settings


def missing_paths(settings: Settings) -> dict[str, str]:
    """Sources whose ``path`` does not exist or is not what their kind reads (a folder for Parquet/CSV, a
    file for SQLite): source name -> reason. The reason names the key, not the server path."""
    out: dict[str, str] = {}
    for source in settings.sources:
        if source.path is None or "://" in source.path:  # object stores are checked on first use
            continue
        wants_folder = source.kind in ("parquet", "csv", "delta")
        if not os.path.exists(source.path):
            out[source.name] = f"its path (a {'folder' if wants_folder else 'file'}) does not exist"
        elif wants_folder and not os.path.isdir(source.path):
            out[source.name] = "its path is not a folder"
        elif not wants_folder and not os.path.isfile(source.path):
            out[source.name] = "its path is not a file"
    return out


def source_keys(kind: str) -> list[str]:
    """The keys a ``[[sources]]`` entry of ``kind`` may have, in the model's order."""
    allowed = COMMON_SOURCE_KEYS | SOURCE_OPTIONS.get(kind, frozenset())
    return [name for name in SourceConfig.model_fields if name in allowed]


def _expand(value: Any, origin: str, where: str) -> Any:
    if isinstance(value, str):
        def env(match: re.Match) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise ConfigError(f"{origin}: {where}: environment variable {name} is not set", key=where)
            return os.environ[name]

        for start in (m.start() for m in re.finditer(r"\$\{", value)):
            if _ENV_REF.match(value, start) is None:
                written = re.match(r"\$\{[^}]{0,40}\}", value[start:])
                what = f"'{written.group()}' is not" if written else "an unterminated '${' is not"
                raise ConfigError(
                    f"{origin}: {where}: {what} an environment reference; write ${{NAME}} (a letter or _, "
                    "then letters, digits or _)", key=where)
        return _ENV_REF.sub(env, value)
    if isinstance(value, dict):
        return {k: _expand(v, origin, f"{where}.{k}" if where else k) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, origin, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _problem(error: dict, raw: Any) -> tuple[str, str]:
    """(key path, reason) of one pydantic error, with the nearest valid name for an unknown key."""
    loc = tuple(error["loc"])
    reason = error["msg"].removeprefix("Value error, ")
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, _KeyProblem):  # a model-level check naming one of the model's keys
        loc = (*loc, cause.key)
    elif error["type"] == "extra_forbidden":
        key = str(loc[-1])
        valid = _valid_keys(loc[:-1], raw)
        nearest = nearest_names(key, valid, limit=1)
        reason = (f"unknown key '{key}'; did you mean '{nearest[0]}'?" if nearest
                  else f"unknown key '{key}'; valid keys here: {', '.join(valid)}")
    where = _key_path(loc)
    nested = re.match(r"([A-Za-z_][\w.\[\]]*): (.*)", reason, re.DOTALL) if where == "(root)" else None
    if nested:  # a whole-config check names the key itself
        where, reason = nested.groups()
    return where, reason


def _valid_keys(loc: tuple, raw: Any) -> list[str]:
    """The keys the model at ``loc`` accepts (for a source: those of its kind, when the kind is known)."""
    model: type[BaseModel] | None = Settings
    for part in loc:
        if isinstance(part, int):
            raw = raw[part] if isinstance(raw, list) and part < len(raw) else None
            continue
        field = model.model_fields.get(part) if model else None
        model = _model_in(field.annotation) if field else None
        raw = raw.get(part) if isinstance(raw, dict) else None
    if model is SourceConfig and isinstance(raw, dict) and raw.get("kind") in SOURCE_OPTIONS:
        return source_keys(raw["kind"])
    return [name for name in model.model_fields if name != "config_dir"] if model else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation such as ``list[UserConfig]`` or ``X | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (list, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def _key_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(root)"


def build_connectors(settings: Settings) -> dict[str, Connector]:
    """A connector for every ``[[sources]]`` entry, by source name: the first step of settings -> connectors ->
    catalog -> engine (``gateway.server.build_engine``; ``QueryEngine(settings)`` takes the same step itself).
    It lives here, beside the source options it reads, so that the catalog never reads settings."""
    return {source.name: connector_class(source.kind)(source.name, source.options()) for source in settings.sources}
