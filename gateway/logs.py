"""Structured logs: one JSON object per line, with the ``extra`` fields of each record."""

from __future__ import annotations

import json
import logging
import re
import sys
import time

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "color_message"}
# userinfo in URIs (postgresql://user:secret@host) never reaches a log line
_URI_PASSWORD = re.compile(r"(://[^:/@\s]+):[^@\s]+@")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``ts``, ``level``, ``logger``, ``msg``, the record's ``extra`` fields, and
    ``exc`` (the traceback) when it has one; passwords in URIs are redacted."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str))


#: the SQL text in a query's log line is cut to this many characters (the history keeps it whole)
LOG_SQL_CHARS = 1000

_queries = logging.getLogger("gateway.queries")


def log_query(stats) -> None:
    """The one structured line of a query that ended (a ``gateway.metrics.QueryStats``): logger
    ``gateway.queries``, message ``query finished``, fields ``query_id``, ``user``, ``protocol``, ``status``,
    ``error_code``, ``error``, ``rows``, ``seconds`` and ``sql`` (its first ``LOG_SQL_CHARS`` characters;
    ``sql_chars`` gives the full length). At INFO whatever the status (a failure is the client's to handle;
    the ``status`` and ``error_code`` fields are there to filter on)."""
    sql = stats.sql or ""
    fields = {
        "query_id": stats.query_id, "user": stats.user, "protocol": stats.protocol, "status": stats.status,
        "error_code": stats.error_code, "rows": stats.rows, "seconds": round(stats.seconds, 4),
        "sql": sql if len(sql) <= LOG_SQL_CHARS else sql[:LOG_SQL_CHARS] + "...", "sql_chars": len(sql),
    }
    if stats.error is not None:
        fields["error"] = stats.error[:LOG_SQL_CHARS]
    _queries.info("query finished", extra=fields)


def redact(text: str) -> str:
    """Remove passwords embedded in connection URIs."""
    return _URI_PASSWORD.sub(r"\1:***@", text)


def setup_logging(level: str = "INFO") -> None:
    """Send every log record to stderr as JSON lines (``JsonFormatter``) at ``level`` and above."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
