#!/usr/bin/env python3
"""Replaces crates/core/data/municipalities.csv with Statistics Finland's municipality
classification of a year (`make municipalities YEAR=2027`), from its open classification API.

The server checks every home municipality against the shipped file (CL-1), so a new list takes a
rebuild and a release; the API document's enum follows from it (`make openapi`). Check the diff:
a municipality that is gone (merged) makes the server refuse its old code for new data, while
stored data keeps it.
"""
import argparse
import json
import sys
import urllib.request

API = ("https://data.stat.fi/api/classifications/v2/classifications/kunta_1_{year}0101/"
       "classificationItems?content=data&meta=max&lang=fi&format=json")
OUT = "crates/core/data/municipalities.csv"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--year", type=int, required=True)
    parser.add_argument("--out", default=OUT)
    args = parser.parse_args()
    url = API.format(year=args.year)
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 (a fixed https URL)
        items = json.load(response)
    rows = []
    for item in items:
        code = str(item["code"])
        names = item.get("classificationItemNames") or []
        name = names[0]["name"] if names else ""
        if len(code) != 3 or not code.isdigit() or not name:
            print(f"unexpected item: {item!r:.200}", file=sys.stderr)
            return 1
        rows.append((code, name))
    rows.sort()
    if len({code for code, _ in rows}) != len(rows) or len(rows) < 250:
        print(f"refusing a list of {len(rows)} rows with repeats or too few", file=sys.stderr)
        return 1
    with open(args.out, "w", encoding="utf-8") as out:
        out.write(f"# Statistics Finland municipality classification (kunta) in force since {args.year}-01-01 "
                  f"({len(rows)} municipalities), {url.split('?')[0]}. Refresh: make municipalities YEAR=...\n")
        out.write("code;name\n")
        for code, name in rows:
            out.write(f"{code};{name}\n")
    print(f"{args.out}: {len(rows)} municipalities of {args.year}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
