#!/usr/bin/env python3
"""Prints the SQLite change-history triggers (AU-9, CL-17) of one table.

SQLite has no row-to-JSON function, so every tracked table needs its three triggers spelled out
column by column; PostgreSQL's record_change() needs none of this. Binary (encrypted) columns are
copied as hex, as JSON cannot hold a BLOB.

usage: tools/sqlite-history-triggers.py TABLE COLUMN[:blob] ...
"""
import sys


def row(prefix, columns):
    parts = []
    for name, blob in columns:
        value = f"hex({prefix}.{name})" if blob else f"{prefix}.{name}"
        parts.append(f"'{name}', {value}")
    return "json_object(" + ", ".join(parts) + ")"


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    table = sys.argv[1]
    columns = [(c.split(":")[0], c.endswith(":blob")) for c in sys.argv[2:]]
    actor = "COALESCE((SELECT actor FROM change_actor LIMIT 1), 'database')"
    now = "strftime('%Y-%m-%d %H:%M:%f', 'now')"
    head = "INSERT INTO change_history (table_name, row_id, operation, actor, changed_at, old_row, new_row)"
    changed = " OR ".join(f"OLD.{n} IS NOT NEW.{n}" for n, _ in columns)
    print(f"""CREATE TRIGGER {table}_history_insert AFTER INSERT ON {table}
BEGIN
    {head}
    VALUES ('{table}', NEW.id, 'INSERT', {actor}, {now}, NULL, {row('NEW', columns)});
END;
CREATE TRIGGER {table}_history_update AFTER UPDATE ON {table}
WHEN {changed}
BEGIN
    {head}
    VALUES ('{table}', NEW.id, 'UPDATE', {actor}, {now}, {row('OLD', columns)}, {row('NEW', columns)});
END;
CREATE TRIGGER {table}_history_delete AFTER DELETE ON {table}
BEGIN
    {head}
    VALUES ('{table}', OLD.id, 'DELETE', {actor}, {now}, {row('OLD', columns)}, NULL);
END;
""")


if __name__ == "__main__":
    main()
