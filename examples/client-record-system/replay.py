#!/usr/bin/env python3
"""Replays a day of a client-record system's pushes from a CSV file (issue 24).

The municipality's system (an API client of the registrar, scopes clients:write, clients:read,
consent:write) creates each new client with its first service and records the Kanta informing
and the disclosure consent; the provider's system (an API client of the provider, scope
service_events:write) records the delivered services. Every creating POST carries an
Idempotency-Key derived from the row, and is retried with backoff on connection errors, 429 and
5xx: running the same day twice creates nothing twice (the second run's answers are replays).

    replay.py --base-url URL --credentials FILE --registrar RID --provider PID --csv day.csv [--day YYYY-MM-DD]

Prints one line per row and a summary; writes the refs' ids to --state (for check.py).
Exit 0 when every row was accepted.
"""

import argparse
import datetime
import json
import pathlib
import sys
import uuid

from rekisteri_client.api.clients import create_client, record_event
from rekisteri_client.api.consent import record_informing, set_consent
from rekisteri_client.models import (
    Client,
    ConsentBody,
    ConsentState,
    Gender,
    NewClient,
    NewInforming,
    NewService,
    NewServiceEvent,
    ServiceKind,
    Unit,
)

from integration import Credentials, Stats, connect, idempotency_key, read_day, with_retries


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--credentials", required=True, help="JSON with the registrar's and the provider's API clients")
    parser.add_argument("--registrar", required=True, help="the registrar's id")
    parser.add_argument("--provider", required=True, help="the provider's organisation id")
    parser.add_argument("--csv", required=True)
    parser.add_argument("--day", type=datetime.date.fromisoformat, default=datetime.date.today())
    parser.add_argument("--state", default=None, help="where to write the refs' ids as JSON")
    args = parser.parse_args()

    rid = uuid.UUID(args.registrar)
    registrar_system = connect(args.base_url, Credentials.load(args.credentials, "registrar"))
    provider_system = connect(args.base_url, Credentials.load(args.credentials, "provider"))
    rows = read_day(args.csv)
    refs: dict[str, dict] = {}
    counts = {"created": 0, "replayed": 0, "changed": 0, "failed": 0}

    for index, row in enumerate(rows, start=1):
        key = idempotency_key(args.day, row)
        f = row.fields
        if row.action == "client":
            body = NewClient(
                identity_code=f["identity_code"],
                first_names=f["first_names"],
                surname=f["surname"],
                gender=Gender(f["gender"]),
                services=[
                    NewService(
                        kind=ServiceKind.SERVICE_VOUCHER,
                        service_type=f["service_type"],
                        service_name=f["detail"],
                        quantity=float(f["quantity"]),
                        unit=Unit(f["unit"]),
                        unit_value_cents=int(f["unit_value_cents"]),
                        valid_from=args.day,
                        valid_to=args.day + datetime.timedelta(days=365),
                        provider_id=args.provider,
                        decision_ref=row.ref,
                    )
                ],
            )
            response = with_retries(
                lambda: create_client.sync_detailed(rid=rid, client=registrar_system, body=body, idempotency_key=key),
                row.ref,
            )
            if isinstance(response.parsed, Client):
                refs[row.ref] = {"client": str(response.parsed.id), "service": str(response.parsed.services[0].id)}
        elif row.action == "event":
            service = uuid.UUID(refs[row.ref]["service"]) if row.ref in refs else None
            response = None
            if service is not None:
                body = NewServiceEvent(delivered_on=args.day, quantity=float(f["quantity"]), note=f["detail"])
                response = with_retries(
                    lambda: record_event.sync_detailed(
                        rid=rid, sid=service, client=provider_system, body=body, idempotency_key=key
                    ),
                    row.ref,
                )
        elif row.action == "informing":
            client = uuid.UUID(refs[row.ref]["client"]) if row.ref in refs else None
            response = None
            if client is not None:
                body = NewInforming(method=f["detail"])
                response = with_retries(
                    lambda: record_informing.sync_detailed(
                        rid=rid, id=client, client=registrar_system, body=body, idempotency_key=key
                    ),
                    row.ref,
                )
        elif row.action == "consent":
            client = uuid.UUID(refs[row.ref]["client"]) if row.ref in refs else None
            response = None
            if client is not None:
                body = ConsentBody(state=ConsentState(f["detail"]))
                # A PUT sets the state: repeating it is harmless, so it needs no Idempotency-Key.
                response = with_retries(
                    lambda: set_consent.sync_detailed(rid=rid, id=client, client=registrar_system, body=body),
                    row.ref,
                )
        else:
            print(f"row {row.number}: unknown action {row.action!r}", file=sys.stderr)
            response = None

        if response is None:
            outcome = "failed (no such ref pushed before)" if row.action in ("event", "informing", "consent") else "failed"
            counts["failed"] += 1
        elif response.status_code == 201 and response.headers.get("idempotent-replayed") == "true":
            outcome = "201 replayed (pushed before with this key)"
            counts["replayed"] += 1
        elif response.status_code == 201:
            outcome = "201 created"
            counts["created"] += 1
        elif response.status_code == 200:
            outcome = "200 set"
            counts["changed"] += 1
        else:
            outcome = f"failed: HTTP {response.status_code} {problem_type(response)}"
            counts["failed"] += 1
        print(f"[{index:>3}/{len(rows)}] {row.time} {row.action:<9} {row.ref:<9} {outcome}", flush=True)

    print(
        f"summary: {len(rows)} rows, {counts['created']} created, {counts['replayed']} replayed, "
        f"{counts['changed']} consent changes, {counts['failed']} failed, {Stats.retries} retries"
    )
    if args.state:
        pathlib.Path(args.state).write_text(json.dumps(refs, indent=2))
    return 1 if counts["failed"] else 0


def problem_type(response) -> str:
    """The problem's type and the fields it names (never a value: the API echoes none)."""
    try:
        problem = json.loads(response.content)
    except ValueError:
        return ""
    fields = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in problem.get("errors") or [])
    return f"{problem.get('type', '')} {fields}".strip()


if __name__ == "__main__":
    sys.exit(main())
