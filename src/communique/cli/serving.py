"""Serving: the TAXII server, and the demo node."""

from __future__ import annotations

import os

import click

from communique import node
from communique.cli.base import main
from communique.settings import DEFAULT_DATABASE, as_environ, load
from communique.store import open_store


# -- serving ---------------------------------------------------------------------------
def serve_node(database: str, *, host: str, port: int, workers: int,
               tls_cert: str | None = None, tls_key: str | None = None,
               sync: bool = True) -> None:
    """Run the TAXII server with uvicorn (HTTPS if given a certificate and key), and beside it
    the scheduler that synchronises due peers."""
    import uvicorn

    from communique.sync import scheduler
    from communique.sync.engine import Options
    from communique.web.security import tls_context

    settings = load(database=database)
    store = open_store(settings.database)
    try:
        node.cursor_key(store, settings)  # fail now, clearly, if `init` was never run
        node.signer(store, settings)
    except BaseException:
        store.close()
        raise
    stop = None
    if sync:
        _, stop = scheduler.start(store, Options(
            accept_invalid=settings.accept_invalid_signatures, ca_file=settings.peer_ca_file))
    os.environ.update(as_environ(settings))
    try:
        uvicorn.run("communique.web.app:create_app", factory=True, host=host, port=port,
                    workers=workers, log_level="info", server_header=False,
                    timeout_graceful_shutdown=30,  # an idle client cannot hold a stop forever
                    ssl_certfile=tls_cert, ssl_keyfile=tls_key,
                    ssl_context_factory=tls_context if tls_cert else None)
    finally:
        if stop is not None:
            stop.set()
        store.close()


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
@click.option("--no-sync", is_flag=True,
              help="Do not run the peer scheduler here (run `communique sync --forever` apart).")
def serve(database: str, host: str, port: int, workers: int, tls_cert: str | None,
          tls_key: str | None, no_sync: bool) -> None:
    """Serve the TAXII 2.1 API (HTTPS with --tls-cert and --tls-key) and synchronise peers."""
    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together: give both, or neither")
    serve_node(database, host=host, port=port, workers=workers, tls_cert=tls_cert,
               tls_key=tls_key, sync=not no_sync)


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
