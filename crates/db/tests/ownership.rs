//! One owner per table (issue 23): each domain crate writes and reads its own tables, and reads
//! another crate's only where this list says so and why. A crate that starts using a table not
//! listed for it fails here; so does an entry no crate needs any more, so the list only shrinks
//! as the owning crates grow small public read functions. `db` itself (migrations, key
//! rotation, leases) and the test and benchmark tools are outside the rule.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rekisteri_core::testing::rust_files;

struct Crate {
    name: &'static str,
    owns: &'static [&'static str],
    /// Another crate's tables this one still reads or writes, each with why.
    borrows: &'static [(&'static str, &'static str)],
}

const CRATES: &[Crate] = &[
    Crate {
        name: "accounts",
        owns: &[
            "access_version",
            "account_roles",
            "account_service_areas",
            "account_service_units",
            "accounts",
            "api_clients",
            "api_tokens",
            "invitations",
            "login_throttle",
            "notification_outbox",
            "organisations",
            "registrar_municipalities",
            "service_areas",
            "service_types",
            "service_units",
            "sessions",
        ],
        borrows: &[],
    },
    Crate {
        name: "audit",
        owns: &[
            "audit_chains",
            "audit_checkpoints",
            "audit_outbox",
            "disclosure_log",
            "security_events",
            "usage_log",
        ],
        borrows: &[],
    },
    Crate {
        name: "calls",
        owns: &[
            "call_queue_listeners",
            "call_queues",
            "contacts",
            "legal_holds",
            "listening_grants",
            "processing_memo_entries",
            "processing_memos",
            "recordings",
        ],
        borrows: &[],
    },
    Crate {
        name: "clients",
        owns: &[
            "care_team_members",
            "change_history",
            "client_death_closures",
            "client_moves",
            "client_previous_codes",
            "clients",
            "data_subject_requests",
            "proxies",
            "service_events",
            "services",
        ],
        borrows: &[
            (
                "provider_contracts",
                "a provider's staff sees the clients of its contracts",
            ),
            ("vtj_monitored", "erasing a client erases its VTJ monitoring"),
            ("vtj_staged", "erasing a client erases its staged VTJ changes"),
        ],
    },
    Crate {
        name: "consent",
        owns: &[
            "case_documents",
            "disclosure_consents",
            "disclosure_prohibitions",
            "kanta_informings",
            "kanta_settings",
            "provider_contracts",
            "registry_notifications",
            "registry_use_rights",
            "security_incidents",
            "voucher_provider_choices",
            "will_service_outbox",
        ],
        borrows: &[],
    },
    Crate {
        name: "idempotency",
        owns: &["idempotency_keys", "server_instances"],
        borrows: &[],
    },
    Crate {
        name: "vtj",
        owns: &["vtj_monitored", "vtj_staged", "vtj_state"],
        borrows: &[
            ("clients", "the VTJ benchmark seeds clients"),
            ("organisations", "the VTJ benchmark seeds a registrar"),
        ],
    },
];

/// Crates outside the rule: none of them may own a table.
const OUTSIDE: &[&str] = &["db", "bench", "fuzz-checks"];

fn workspace_crates() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tables() -> BTreeSet<String> {
    include_str!("../src/schema.rs")
        .lines()
        .filter(|l| l.starts_with("    ") && !l.starts_with("     ") && l.trim_end().ends_with('{'))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// The tables a crate's source names through `rekisteri_db::schema` (imports and paths).
fn used_tables(source_dir: &Path, tables: &BTreeSet<String>) -> BTreeSet<String> {
    let mut files = Vec::new();
    rust_files(source_dir, &mut files);
    let mut used = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            !text.contains("schema::*"),
            "{}: a glob import of the schema hides which tables it uses",
            file.display()
        );
        for (at, _) in text.match_indices("rekisteri_db::schema::") {
            let rest = &text[at + "rekisteri_db::schema::".len()..];
            let names = match rest.strip_prefix('{') {
                Some(list) => &list[..list.find('}').unwrap_or(list.len())],
                None => rest
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .next()
                    .unwrap_or(""),
            };
            for name in names.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
                if tables.contains(name) {
                    used.insert(name.to_owned());
                }
            }
        }
    }
    used
}

#[test]
fn every_table_has_one_owner_and_a_crate_uses_another_crates_tables_only_as_listed() {
    let tables = tables();
    assert!(tables.len() > 50, "schema.rs parsed to {} tables", tables.len());
    let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
    for krate in CRATES {
        for table in krate.owns {
            assert!(tables.contains(*table), "{}: {table} is not in schema.rs", krate.name);
            if let Some(other) = owner.insert(table, krate.name) {
                panic!("{table} is owned by both {other} and {}", krate.name);
            }
        }
    }
    let mut problems = Vec::new();
    let root = workspace_crates();
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if !dir.join("src").is_dir() || OUTSIDE.contains(&name.as_str()) {
            continue;
        }
        let used = used_tables(&dir.join("src"), &tables);
        let listed = CRATES.iter().find(|c| c.name == name);
        for table in &used {
            let allowed =
                listed.is_some_and(|c| c.owns.contains(&table.as_str()) || c.borrows.iter().any(|(t, _)| t == table));
            if !allowed {
                let owned_by = owner.get(table.as_str()).copied().unwrap_or("no crate");
                problems.push(format!("{name} uses {table} (owned by {owned_by}) without an entry"));
            }
        }
        if let Some(listed) = listed {
            for (table, _) in listed.borrows {
                if !used.contains(*table) {
                    problems.push(format!("{name} no longer uses {table}: remove its entry"));
                }
            }
        }
    }
    for table in &tables {
        if !owner.contains_key(table.as_str()) && !db_only(table) {
            problems.push(format!("{table} has no owner"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Tables only the storage layer itself uses (keys, leases, key rotation).
fn db_only(table: &str) -> bool {
    let mut files = Vec::new();
    rust_files(&workspace_crates().join("db").join("src"), &mut files);
    files
        .iter()
        .filter(|f| !f.ends_with("schema.rs"))
        .any(|f| std::fs::read_to_string(f).unwrap().contains(&format!("{table}::")))
}
