"""Correlation, decay and warning lists at the command line."""

from __future__ import annotations

import json

import click

from communique import accounts, audit, importer, timestamps
from communique.cli.base import main, with_store
from communique.errors import BadRequest, NotFound
from communique.store.base import Store


@main.command()
@click.argument("value", required=False)
@click.option("--as", "email", required=True, help="The user asking: only what they may see.")
@click.option("--path", default=None,
              help="The STIX path the value is of (default: tried as an address, domain, "
                   "URL, e-mail address, hash…).")
@click.option("--shared", "shared_only", is_flag=True,
              help="List the values that several reporters look for, instead of one value.")
@click.option("--min-reporters", default=2, show_default=True, type=click.IntRange(1),
              help="With --shared: reporters a value needs.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@with_store
def correlate(store: Store, value: str | None, email: str, path: str | None, shared_only: bool,
              min_reporters: int, limit: int, as_json: bool) -> None:
    """Show who reported VALUE (when, at which TLP, how often sighted), or --shared values."""
    from rich.console import Console
    from rich.table import Table

    from communique.detect import correlation

    principal = accounts.principal_for(store, email)
    if shared_only:
        found = correlation.shared(store, principal, min_reporters=min_reporters, limit=limit)
        if as_json:
            click.echo(json.dumps([{"path": s.path, "value": s.value, "reporters": s.reporters,
                                    "indicators": s.indicators} for s in found], indent=2))
            return
        table = Table(title=f"{len(found):,} values reported by {min_reporters}+ reporters")
        for column in ("value", "path", "reporters", "indicators"):
            table.add_column(column)
        for item in found:
            table.add_row(item.value, item.path, str(item.reporters), str(item.indicators))
        Console().print(table)
        return
    if not value:
        raise BadRequest("give a VALUE, or --shared")
    reports = correlation.correlate(store, principal, value, path=path, now_us=timestamps.now_us())
    if as_json:
        click.echo(json.dumps({"value": value, "reporters": correlation.reporters(reports),
                               "reports": [_report_json(r) for r in reports]}, indent=2))
        return
    table = Table(title=f"{value}: {len(reports)} indicators from "
                        f"{correlation.reporters(reports)} reporters")
    for column in ("reporter", "indicator", "collection", "TLP", "valid from", "score",
                   "sightings", "last seen", "runs"):
        table.add_column(column)
    for r in reports:
        table.add_row(r.reporter, r.indicator_id, r.collection, r.level.label,
                      timestamps.format_ms(r.valid_from), f"{r.score:.0f}", str(r.sightings),
                      "" if r.last_seen is None else timestamps.format_ms(r.last_seen),
                      r.excluded or "yes")
    Console().print(table)


def _report_json(r) -> dict:  # type: ignore[no-untyped-def]
    return {"path": r.path, "value": r.value, "indicator": r.indicator_id,
            "collection": r.collection, "reporter": r.reporter, "organisation": r.organisation,
            "tlp": r.level.label, "valid_from": timestamps.format_ms(r.valid_from),
            "score": round(r.score, 1), "sightings": r.sightings,
            "last_seen": None if r.last_seen is None else timestamps.format_ms(r.last_seen),
            "excluded": r.excluded}


@main.group()
def indicator() -> None:
    """Decide about one indicator: let it through its warning lists, or not."""


@indicator.command("allow")
@click.argument("indicator_id")
@click.option("--collection", "collection_id", required=True, help="Collection id or alias.")
@click.option("--as", "email", required=True, help="The analyst deciding (must write there).")
@click.option("--reason", required=True, help="Why it is hunted and exported all the same.")
@with_store
def indicator_allow(store: Store, indicator_id: str, collection_id: str, email: str,
                    reason: str) -> None:
    """Hunt and export INDICATOR_ID although its values are on warning lists."""
    _decide(store, indicator_id, collection_id, email, reason)


@indicator.command("hold")
@click.argument("indicator_id")
@click.option("--collection", "collection_id", required=True, help="Collection id or alias.")
@click.option("--as", "email", required=True, help="The analyst deciding (must write there).")
@with_store
def indicator_hold(store: Store, indicator_id: str, collection_id: str, email: str) -> None:
    """Hold INDICATOR_ID to its warning lists again (undo `allow`)."""
    _decide(store, indicator_id, collection_id, email, None)


def _decide(store: Store, indicator_id: str, collection_id: str, email: str,
            reason: str | None) -> None:
    from communique import access
    from communique.detect import standing

    target = importer.find_collection(store, collection_id)
    principal = accounts.principal_for(store, email)
    with store.read() as tx:
        grant = tx.grants_of(principal.org_id).get(target.id)
    access.require_write(access.access_to(principal, grant, public=target.public))
    seen = standing.views(store, principal, [target], leaving=False)
    with store.read() as tx:
        if not tx.indicator_rows(seen, stix_ids=[indicator_id], limit=1):
            raise NotFound(f"no indicator {indicator_id} you may see in this collection")
    now = timestamps.now_us()
    with store.write() as tx:
        if reason is None:
            changed = tx.clear_override(target.id, indicator_id)
        else:
            tx.set_override(target.id, indicator_id, actor=principal.email, reason=reason, now=now)
            changed = True
        tx.append_audit(audit.Actor.of(principal, "cli").event(
            "indicator.allow" if reason is not None else "indicator.hold",
            target=f"{target.api_root}/{target.id}/{indicator_id}", reason=reason or ""),
            now=now)
    click.echo(("allowed: hunted and exported despite its warning lists" if reason is not None
                else "held to its warning lists") if changed else "nothing to undo")


@main.group()
def decay() -> None:
    """Show or change how indicators lose their score with age (MISP's polynomial model)."""


@decay.command("show")
@with_store
def decay_show(store: Store) -> None:
    """Print the decay model of each STIX object type."""
    from communique.detect import standing

    for kind, model in sorted(standing.models(store).items()):
        click.echo(f"{kind:22} lifetime {model.lifetime_days:g} days, speed "
                   f"{model.decay_speed:g}, threshold {model.threshold:g}")


@decay.command("set")
@click.argument("object_type")
@click.option("--days", type=float, required=True, help="Lifetime τ in days.")
@click.option("--speed", type=float, default=0.3, show_default=True, help="Decay speed δ.")
@click.option("--threshold", type=float, default=30, show_default=True,
              help="Score below which an indicator stops being hunted and exported.")
@with_store
def decay_set(store: Store, object_type: str, days: float, speed: float, threshold: float) -> None:
    """Give OBJECT_TYPE (ipv4-addr, domain-name, file…) its own decay model."""
    from communique.detect import decay as decaying
    from communique.detect import standing

    try:
        model = decaying.Model(lifetime_days=days, decay_speed=speed, threshold=threshold)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    standing.set_model(store, object_type.strip().lower(), model)
    with store.write() as tx:
        tx.append_audit(audit.OPERATOR.event("decay.set", target=object_type, days=days,
                                             speed=speed, threshold=threshold),
                        now=timestamps.now_us())
    click.echo(f"{object_type}: lifetime {days:g} days, speed {speed:g}, threshold {threshold:g}")


@main.command("warninglists")
@with_store
def warninglists_check(store: Store) -> None:
    """Check indicators not checked yet against the MISP warning lists, and flag them."""
    from communique.detect import flags

    checked = flags.check_pending(store)
    click.echo(f"{checked:,} indicators checked")
