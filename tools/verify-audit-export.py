#!/usr/bin/env python3
"""Verify a Rekisteri audit export (JSON Lines) without the platform.

Usage: verify-audit-export.py EXPORT.jsonl [--previous-hash HEX]

Every line is one entry of one chain, in sequence order. The script recomputes each entry's
hash from its fields (the canonical encoding of docs/audit.md) and checks that the entries link:
each one's prev_hash is the hash of the line before. An export that starts at sequence 1 must
start from the all-zero hash; one that starts later links to --previous-hash when given (for
example the hash of a signed checkpoint or of the previous export's last line).

Exit 0 and print the chain head when everything verifies; exit 1 naming the first broken entry.
Needs only the Python standard library.
"""
import hashlib
import json
import sys

FIELDS = {
    "usage": ["chain_id", "seq", "occurred_at", "registrar_id", "log_controller_id", "subject_index",
              "data_kind", "data_id", "outcome", "actor_kind", "actor_id", "actor_name", "on_behalf_of",
              "service_unit_oid", "purpose", "access_basis", "special_reason", "request_id", "calling_system"],
    "disclosure": ["chain_id", "seq", "occurred_at", "registrar_id", "subject_index", "description",
                   "discloser_kind", "discloser_id", "recipient_kind", "recipient_id", "recipient_name",
                   "purpose", "legal_basis", "request_id"],
    "security": ["chain_id", "seq", "occurred_at", "organisation_id", "event_type", "actor_kind",
                 "actor_id", "details", "request_id"],
}
DOMAIN = b"rekisteri/audit-chain/v1\x00"


def field(value):
    if value is None:
        return b"\x00"
    data = str(value).encode("utf-8")
    return b"\x01" + len(data).to_bytes(4, "big") + data


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    expected_prev = None
    if "--previous-hash" in argv:
        expected_prev = bytes.fromhex(argv[argv.index("--previous-hash") + 1])
    chain = None
    count = 0
    head = None
    expected_seq = None
    with open(argv[1], encoding="utf-8") as export:
        for number, line in enumerate(export, 1):
            if not line.strip():
                continue
            entry = json.loads(line)
            log = entry.get("log")
            if log not in FIELDS:
                print(f"line {number}: unknown log {log!r}")
                return 1
            seq = int(entry["seq"])
            where = f"chain {entry['chain_id']} entry {seq} (line {number})"
            if chain is None:
                chain = entry["chain_id"]
                if expected_prev is None and seq == 1:
                    expected_prev = bytes(32)
            elif entry["chain_id"] != chain:
                print(f"{where}: belongs to another chain than {chain}")
                return 1
            if expected_seq is not None and seq != expected_seq:
                print(f"{where}: expected entry {expected_seq}; entries are missing or reordered")
                return 1
            prev = bytes.fromhex(entry["prev_hash"])
            if expected_prev is not None and prev != expected_prev:
                print(f"{where}: does not link to the entry before it")
                return 1
            canonical = field(log) + b"".join(field(entry[name]) for name in FIELDS[log])
            computed = hashlib.sha256(DOMAIN + prev + canonical).digest()
            if computed.hex() != entry["hash"]:
                print(f"{where}: its content does not match its hash")
                return 1
            expected_prev = computed
            expected_seq = seq + 1
            head = computed.hex()
            count += 1
    if count == 0:
        print("the export is empty")
        return 1
    print(f"OK {count} entries of {chain}; head {head}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
