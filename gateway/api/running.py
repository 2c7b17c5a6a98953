"""The queries ``POST /v1/query`` runs now, by id: cancelled by ``DELETE /v1/queries/{id}``, by a client that
goes away, and all at once when the server shuts down (``RunningQueries.close``)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

from gateway.auth import Principal
from gateway.errors import InvalidRequestError, PermissionDeniedError, QueryCancelledError, UnknownObjectError
from gateway.execution.engine import QueryResult


class RunningQuery:
    """One query of ``POST /v1/query`` while it runs: its id, its owner (the user name; None with auth off),
    the cancel event handed to the engine, and its ``QueryResult`` once the engine returned it."""

    def __init__(self, query_id: str, owner: str | None) -> None:
        self.id = query_id
        self.owner = owner
        self.cancel_event = threading.Event()  # the engine's; the engine also sets it when the query ends
        self.cancelled = False
        self.completed = False  # the stream was sent to its end (all rows, or the error that ended them)
        self.ended = threading.Event()  # the request is over (answered, streamed, or failed)
        self._result: QueryResult | None = None
        self._lock = threading.Lock()

    def attach(self, result: QueryResult) -> None:
        """The engine's result; cancelled at once if the query was cancelled while the engine started it."""
        with self._lock:
            self._result = result
            cancelled = self.cancelled
        if cancelled:
            result.cancel()

    def cancel(self) -> None:
        """Stop the query (safe from any thread, a no-op once it ended): the engine's cancel event is set and
        the source statements still running are cancelled. Never blocks."""
        with self._lock:
            self.cancelled = True
            result = self._result
        self.cancel_event.set()
        if result is not None:
            result.cancel()


class RunningQueries:
    """The queries the REST API runs now, by id; thread-safe. ``cancel`` stops one for its owner (``DELETE
    /v1/queries/{id}``); ``close`` stops them all and refuses new ones (the server is shutting down)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queries: dict[str, RunningQuery] = {}
        self._closed = False

    def start(self, query_id: str | None, owner: str | None) -> RunningQuery:
        """Register a new query under ``query_id`` (default: a random hex id). InvalidRequestError if a
        running query has that id; QueryCancelledError once ``close`` was called."""
        running = RunningQuery(query_id or uuid.uuid4().hex, owner)
        with self._lock:
            if self._closed:
                raise QueryCancelledError("the server is shutting down: the query was not started")
            if running.id in self._queries:
                error = InvalidRequestError(f"query_id '{running.id}' is in use by a running query",
                                            query_id=running.id)
                error.phase = "request"
                raise error
            self._queries[running.id] = running
        return running

    def finish(self, running: RunningQuery) -> None:
        """The request of ``running`` is over: forget it."""
        with self._lock:
            if self._queries.get(running.id) is running:
                del self._queries[running.id]
        running.ended.set()

    def cancel(self, query_id: str, user: Principal | None, check_owner: bool, wait_s: float = 0.0) -> bool:
        """Cancel the running query ``query_id`` and wait up to ``wait_s`` seconds for its request to end;
        True if it did. UnknownObjectError (404) when no running query has the id; with ``check_owner`` (auth
        on), PermissionDeniedError (403) when ``user`` does not own it."""
        with self._lock:
            running = self._queries.get(query_id)
        if running is None:
            error = UnknownObjectError("query", query_id)
            error.phase = "request"
            raise error
        name = user.name if user is not None else None
        if check_owner and running.owner != name:
            raise PermissionDeniedError(f"query '{query_id}' belongs to another user", query_id=query_id)
        running.cancel()
        return running.ended.wait(wait_s)

    def close(self) -> int:
        """Cancel every running query and refuse new ones; returns how many were cancelled."""
        with self._lock:
            self._closed = True
            running = list(self._queries.values())
        for query in running:
            query.cancel()
        return len(running)


async def cancel_on_disconnect(receive: Callable, running: RunningQuery) -> None:
    """Wait for the client to go away (``http.disconnect``; the request body was read already), then cancel
    its query unless the whole result was sent."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            if not running.completed:
                running.cancel()
            return

