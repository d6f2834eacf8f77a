#!/usr/bin/env python3
"""What the platform's administrator does before the integration starts (issue 24): registers
an API client for the municipality's system and one for the provider's system, and hands over
their ids and secrets (written to --out; a secret is shown only once).

    provision.py --base-url URL --admin-token TOKEN --registrar RID --provider PID --out credentials.json
"""

import argparse
import json
import pathlib
import sys

from rekisteri_client import AuthenticatedClient
from rekisteri_client.api.accounts import create_api_client
from rekisteri_client.models import ApiClientWithSecret, NewApiClient, NewApiClientScopesItem

SYSTEMS = {
    "registrar": ("Asiakastietojärjestelmä (kunta)", ["clients:write", "clients:read", "consent:write"]),
    "provider": ("Hoiva-asiakastietojärjestelmä (palveluntuottaja)", ["service_events:write", "clients:read"]),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--admin-token", required=True)
    parser.add_argument("--registrar", required=True)
    parser.add_argument("--provider", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    admin = AuthenticatedClient(base_url=args.base_url, token=args.admin_token)
    organisations = {"registrar": args.registrar, "provider": args.provider}
    credentials = {}
    for system, (name, scopes) in SYSTEMS.items():
        response = create_api_client.sync_detailed(
            client=admin,
            body=NewApiClient(
                name=name,
                organisation=organisations[system],
                # The document lists the scopes as an enum, so the client takes its members.
                scopes=[NewApiClientScopesItem(scope) for scope in scopes],
            ),
        )
        if not isinstance(response.parsed, ApiClientWithSecret):
            print(f"registering the {system}'s API client: HTTP {response.status_code} {response.content[:200]!r}", file=sys.stderr)
            return 1
        credentials[system] = {"client_id": str(response.parsed.client.id), "client_secret": response.parsed.client_secret}
        print(f"registered the {system}'s API client {response.parsed.client.id} with scopes {' '.join(scopes)}")
    pathlib.Path(args.out).write_text(json.dumps(credentials, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
