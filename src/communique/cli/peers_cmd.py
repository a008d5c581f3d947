"""Federation at the command line: peers, synchronisation, trusted keys."""

from __future__ import annotations

import re
import sys
from typing import Any

import click

from communique import timestamps
from communique.cli.base import main, node_settings, with_store
from communique.cli.collections_cmd import TlpChoice
from communique.stix.markings import Tlp
from communique.store.base import Peer, PeerLink, Store

_DURATION = re.compile(r"(\d+)\s*([smhd]?)\Z")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class Duration(click.ParamType):
    """A duration: 90, 90s, 5m, 1h, 2d."""

    name = "duration"

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        if isinstance(value, int):
            return value
        match = _DURATION.match(str(value).strip().lower())
        if not match:
            self.fail(f"{value!r} is not a duration (like 90s, 5m, 1h, 2d)", param, ctx)
        return int(match.group(1)) * _UNIT[match.group(2)]


def _options(store: Store) -> Any:
    from communique.sync.engine import Options

    settings = node_settings(store)
    return Options(accept_invalid=settings.accept_invalid_signatures,
                   ca_file=settings.peer_ca_file)


# -- peers -------------------------------------------------------------------------------
@main.group()
def peer() -> None:
    """Other nodes this one synchronises with over TAXII 2.1."""


@peer.command("add")
@click.argument("name")
@click.option("--url", required=True, help="The peer's TAXII 2.1 API root URL.")
@click.option("--token-file", required=True, type=click.Path(exists=True, dir_okay=False),
              help="File holding the API token this node presents to the peer (read at each sync); USER:PASSWORD for HTTP Basic.")
@click.option("--pull", "pulls", multiple=True, metavar="REMOTE=LOCAL",
              help="Copy the peer's collection REMOTE into the local collection LOCAL.")
@click.option("--push", "pushes", multiple=True, metavar="LOCAL=REMOTE",
              help="Offer the local collection LOCAL to the peer's collection REMOTE.")
@click.option("--every", type=Duration(), default="5m", show_default=True,
              help="How often the scheduler synchronises this peer.")
@click.option("--max-tlp", type=TlpChoice(), default="green", show_default=True,
              help="The most restrictive TLP level exchanged with this peer (never RED).")
@click.option("--org", required=True,
              help="The organisation (registered here) that runs the peer node.")
@click.option("--as", "as_org", required=True,
              help="The organisation here that the token stands for at the peer.")
@click.option("--fingerprint", default=None,
              help="Expected key fingerprint of the peer, checked before it is pinned.")
@click.option("--allow-http", is_flag=True,
              help="Accept an http:// URL that is not on this machine (the token travels in clear).")
@with_store
def peer_add(store: Store, name: str, url: str, token_file: str, pulls: tuple[str, ...],
             pushes: tuple[str, ...], every: int, max_tlp: Tlp, org: str, as_org: str,
             fingerprint: str | None, allow_http: bool) -> None:
    """Add a peer: check its API root, pin its signing key, record its links."""
    from communique.sync import peers

    if max_tlp == Tlp.RED:
        raise click.BadParameter("TLP:RED never travels between nodes", param_hint="--max-tlp")
    added = peers.add_peer(
        store, name=name, url=url, token_file=token_file,
        pulls=[peers.parse_mapping(p, push=False) for p in pulls],
        pushes=[peers.parse_mapping(p, push=True) for p in pushes], every_seconds=every,
        max_tlp=max_tlp, org=org, as_org=as_org, fingerprint=fingerprint,
        allow_http=allow_http, options=_options(store))
    click.echo(f"peer {name} added ({len(pulls)} pull, {len(pushes)} push, every {every} s, "
               f"up to {max_tlp.label})")
    if added.kid:
        click.echo(f"pinned key of {added.peer.identity_id}\n  fingerprint {added.kid}\n"
                   "compare it with the fingerprint the peer's operator gives you "
                   "(`communique init` or `communique identity` prints it)")
    else:
        click.echo("the peer publishes no Communiqué identity: its objects are verified only "
                   "against keys this node already trusts")


@peer.command("list")
@with_store
def peer_list(store: Store) -> None:
    """List peers and their links."""
    with store.read() as tx:
        every = tx.list_peers()
        links = tx.links_of()
        names = {c.id: c.alias or c.id for c in tx.list_collections()}
    for item in every:
        click.echo(f"{item.name}\t{item.url}\tevery {item.every_seconds} s\t"
                   f"up to {Tlp(item.max_tlp).label}\t{item.identity_id or '(no identity)'}")
        for link in (x for x in links if x.peer_id == item.id):
            arrow = (f"{link.remote_collection} -> {names.get(link.local_collection)}"
                     if link.direction == "pull" else
                     f"{names.get(link.local_collection)} -> {link.remote_collection}")
            click.echo(f"  {link.direction}\t{arrow}")


@peer.command("remove")
@click.argument("name")
@with_store
def peer_remove(store: Store, name: str) -> None:
    """Forget a peer and its links (what was pulled from it stays)."""
    from communique.sync import peers

    peers.remove_peer(store, name)
    click.echo(f"peer {name} removed")


@peer.command("sync")
@click.argument("name")
@with_store
def peer_sync(store: Store, name: str) -> None:
    """Synchronise one peer now, once, with a progress bar."""
    from rich.progress import Progress, SpinnerColumn, TimeElapsedColumn

    from communique.sync import engine

    found = _peer(store, name)
    with Progress(SpinnerColumn(), "[progress.description]{task.description}",
                  "{task.completed:,} objects", TimeElapsedColumn(),
                  console=_console(), transient=True) as bar:
        tasks: dict[int, Any] = {}

        def advance(link: PeerLink, n: int) -> None:
            if link.id not in tasks:
                tasks[link.id] = bar.add_task(f"{link.direction} {link.remote_collection}")
            bar.advance(tasks[link.id], n)

        runs = engine.sync_peer(store, found, _options(store), advance)
    failed = False
    for run in runs:
        where = f"{run.link.direction} {run.link.remote_collection}"
        if run.error:
            failed = True
            click.echo(f"{where}: FAILED: {run.error}", err=True)
        elif run.moved is not None:
            verb = "pulled" if run.link.direction == "pull" else "pushed"
            click.echo(f"{where}: {run.moved.added} {verb}, {run.moved.duplicate} already there, "
                       f"{run.moved.refused} refused"
                       + ("" if run.moved.complete else " (stopped at the page limit)"))
            for reason, count in (run.moved.reasons or {}).items():
                click.echo(f"  {count} refused: {reason}", err=True)
    if failed:
        sys.exit(1)


@peer.command("status")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per link.")
@with_store
def peer_status(store: Store, name: str | None, as_json: bool) -> None:
    """Show each link's last success, last error, counts and lag."""
    import orjson

    from communique.sync.status import link_states

    for state in link_states(store, name=name, now=timestamps.now_us()):
        if as_json:
            click.echo(orjson.dumps(state.as_dict()).decode())
        else:
            click.echo(state.line())


@main.command("sync")
@click.option("--forever", is_flag=True, help="Keep running due peers until interrupted.")
@with_store
def sync(store: Store, forever: bool) -> None:
    """Run every peer that is due (once), or with --forever the scheduler in the foreground."""
    from communique.sync import engine, scheduler

    if not forever:
        runs = engine.run_due(store, _options(store))
        for run in runs:
            click.echo(f"{run.link.direction} {run.link.remote_collection}: "
                       + (f"FAILED: {run.error}" if run.error else
                          f"{run.moved.added if run.moved else 0} moved"))
        sys.exit(1 if any(run.error for run in runs) else 0)
    import threading

    stop = threading.Event()
    click.echo("synchronising due peers until interrupted (Ctrl-C)")
    try:
        scheduler.forever(store, stop, _options(store))
    except KeyboardInterrupt:
        stop.set()


def _peer(store: Store, name: str) -> Peer:
    from communique.errors import NotFound

    with store.read() as tx:
        found = tx.find_peer(name)
    if found is None:
        raise NotFound(f"no peer named {name!r}")
    return found


def _console():  # type: ignore[no-untyped-def]
    from rich.console import Console

    return Console(stderr=True)
