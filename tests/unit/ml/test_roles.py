"""The runtime role's password travels as a SCRAM-SHA-256 verifier; names are quoted."""

from __future__ import annotations

import base64
import hashlib
import hmac

from services.ml.store.roles import _password_clause, quote_ident, scram_verifier

# RFC 7677, section 3: user "user", password "pencil".
SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
CLIENT_FIRST = "n=user,r=rOprNGfwEbeRWgbNEkqO"
SERVER_FIRST = (
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
)
CLIENT_FINAL = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
PROOF = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
SERVER_SIGNATURE = "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def test_verifier_matches_the_rfc_7677_exchange() -> None:
    verifier = scram_verifier("pencil", SALT)
    scheme, rest = verifier.split("$", 1)
    params, keys = rest.split("$")
    assert scheme == "SCRAM-SHA-256"
    assert params == "4096:W22ZaJ0SNY7soEsUEjb6gQ=="
    stored_key, server_key = (base64.b64decode(k) for k in keys.split(":"))
    auth = f"{CLIENT_FIRST},{SERVER_FIRST},{CLIENT_FINAL}".encode()
    # The server checks the RFC's proof with the stored key, and signs with the server key.
    signature = hmac.digest(stored_key, auth, "sha256")
    client_key = bytes(a ^ b for a, b in zip(base64.b64decode(PROOF), signature, strict=True))
    assert hashlib.sha256(client_key).digest() == stored_key
    assert base64.b64encode(hmac.digest(server_key, auth, "sha256")).decode() == SERVER_SIGNATURE


def test_verifiers_are_salted() -> None:
    assert scram_verifier("pw") != scram_verifier("pw")


def test_password_clause_never_holds_a_printable_password() -> None:
    clause = _password_clause("it's-a-secret")
    assert "secret" not in clause
    assert clause.startswith(" PASSWORD 'SCRAM-SHA-256$4096:")
    # non-ASCII passwords go as they are (the server applies SASLprep), quotes doubled
    assert _password_clause("pässwörd'") == " PASSWORD 'pässwörd'''"


def test_identifiers_are_quoted() -> None:
    assert quote_ident('odd"name') == '"odd""name"'
