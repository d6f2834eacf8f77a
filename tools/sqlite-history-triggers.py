#!/usr/bin/env python3
"""Prints the SQLite change-history triggers (AU-9, CL-17) of one table.

SQLite has no row-to-JSON function, so every tracked table needs its three triggers spelled out
column by column; PostgreSQL's record_change() needs none of this. Binary (encrypted) columns are
copied as hex, as JSON cannot hold a BLOB. An update's row keeps only the columns it changed
(issue 22 point 4, migration 000029). SQLite's json_object cannot leave a key out, so that
document is spelled as text: a `"column":value,` piece (json_quote) per changed column, the last
comma trimmed. Measured against json_remove of the whole row with a path per unchanged column,
which gives the same text, it takes a fifth less CPU per update. No trigger fires for the bulk
runs' actors (migration 000031): SQLite would build the document before the BEFORE INSERT
trigger on change_history drops it. An insert's row keeps no copy of the inserted row (migration
000032): the row holds those values until a change, whose history row keeps the old ones.

usage: tools/sqlite-history-triggers.py TABLE COLUMN[:blob] ...
"""
import sys


def row(prefix, columns):
    parts = []
    for name, blob in columns:
        value = f"hex({prefix}.{name})" if blob else f"{prefix}.{name}"
        parts.append(f"'{name}', {value}")
    return "json_object(" + ", ".join(parts) + ")"


def changed_only(prefix, columns):
    pieces = []
    for name, blob in columns:
        value = f"hex({prefix}.{name})" if blob else f"{prefix}.{name}"
        pieces.append(f"CASE WHEN OLD.{name} IS NOT NEW.{name} THEN '\"{name}\":' || json_quote({value}) || ',' ELSE '' END")
    return "'{' || rtrim(" + " || ".join(pieces) + ", ',') || '}'"


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    table = sys.argv[1]
    columns = [(c.split(":")[0], c.endswith(":blob")) for c in sys.argv[2:]]
    actor = "COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database')"
    now = "strftime('%Y-%m-%d %H:%M:%f', 'now')"
    head = "INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)"
    changed = " OR ".join(f"OLD.{n} IS NOT NEW.{n}" for n, _ in columns)
    tracked = f"{actor} NOT IN ('system:lifecycle-purge', 'system:key-rotation')"
    print(f"""CREATE TRIGGER {table}_history_insert AFTER INSERT ON {table}
WHEN {tracked}
BEGIN
    {head}
    VALUES ('{table}', NEW.id, 'INSERT', {actor}, {now}, NULL, NULL);
END;
CREATE TRIGGER {table}_history_update AFTER UPDATE ON {table}
WHEN {tracked} AND ({changed})
BEGIN
    {head}
    VALUES ('{table}', NEW.id, 'UPDATE', {actor}, {now}, {changed_only('OLD', columns)}, {changed_only('NEW', columns)});
END;
CREATE TRIGGER {table}_history_delete AFTER DELETE ON {table}
WHEN {tracked}
BEGIN
    {head}
    VALUES ('{table}', OLD.id, 'DELETE', {actor}, {now}, {row('OLD', columns)}, NULL);
END;
""")


if __name__ == "__main__":
    main()
