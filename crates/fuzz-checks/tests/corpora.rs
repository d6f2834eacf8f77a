//! PL-20: every committed seed of every fuzz target holds under that target's check, so that
//! `make test` keeps what the fuzzer once found (crashes added as seeds) from coming back.

use std::path::Path;

#[test]
fn pl_20_every_fuzz_target_holds_on_its_committed_seeds() {
    let corpora = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let mut targets = Vec::new();
    for (target, check) in rekisteri_fuzz_checks::TARGETS {
        let dir = corpora.join(target);
        let mut seeds: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .collect();
        seeds.sort();
        assert!(seeds.len() >= 5, "{target}: {} seeds", seeds.len());
        for seed in &seeds {
            let data = std::fs::read(seed).unwrap();
            let held = std::panic::catch_unwind(|| check(&data));
            assert!(held.is_ok(), "{target}: the seed {} fails its check", seed.display());
        }
        targets.push(*target);
    }
    // Every target under fuzz/fuzz_targets has a check and a corpus.
    let mut sources: Vec<String> = std::fs::read_dir(corpora.join("../fuzz_targets"))
        .unwrap()
        .map(|entry| {
            entry
                .unwrap()
                .path()
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    sources.sort();
    targets.sort();
    assert_eq!(sources, targets);
}
