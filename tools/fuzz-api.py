#!/usr/bin/env python3
"""`make fuzz-api` (issue 20 point 2, PL-18): schemathesis against the served OpenAPI document,
once per kind of principal, each against a freshly seeded server of its own (so one principal's
generated writes cannot lock out the next).

For every principal it starts `rekisteri serve` on the embedded SQLite in a temporary directory
(or, with --database-url, on a fresh PostgreSQL database made there and dropped afterwards),
seeds the demo (`demo seed --json`), registers an integration with narrow scopes, fixes `{rid}`
to the principal's own registrar and offers the seeded records' ids for the other path
parameters, and runs `st run` with every check. It fails if any principal's run reports a failure:
a server error, a response that breaks its schema, an undocumented status code, a schema-valid
request refused with 400, or any other check.

    fuzz-api.py --server target/debug/rekisteri [--max-examples 20] [--principals main_user,none]
"""

import argparse
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

DEMO_VTJ = pathlib.Path(__file__).resolve().parent.parent / "demo" / "vtj-simulator.json"

PRINCIPALS = [
    "none",
    "client_handler",
    "provider_staff",
    "main_user",
    "auditor",
    "admin",
    "integration",
]

# The integration's narrow scopes: it may read clients and write service events, nothing else.
INTEGRATION_SCOPES = ["clients:read", "service_events:write"]

# A schema-valid request may still be refused for the state of the register: the record exists
# already (409), the caller's If-Match is stale (412), or a rule of the register refuses it (422,
# `/problems/business-rule`). A 400 means the request contradicts the published document, so a
# schema-valid request answered 400 is a failure (docs/errors.md).
POSITIVE_EXPECTED = ["2xx", "401", "403", "404", "409", "412", "422", "429"]

# Operations that would end the principal's own session half-way through its run; the `none`
# principal still covers them.
SESSION_ENDING = ["/v1/auth/logout"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(method, url, token=None, body=None, form=None, basic=None):
    headers = {"Accept": "application/json"}
    data = None
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    if basic is not None:
        import base64

        headers["Authorization"] = "Basic " + base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, error.read()[:300]


class Server:
    """A freshly migrated and seeded server on a port of its own."""

    def __init__(self, binary, work, database_url):
        self.work = work
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        env.update(
            REKISTERI_DATA_DIR=str(work / "data"),
            REKISTERI_BIND=f"127.0.0.1:{self.port}",
            RUST_LOG=env.get("RUST_LOG", "warn"),
        )
        env.pop("DATABASE_URL", None)
        if database_url:
            # Only the embedded default makes its key file; one made for a throw-away SQLite
            # database serves the PostgreSQL run.
            keys = dict(env, REKISTERI_DATA_DIR=str(work / "keys"))
            subprocess.run([binary, "demo", "seed"], env=keys, stdout=subprocess.DEVNULL, check=True)
            env["REKISTERI_KEY_FILE"] = str(work / "keys" / "keys.toml")
            env["DATABASE_URL"] = database_url
        # DVV's change interface, as `make run` has it: the demo's simulator (VT-12).
        simulator_port = free_port()
        env["REKISTERI_VTJ_BASE_URL"] = f"http://127.0.0.1:{simulator_port}"
        self.simulator = subprocess.Popen(
            [binary, "vtj", "simulate", "--bind", f"127.0.0.1:{simulator_port}", "--data", str(DEMO_VTJ)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.env = env
        with open(work / "seed.json", "w") as out:
            subprocess.run([binary, "demo", "seed", "--json"], env=env, stdout=out, check=True)
        self.seed = json.loads((work / "seed.json").read_text())
        self.log = open(work / "server.log", "w")
        self.process = subprocess.Popen([binary, "serve"], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(240):
            if self.process.poll() is not None:
                raise SystemExit(f"the server stopped; see {work / 'server.log'}")
            try:
                with urllib.request.urlopen(f"{self.base}/health/ready", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.25)
        raise SystemExit("the server did not become ready")

    def stop(self):
        self.simulator.terminate()
        self.simulator.wait()
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()

    def user(self, role, organisation=None):
        for u in self.seed["users"]:
            if u["role"] == role and (organisation is None or u["organisation"] == organisation):
                return u
        raise SystemExit(f"the demo has no {role}")


def prepare(server, principal):
    """The principal's bearer token (None for `none`) and the parameters it is fuzzed with."""
    seed = server.seed
    registrar = seed["registrars"][0]
    main = server.user("main_user", registrar["name"])
    client_id = seed["first_client"]["id"]
    status, services = call("GET", f"{server.base}/v1/registrars/{registrar['id']}/clients/{client_id}/services", main["token"])
    service_ids = [s["id"] for s in (services.get("items", services) if isinstance(services, dict) else services or [])] if status == 200 else []
    token = None
    if principal == "integration":
        admin = server.user("admin")
        status, created = call(
            "POST",
            f"{server.base}/v1/api-clients",
            admin["token"],
            body={"name": "Fuzzed integration", "organisation": registrar["id"], "scopes": INTEGRATION_SCOPES},
        )
        if status != 201:
            raise SystemExit(f"registering the integration: HTTP {status} {created!r}")
        status, issued = call(
            "POST",
            f"{server.base}/v1/auth/token",
            form={"grant_type": "client_credentials"},
            basic=(created["client"]["id"], created["client_secret"]),
        )
        if status != 200:
            raise SystemExit(f"the integration's token: HTTP {status} {issued!r}")
        token = issued["access_token"]
    elif principal != "none":
        organisation = seed["provider"]["name"] if principal == "provider_staff" else None
        if principal in ("client_handler", "main_user", "auditor"):
            organisation = registrar["name"]
        token = server.user(principal, organisation)["token"]
    accounts = [u["account_id"] for u in seed["users"] if u.get("account_id")]
    dictionaries = {
        "registrars": [registrar["id"]],
        "records": [client_id, *service_ids, *accounts],
        "services": service_ids or [client_id],
        "organisations": [registrar["oid"], seed["provider"]["oid"]],
        "providers": [seed["provider"]["id"]],
    }
    return token, dictionaries


def config_toml(path, token, dictionaries, max_examples, principal):
    lines = [
        f"generation.max-examples = {max_examples}",
        "request-timeout = 30.0",
        "",
        "[checks.positive_data_acceptance]",
        "expected-statuses = " + json.dumps(POSITIVE_EXPECTED),
        "",
        # A change without its required If-Match is 428 Precondition Required (RFC 6585 §3),
        # the status made for exactly that.
        "[checks.missing_required_header]",
        'expected-statuses = ["400", "401", "403", "406", "415", "422", "428"]',
        "",
    ]
    if token:
        lines += ["[headers]", f'Authorization = "Bearer {token}"', ""]
    lines.append("[dictionaries]")
    for name, values in dictionaries.items():
        lines.append(f"{name} = {{ values = {json.dumps(values)} }}")
    lines += [
        "",
        "[parameters]",
        '"path.rid" = { dictionary = "registrars", probability = 0.9 }',
        '"path.id" = { dictionary = "records", probability = 0.5 }',
        '"path.sid" = { dictionary = "services", probability = 0.7 }',
        '"path.oid" = { dictionary = "organisations", probability = 0.7 }',
        '"path.provider_id" = { dictionary = "providers", probability = 0.7 }',
        '"path.account_id" = { dictionary = "records", probability = 0.5 }',
        "",
    ]
    path.write_text("\n".join(lines))


def run_principal(args, principal, out):
    work = pathlib.Path(tempfile.mkdtemp(prefix=f"fuzz-api-{principal}-"))
    database_url = None
    if args.database_url:
        database = f"fuzz_api_{principal}_{os.getpid()}"
        subprocess.run(["psql", args.database_url, "-q", "-c", f"CREATE DATABASE {database}"], check=True)
        database_url = args.database_url.rsplit("/", 1)[0] + "/" + database
    server = Server(args.server, work, database_url)
    try:
        token, dictionaries = prepare(server, principal)
        config = work / "schemathesis.toml"
        config_toml(config, token, dictionaries, args.max_examples, principal)
        command = [
            args.st,
            "--config-file",
            str(config),
            "run",
            f"{server.base}/openapi.json",
            "--checks",
            "all",
            "--phases",
            args.phases,
            "--seed",
            str(args.seed),
            # One worker: Python 3.11's ast module keeps one recursion counter per interpreter, and
            # two threads describing hypothesis strategies at once trip it ("AST constructor
            # recursion depth mismatch", an error of the tool, not of the server).
            "--workers",
            "1",
            "--report",
            "junit",
            "--report-junit-path",
            str(out / f"{principal}.xml"),
        ]
        if args.max_time:
            command += ["--max-time", str(args.max_time)]
        if principal != "none":
            for path in SESSION_ENDING:
                command += ["--exclude-path", path]
        print(f"== fuzz-api: {principal}", flush=True)
        hooks = dict(os.environ, SCHEMATHESIS_HOOKS="fuzz_api_hooks", PYTHONPATH=str(pathlib.Path(__file__).resolve().parent))
        with open(out / f"{principal}.txt", "w") as report:
            code = subprocess.run(command, stdout=report, stderr=subprocess.STDOUT, cwd=work, env=hooks).returncode
        text = (out / f"{principal}.txt").read_text()
        summary = [line for line in text.splitlines() if line.startswith(("Failures:", "  ❌", "Test cases:", "  ", "=")) and ("ST" in line or "generated" in line or " in " in line)]
        for line in summary[-12:]:
            print(f"   {line.strip()}")
        return code
    finally:
        server.stop()
        if database_url:
            subprocess.run(["psql", args.database_url, "-q", "-c", f"DROP DATABASE IF EXISTS {database_url.rsplit('/', 1)[1]} WITH (FORCE)"])
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", required=True)
    parser.add_argument("--st", default="target/fuzz-api-venv/bin/st")
    parser.add_argument("--principals", default=",".join(PRINCIPALS))
    parser.add_argument("--max-examples", type=int, default=50)
    parser.add_argument("--max-time", type=int, default=0)
    parser.add_argument("--phases", default="examples,coverage,fuzzing,stateful")
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--database-url", help="a PostgreSQL server's maintenance database; each run gets a fresh database there")
    parser.add_argument("--out", default="target/fuzz-api")
    parser.add_argument("--keep", action="store_true", help="keep each run's data directory and server log")
    args = parser.parse_args()
    args.server = str(pathlib.Path(args.server).resolve())
    args.st = str(pathlib.Path(args.st).resolve())
    out = pathlib.Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    failed = []
    for principal in args.principals.split(","):
        if principal not in PRINCIPALS:
            raise SystemExit(f"unknown principal {principal}; known: {', '.join(PRINCIPALS)}")
        if run_principal(args, principal, out) != 0:
            failed.append(principal)
    print(f"== fuzz-api: {len(failed)} of {len(args.principals.split(','))} principals failed {' '.join(failed)}; reports in {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
