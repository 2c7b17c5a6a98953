"""Reading a config file: ``${VAR}`` references expanded from the environment, relative paths made absolute,
pydantic's errors turned into one ``ConfigError`` naming the key path (with the nearest valid name of an unknown
key); ``prepare`` (demo data, missing paths logged)."""

from __future__ import annotations

import logging
import os
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from gateway.errors import ConfigError, nearest_names
from gateway.settings.sections import Settings
from gateway.settings.sources import SOURCE_OPTIONS, KeyProblem, SourceConfig, source_keys

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "config" / "gateway.toml"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
log = logging.getLogger("gateway.settings")


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
        from gateway.demo import ensure_demo_data  # the demo's data is written only for the demo config

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
    if isinstance(cause, KeyProblem):  # a model-level check naming one of the model's keys
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
