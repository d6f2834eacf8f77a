#!/usr/bin/env python3
"""Checks through the API that a replayed day is there, exactly once (issue 24).

For every client row of the CSV: a search by identity code finds exactly one client, with the
pushed name and one service of the pushed type; that service has exactly the CSV's events
(quantities and notes); the disclosure consent is the CSV's last state for the client, after
its informing. Reads as the municipality's system.

    check.py --base-url URL --credentials FILE --registrar RID --csv day.csv

Exit 0 only when everything pushed is visible.
"""

import argparse
import sys
import uuid

from rekisteri_client.api.clients import list_events, search
from rekisteri_client.api.consent import get_consent
from rekisteri_client.models import ConsentView, IdentityCodeSearch, SearchResult, ServiceEventList

from integration import Credentials, connect, read_day, with_retries


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--credentials", required=True)
    parser.add_argument("--registrar", required=True)
    parser.add_argument("--csv", required=True)
    args = parser.parse_args()

    rid = uuid.UUID(args.registrar)
    api = connect(args.base_url, Credentials.load(args.credentials, "registrar"))
    rows = read_day(args.csv)
    problems = []
    checked = 0
    for person in (r for r in rows if r.action == "client"):
        ref, f = person.ref, person.fields
        found = with_retries(
            lambda: search.sync_detailed(rid=rid, client=api, body=IdentityCodeSearch(identity_code=f["identity_code"])),
            ref,
        )
        if not isinstance(found.parsed, SearchResult) or len(found.parsed.items) != 1:
            problems.append(f"{ref}: the search found {found.status_code} {found.content[:120]!r}, not one client")
            continue
        client = found.parsed.items[0]
        if (client.first_names, client.surname) != (f["first_names"], f["surname"]):
            problems.append(f"{ref}: the name differs")
        if [s.service_type for s in client.services] != [f["service_type"]]:
            problems.append(f"{ref}: services {[s.service_type for s in client.services]}")
            continue
        expected_events = sorted(
            (float(r.fields["quantity"]), r.fields["detail"]) for r in rows if r.action == "event" and r.ref == ref
        )
        events = with_retries(
            lambda: list_events.sync_detailed(rid=rid, sid=client.services[0].id, client=api), ref
        )
        if not isinstance(events.parsed, ServiceEventList):
            problems.append(f"{ref}: events answered {events.status_code}")
        elif sorted((e.quantity, e.note) for e in events.parsed.items) != expected_events:
            problems.append(f"{ref}: events {[(e.quantity, e.note) for e in events.parsed.items]}, expected {expected_events}")
        states = [r.fields["detail"] for r in rows if r.action == "consent" and r.ref == ref]
        if states:
            consent = with_retries(lambda: get_consent.sync_detailed(rid=rid, id=client.id, client=api), ref)
            if not isinstance(consent.parsed, ConsentView):
                problems.append(f"{ref}: consent answered {consent.status_code}")
            elif consent.parsed.state.value != states[-1] or not consent.parsed.informed:
                problems.append(f"{ref}: consent {consent.parsed.state.value}, expected {states[-1]} after informing")
        checked += 1
    for problem in problems:
        print(f"check: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"check: all {checked} pushed clients are visible through the API with their services, events and consent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
