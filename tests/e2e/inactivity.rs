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

// AC-7 "or sent over SMTP when configured", PL-8: the notification outbox goes to a real SMTP
// server (the test's own) through the `notifications` delivery: to the account's address, with
// the closing date and nothing else about the person; once across runs; a relay that refuses
// (451) gets the reminder again after the backoff.
app_test!(fn ac_7_pl_8_a_reminder_is_mailed_once_over_smtp_and_a_refused_one_is_retried_later(app) {
    use rekisteri_accounts::notifications::{DeliveryOptions, Mailer, SmtpSettings, SmtpTls, deliver_due};
    app.clock.set(time::macros::datetime!(2026-01-10 09:00 UTC));
    let admin = app.bootstrap_admin();
    let org = app.create_organisation(&admin, "Kotikunta", "municipality");
    let invited = app.post_as(&admin, "/v1/accounts", &serde_json::json!({"email": "Ilmari.Idle@kotikunta.fi",
        "first_name": "Ilmari", "surname": "Idlesson", "organisation_id": org, "role": "editor"}));
    assert_eq!(invited.status().as_u16(), 201);
    let invited: Value = invited.json().unwrap();
    let idle = invited["account"]["id"].as_str().unwrap().to_owned();
    let accepted = app.post("/v1/auth/invitations/accept", None,
        &serde_json::json!({"token": invited["invitation_token"], "password": USER_PASSWORD}));
    assert_eq!(accepted.status().as_u16(), 200);
    let _ = app.token("ilmari.idle@kotikunta.fi", USER_PASSWORD);
    // Five and a half months later the admin is busy and Ilmari is not: one reminder.
    app.clock.set(time::macros::datetime!(2026-06-27 09:00 UTC));
    let _ = app.token(ADMIN_EMAIL, ADMIN_PASSWORD);
    assert_eq!(run(app).reminded, 1);

    let sink = rekisteri_tests::smtp::SmtpSink::start();
    sink.refuse_next(1, "451 4.3.0 Ilmari.Idle@kotikunta.fi: mailbox busy, try again later");
    let mailer = Mailer::new(&SmtpSettings {
        host: "127.0.0.1".to_owned(),
        port: sink.port,
        tls: SmtpTls::None,
        sender: "Rekisteri <rekisteri@kotikunta.fi>".to_owned(),
        credentials: None,
        timeout: std::time::Duration::from_secs(10),
    })
    .unwrap();
    let deliver = || deliver_due(&mut app.db.conn(), &app.register(), &mailer, DeliveryOptions::default(), app.clock.now()).unwrap();
    let row = || -> (String, i64, Option<String>) {
        notification_outbox::table
            .filter(notification_outbox::account_id.eq(&idle))
            .select((notification_outbox::state, notification_outbox::attempts, notification_outbox::last_error))
            .first(&mut app.db.conn())
            .unwrap()
    };
    // Refused: nothing arrives, the failure is recorded without the relay's text.
    let first = deliver();
    assert_eq!((first.sent, first.failed, first.waiting), (0, 1, 1), "{first:?}");
    assert_eq!(first.errors, ["SMTP 451 (refused for now)"]);
    assert_eq!((sink.refused(), sink.received().len()), (1, 0));
    assert_eq!(row(), ("pending".to_owned(), 1, Some("SMTP 451 (refused for now)".to_owned())));
    // Not before its backoff (one minute)...
    app.clock.advance(time::Duration::seconds(59));
    let early = deliver();
    assert_eq!((early.sent, early.failed, early.waiting), (0, 0, 1), "{early:?}");
    // ...then delivered, and never again.
    app.clock.advance(time::Duration::seconds(1));
    let second = deliver();
    assert_eq!((second.sent, second.failed, second.waiting), (1, 0, 0), "{second:?}");
    let third = deliver();
    assert_eq!((third.sent, third.failed, third.waiting), (0, 0, 0), "{third:?}");
    assert_eq!(row(), ("sent".to_owned(), 2, None));
    let mail = sink.received();
    assert_eq!(mail.len(), 1, "delivered once: {mail:?}");
    assert_eq!(mail[0].from, "rekisteri@kotikunta.fi");
    assert_eq!(mail[0].to, ["Ilmari.Idle@kotikunta.fi"]);
    let data = &mail[0].data;
    assert!(data.contains("To: Ilmari.Idle@kotikunta.fi"), "{data}");
    assert!(data.contains("Subject: Rekisteri: log in to keep your account open"), "{data}");
    // The closing date the inactivity job queued (the last login plus the six months counted
    // at the reminder), as a Finnish date.
    assert!(data.contains("Content-Transfer-Encoding: 7bit"), "{data}");
    assert!(data.contains("and will be closed on 11.7.2026."), "{data}");
    let without_address = data.replace("Ilmari.Idle@kotikunta.fi", "");
    for personal in ["Ilmari", "Idlesson", &idle, &org, "Kotikunta"] {
        assert!(!without_address.contains(personal), "the reminder holds only what it must: {personal:?} in {data}");
    }
});
