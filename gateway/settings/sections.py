"""The sections of the config file besides its sources (``[server]``, ``[auth]``, ``[catalog]``, ``[limits]``,
``[cache]``, ``[lineage]``, ``[execution]``; ``[[views]]`` in ``gateway.settings.views``) and ``Settings``, the
whole file."""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.settings.sources import SourceConfig
from gateway.settings.views import ViewConfig, check_views
from planner.limits import InputLimits


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
    views: list[ViewConfig] = Field(default_factory=list)
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
        check_views(self.views, [s.name for s in self.sources])
        return self

