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
