"""The gateway's config: ``config/gateway.toml``, validated by pydantic models.

Secrets are never written in the file: any string may contain ``${VAR}``, read from the environment at
load time (a ``${`` that does not start such a reference is an error). Relative paths are relative to the
config file's folder. A bad config raises ``ConfigError`` naming the key path (``sources[1].kind``) and the
reason. Unknown keys are rejected at every level, with the nearest valid name; each source kind takes the
options listed in ``SOURCE_OPTIONS``.

A source whose file or folder does not exist is not a config error: ``prepare`` logs a warning naming it,
and the gateway starts with that source unavailable until the path appears.
"""

from gateway.settings.loading import DEFAULT_CONFIG, load_settings, missing_paths, prepare, settings_from_dict
from gateway.settings.sections import (
    ApiTokenConfig,
    AuthConfig,
    CacheConfig,
    CatalogConfig,
    ExecutionConfig,
    LimitsConfig,
    LineageConfig,
    ServerConfig,
    Settings,
    UserConfig,
)
from gateway.settings.sources import (
    AZURE_STORE_KEYS,
    COMMON_SOURCE_KEYS,
    OBJECT_STORE_KEYS,
    SOURCE_OPTIONS,
    URI_KINDS,
    SourceConfig,
    build_connectors,
    source_keys,
)
from gateway.settings.views import ViewConfig, view_definitions

__all__ = [
    "AZURE_STORE_KEYS", "COMMON_SOURCE_KEYS", "DEFAULT_CONFIG", "OBJECT_STORE_KEYS", "SOURCE_OPTIONS", "URI_KINDS",
    "ApiTokenConfig", "AuthConfig", "CacheConfig", "CatalogConfig", "ExecutionConfig", "LimitsConfig",
    "LineageConfig", "ServerConfig", "Settings", "SourceConfig", "UserConfig", "ViewConfig", "build_connectors",
    "load_settings", "missing_paths", "prepare", "settings_from_dict", "source_keys", "view_definitions",
]
