"""The command group, its error handling, and ``--database`` for every command."""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable

import click
from sqlalchemy.exc import DBAPIError

from communique import ingest, node
from communique.errors import CommuniqueError
from communique.settings import DEFAULT_DATABASE, Settings, load
from communique.store import open_store
from communique.store.base import Store


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


def node_settings(store: Store) -> Settings:
    """Return the settings of the node whose database is open (the rest from the environment)."""
    return load(database=store.url)


def local_provenance(store: Store) -> ingest.Provenance:
    """Return how objects this command brings in are verified and signed by the node."""
    settings = node_settings(store)
    return node.local_provenance(store, settings, node.signer(store, settings))


@main.command()
@click.option("--rotate-key", is_flag=True,
              help="Make a new signing key when the published one's file is gone (peers must "
                   "approve the new key).")
@with_store
def init(store: Store, rotate_key: bool) -> None:
    """Create or upgrade the database, and the node's signing key and identity (safe to repeat)."""
    settings = node_settings(store)
    signer = node.initialise(store, settings, rotate_key=rotate_key)
    click.echo("database ready")
    click.echo(f"node identity {signer.identity_id}")
    click.echo(f"signing key   {node.signing_key_path(settings)}")
    click.echo(f"fingerprint   {signer.key.kid}")
