"""What every script of this example shares: credentials, the retry loop, the CSV.

Uses only the client generated from api-spec/openapi.json (`make client` installs it as
`rekisteri_client`) and the standard library.
"""

import csv
import datetime
import json
import pathlib
import random
import sys
import time
import uuid
from dataclasses import dataclass

import httpx
from rekisteri_client import AuthenticatedClient, Client
from rekisteri_client.api.auth import token as token_api
from rekisteri_client.models import TokenRequest, TokenResponse

# Statuses worth retrying with the same Idempotency-Key: the server was busy or failed, or the
# first attempt with this key is still running (409 idempotency-key-in-use).
RETRY_STATUSES = {429, 500, 502, 503, 504}
MAX_ATTEMPTS = 6


@dataclass
class Credentials:
    """An API client's id and secret, as the platform's administrator hands them over."""

    client_id: str
    client_secret: str

    @staticmethod
    def load(path: str, system: str) -> "Credentials":
        data = json.loads(pathlib.Path(path).read_text())[system]
        return Credentials(data["client_id"], data["client_secret"])


def connect(base_url: str, credentials: Credentials) -> AuthenticatedClient:
    """An access token by the OAuth 2.0 client-credentials grant, and a client that sends it."""
    public = Client(base_url=base_url, raise_on_unexpected_status=False)
    body = TokenRequest(
        grant_type="client_credentials",
        client_id=uuid.UUID(credentials.client_id),
        client_secret=credentials.client_secret,
    )
    response = with_retries(lambda: token_api.sync_detailed(client=public, body=body), "token")
    if not isinstance(response.parsed, TokenResponse):
        sys.exit(f"no token: HTTP {response.status_code} {response.content[:200]!r}")
    return AuthenticatedClient(base_url=base_url, token=response.parsed.access_token, timeout=httpx.Timeout(30.0))


class Stats:
    retries = 0


def backoff(attempt: int, retry_after: str | None) -> float:
    """Retry-After when the server gave one, else exponential backoff with full jitter."""
    if retry_after and retry_after.isdigit():
        return min(float(retry_after), 30.0)
    return random.uniform(0, min(8.0, 0.25 * 2**attempt))


def is_in_use(response) -> bool:
    return response.status_code == 409 and b"/problems/idempotency-key-in-use" in response.content


def with_retries(call, what: str):
    """Runs `call` (one request) until it answers something final.

    Retried: connection errors and timeouts, 429 and 5xx, and 409 idempotency-key-in-use (the
    first attempt with the same key is still running). The caller sends the same
    Idempotency-Key every time, so a retry never creates a second record."""
    for attempt in range(MAX_ATTEMPTS):
        try:
            response = call()
        except httpx.TransportError as error:
            if attempt + 1 == MAX_ATTEMPTS:
                raise
            print(f"    {what}: {type(error).__name__}, retrying", file=sys.stderr)
        else:
            if response.status_code not in RETRY_STATUSES and not is_in_use(response):
                return response
            if attempt + 1 == MAX_ATTEMPTS:
                return response
            print(f"    {what}: HTTP {response.status_code}, retrying", file=sys.stderr)
            time.sleep(backoff(attempt, response.headers.get("retry-after")))
            Stats.retries += 1
            continue
        time.sleep(backoff(attempt, None))
        Stats.retries += 1
    raise AssertionError("unreachable")


@dataclass
class Row:
    number: int
    time: str
    action: str
    ref: str
    fields: dict


def read_day(path: str) -> list[Row]:
    with open(path, newline="", encoding="utf-8") as f:
        return [
            Row(number, row["time"], row["action"], row["ref"], row)
            for number, row in enumerate(csv.DictReader(f), start=2)
        ]


def idempotency_key(day: datetime.date, row: Row) -> str:
    """The same row of the same day always gets the same key, so a rerun replays, never duplicates."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"rekisteri-example:{day.isoformat()}:{row.number}:{row.action}:{row.ref}"))
