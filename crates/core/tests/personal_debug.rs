//! No type that holds an identity code, a person's name or next of kin derives `Debug` (issue 23
//! point 6): a derived `Debug` prints every field, so one `{:?}` in a log line or a panic would
//! carry them out. Such types use `rekisteri_core::redacted_debug!`, or hold the code as a
//! `PersonalIdentityCode`, whose `Debug` masks it (`131052-****`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use rekisteri_core::testing::rust_files;

/// Field names that hold personal data in clear (or its sealed form, which is no business of a
/// log line either).
const PERSONAL: &[&str] = &[
    "identity_code",
    "client_identity_code",
    "new_identity_code",
    "first_names",
    "surname",
    "client_name",
    "caller_name",
    "next_of_kin",
];

/// The field's name and type, when the line declares a field (`pub name: Type,`).
fn field(line: &str) -> Option<(&str, &str)> {
    let line = line.trim();
    let line = line
        .strip_prefix("pub(crate) ")
        .or_else(|| line.strip_prefix("pub(super) "))
        .or_else(|| line.strip_prefix("pub "))
        .unwrap_or(line);
    let (name, ty) = line.split_once(':')?;
    let name = name.trim();
    (!name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_')).then_some((name, ty.trim()))
}

/// Types deriving `Debug` with a personal field of another type than `PersonalIdentityCode`.
fn offenders(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim();
        if !(trimmed.starts_with("#[derive(") && trimmed.contains("Debug")) {
            continue;
        }
        let mut j = i + 1;
        while j < lines.len() && (lines[j].trim().starts_with("#[") || lines[j].trim().starts_with("//")) {
            j += 1;
        }
        let Some(head) = lines.get(j) else { continue };
        let name = head
            .split_whitespace()
            .skip_while(|w| *w != "struct" && *w != "enum")
            .nth(1)
            .unwrap_or("?")
            .trim_end_matches(['{', '(', ';', '<']);
        let indent = head.len() - head.trim_start().len();
        let closing = format!("{}}}", " ".repeat(indent));
        for body in lines.iter().skip(j + 1) {
            if body.starts_with(&closing) {
                break;
            }
            if let Some((field, ty)) = field(body)
                && PERSONAL.contains(&field)
                && !ty.contains("PersonalIdentityCode")
            {
                found.push(format!("{}:{}: {name}.{field}", file.display(), j + 1));
            }
        }
    }
    found
}

#[test]
fn no_type_with_an_identity_code_or_a_name_derives_debug() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&crates).unwrap() {
        let src = entry.unwrap().path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    assert!(files.len() > 100, "{} files", files.len());
    let found: Vec<String> = files.iter().flat_map(|f| offenders(f)).collect();
    assert!(
        found.is_empty(),
        "derive(Debug) prints personal data:\n{}",
        found.join("\n")
    );
}
