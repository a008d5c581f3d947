"""Signatures on objects, the node's key file, and hostile signature input."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc.jwk import OKPKey

from communique import node
from communique.errors import BadRequest, CommuniqueError
from communique.provenance import keys, publish, signatures
from communique.provenance.signatures import PROVENANCE_EXTENSION, Status, TrustedKey
from communique.settings import Settings
from communique.store import open_store
from tests.support import indicator

SIGNER = "identity--0b6a4d3e-5d4e-4d7b-9a51-2f6f3c9f7a10"


@pytest.fixture
def key() -> OKPKey:
    return OKPKey.generate_key("Ed25519")


def ring(key: OKPKey, identity: str = SIGNER) -> dict[str, TrustedKey]:
    return {key.thumbprint(): TrustedKey(identity, key.thumbprint(),
                                         keys.import_public(keys.public_jwk(key)))}


def test_sign_then_verify(key: OKPKey) -> None:
    obj = indicator(1)
    signed = signatures.sign(obj, key, signed_by=SIGNER)
    assert obj == indicator(1) | {"id": obj["id"]} and "extensions" not in obj  # not mutated
    entry = signed["extensions"][PROVENANCE_EXTENSION]
    assert entry["signed_by"] == SIGNER and entry["signature"].count(".") == 2
    assert entry["signature"].split(".")[1] == ""  # detached payload
    assert signatures.verify(signed, ring(key)).status is Status.VERIFIED


def test_the_signature_survives_reordering_and_respacing(key: OKPKey) -> None:
    signed = signatures.sign(indicator(1, confidence=80), key, signed_by=SIGNER)
    reordered = orjson.loads(orjson.dumps(dict(reversed(list(signed.items()))),
                                          option=orjson.OPT_INDENT_2))
    assert signatures.verify(reordered, ring(key)).status is Status.VERIFIED


@pytest.mark.parametrize("change", [
    lambda o: o.update(name="changed"),
    lambda o: o.update(confidence=81),
    lambda o: o["extensions"][PROVENANCE_EXTENSION].update(x="added"),
    lambda o: o.update(extensions={**o["extensions"], "x-other": {"a": 1}}),
    lambda o: o.pop("valid_from"),
])
def test_any_change_after_signing_is_invalid(key: OKPKey, change) -> None:  # type: ignore[no-untyped-def]
    signed = signatures.sign(indicator(1, confidence=80), key, signed_by=SIGNER)
    change(signed)
    verdict = signatures.verify(signed, ring(key))
    assert verdict.status is Status.INVALID and "does not match" in verdict.reason


def test_signed_by_is_covered_and_must_own_the_key(key: OKPKey) -> None:
    signed = signatures.sign(indicator(1), key, signed_by=SIGNER)
    signed["extensions"][PROVENANCE_EXTENSION]["signed_by"] = "identity--" + "1" * 8 + SIGNER[18:]
    assert signatures.verify(signed, ring(key)).status is Status.INVALID


def test_an_untrusted_key_is_an_unknown_signer(key: OKPKey) -> None:
    signed = signatures.sign(indicator(1), key, signed_by=SIGNER)
    other = OKPKey.generate_key("Ed25519")
    verdict = signatures.verify(signed, ring(other))
    assert verdict.status is Status.UNKNOWN_SIGNER and verdict.kid == key.thumbprint()


def test_an_unsigned_object_is_unsigned(key: OKPKey) -> None:
    assert signatures.verify(indicator(1), ring(key)).status is Status.UNSIGNED
    half = indicator(1, extensions={PROVENANCE_EXTENSION: {
        "extension_type": "property-extension", "signed_by": SIGNER}})
    assert signatures.verify(half, ring(key)).status is Status.UNSIGNED


def _header(value: dict) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).rstrip(b"=").decode()


@pytest.mark.parametrize("signature", [
    None, 7, "", "..", "a.b.c", "a..", "..c", "x" * 5000, "!!!..abc",
    _header({"alg": "none", "kid": "k"}) + "..abc",
    _header({"alg": "HS256", "kid": "k"}) + "..abc",
    _header({"alg": "EdDSA"}) + "..abc",
    _header({"alg": "EdDSA", "kid": 5}) + "..abc",
    _header({"alg": "EdDSA", "kid": "k", "b64": False, "crit": ["b64"]}) + "..abc",
    _header(["EdDSA"]) + "..abc",
])
def test_malformed_signatures_are_invalid_never_errors(key: OKPKey, signature: object) -> None:
    obj = indicator(1, extensions={PROVENANCE_EXTENSION: {
        "extension_type": "property-extension", "signed_by": SIGNER, "signature": signature}})
    assert signatures.verify(obj, ring(key)).status is Status.INVALID


def test_a_bad_signature_value_under_a_trusted_key_is_invalid(key: OKPKey) -> None:
    signed = signatures.sign(indicator(1), key, signed_by=SIGNER)
    entry = signed["extensions"][PROVENANCE_EXTENSION]
    header = entry["signature"].split(".")[0]
    for tail in ("", "AAAA", "%%%", "A" * 86):
        entry["signature"] = f"{header}..{tail}"
        assert signatures.verify(signed, ring(key)).status is Status.INVALID


@pytest.mark.parametrize("signed_by", [None, 5, "", "malware--x", ["identity--x"]])
def test_signed_by_must_be_an_identity(key: OKPKey, signed_by: object) -> None:
    signed = signatures.sign(indicator(1), key, signed_by=SIGNER)
    signed["extensions"][PROVENANCE_EXTENSION]["signed_by"] = signed_by
    assert signatures.verify(signed, ring(key)).status is Status.INVALID


def test_objects_without_a_canonical_form_are_refused(key: OKPKey) -> None:
    with pytest.raises(CommuniqueError, match="canonical"):
        signatures.sign(indicator(1, x_big=2 ** 60), key, signed_by=SIGNER)
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(CommuniqueError, match="nested too deeply"):
        signatures.sign(indicator(1, x_deep=deep), key, signed_by=SIGNER)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 53 + 1, 2 ** 53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4), max_leaves=20)


@settings(max_examples=150, deadline=None)
@given(extra=st.dictionaries(st.from_regex(r"x_[a-z]{1,8}", fullmatch=True), json_values,
                             max_size=4))
def test_any_json_survives_a_serialisation_round_trip(extra: dict) -> None:
    """Whatever the values, a signed object still verifies after re-encoding (as a server may)."""
    key = OKPKey.generate_key("Ed25519")
    signed = signatures.sign(indicator(1, **extra), key, signed_by=SIGNER)
    assert signatures.verify(orjson.loads(orjson.dumps(signed)), ring(key)).status \
        is Status.VERIFIED


# -- the node's key file and identity ----------------------------------------------------
def test_the_key_file_is_private_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "node.key"
    made, new = keys.load_or_create(path)
    assert new and (path.stat().st_mode & 0o777) == 0o600
    assert keys.load(path).kid == made.kid
    os.chmod(path, 0o640)
    with pytest.raises(keys.KeyFileError, match="may be read by others"):
        keys.load(path)
    os.chmod(path, 0o600)
    path.write_text("not a key")
    with pytest.raises(keys.KeyFileError, match="PEM"):
        keys.load(path)
    with pytest.raises(keys.KeyFileError, match="no signing key"):
        keys.load(tmp_path / "missing.key")


def test_an_rsa_key_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    path = tmp_path / "rsa.key"
    path.write_bytes(rsa.generate_private_key(65537, 2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    path.chmod(0o600)
    with pytest.raises(keys.KeyFileError, match="not Ed25519"):
        keys.load(path)


def test_the_identity_is_signed_and_announces_the_key(tmp_path: Path) -> None:
    made = keys.create(tmp_path / "k")
    identity = publish.node_identity(identity_id=SIGNER, name="Node", created=0, modified=0,
                                     key=made)
    identity_id, jwks = publish.signing_keys_of(identity)
    assert identity_id == SIGNER and jwks[0]["kid"] == made.kid and "d" not in jwks[0]
    assert signatures.verify(identity, ring(made.private)).status is Status.VERIFIED


@pytest.mark.parametrize("identity", [
    None, [], {"type": "malware", "id": "malware--x"}, {"type": "identity", "id": SIGNER},
    {"type": "identity", "id": SIGNER, "extensions": {PROVENANCE_EXTENSION: {"signing_keys": []}}},
    {"type": "identity", "id": SIGNER, "extensions": {PROVENANCE_EXTENSION: {
        "signing_keys": [{"kty": "RSA", "n": "x", "e": "AQAB"}]}}},
    {"type": "identity", "id": SIGNER, "extensions": {PROVENANCE_EXTENSION: {
        "signing_keys": [{"kty": "OKP", "crv": "Ed25519", "x": "too-short"}]}}},
    {"type": "identity", "id": SIGNER, "extensions": {PROVENANCE_EXTENSION: {
        "signing_keys": [{"kty": "OKP", "crv": "Ed25519", "x": "A" * 43, "d": "A" * 43}]}}},
])
def test_hostile_identities_are_refused(identity: object) -> None:
    with pytest.raises(BadRequest):
        publish.signing_keys_of(identity)


def test_a_replaced_key_file_must_be_published_by_init(database_url: str) -> None:
    store = open_store(database_url)
    try:
        settings = Settings(database=database_url)
        first = node.signer(store, settings)
        node.signing_key_path(settings).unlink()
        keys.create(node.signing_key_path(settings))
        with pytest.raises(node.NotInitialised, match="run `communique init`"):
            node.signer(store, settings)
        second = node.initialise(store, settings)
        assert second.identity_id == first.identity_id and second.key.kid != first.key.kid
        with store.read() as tx:
            states = {k.kid: k.state for k in tx.list_keys(identity_id=first.identity_id)}
        assert states == {first.key.kid: "retired", second.key.kid: "trusted"}
    finally:
        store.close()


def test_a_lost_key_file_is_not_replaced_silently(database_url: str) -> None:
    """`init` refuses to make a new key for a node that published one, unless asked to."""
    from tests.cli_support import communique

    settings = Settings(database=database_url)
    path = node.signing_key_path(settings)
    path.unlink()
    run = communique("init", database=database_url)
    assert run.code == 1 and "is missing" in run.err and "--rotate-key" in run.err
    assert not path.exists()
    run = communique("init", "--rotate-key", database=database_url)
    assert run.code == 0 and path.exists()


def test_signatures_are_standard_detached_jws(key: OKPKey) -> None:
    """What we sign, a JOSE library verifies as RFC 7515 (Appendix F); and the other way round."""
    from joserfc import jws

    signed = signatures.sign(indicator(1), key, signed_by=SIGNER)
    compact = signed["extensions"][PROVENANCE_EXTENSION]["signature"]
    payload = signatures.canonical_payload(signed)
    public = keys.import_public(keys.public_jwk(key))
    assert jws.deserialize_compact(compact, public, payload=payload,
                                   algorithms=["EdDSA"]).payload == payload
    made = jws.detach_content(jws.serialize_compact(
        {"alg": "EdDSA", "kid": key.thumbprint()}, payload, key, algorithms=["EdDSA"]))
    signed["extensions"][PROVENANCE_EXTENSION]["signature"] = made
    assert signatures.verify(signed, ring(key)).status is Status.VERIFIED


keys_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)),
                    max_size=6)
documents = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 60, 2 ** 60)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(keys_text, children, max_size=5), max_leaves=25)


@settings(max_examples=400, deadline=None)
@given(document=st.dictionaries(keys_text, documents, max_size=6))
def test_the_fast_canonical_form_is_rfc_8785(document: dict) -> None:
    """Where the fast path is taken, its bytes are exactly RFC 8785's; elsewhere the
    reference implementation decides (and refuses what has no canonical form)."""
    import rfc8785

    try:
        expected = rfc8785.dumps(document)
    except rfc8785.CanonicalizationError:
        with pytest.raises(CommuniqueError):
            signatures.canonical_payload(document)
        return
    assert signatures.canonical_payload(document) == expected
