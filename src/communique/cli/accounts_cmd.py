"""Organisations, users and API tokens."""

from __future__ import annotations

import sys

import click

from communique import accounts, timestamps
from communique.access import ROLES, SCOPES
from communique.cli.base import main, with_store
from communique.errors import BadRequest, NotFound
from communique.store.base import Store


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


@user.command("passwd")
@click.argument("email")
@with_store
def user_passwd(store: Store, email: str) -> None:
    """Set a user's web sign-in password, read from standard input (never an argument)."""
    if sys.stdin.isatty():
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise BadRequest("no password given on standard input")
    accounts.set_password(store, email, password)
    click.echo(f"password of {email.strip().lower()} set; their web sessions are ended")


@user.command("mfa-reset")
@click.argument("email")
@with_store
def user_mfa_reset(store: Store, email: str) -> None:
    """Remove a user's second factor; they enrol a new one at their next sign-in."""
    accounts.reset_mfa(store, email)
    click.echo(f"second factor of {email.strip().lower()} removed; they enrol again at sign-in")


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
@click.option("--scope", type=click.Choice(SCOPES), default=None,
              help="read, write or admin [default: the most the user's role allows].")
@with_store
def token_create(store: Store, email: str, expires_days: int | None, scope: str | None) -> None:
    """Create a token for a user; the token is printed alone on the last line."""
    secret, record = accounts.create_token(store, email, expires_days=expires_days, scope=scope)
    expiry = timestamps.format_ms(record.expires) if record.expires else "never"
    click.echo(f"token {record.id} for {email} (scope: {record.scope}, expires: {expiry}); "
               "it is shown only now:")
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
        click.echo(f"{item.id}\t{item.prefix}…\t{item.email}\t{item.scope}\t{state}"
                   f"\tlast used: {used}")


@token.command("revoke")
@click.argument("token_id", type=int)
@with_store
def token_revoke(store: Store, token_id: int) -> None:
    """Revoke a token by its id (see `token list`)."""
    accounts.revoke_token(store, token_id)
    click.echo(f"token {token_id} revoked")
