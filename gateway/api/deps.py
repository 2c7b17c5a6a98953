"""Request dependencies shared by the routers: the engine, the authenticator and the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from catalog import Catalog
from gateway.auth import Authenticator, Principal
from gateway.execution.engine import QueryEngine


async def _engine(request: Request) -> QueryEngine:
    return request.app.state.engine


async def _authenticator(request: Request) -> Authenticator:
    return request.app.state.authenticator


def current_user(request: Request) -> Principal | None:
    """The caller (Basic credentials, a bearer token or an API token); None when auth is off."""
    auth: Authenticator = request.app.state.authenticator
    return auth.user_for_header(request.headers.get("authorization"), issue_token=False,
                                client=request.client.host if request.client else None)[0]


Engine = Annotated[QueryEngine, Depends(_engine)]
Auth = Annotated[Authenticator, Depends(_authenticator)]
User = Annotated[Principal | None, Depends(current_user)]


def visible_sources(engine: QueryEngine, principal: Principal | None) -> list[str]:
    """The sources ``principal`` may see (all with auth off)."""
    return [s for s in engine.catalog.list_sources() if principal is None or principal.may_use(s)]


def visible_catalog(engine: QueryEngine, principal: Principal | None) -> Catalog:
    """The catalog as ``principal`` sees it: its sources, and the named views over those sources only."""
    return engine.catalog if principal is None or principal.sources is None else \
        engine.catalog.view(principal.sources)
