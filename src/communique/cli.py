"""The ``communique`` command line: thin commands over the same use cases as the API."""

from __future__ import annotations

import functools
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any, Callable

import click
from sqlalchemy.exc import DBAPIError

from communique import access, accounts, audit, importer, node, timestamps
from communique.access import ROLES
from communique.errors import BadRequest, CommuniqueError, NotFound
from communique.settings import DEFAULT_DATABASE, as_environ, load
from communique.store import open_store
from communique.stix.markings import Tlp
from communique.store.base import Collection, Grant, Store

SLUG_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_")


def with_store(command: Callable[..., Any]) -> Callable[..., Any]:
    """Give a command ``--database`` (or COMMUNIQUE_DATABASE) and an open store."""
    @click.option("--database", envvar="COMMUNIQUE_DATABASE", default=DEFAULT_DATABASE,
                  show_default=True, help="Database URL (sqlite:///file or postgresql://…).")
    @functools.wraps(command)
    def wrapper(database: str, **kwargs: Any) -> Any:
        store = open_store(database)
        try:
            return command(store, **kwargs)
        finally:
            store.close()
    return wrapper


class Group(click.Group):
    """Print our errors as one line on standard error, never as a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CommuniqueError as exc:
            click.echo(f"error: {exc.description}", err=True)
            sys.exit(1)
        except DBAPIError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
            click.echo(f"error: the database refused the operation ({reason}); "
                       "if it is new, run `communique init` first", err=True)
            sys.exit(1)


@click.group(cls=Group)
@click.version_option(package_name="communique")
def main() -> None:
    """Communiqué: a federated cyber-defence exchange node (STIX 2.1 over TAXII 2.1)."""


@main.command()
@with_store
def init(store: Store) -> None:
    """Create or upgrade the database schema (safe to run again)."""
    node.initialise(store)
    click.echo("database ready")


# -- organisations and users ---------------------------------------------------------
@main.group()
def org() -> None:
    """Organisations (CERTs, ministries, agencies)."""


@org.command("add")
@click.argument("name")
@with_store
def org_add(store: Store, name: str) -> None:
    """Add an organisation."""
    created = accounts.add_organisation(store, name)
    click.echo(f"organisation {created.name!r} added")


@org.command("list")
@with_store
def org_list(store: Store) -> None:
    """List organisations."""
    with store.read() as tx:
        for item in tx.list_organisations():
            click.echo(item.name)


@main.group()
def user() -> None:
    """Users of this node."""


@user.command("add")
@click.argument("email")
@click.option("--org", "org_name", required=True, help="The user's organisation.")
@click.option("--role", type=click.Choice(ROLES), required=True)
@with_store
def user_add(store: Store, email: str, org_name: str, role: str) -> None:
    """Add a user to an organisation."""
    created = accounts.add_user(store, email, org=org_name, role=role)
    click.echo(f"user {created.email} ({created.role}) added to {created.org_name!r}")


@user.command("list")
@with_store
def user_list(store: Store) -> None:
    """List users."""
    with store.read() as tx:
        for item in tx.list_users():
            click.echo(f"{item.email}\t{item.role}\t{item.org_name}")


# -- tokens ----------------------------------------------------------------------------
@main.group()
def token() -> None:
    """API tokens (shown once, stored hashed)."""


@token.command("create")
@click.argument("email")
@click.option("--expires-days", type=int, default=None, help="Days until the token expires.")
@with_store
def token_create(store: Store, email: str, expires_days: int | None) -> None:
    """Create a token for a user; the token is printed alone on the last line."""
    secret, record = accounts.create_token(store, email, expires_days=expires_days)
    expiry = timestamps.format_ms(record.expires) if record.expires else "never"
    click.echo(f"token {record.id} for {email} (expires: {expiry}); it is shown only now:")
    click.echo(secret)


@token.command("list")
@click.option("--user", "email", default=None, help="Only this user's tokens.")
@with_store
def token_list(store: Store, email: str | None) -> None:
    """List tokens (never the tokens themselves)."""
    with store.read() as tx:
        found = tx.find_user(email.lower()) if email else None
        if email and found is None:
            raise NotFound(f"no user {email!r}")
        tokens = tx.list_tokens(user_id=found.id if found else None)
    for item in tokens:
        state = "revoked" if item.revoked else "active"
        used = timestamps.format_ms(item.last_used) if item.last_used else "never"
        click.echo(f"{item.id}\t{item.prefix}…\t{item.email}\t{state}\tlast used: {used}")


@token.command("revoke")
@click.argument("token_id", type=int)
@with_store
def token_revoke(store: Store, token_id: int) -> None:
    """Revoke a token by its id (see `token list`)."""
    accounts.revoke_token(store, token_id)
    click.echo(f"token {token_id} revoked")


# -- collections -----------------------------------------------------------------------
@main.group()
def collection() -> None:
    """Collections and who may read or write them."""


class TlpChoice(click.ParamType):
    """A TLP level on the command line: clear, green, amber, amber+strict, red (or white)."""

    name = "tlp"

    def convert(self, value: Any, param: Any, ctx: Any) -> Tlp:
        if isinstance(value, Tlp):
            return value
        try:
            return Tlp.parse(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def _tlp_settings(default_tlp: Tlp | None, public: bool) -> Tlp:
    """Return a collection's default level; a public one holds TLP:CLEAR only."""
    if public and default_tlp not in (None, Tlp.CLEAR):
        raise BadRequest("a public collection holds TLP:CLEAR only; its default level is clear")
    return Tlp.CLEAR if public else (Tlp.AMBER if default_tlp is None else default_tlp)


def add_collection(store: Store, title: str, *, root: str, alias: str | None = None,
                   description: str = "", read: tuple[str, ...] = (),
                   write: tuple[str, ...] = (), default_tlp: Tlp | None = None,
                   public: bool = False) -> Collection:
    """Create a collection (and its API root if new) with grants for organisations."""
    if not root or not set(root) <= SLUG_CHARS or root == "taxii2" or len(root) > 64:
        raise BadRequest("--root is 1-64 characters of a-z, 0-9, - and _ (and not 'taxii2')")
    level = _tlp_settings(default_tlp, public)
    now = timestamps.now_us()
    with store.write() as tx:
        orgs = {}
        for name in set(read) | set(write):
            found = tx.find_organisation(name)
            if found is None:
                raise NotFound(f"no organisation named {name!r}")
            orgs[name] = found
        if tx.get_api_root(root) is None:
            tx.add_api_root(root, title=root, description="", now=now)
        created = tx.add_collection(Collection(str(uuid.uuid4()), root, title, description, alias,
                                               int(level), public), now=now)
        for name, found in orgs.items():
            tx.set_grant(Grant(created.id, found.id, name in read, name in write))
        tx.append_audit(audit.OPERATOR.event(
            "collection.add", target=f"{root}/{created.id}", title=title, read=sorted(read),
            write=sorted(write), default_tlp=level.word, public=public), now=now)
    return created


@collection.command("add")
@click.argument("title")
@click.option("--root", default="default", show_default=True, help="API root slug.")
@click.option("--alias", default=None, help="A short name, unique in its API root.")
@click.option("--description", default="")
@click.option("--read", multiple=True, help="Organisation that may read (repeatable).")
@click.option("--write", multiple=True, help="Organisation that may write (repeatable).")
@click.option("--tlp-default", "default_tlp", type=TlpChoice(), default=None,
              help="TLP level of objects that carry no TLP marking [default: amber].")
@click.option("--public", is_flag=True,
              help="Readable without authentication; then it holds TLP:CLEAR objects only.")
@with_store
def collection_add(store: Store, title: str, root: str, alias: str | None, description: str,
                   read: tuple[str, ...], write: tuple[str, ...], default_tlp: Tlp | None,
                   public: bool) -> None:
    """Add a collection; its id is printed alone on the last line."""
    created = add_collection(store, title, root=root, alias=alias, description=description,
                             read=read, write=write, default_tlp=default_tlp, public=public)
    click.echo(f"collection {title!r} added to API root /{root}/")
    click.echo(created.id)


@collection.command("list")
@with_store
def collection_list(store: Store) -> None:
    """List collections with their grants, TLP settings and object counts by TLP level."""
    with store.read() as tx:
        names = {o.id: o.name for o in tx.list_organisations()}
        for item in tx.list_collections():
            grants = tx.grants_on(item.id)
            readers = ",".join(sorted(names[g.org_id] for g in grants if g.can_read)) or "-"
            writers = ",".join(sorted(names[g.org_id] for g in grants if g.can_write)) or "-"
            counts = tx.count_objects(item.id, visibility=access.operator_view(item))
            by_level = " ".join(f"{Tlp(level).word}={n}" for level, n in sorted(counts.items()))
            click.echo(f"{item.id}\t/{item.api_root}/\t{item.title}\tobjects: "
                       f"{sum(counts.values())}{' (' + by_level + ')' if by_level else ''}"
                       f"\tdefault: {Tlp(item.default_tlp).label}"
                       f"{' public' if item.public else ''}\tread: {readers}\twrite: {writers}")


@collection.command("set")
@click.argument("collection_id")
@click.option("--tlp-default", "default_tlp", type=TlpChoice(), default=None,
              help="TLP level of objects that carry no TLP marking.")
@click.option("--public/--private", default=None,
              help="Open the collection to anonymous readers (TLP:CLEAR only), or close it.")
@with_store
def collection_set(store: Store, collection_id: str, default_tlp: Tlp | None,
                   public: bool | None) -> None:
    """Change a collection's default TLP level, or make it public or private."""
    target = importer.find_collection(store, collection_id)
    public = target.public if public is None else public
    if default_tlp is None and not public:
        default_tlp = Tlp(target.default_tlp)
    level = _tlp_settings(default_tlp, public)
    with store.write() as tx:
        if public and not target.public:
            held = tx.count_objects(target.id, visibility=access.operator_view(target))
            if any(lvl != Tlp.CLEAR for lvl in held):
                raise BadRequest("the collection holds objects above TLP:CLEAR; "
                                 "a public collection may hold TLP:CLEAR only")
        tx.set_collection_tlp(target.id, default_tlp=int(level), public=public)
        tx.append_audit(audit.OPERATOR.event(
            "collection.set", target=f"{target.api_root}/{target.id}", default_tlp=level.word,
            public=public), now=timestamps.now_us())
    click.echo(f"collection {target.title!r}: default {level.label}"
               f"{', public' if public else ''}")


# -- import and export -----------------------------------------------------------------
@main.command("import")
@click.argument("file", type=click.Path(allow_dash=True, dir_okay=False))
@click.option("--collection", "collection_id", default=None, help="Collection id or alias.")
@click.option("--as", "email", default=None,
              help="The user whose organisation produced the objects (may read back its RED ones).")
@with_store
def import_(store: Store, file: str, collection_id: str | None, email: str | None) -> None:
    """Import a STIX 2.0 or 2.1 bundle (or a JSON list of objects) into a collection."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    target = importer.find_collection(store, collection_id)
    who = accounts.principal_for(store, email) if email else None
    producer = who.org_id if who else None
    actor = audit.Actor(who.email, who.org_name, "cli") if who else audit.OPERATOR
    data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    objects, bundle_version = importer.read_document(data)
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=_console(), transient=True) as bar:
        task = bar.add_task("importing", total=len(objects))
        summary = importer.import_objects(store, target, objects, bundle_version,
                                          producer_org=producer, actor=actor, progress=lambda n: bar.advance(task, n))
    counts = summary.counts
    click.echo(f"{len(objects)} objects read: {counts['added']} added, "
               f"{counts['duplicate']} duplicate, {counts['refused']} refused")
    for result in summary.refusals:
        click.echo(f"  refused {result.id or '(no id)'}: {result.message}", err=True)
    if counts["refused"]:
        sys.exit(2)


@main.command()
@click.option("--collection", "collection_id", required=True, help="Collection id or alias.")
@click.option("--as", "email", required=True,
              help="The user the export is for: it holds what they may read, never TLP:RED.")
@click.option("--type", "types", multiple=True, help="Only objects of this STIX type (repeatable).")
@click.option("--all-versions", is_flag=True, help="Every version, not only the latest.")
@with_store
def export(store: Store, collection_id: str, email: str, types: tuple[str, ...],
           all_versions: bool) -> None:
    """Write what a user may read of a collection to standard output as a STIX 2.1 bundle."""
    target = importer.find_collection(store, collection_id)
    principal = accounts.principal_for(store, email)
    with store.read() as tx:
        grant = tx.grants_of(principal.org_id).get(target.id)
    who = audit.Actor(principal.email, principal.org_name, "cli")
    where = f"{target.api_root}/{target.id}"
    try:
        access.require_read(access.access_to(principal, grant, public=target.public))
    except CommuniqueError as exc:
        with store.write() as tx:
            tx.append_audit(who.event("objects.export", target=where, outcome=audit.REFUSED,
                                      reason=exc.description), now=timestamps.now_us())
        raise
    count = importer.export_bundle(store, target, sys.stdout.buffer, principal=principal,
                                   types=types, all_versions=all_versions)
    with store.write() as tx:
        tx.append_audit(who.event("objects.export", target=where, objects=count,
                                  types=sorted(types), all_versions=all_versions),
                        now=timestamps.now_us())
    sys.stdout.buffer.flush()


@main.command()
@click.option("--from", "source_id", required=True, help="Source collection id or alias.")
@click.option("--to", "destination_id", required=True, help="Destination collection id or alias.")
@click.option("--as", "email", required=True, help="The user forwarding (reads the source, writes the destination).")
@click.option("--id", "ids", multiple=True, help="Only this object (repeatable).")
@click.option("--type", "types", multiple=True, help="Only objects of this STIX type (repeatable).")
@with_store
def forward(store: Store, source_id: str, destination_id: str, email: str,
            ids: tuple[str, ...], types: tuple[str, ...]) -> None:
    """Copy objects onward to another collection, as far as TLP 2.0 allows."""
    from communique import forwarding

    source = importer.find_collection(store, source_id)
    destination = importer.find_collection(store, destination_id)
    principal = accounts.principal_for(store, email)
    who = audit.Actor(principal.email, principal.org_name, "cli")
    try:
        report = forwarding.forward(store, principal, source=source, destination=destination,
                                    ids=ids, types=types, actor=who)
    except CommuniqueError as exc:
        with store.write() as tx:
            tx.append_audit(who.event("objects.forward", outcome=audit.REFUSED,
                                      target=f"{destination.api_root}/{destination.id}",
                                      source=f"{source.api_root}/{source.id}",
                                      reason=exc.description), now=timestamps.now_us())
        raise
    click.echo(f"{report.forwarded} forwarded, {report.duplicate} already there, "
               f"{len(report.refused)} refused")
    for object_id, rule in report.refused:
        click.echo(f"  refused {object_id}: {rule}", err=True)
    if report.refused:
        sys.exit(2)


# -- the audit log -----------------------------------------------------------------------
@main.group("audit")
def audit_group() -> None:
    """The tamper-evident audit log."""


@audit_group.command("verify")
@with_store
def audit_verify(store: Store) -> None:
    """Walk the hash chain; exit 0 only if every entry is intact and in place."""
    from communique.store.sql_audit import walk

    with store.read() as tx:
        verdict = audit.verify(walk(tx), head=tx.audit_head())  # type: ignore[arg-type]
    if not verdict.intact:
        click.echo(f"audit log BROKEN: {verdict.problem}", err=True)
        click.echo(f"intact up to entry {verdict.head_seq} ({verdict.head_hash})", err=True)
        sys.exit(1)
    click.echo(f"audit log intact: {verdict.entries} entries; head {verdict.head_seq} "
               f"{verdict.head_hash}")


@audit_group.command("show")
@click.option("--user", "actor", default=None, help="Only entries of this actor (e-mail, or 'operator').")
@click.option("--org", default=None, help="Only entries of this organisation.")
@click.option("--action", default=None, help="Only this action, e.g. objects.add or auth.failure.")
@click.option("--since", default=None, help="Only entries at or after this time (RFC 3339).")
@click.option("--limit", type=click.IntRange(1, 1_000_000), default=None, help="At most this many.")
@with_store
def audit_show(store: Store, actor: str | None, org: str | None, action: str | None,
               since: str | None, limit: int | None) -> None:
    """Print audit entries as JSON lines, oldest first."""
    start = None
    if since is not None:
        try:
            start = timestamps.parse(since)
        except ValueError as exc:
            raise BadRequest(f"--since: {exc}") from None
    after, shown = 0, 0
    while True:
        with store.read() as tx:
            entries = tx.audit_entries(after_seq=after, limit=1000, actor=actor, org=org,
                                       action=action, since=start)
        for entry in entries:
            if limit is not None and shown >= limit:
                return
            click.echo(json.dumps(entry.as_json(), ensure_ascii=False, sort_keys=True))
            shown += 1
        if len(entries) < 1000:
            return
        after = entries[-1].seq


@main.command()
def definitions() -> None:
    """Print the STIX objects this node publishes (TLP 2.0 markings, recipients extension)."""
    from communique.stix.markings import definitions as published

    bundle = {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": published()}
    click.echo(json.dumps(bundle, indent=2, ensure_ascii=False))


def _console():  # type: ignore[no-untyped-def]
    from rich.console import Console

    return Console(stderr=True)


# -- serving ---------------------------------------------------------------------------
def serve_node(database: str, *, host: str, port: int, workers: int,
               tls_cert: str | None = None, tls_key: str | None = None) -> None:
    """Run the TAXII server with uvicorn, over HTTPS only if given a certificate and key."""
    import uvicorn

    from communique.web.security import tls_context

    settings = load(database=database)
    store = open_store(settings.database)
    try:
        node.cursor_key(store, settings)  # fail now, clearly, if `init` was never run
    finally:
        store.close()
    os.environ.update(as_environ(settings))
    uvicorn.run("communique.web.app:create_app", factory=True, host=host, port=port,
                workers=workers, log_level="info", server_header=False,
                ssl_certfile=tls_cert, ssl_keyfile=tls_key,
                ssl_context_factory=tls_context if tls_cert else None)


@main.command()
@click.option("--database", envvar="COMMUNIQUE_DATABASE", default=DEFAULT_DATABASE,
              show_default=True, help="Database URL (sqlite:///file or postgresql://…).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), default=None,
              help="PEM certificate (chain): serve HTTPS only, TLS 1.2 or later. Needs --tls-key.")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), default=None,
              help="PEM private key of --tls-cert.")
def serve(database: str, host: str, port: int, workers: int, tls_cert: str | None,
          tls_key: str | None) -> None:
    """Serve the TAXII 2.1 API, over HTTPS when given --tls-cert and --tls-key."""
    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together: give both, or neither")
    serve_node(database, host=host, port=port, workers=workers, tls_cert=tls_cert,
               tls_key=tls_key)


@main.command()
@click.option("--database", envvar="COMMUNIQUE_DATABASE", default="sqlite:///var/demo.db",
              show_default=True, help="Database URL for the demo node.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--bundle", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A STIX bundle to load instead of MITRE ATT&CK Enterprise.")
@click.option("--no-serve", is_flag=True, help="Set up the demo, print how to use it, and stop.")
def demo(database: str, host: str, port: int, bundle: str | None, no_serve: bool) -> None:
    """Set up a ready demo node (organisations, users, collections, ATT&CK) and serve it."""
    from communique import demo as demo_setup

    store = open_store(database)
    try:
        guide = demo_setup.prepare(store, bundle=bundle, base_url=f"http://{host}:{port}",
                                   echo=click.echo)
    finally:
        store.close()
    click.echo(guide)
    if not no_serve:
        serve_node(database, host=host, port=port, workers=1)
