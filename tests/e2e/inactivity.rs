//! Unused accounts are reminded, closed and deleted (AC-7, AC-8).

use diesel::prelude::*;
use rekisteri_accounts::inactivity::{InactivityOptions, InactivityReport, run_inactivity};
use rekisteri_core::Clock;
use rekisteri_db::schema::notification_outbox;
use rekisteri_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, USER_PASSWORD, app_test, assert_problem};
use serde_json::Value;

fn run(app: &TestApp) -> InactivityReport {
    run_inactivity(
        &mut app.db.conn(),
        &app.register(),
        InactivityOptions::default(),
        app.clock.now(),
    )
    .unwrap()
}

fn status(app: &TestApp, id: &str) -> reqwest::blocking::Response {
    let admin = app.token(ADMIN_EMAIL, ADMIN_PASSWORD);
    app.get_as(&admin, &format!("/v1/accounts/{id}"))
}

app_test!(fn ac_7_an_unused_account_is_reminded_then_closed_and_logging_in_keeps_it(app) {
    app.clock.set(time::macros::datetime!(2026-01-10 09:00 UTC));
    let admin = app.bootstrap_admin();
    let org = app.create_organisation(&admin, "Kotikunta", "municipality");
    let (idle, idle_token) = app.add_user(&admin, "idle@kotikunta.fi", &org, "editor");
    let (busy, _) = app.add_user(&admin, "busy@kotikunta.fi", &org, "editor");
    // Five and a half months later: a reminder for both, once.
    app.clock.set(time::macros::datetime!(2026-06-27 09:00 UTC));
    let _ = app.token(ADMIN_EMAIL, ADMIN_PASSWORD);
    let report = run(app);
    assert_eq!((report.reminded, report.closed), (2, 0), "{report:?}");
    assert_eq!(run(app).reminded, 0, "a reminder is queued once");
    let queued: Vec<(String, String)> = notification_outbox::table
        .filter(notification_outbox::kind.eq("inactivity_reminder"))
        .select((notification_outbox::account_id, notification_outbox::details))
        .load(&mut app.db.conn())
        .unwrap();
    assert!(queued.iter().any(|(a, _)| a == &idle));
    assert!(queued.iter().all(|(_, d)| !d.contains("@")), "the outbox holds no addresses: {queued:?}");
    // The busy one logs in; the idle one does not.
    let _ = app.token("busy@kotikunta.fi", USER_PASSWORD);
    app.clock.set(time::macros::datetime!(2026-07-11 09:00 UTC));
    let _ = app.token(ADMIN_EMAIL, ADMIN_PASSWORD);
    let report = run(app);
    assert_eq!(report.closed, 1, "{report:?}");
    assert_eq!(status(app, &idle).json::<Value>().unwrap()["status"], "closed");
    assert_eq!(status(app, &busy).json::<Value>().unwrap()["status"], "active");
    assert_problem(app.get_as(&idle_token, "/v1/me"), 401, "/problems/unauthenticated");
    assert_problem(app.login("idle@kotikunta.fi", USER_PASSWORD), 401, "/problems/unauthenticated");
});

app_test!(fn ac_8_a_closed_account_is_deleted_after_30_days_but_rights_to_client_data_are_kept(app) {
    let admin = app.bootstrap_admin();
    let org = app.create_organisation(&admin, "Kotikunta", "municipality");
    let (editor, _) = app.add_user(&admin, "editor@kotikunta.fi", &org, "editor");
    let (auditor, _) = app.add_user(&admin, "dpo@kotikunta.fi", &org, "auditor");
    for id in [&editor, &auditor] {
        assert_eq!(app.delete_as(&admin, &format!("/v1/accounts/{id}")).status().as_u16(), 200);
    }
    app.clock.advance(time::Duration::days(29));
    assert_eq!(run(app).deleted, 0);
    app.clock.advance(time::Duration::days(1));
    let report = run(app);
    assert_eq!((report.deleted, report.kept), (1, 1), "{report:?}");
    assert_problem(status(app, &editor), 404, "/problems/not-found");
    let kept: Value = status(app, &auditor).json().unwrap();
    assert_eq!(kept["status"], "closed");
    assert_eq!(kept["roles"][0]["role"], "auditor");
});
