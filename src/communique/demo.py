"""A ready demo node: three organisations, their users, three collections, MITRE ATT&CK loaded.

Running it again reuses what exists and issues a fresh token.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Callable

from communique import access, accounts, datasets, importer, node
from communique.cli import add_collection
from communique.provenance import publish
from communique.settings import load
from communique.stix.markings import Tlp
from communique.store.base import Store

CERT = "National CERT"
MINISTRY = "Ministry of Foreign Affairs"
PARTNER = "Partner Defence Agency"
USERS = (("admin@cert.example", CERT, "admin"),
         ("analyst@cert.example", CERT, "analyst"),
         ("analyst@mfa.example", MINISTRY, "analyst"),
         ("reader@partner.example", PARTNER, "reader"))


def prepare(store: Store, *, bundle: str | None, base_url: str,
            echo: Callable[[str], None]) -> str:
    """Initialise and fill the demo database; return the text that tells how to use it."""
    settings = load(database=store.url)
    signer = node.initialise(store, settings)
    provenance = node.local_provenance(store, settings, signer)
    with store.read() as tx:
        existing = {o.name for o in tx.list_organisations()}
        users = {u.email for u in tx.list_users()}
        collections = {c.alias: c for c in tx.list_collections()}
    for name in (CERT, MINISTRY, PARTNER):
        if name not in existing:
            accounts.add_organisation(store, name)
    for email, org, role in USERS:
        if email not in users:
            accounts.add_user(store, email, org=org, role=role)
    if "attack" not in collections:
        collections["attack"] = add_collection(
            store, "MITRE ATT&CK Enterprise", root="default", alias="attack",
            description="The MITRE ATT&CK Enterprise knowledge base, upgraded to STIX 2.1.",
            read=(CERT, MINISTRY, PARTNER), write=(CERT,), default_tlp=Tlp.CLEAR)
    if "shared" not in collections:
        collections["shared"] = add_collection(
            store, "Shared indicators", root="default", alias="shared",
            description="Indicators the members share with each other.",
            read=(CERT, MINISTRY, PARTNER), write=(CERT, MINISTRY))
    if "definitions" not in collections:
        collections["definitions"] = add_collection(
            store, "Communiqué definitions", root="default", alias="definitions",
            description="The TLP 2.0 marking definitions and the STIX extensions this node uses.",
            write=(CERT,), public=True)
        importer.import_objects(store, collections["definitions"],
                                [*publish.definitions(), signer.identity], "2.1",
                                provenance=provenance)
    attack = collections["attack"]
    with store.read() as tx:
        loaded = sum(tx.count_objects(attack.id, visibility=access.operator_view(attack)).values())
    if not loaded:
        path = Path(bundle) if bundle else datasets.attack_enterprise()
        echo(f"loading {path.name} into {attack.title!r} …")
        objects, version = importer.read_document(path.read_bytes())
        summary = importer.import_objects(store, attack, objects, version, provenance=provenance)
        echo(f"{summary.counts['added']} objects added, {summary.counts['refused']} refused")
    token, _ = accounts.create_token(store, "analyst@cert.example", expires_days=30)
    password = "demo-" + secrets.token_urlsafe(12)
    accounts.set_password(store, "analyst@cert.example", password)
    return _guide(base_url, token, password, collections["attack"].id, collections["shared"].id)


def _guide(base_url: str, token: str, password: str, attack_id: str, shared_id: str) -> str:
    root = f"{base_url}/default/"
    return f"""
Communiqué demo node
  TAXII discovery   {base_url}/taxii2/
  API root          {root}
  ATT&CK collection {root}collections/{attack_id}/
  Shared indicators {root}collections/{shared_id}/
  Definitions       {root}collections/definitions/  (public: no token needed)
  Sign in as        analyst@cert.example (National CERT, analyst)
  API token         {token}
  Web sign-in       {base_url}/web/  password {password}
                    (then set up a second factor with any TOTP authenticator app)

The TAXII API takes API tokens only: a browser pointed at the discovery URL asks for
a user name and password; give the e-mail above and the token as the password.

  curl -g -H 'Accept: application/taxii+json;version=2.1' -H 'Authorization: Bearer {token}' \\
       '{root}collections/{attack_id}/objects/?match[type]=intrusion-set&limit=5'

  from taxii2client.v21 import Server
  server = Server('{base_url}/taxii2/', user='analyst@cert.example', password='{token}')
"""
