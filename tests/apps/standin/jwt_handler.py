# SPDX-License-Identifier: GPL-2.0
"""HS256 JWTs as the reference's auth service issues them, standard library only.

Claims follow auth_service/auth_core/core/jwt_handler.py::_build_payload: sub (the user id),
iat, exp, token_type and type ("access"), iss "netra-auth-service", aud, jti, env, svc_id,
email, permissions. Validation requires sub, iat, exp, iss and jti, as the reference does.
The secret is a test secret: this service is only ever run on 127.0.0.1.
"""
import base64
import hashlib
import hmac
import json
import time

TEST_SECRET = b"standin-test-secret-not-for-production"
ISSUER = "netra-auth-service"
REQUIRED = ("sub", "iat", "exp", "iss", "jti")


class InvalidToken(Exception):
    pass


def b64url_encode(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text):
    if isinstance(text, str):
        text = text.encode("ascii")
    return base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))


def create_access_token(user_id, jti, email=None, now=None, ttl=3600, secret=TEST_SECRET):
    now = int(time.time()) if now is None else int(now)
    header = {"alg": "HS256", "typ": "JWT"}
    payload = {
        "sub": user_id,
        "iat": now,
        "exp": now + ttl,
        "token_type": "access",
        "type": "access",
        "iss": ISSUER,
        "aud": "netra-platform",
        "jti": jti,
        "env": "test",
        "svc_id": "netra-backend",
        "email": email or "%s@example.test" % user_id,
        "permissions": ["read", "write"],
    }
    signing_input = "%s.%s" % (
        b64url_encode(json.dumps(header, separators=(",", ":")).encode()),
        b64url_encode(json.dumps(payload, separators=(",", ":")).encode()),
    )
    sig = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return "%s.%s" % (signing_input, b64url_encode(sig))


def subprotocol_for(token):
    """The Sec-WebSocket-Protocol entry the frontend sends: jwt.<base64url(JWT)>, no '='."""
    return "jwt." + b64url_encode(token.encode("ascii"))


def validate_token(token, secret=TEST_SECRET, now=None):
    """The claims of a valid token; InvalidToken says why not."""
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("not a JWT")
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        sig = b64url_decode(parts[2])
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidToken("undecodable: %s" % e)
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        raise InvalidToken("algorithm is not HS256")
    want = hmac.new(secret, ("%s.%s" % (parts[0], parts[1])).encode("ascii"),
                    hashlib.sha256).digest()
    if not hmac.compare_digest(want, sig):
        raise InvalidToken("bad signature")
    if not isinstance(claims, dict):
        raise InvalidToken("claims are not an object")
    missing = [c for c in REQUIRED if c not in claims]
    if missing:
        raise InvalidToken("missing claims: %s" % ",".join(missing))
    if claims["iss"] != ISSUER:
        raise InvalidToken("wrong issuer")
    if not isinstance(claims["sub"], str) or not claims["sub"]:
        raise InvalidToken("sub is not a string")
    if claims["exp"] <= (time.time() if now is None else now):
        raise InvalidToken("expired")
    return claims
