"""Authlib as a private_key_jwt client of a running gatehouse (RFC 7523 §2.2).

Run by the integration test `private_key_jwt::authlib_private_key_jwt`, which
starts the server, registers the client's public key and passes the private key
file. With Authlib's own `PrivateKeyJWT` client authentication and no help from
gatehouse, the script gets a client_credentials token, introspects it, revokes
it and introspects it again, then prints one JSON object with what it saw.

Each request carries a fresh assertion whose `aud` is the URL it is sent to
(PrivateKeyJWT without a fixed token endpoint), which is what most libraries do.
"""

import argparse
import json
import sys

from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc.jwk import ECKey, OKPKey, RSAKey

KEY_TYPES = {"RS256": RSAKey, "PS256": RSAKey, "ES256": ECKey, "EdDSA": OKPKey}


class RecordingPrivateKeyJWT(PrivateKeyJWT):
    """Authlib's PrivateKeyJWT, noting the audience of every assertion it signs."""

    def __init__(self, alg):
        super().__init__(alg=alg)
        self.audiences = []

    def sign(self, auth, token_endpoint):
        self.audiences.append(token_endpoint)
        return super().sign(auth, token_endpoint)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--key", required=True, help="PEM file of the private key")
    parser.add_argument("--alg", required=True, choices=sorted(KEY_TYPES))
    parser.add_argument("--scope", default=None)
    args = parser.parse_args()

    base = args.issuer.rstrip("/")
    with open(args.key, encoding="ascii") as f:
        key = KEY_TYPES[args.alg].import_key(f.read())

    auth = RecordingPrivateKeyJWT(args.alg)
    session = OAuth2Session(
        args.client_id,
        key,
        scope=args.scope,
        token_endpoint_auth_method="private_key_jwt",
        revocation_endpoint_auth_method="private_key_jwt",
    )
    session.register_client_auth_method(auth)

    token = session.fetch_token(f"{base}/oauth/token", grant_type="client_credentials")
    access_token = token["access_token"]
    introspection = session.introspect_token(f"{base}/oauth/introspect", token=access_token)
    introspection.raise_for_status()
    revocation = session.revoke_token(f"{base}/oauth/revoke", token=access_token)
    after = session.introspect_token(f"{base}/oauth/introspect", token=access_token)
    after.raise_for_status()

    json.dump(
        {
            "token": dict(token),
            "introspection": introspection.json(),
            "revocation_status": revocation.status_code,
            "after_revocation": after.json(),
            "assertion_audiences": auth.audiences,
        },
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
