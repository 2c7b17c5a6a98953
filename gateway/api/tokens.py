"""``POST /v1/auth/token``: Basic credentials exchanged for a bearer token."""

from __future__ import annotations

from fastapi import APIRouter, Request

from gateway.api.deps import Auth
from gateway.errors import AuthenticationError

router = APIRouter()


@router.post("/v1/auth/token")
def token(request: Request, auth: Auth) -> dict:
    """Exchange Basic credentials for a bearer token (valid ``auth.token_ttl_s`` seconds)."""
    if not auth.enabled:
        return {"token": None, "expires_in_s": None, "auth": "disabled"}
    principal, issued = auth.user_for_header(request.headers.get("authorization"), issue_token=True,
                                             client=request.client.host if request.client else None)
    if issued is None:
        raise AuthenticationError("send Basic credentials to obtain a token")
    return {"token": issued, "token_type": "Bearer", "expires_in_s": auth.ttl_s, "user": principal.name}
