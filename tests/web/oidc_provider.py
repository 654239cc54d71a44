"""A small but real OpenID Connect provider for the tests, served by uvicorn on 127.0.0.1:
discovery, JWKS, an authorization endpoint that signs in `user` at once, and a token
endpoint that checks the client secret (client_secret_basic), the redirect URI, the PKCE
verifier (S256) and that each code is used once. ID tokens are RS256-signed with joserfc.

`faults` makes it misbehave on purpose: `wrong_nonce`, `wrong_audience`, `expired`,
`bad_signature` (signed by another key under the published key id), `unknown_kid`.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Form, Header, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from tests.browser_support import free_port

CLIENT_ID = "carecollect-test-client"
CLIENT_SECRET = "idp-client-secret-0123456789"



def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@dataclass
class LocalProvider:
    issuer: str = ""
    user: dict[str, Any] = field(default_factory=dict)
    faults: set[str] = field(default_factory=set)
    key: RSAKey = field(
        default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
    )
    rogue_key: RSAKey = field(
        default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
    )
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    token_requests: int = 0
    jwks_requests: int = 0
    authorize_params: list[dict[str, str]] = field(default_factory=list)

    def id_token(self, grant: dict[str, Any], access_token: str) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": grant["nonce"],
            "at_hash": _b64(hashlib.sha256(access_token.encode()).digest()[:16]),
            **self.user,
        }
        if "wrong_nonce" in self.faults:
            claims["nonce"] = "not-the-nonce-that-was-sent"
        if "wrong_audience" in self.faults:
            claims["aud"] = "some-other-client"
        if "expired" in self.faults:
            claims["iat"], claims["exp"] = now - 7200, now - 3600
        key = self.rogue_key if "bad_signature" in self.faults else self.key
        kid = "k-unknown" if "unknown_kid" in self.faults else "k1"
        return jwt.encode({"alg": "RS256", "kid": kid}, claims, key)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/.well-known/openid-configuration")
        def discovery() -> dict[str, Any]:
            return {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
            }

        @app.get("/jwks")
        def jwks() -> dict[str, Any]:
            self.jwks_requests += 1
            return KeySet([self.key]).as_dict(private=False)

        @app.get("/authorize")
        def authorize(request: Request) -> Response:
            params = dict(request.query_params)
            self.authorize_params.append(params)
            if params.get("client_id") != CLIENT_ID or params.get("response_type") != "code" \
                    or params.get("code_challenge_method") != "S256" \
                    or "openid" not in params.get("scope", "").split():
                return JSONResponse({"error": "invalid_request"}, status_code=400)
            code = secrets.token_urlsafe(16)
            self.codes[code] = {
                "nonce": params["nonce"],
                "challenge": params["code_challenge"],
                "redirect_uri": params["redirect_uri"],
            }
            query = urlencode({"code": code, "state": params["state"]})
            return RedirectResponse(f"{params['redirect_uri']}?{query}", status_code=302)

        @app.post("/token")
        def token(
            grant_type: str = Form(),
            code: str = Form(),
            redirect_uri: str = Form(),
            code_verifier: str = Form(),
            authorization: str = Header(""),
        ) -> Response:
            self.token_requests += 1
            expected = "Basic " + base64.b64encode(
                f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            if authorization != expected:
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            grant = self.codes.pop(code, None)  # one use only
            if grant_type != "authorization_code" or grant is None \
                    or grant["redirect_uri"] != redirect_uri:
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            challenge = _b64(hashlib.sha256(code_verifier.encode()).digest())
            if challenge != grant["challenge"]:
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            access_token = secrets.token_urlsafe(24)
            return JSONResponse({
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": self.id_token(grant, access_token),
            })

        return app


@contextmanager
def serve_provider() -> Iterator[LocalProvider]:
    import uvicorn

    from carecollect.identity import oidc

    provider = LocalProvider()
    port = free_port()
    provider.issuer = f"http://127.0.0.1:{port}"
    # The app's OIDC client caches discovery and keys per issuer for ten minutes. A new
    # test provider can get the port (so the issuer) of an earlier one in this process,
    # with a new key under the same kid: forget what was cached for that issuer.
    with oidc.oidc_client._lock:
        oidc.oidc_client._metadata.pop(provider.issuer, None)
        oidc.oidc_client._jwks.pop(provider.issuer, None)
    server = uvicorn.Server(uvicorn.Config(provider.app(), host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    try:
        yield provider
    finally:
        server.should_exit = True
        thread.join(timeout=10)
