//! VTJ from the operator's side: the simulator serving the demo's data file, `jobs run vtj-sync`
//! and `vtj import`; apart from `cli.rs`, which holds the rest of the binary's commands.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::Stdio;

mod common;

use common::KillOnDrop;

use common::rekisteri;

/// The demo's registrars by name, from the seed's output: (name, id).
fn demo_registrars(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .filter_map(|l| {
            let name = ["Demo-Tampere", "Demo-Nokia"]
                .into_iter()
                .find(|n| l.starts_with(&format!("{n} ")))?;
            let id = l[name.len()..].split_whitespace().next()?;
            Some((name.to_owned(), id.to_owned()))
        })
        .collect()
}

/// Starts `rekisteri vtj simulate` on a free port with the demo's data file; returns it and its URL.
fn demo_simulator(dir: &std::path::Path) -> (KillOnDrop, String) {
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../demo/vtj-simulator.json");
    let mut child = rekisteri(dir)
        .args(["vtj", "simulate", "--bind", "127.0.0.1:0", "--data"])
        .arg(data)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_owned();
    (KillOnDrop(child), url)
}

#[test]
fn vt_12_the_simulator_serves_the_demo_data_file_and_jobs_run_vtj_sync_applies_it() {
    let dir = tempfile::tempdir().unwrap();
    let seeded = rekisteri(dir.path()).args(["demo", "seed"]).output().unwrap();
    assert!(seeded.status.success(), "{}", String::from_utf8_lossy(&seeded.stderr));
    let registrars = demo_registrars(&String::from_utf8_lossy(&seeded.stdout));
    assert_eq!(registrars.len(), 2);
    let (_simulator, url) = demo_simulator(dir.path());
    let run = || {
        rekisteri(dir.path())
            .args(["jobs", "run", "vtj-sync"])
            .env("REKISTERI_VTJ_BASE_URL", &url)
            .env("REKISTERI_VTJ_USERNAME", "demo")
            .env("REKISTERI_VTJ_PASSWORD", "demo-salasana")
            .output()
            .unwrap()
    };
    let first = run();
    let stdout = String::from_utf8_lossy(&first.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&first.stderr).into_owned();
    assert!(first.status.success(), "{stdout}{stderr}");
    let line_of = |text: &str, rid: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("vtj-sync {rid}:")))
            .unwrap_or_else(|| panic!("no line for {rid}: {text}"))
            .to_owned()
    };
    // Tampere: 5 people loaded, then a move, a new surname and a death; Nokia: 5 loaded and a
    // language change. The change for a code nobody follows is never asked for.
    let tampere = line_of(&stdout, &registrars[0].1);
    assert!(
        tampere.ends_with("cursor - -> 1005, 5 monitored, 5 loaded, 2 pages, 8 applied, 0 skipped, 0 failed"),
        "{tampere}"
    );
    let nokia = line_of(&stdout, &registrars[1].1);
    assert!(
        nokia.contains(", 5 loaded,") && nokia.ends_with("6 applied, 0 skipped, 0 failed"),
        "{nokia}"
    );
    // No identity code of the data file reaches the output or the log.
    let data =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../demo/vtj-simulator.json"))
            .unwrap();
    let file: serde_json::Value = serde_json::from_str(&data).unwrap();
    for person in file["people"].as_array().unwrap() {
        let code = person["henkilotunnus"].as_str().unwrap();
        assert!(!stdout.contains(code) && !stderr.contains(code), "{code} in the output");
    }
    // A second run finds nothing new; the client who died is no longer followed (VT-7).
    let second = run();
    let stdout = String::from_utf8_lossy(&second.stdout).into_owned();
    assert!(second.status.success(), "{stdout}");
    let again = line_of(&stdout, &registrars[0].1);
    assert!(
        again.ends_with("cursor 1005 -> 1005, 4 monitored, 0 loaded, 1 pages, 0 applied, 0 skipped, 0 failed"),
        "{again}"
    );
}

#[test]
fn vt_11_vtj_import_applies_a_file_of_change_pages_and_refuses_a_malformed_one_whole() {
    use diesel::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let seeded = rekisteri(dir.path()).args(["demo", "seed"]).output().unwrap();
    assert!(seeded.status.success(), "{}", String::from_utf8_lossy(&seeded.stderr));
    let registrars = demo_registrars(&String::from_utf8_lossy(&seeded.stdout));
    let rid = &registrars[0].1;
    let page = |cursor: i64, code: &str, surname: &str| {
        serde_json::json!({"viimeisinKirjausavain": cursor, "ajanTasalla": false, "muutokset": [
            {"henkilotunnus": code, "muutospv": "2026-11-29T10:00:00.000Z", "tietoryhmat": [
                {"tietoryhma": "HENKILON_NIMI", "muutosattribuutti": "LISATTY", "etunimi": "Aino", "sukunimi": surname}]}]})
        .to_string()
    };
    let staged = || {
        let url = format!("sqlite://{}", dir.path().join("data/rekisteri.db").display());
        let pool =
            rekisteri_db::Pool::open(&rekisteri_db::DatabaseUrl::parse(&url).unwrap(), &Default::default()).unwrap();
        let mut conn = pool.get().unwrap();
        rekisteri_db::schema::vtj_staged::table
            .count()
            .get_result::<i64>(&mut *conn)
            .unwrap()
    };
    // A page for a demo client and one for a code nobody follows.
    let file = dir.path().join("changes.jsonl");
    std::fs::write(
        &file,
        format!(
            "{}\n\n{}\n",
            page(1, "120336-244A", "Uusinimi"),
            page(2, "010101-123N", "Vieras")
        ),
    )
    .unwrap();
    let import = |file: &std::path::Path| {
        rekisteri(dir.path())
            .args(["vtj", "import", "--registrar", rid])
            .arg(file)
            .output()
            .unwrap()
    };
    let output = import(&file);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("vtj import: 1 applied, 1 skipped, 0 failed"),
        "{stdout}"
    );
    assert_eq!(staged(), 2);
    // A broken third line: refused naming it, and nothing of the file is staged.
    let broken = dir.path().join("broken.jsonl");
    std::fs::write(
        &broken,
        format!(
            "{}\n{}\n{{\"muutokset\": [\n",
            page(3, "120336-244A", "Toinen"),
            page(4, "120336-244A", "Kolmas")
        ),
    )
    .unwrap();
    let output = import(&broken);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("broken.jsonl line 3"), "{stderr}");
    assert!(!stderr.contains("120336-244A"), "{stderr}");
    assert_eq!(staged(), 2);
}
