//! VT-13: the benchmark's public function runs and reports consistent figures (the figures
//! themselves are measured by `rekisteri bench vtj` in release mode, not asserted here).
#![allow(clippy::unwrap_used)]

#[test]
fn vt_13_stage_and_apply_reports_changes_per_second_next_to_the_raw_update_rate() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let report = rekisteri_vtj::bench::stage_and_apply(&url, 300).unwrap();
    assert_eq!(report.backend, "sqlite");
    assert_eq!((report.changes, report.people, report.raw_updates), (300, 300, 300));
    assert!(report.changes_per_second > 0.0 && report.raw_updates_per_second > 0.0);
    assert!((report.ratio - report.changes_per_second / report.raw_updates_per_second).abs() < 1e-9);
}
