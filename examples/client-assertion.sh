#!/usr/bin/env bash
# A private_key_jwt client's two chores (RFC 7523), with nothing but openssl and
# coreutils: make a key pair, and sign a fresh client assertion for each request.
#
#   examples/client-assertion.sh keygen KEY.pem > jwks.json
#       writes an RSA private key to KEY.pem (0600; it never leaves you) and prints
#       the public JWK Set to register: gatehouse client create --auth-method
#       private_key_jwt --jwks-file jwks.json
#   examples/client-assertion.sh sign KEY.pem CLIENT_ID AUDIENCE
#       prints an RS256 assertion: iss = sub = CLIENT_ID, aud = AUDIENCE (the issuer,
#       or the URL of the endpoint you send it to), exp one minute ahead, a random jti.
#       Each assertion is good for one request: the server refuses a jti it has seen.
#
# Then:
#   curl -d grant_type=client_credentials \
#        -d client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer \
#        -d client_assertion="$(examples/client-assertion.sh sign KEY.pem ID ISSUER)" \
#        ISSUER/oauth/token
set -euo pipefail

b64url() { basenc --base64url -w0 | tr -d '='; }

case "${1:-}" in
keygen)
    key="${2:?usage: $0 keygen KEY.pem}"
    (umask 077 && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$key" 2>/dev/null)
    modulus="$(openssl rsa -in "$key" -noout -modulus | cut -d= -f2)"
    n="$(printf '%s' "$modulus" | basenc --base16 -d | b64url)"
    kid="$(printf '%s' "$n" | openssl dgst -sha256 -binary | b64url | cut -c1-16)"
    # The public exponent openssl uses, 65537, is AQAB in base64url.
    printf '{"keys":[{"kty":"RSA","alg":"RS256","use":"sig","kid":"%s","e":"AQAB","n":"%s"}]}\n' "$kid" "$n"
    ;;
sign)
    key="${2:?usage: $0 sign KEY.pem CLIENT_ID AUDIENCE}"
    client_id="${3:?usage: $0 sign KEY.pem CLIENT_ID AUDIENCE}"
    audience="${4:?usage: $0 sign KEY.pem CLIENT_ID AUDIENCE}"
    modulus="$(openssl rsa -in "$key" -noout -modulus | cut -d= -f2)"
    kid="$(printf '%s' "$modulus" | basenc --base16 -d | b64url | openssl dgst -sha256 -binary | b64url | cut -c1-16)"
    now="$(date +%s)"
    header="$(printf '{"alg":"RS256","typ":"JWT","kid":"%s"}' "$kid" | b64url)"
    payload="$(printf '{"iss":"%s","sub":"%s","aud":"%s","iat":%d,"exp":%d,"jti":"%s"}' \
        "$client_id" "$client_id" "$audience" "$now" "$((now + 60))" "$(openssl rand -hex 16)" | b64url)"
    signature="$(printf '%s.%s' "$header" "$payload" | openssl dgst -sha256 -sign "$key" -binary | b64url)"
    printf '%s.%s.%s\n' "$header" "$payload" "$signature"
    ;;
*)
    sed -n '2,18p' "$0" >&2
    exit 2
    ;;
esac
