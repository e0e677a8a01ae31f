"""``webhooks listen``: receive RunComfy webhooks locally and print each event as a JSON line."""

from __future__ import annotations

import json
import sys

import click

from ._app import cli


@cli.group("webhooks")
def webhooks_group() -> None:
    """Receive Serverless webhooks (for local development)."""


@webhooks_group.command("listen")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=0, type=click.IntRange(0, 65535), help="Port (default: a free one)."
)
def listen_command(host: str, port: int) -> None:
    """Print every webhook event POSTed to this machine as one JSON line on stdout.

    Each line is the event (request_id, deployment_id, status as sent and normalised, final,
    body) plus what it did: duplicate (same request id and status seen before), stale (a later
    state is known: it came out of order) and new_final (the job's first final state). Any path
    is accepted; point a submit's webhook= at http://HOST:PORT/ (through a tunnel when RunComfy
    must reach it). Stop with Ctrl-C.
    """
    from ..webhooks import Delivery, WebhookInbox, serve, timestamp

    def show(delivery: Delivery) -> None:
        line = {"received_at": timestamp(), **delivery.as_dict()}
        sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    try:
        server = serve(WebhookInbox(), host=host, port=port, on_delivery=show)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    bound = server.server_address[1]
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"listening on http://{shown}:{bound}/", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
