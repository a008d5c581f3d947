"""Collections: grants, TLP default, public or private."""

from __future__ import annotations

import uuid
from typing import Any

import click

from communique import access, audit, importer, timestamps
from communique.cli.base import main, with_store
from communique.errors import BadRequest, NotFound
from communique.stix.markings import Tlp
from communique.store.base import Collection, Grant, Store

SLUG_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_")
RESERVED_ROOTS = ("taxii2", "web")


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
    if not root or not set(root) <= SLUG_CHARS or root in RESERVED_ROOTS or len(root) > 64:
        raise BadRequest("--root is 1-64 characters of a-z, 0-9, - and _ "
                         f"(and not {' or '.join(RESERVED_ROOTS)})")
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
            held = tx.count_objects(target.id, visibility=access.operator_view(target),
                                    every_version=True)
            if any(lvl != Tlp.CLEAR for lvl in held):
                raise BadRequest("the collection holds objects (or older versions) above TLP:CLEAR; "
                                 "a public collection may hold TLP:CLEAR only")
        tx.set_collection_tlp(target.id, default_tlp=int(level), public=public)
        tx.append_audit(audit.OPERATOR.event(
            "collection.set", target=f"{target.api_root}/{target.id}", default_tlp=level.word,
            public=public), now=timestamps.now_us())
    click.echo(f"collection {target.title!r}: default {level.label}"
               f"{', public' if public else ''}")


@collection.command("grant")
@click.argument("collection_id")
@click.option("--org", "org_name", required=True, help="The organisation whose access changes.")
@click.option("--read/--no-read", default=False, help="May read the collection.")
@click.option("--write/--no-write", default=False, help="May add objects to the collection.")
@with_store
def collection_grant(store: Store, collection_id: str, org_name: str, read: bool,
                     write: bool) -> None:
    """Set what one organisation may do with a collection (neither flag: no access)."""
    target = importer.find_collection(store, collection_id)
    with store.write() as tx:
        found = tx.find_organisation(org_name)
        if found is None:
            raise NotFound(f"no organisation named {org_name!r}")
        grants = tx.grants_on(target.id)
        before = next((g for g in grants if g.org_id == found.id), None)
        if read and not (before and before.can_read):
            refusal = access.refusal_to_widen(
                tx.received_levels(target.id), readers=access.readers(grants) | {found.id},
                entitled=frozenset(p.local_org_id for p in tx.list_peers()
                                   if any(link.local_collection == target.id
                                          and link.direction == "pull"
                                          for link in tx.links_of(p.id))))
            if refusal:
                raise BadRequest(refusal)
        tx.set_grant(Grant(target.id, found.id, read, write))
        tx.append_audit(audit.OPERATOR.event(
            "grant.change", target=f"{target.api_root}/{target.id}", org_granted=org_name,
            read=read, write=write,
            before={"read": before.can_read, "write": before.can_write} if before else None),
            now=timestamps.now_us())
    rights = " and ".join(w for w, ok in (("read", read), ("write", write)) if ok) or "no access"
    click.echo(f"{org_name!r} now has {rights} on {target.title!r}")
