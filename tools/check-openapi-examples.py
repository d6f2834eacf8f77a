#!/usr/bin/env python3
"""Validates every example of an OpenAPI 3.1 document against its schema (issue 24).

openapi-spec-validator checks the document's structure, not that its examples fit their
schemas; this does, with the JSON Schema 2020-12 validator both are built on. Run by
`make openapi-check` in its virtualenv:

    check-openapi-examples.py api-spec/openapi.json
"""

import json
import sys

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

METHODS = ("get", "put", "post", "delete", "patch")


def main() -> int:
    document = json.load(open(sys.argv[1], encoding="utf-8"))
    # The whole document is the resource the schemas' "#/components/schemas/…" refer into.
    registry = Registry().with_resource("urn:document", Resource.opaque(document))
    problems, count = [], 0
    for path, item in document["paths"].items():
        for method in METHODS:
            operation = item.get(method)
            if not operation:
                continue
            places = []
            body = operation.get("requestBody", {}).get("content", {})
            places += [(f"{method.upper()} {path} request {media}", c) for media, c in body.items()]
            for status, response in operation.get("responses", {}).items():
                places += [
                    (f"{method.upper()} {path} {status} {media}", c) for media, c in response.get("content", {}).items()
                ]
            for where, content in places:
                if "example" not in content or "schema" not in content:
                    continue
                count += 1
                schema = dict(content["schema"])
                if "$ref" in schema:
                    schema = {"$ref": "urn:document" + schema["$ref"]}
                validator = Draft202012Validator(
                    rewrite_refs(schema), registry=registry, format_checker=FormatChecker()
                )
                for error in validator.iter_errors(content["example"]):
                    problems.append(f"{where}: {'/'.join(map(str, error.absolute_path))}: {error.message}")
    for problem in problems:
        print(f"example: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"examples: all {count} examples fit their schemas")
    return 0


def rewrite_refs(schema):
    """Local `#/…` references of a schema lifted out of the document point into it."""
    if isinstance(schema, dict):
        return {
            k: ("urn:document" + v if k == "$ref" and isinstance(v, str) and v.startswith("#") else rewrite_refs(v))
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [rewrite_refs(v) for v in schema]
    return schema


if __name__ == "__main__":
    sys.exit(main())
