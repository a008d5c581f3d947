"""The relational schema, in SQLAlchemy Core. Alembic migrations create it.

Instants are BIGINT microseconds since the epoch (UTC). A STIX object version is
one row of ``objects``; ``date_added`` is unique per collection and strictly
increasing, so paging by it never skips or repeats a row. ``is_first`` and
``is_last`` mark each object's first and last version, so the default
``match[version]=last`` is a scan of a partial index, not a group-by.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger, Boolean, Column, ForeignKey, ForeignKeyConstraint, Index, Integer, LargeBinary,
    MetaData, SmallInteger, String, Table, Text, UniqueConstraint, false, true,
)

metadata = MetaData()

# An auto-incrementing 64-bit key that SQLite also treats as its rowid.
BigKey = BigInteger().with_variant(Integer(), "sqlite")

node_settings = Table(
    "node_settings", metadata,
    Column("name", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)

organisations = Table(
    "organisations", metadata,
    Column("id", BigKey, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("created", BigInteger, nullable=False),
)

users = Table(
    "users", metadata,
    Column("id", BigKey, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("org_id", BigInteger, ForeignKey("organisations.id"), nullable=False),
    Column("role", String(20), nullable=False),
    Column("created", BigInteger, nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("password_hash", Text, nullable=True),  # argon2id; NULL: no web sign-in yet
    Column("mfa_secret", String(64), nullable=True),  # TOTP secret once enrolment is confirmed
    Column("mfa_last_step", BigInteger, nullable=True),  # last TOTP time step used: no replay
    Column("failed_signins", Integer, nullable=False, server_default="0"),
    Column("locked_until", BigInteger, nullable=True),
)

api_tokens = Table(
    "api_tokens", metadata,
    Column("id", BigKey, primary_key=True, autoincrement=True),
    Column("user_id", BigInteger, ForeignKey("users.id"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("created", BigInteger, nullable=False),
    Column("expires", BigInteger, nullable=True),
    Column("revoked", BigInteger, nullable=True),
    Column("last_used", BigInteger, nullable=True),
    Column("scope", String(10), nullable=False, server_default="write"),  # read, write or admin
)

recovery_codes = Table(
    "recovery_codes", metadata,
    Column("id", BigKey, primary_key=True, autoincrement=True),
    Column("user_id", BigInteger, ForeignKey("users.id"), nullable=False, index=True),
    Column("code_hash", String(64), nullable=False, unique=True),
    Column("used", BigInteger, nullable=True),
)

# A web session: only the SHA-256 of its cookie is stored. ``stage`` is 'mfa' (password
# accepted, code awaited), 'enrol' (password accepted, MFA to set up) or 'full'.
web_sessions = Table(
    "web_sessions", metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", BigInteger, ForeignKey("users.id"), nullable=False, index=True),
    Column("stage", String(10), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("pending_secret", String(64), nullable=True),
    Column("address", String(64), nullable=False),
    Column("created", BigInteger, nullable=False),
    Column("last_seen", BigInteger, nullable=False),
)

signin_failures = Table(
    "signin_failures", metadata,
    Column("id", BigKey, primary_key=True, autoincrement=True),
    Column("address", String(64), nullable=False),
    Column("at", BigInteger, nullable=False),
    Index("ix_signin_failures_address", "address", "at"),
)

api_roots = Table(
    "api_roots", metadata,
    Column("slug", String(64), primary_key=True),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("created", BigInteger, nullable=False),
)

collections = Table(
    "collections", metadata,
    Column("id", String(36), primary_key=True),
    Column("api_root", String(64), ForeignKey("api_roots.slug"), nullable=False),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("alias", String(100), nullable=True),
    Column("created", BigInteger, nullable=False),
    Column("last_added", BigInteger, nullable=False, default=0),
    # The TLP level of objects that carry no TLP marking (AMBER unless set otherwise).
    Column("default_tlp", SmallInteger, nullable=False, server_default="2"),
    # Readable without authentication; then it serves and accepts TLP:CLEAR only.
    Column("public", Boolean, nullable=False, server_default=false()),
    UniqueConstraint("api_root", "alias", name="uq_collections_alias"),
)

grants = Table(
    "grants", metadata,
    Column("collection_id", String(36), ForeignKey("collections.id", ondelete="CASCADE"),
           primary_key=True),
    Column("org_id", BigInteger, ForeignKey("organisations.id"), primary_key=True),
    Column("can_read", Boolean, nullable=False),
    Column("can_write", Boolean, nullable=False),
)

objects = Table(
    "objects", metadata,
    Column("pk", BigKey, primary_key=True, autoincrement=True),
    Column("collection_id", String(36), ForeignKey("collections.id", ondelete="CASCADE"),
           nullable=False),
    Column("stix_id", String(300), nullable=False),
    Column("type", String(250), nullable=False),
    Column("spec_version", String(10), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("date_added", BigInteger, nullable=False),
    Column("media_type", String(100), nullable=False),
    Column("is_first", Boolean, nullable=False),
    Column("is_last", Boolean, nullable=False),
    Column("digest", LargeBinary(32), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("tlp", SmallInteger, nullable=True),  # its own TLP level; NULL: the collection's default
    Column("producer_org", BigInteger, nullable=True),  # the organisation that added it
    # provenance.signatures.Status of its signature when it was stored
    Column("signature", SmallInteger, nullable=False, server_default="0"),
    Column("origin_peer", BigInteger, nullable=True),  # the peer it was pulled from, if any
    UniqueConstraint("collection_id", "date_added", name="uq_objects_date_added"),
    UniqueConstraint("collection_id", "stix_id", "version", name="uq_objects_version"),
    Index("ix_objects_type", "collection_id", "type", "date_added"),
)

# Only last versions: the default listing (match[version]=last) walks this in order.
Index("ix_objects_last", objects.c.collection_id, objects.c.date_added,
      sqlite_where=objects.c.is_last == true(), postgresql_where=objects.c.is_last == true())

# Who a RED version names as recipients: 'org:NAME' or 'user:EMAIL'.
object_recipients = Table(
    "object_recipients", metadata,
    Column("collection_id", String(36), primary_key=True),
    Column("stix_id", String(300), primary_key=True),
    Column("version", BigInteger, primary_key=True),
    Column("principal", String(330), primary_key=True),
    ForeignKeyConstraint(["collection_id", "stix_id", "version"],
                         ["objects.collection_id", "objects.stix_id", "objects.version"],
                         name="fk_object_recipients_object", ondelete="CASCADE"),
)

# The audit log (see audit.py); its head is the node setting 'audit.head' ("SEQ:HASH").
audit_log = Table(
    "audit_log", metadata,
    Column("seq", BigKey, primary_key=True, autoincrement=False),
    Column("at", BigInteger, nullable=False, index=True),
    Column("action", String(64), nullable=False),
    Column("actor", String(320), nullable=False),
    Column("org", String(200), nullable=False),
    Column("target", Text, nullable=False),
    Column("address", String(64), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("details", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

statuses = Table(
    "statuses", metadata,
    Column("id", String(36), primary_key=True),
    Column("api_root", String(64), nullable=False),
    Column("org_id", BigInteger, nullable=False),
    Column("created", BigInteger, nullable=False, index=True),
    Column("body", LargeBinary, nullable=False),
)

# Public keys this node trusts to verify signatures ('trusted'); a key a known identity
# announces in place of its pinned one waits as 'pending' until an administrator approves.
trusted_keys = Table(
    "trusted_keys", metadata,
    Column("kid", String(64), primary_key=True),  # RFC 7638 thumbprint
    Column("identity_id", String(300), nullable=False, index=True),
    Column("x", String(64), nullable=False),  # the Ed25519 public key, base64url
    Column("state", String(10), nullable=False),  # trusted, pending, retired or revoked
    Column("source", String(200), nullable=False),  # 'self', 'peer NAME' or 'operator'
    Column("added", BigInteger, nullable=False),
    Column("decided", BigInteger, nullable=True),
)

# Other nodes this one synchronises with. The token to present to the peer is read from
# ``token_file`` at each sync, never stored here.
peers = Table(
    "peers", metadata,
    Column("id", BigKey, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("url", Text, nullable=False),  # the peer's TAXII API root URL, ending in '/'
    Column("token_file", Text, nullable=False),
    Column("org_id", BigInteger, ForeignKey("organisations.id"), nullable=False),  # runs it
    Column("local_org_id", BigInteger, ForeignKey("organisations.id"), nullable=False),  # us there
    Column("max_tlp", SmallInteger, nullable=False),
    Column("every_seconds", Integer, nullable=False),
    Column("identity_id", String(300), nullable=True),  # its node identity, if it has one
    Column("created", BigInteger, nullable=False),
    sqlite_autoincrement=True,  # objects keep the id of the peer they came from: never reused
)

# One collection mapping of a peer, in one direction, with where it stands.
peer_links = Table(
    "peer_links", metadata,
    Column("id", BigKey, primary_key=True, autoincrement=True),
    Column("peer_id", BigInteger, ForeignKey("peers.id", ondelete="CASCADE"), nullable=False),
    Column("direction", String(4), nullable=False),  # pull or push
    Column("remote_collection", String(300), nullable=False),
    Column("local_collection", String(36), ForeignKey("collections.id", ondelete="CASCADE"),
           nullable=False),
    # pull: the peer's date_added up to which everything is stored here;
    # push: this node's date_added up to which everything was offered to the peer.
    Column("position", BigInteger, nullable=True),
    Column("last_attempt", BigInteger, nullable=True),
    Column("last_success", BigInteger, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("errors_in_row", Integer, nullable=False, server_default="0"),
    Column("next_due", BigInteger, nullable=False, server_default="0"),
    Column("moved", BigInteger, nullable=False, server_default="0"),  # pulled or pushed
    Column("refused", BigInteger, nullable=False, server_default="0"),
    UniqueConstraint("peer_id", "direction", "remote_collection", "local_collection",
                     name="uq_peer_links"),
    sqlite_autoincrement=True,
)

# Object versions a peer refused on push, retried with backoff until accepted.
push_retries = Table(
    "push_retries", metadata,
    Column("link_id", BigInteger, ForeignKey("peer_links.id", ondelete="CASCADE"),
           primary_key=True),
    Column("stix_id", String(300), primary_key=True),
    Column("version", BigInteger, primary_key=True),
    Column("reason", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_try", BigInteger, nullable=False),
)

# Detection facts of indicator and sighting versions (detect/catalogue.py), filed when a
# version is stored and dropped with it. Queries join ``objects`` for the last version
# and for the reader's TLP view, so these tables never decide who sees what.
indicator_facts = Table(
    "indicator_facts", metadata,
    Column("object_pk", BigInteger, ForeignKey("objects.pk", ondelete="CASCADE"),
           primary_key=True),
    Column("valid_from", BigInteger, nullable=False),
    Column("valid_until", BigInteger, nullable=True),
    Column("revoked", Boolean, nullable=False),
    Column("confidence", SmallInteger, nullable=True),
    Column("kinds", String(300), nullable=False),  # STIX object types of its pattern
    Column("created_by", String(300), nullable=True),  # its created_by_ref, if any
    # the MISP warning lists that hold every value it looks for: NULL not checked yet,
    # '' none, else names separated by newlines
    Column("warninglists", Text, nullable=True),
)

indicator_values = Table(
    "indicator_values", metadata,
    Column("object_pk", BigInteger, ForeignKey("objects.pk", ondelete="CASCADE"),
           primary_key=True),
    Column("digest", LargeBinary(16), primary_key=True),  # catalogue.digest(path, value)
    Column("path", String(200), nullable=False),
    Column("value", Text, nullable=False),
    Index("ix_indicator_values_digest", "digest"),
)

sighting_facts = Table(
    "sighting_facts", metadata,
    Column("object_pk", BigInteger, ForeignKey("objects.pk", ondelete="CASCADE"),
           primary_key=True),
    Column("sighting_of_ref", String(300), nullable=False, index=True),
    Column("count", BigInteger, nullable=False),
    Column("first_seen", BigInteger, nullable=True),
    Column("last_seen", BigInteger, nullable=True),
)

# An analyst's decision that an indicator is hunted and exported although every value
# it looks for is on a warning list. Kept per object, whatever its version.
indicator_overrides = Table(
    "indicator_overrides", metadata,
    Column("collection_id", String(36), ForeignKey("collections.id", ondelete="CASCADE"),
           primary_key=True),
    Column("stix_id", String(300), primary_key=True),
    Column("actor", String(320), nullable=False),
    Column("reason", Text, nullable=False),
    Column("at", BigInteger, nullable=False),
)
