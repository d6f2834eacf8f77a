//! Throttling of logins and invitation acceptances (AC-5), the client address behind proxies,
//! the password-hashing pool, and failures as bounded security events (AC-6, AX-2).

use diesel::prelude::*;
use rekisteri_db::schema::security_events;
use rekisteri_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, TestAppOptions, USER_PASSWORD, assert_problem};
use serde_json::{Value, json};

const WRONG: &str = "wrong password, long enough";

/// Defines `name::sqlite` and `name::postgres` over an app started with `options`.
macro_rules! throttle_test {
    (fn $name:ident($app:ident) with $options:expr; $body:block) => {
        rekisteri_tests::database_test!(fn $name(db) {
            let $app = &TestApp::start_with(db, $options);
            $body
        });
    };
}

/// The details of the security events of one type, oldest first.
fn events(app: &TestApp, event_type: &str) -> Vec<Value> {
    security_events::table
        .filter(security_events::event_type.eq(event_type))
        .order((security_events::occurred_at, security_events::seq))
        .select(security_events::details)
        .load::<String>(&mut app.db.conn())
        .unwrap()
        .into_iter()
        .map(|d| serde_json::from_str(&d).unwrap())
        .collect()
}

/// A login with `X-Forwarded-For` set.
fn login_via(app: &TestApp, forwarded_for: &str, email: &str, password: &str) -> reqwest::blocking::Response {
    app.client
        .post(app.url("/v1/auth/login"))
        .header("X-Forwarded-For", forwarded_for)
        .json(&json!({"email": email, "password": password}))
        .send()
        .unwrap()
}

/// Test settings with a per-address limit of `address_failures` (the per-account one stays 5).
fn with_address_limit(address_failures: i32) -> TestAppOptions {
    TestAppOptions {
        accounts: Some(rekisteri_accounts::AccountsOptions {
            throttle_address_failures: address_failures,
            ..rekisteri_tests::test_accounts_options()
        }),
        ..TestAppOptions::default()
    }
}

fn accept(app: &TestApp, token: &str, password: &str) -> reqwest::blocking::Response {
    app.post(
        "/v1/auth/invitations/accept",
        None,
        &json!({"token": token, "password": password}),
    )
}

/// Invites a user and returns the invitation token.
fn invitation(app: &TestApp, admin: &str, email: &str) -> String {
    let org = app.create_organisation(admin, "Kotikunta", "municipality");
    let response = app.post_as(
        admin,
        "/v1/accounts",
        &json!({"email": email, "first_name": "Maija", "surname": "Mallikas",
            "organisation_id": org, "role": "main_user"}),
    );
    assert_eq!(response.status().as_u16(), 201);
    let body: Value = response.json().unwrap();
    body["invitation_token"].as_str().unwrap().to_owned()
}

rekisteri_tests::app_test!(fn ac_5_parallel_wrong_passwords_get_at_most_the_limit_evaluated(app) {
    let _admin = app.bootstrap_admin();
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let guesses: Vec<_> = (0..25)
            .map(|_| scope.spawn(|| app.login(ADMIN_EMAIL, WRONG).status().as_u16()))
            .collect();
        guesses.into_iter().map(|g| g.join().unwrap()).collect()
    });
    // 401: the password was checked; 429: refused before any check.
    let evaluated = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((evaluated, refused), (5, 20), "{statuses:?}");
    // The right password is held back too.
    assert_problem(app.login(ADMIN_EMAIL, ADMIN_PASSWORD), 429, "/problems/too-many-requests");
});

rekisteri_tests::app_test!(fn ac_5_failures_for_unknown_emails_do_not_lock_known_accounts_behind_the_same_address(app) {
    let _admin = app.bootstrap_admin();
    for n in 0..5 {
        let response = app.login(&format!("nobody{n}@example.fi"), WRONG);
        assert_problem(response, 401, "/problems/unauthenticated");
    }
    assert_eq!(app.login(ADMIN_EMAIL, ADMIN_PASSWORD).status().as_u16(), 200);
});

rekisteri_tests::app_test!(fn ac_5_the_address_limit_is_higher_than_the_account_limit_and_its_holds_grow(app) {
    let _admin = app.bootstrap_admin();
    let limit = app.accounts.throttle_address_failures;
    assert!(limit > app.accounts.throttle_failures);
    for n in 0..limit {
        assert_problem(app.login(&format!("nobody{n}@example.fi"), WRONG), 401, "/problems/unauthenticated");
    }
    let first = app.login(ADMIN_EMAIL, ADMIN_PASSWORD);
    let first_hold: i64 = first.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert_problem(first, 429, "/problems/too-many-requests");
    assert_eq!(first_hold, app.accounts.throttle_delay.whole_seconds());
    // After the hold one more failure earns a hold twice as long: a delay, not a 15-minute lock.
    app.clock.advance(app.accounts.throttle_delay);
    assert_problem(app.login("nobody-else@example.fi", WRONG), 401, "/problems/unauthenticated");
    let second = app.login(ADMIN_EMAIL, ADMIN_PASSWORD);
    let second_hold: i64 = second.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert_eq!(second_hold, 2 * first_hold);
    app.clock.advance(time::Duration::seconds(second_hold));
    assert_eq!(app.login(ADMIN_EMAIL, ADMIN_PASSWORD).status().as_u16(), 200);
});

throttle_test!(fn ac_5_a_spoofed_forwarded_for_from_an_untrusted_peer_changes_nothing(app) with with_address_limit(6); {
    let _admin = app.bootstrap_admin();
    for n in 0..6 {
        let response = login_via(app, &format!("203.0.113.{n}"), &format!("nobody{n}@example.fi"), WRONG);
        assert_problem(response, 401, "/problems/unauthenticated");
    }
    // The peer itself is held back, whatever it claims to forward for.
    let response = login_via(app, "198.51.100.99", ADMIN_EMAIL, ADMIN_PASSWORD);
    assert_problem(response, 429, "/problems/too-many-requests");
});

throttle_test!(fn ac_5_forwarded_for_from_a_trusted_proxy_names_the_client(app) with TestAppOptions {
    trusted_proxies: rekisteri_api::client_address::TrustedProxies::parse_list("127.0.0.1/32").unwrap(),
    ..with_address_limit(6)
}; {
    let _admin = app.bootstrap_admin();
    for n in 0..6 {
        // What the client put before the proxy's own hop does not count.
        let chain = format!("192.0.2.{n}, 203.0.113.7");
        assert_problem(login_via(app, &chain, &format!("nobody{n}@example.fi"), WRONG), 401, "/problems/unauthenticated");
    }
    assert_problem(login_via(app, "203.0.113.7", ADMIN_EMAIL, ADMIN_PASSWORD), 429, "/problems/too-many-requests");
    // Another client behind the same proxy is not held back.
    assert_eq!(login_via(app, "203.0.113.8", ADMIN_EMAIL, ADMIN_PASSWORD).status().as_u16(), 200);
});

throttle_test!(fn ac_5_a_full_hashing_pool_answers_503_and_bogus_invitations_hash_nothing(app) with TestAppOptions {
    hashing: (1, 0),
    ..with_address_limit(3)
}; {
    let admin = app.bootstrap_admin();
    let token = invitation(app, &admin, "maija@example.fi");
    // Every place of the pool is taken (one thread, no queue): password requests are shed.
    let full = app.hashing.reserve().unwrap();
    let busy = app.login(ADMIN_EMAIL, ADMIN_PASSWORD);
    assert_eq!(busy.headers()["retry-after"], "1");
    assert_problem(busy, 503, "/problems/busy");
    let busy = accept(app, &token, USER_PASSWORD);
    assert_eq!(busy.headers()["retry-after"], "1");
    assert_problem(busy, 503, "/problems/busy");
    drop(full);
    // A bogus token is refused before anything is hashed ...
    let hashed = app.hashing.completed();
    for _ in 0..3 {
        let problem = assert_problem(accept(app, "not-an-invitation", USER_PASSWORD), 422, "/problems/business-rule");
        assert_eq!(problem["errors"][0]["field"], "token");
    }
    // ... and throttled like a login: the address is held back now, valid token or not.
    let held = accept(app, "not-an-invitation", USER_PASSWORD);
    assert!(held.headers().contains_key("retry-after"));
    assert_problem(held, 429, "/problems/too-many-requests");
    assert_problem(accept(app, &token, USER_PASSWORD), 429, "/problems/too-many-requests");
    assert_eq!(app.hashing.completed(), hashed, "a refused acceptance hashed a password");
    assert_eq!(events(app, "invitation_throttled").len(), 1);
    // The 503 did not use the token up.
    app.clock.advance(app.accounts.throttle_delay);
    assert_eq!(accept(app, &token, USER_PASSWORD).status().as_u16(), 200);
    assert_eq!(app.hashing.completed(), hashed + 1);
    assert_eq!(app.login("maija@example.fi", USER_PASSWORD).status().as_u16(), 200);
});

rekisteri_tests::app_test!(fn ac_6_repeated_failed_logins_are_one_security_event_per_window_with_a_count(app) {
    let _admin = app.bootstrap_admin();
    for _ in 0..3 {
        assert_problem(app.login(ADMIN_EMAIL, WRONG), 401, "/problems/unauthenticated");
    }
    for n in 0..4 {
        assert_problem(app.login(&format!("nobody{n}@example.fi"), WRONG), 401, "/problems/unauthenticated");
    }
    let failed = events(app, "login_failed");
    let mut reasons: Vec<&str> = failed.iter().map(|e| e["reason"].as_str().unwrap()).collect();
    reasons.sort_unstable();
    assert_eq!(reasons, ["unknown_account", "wrong_password"], "{failed:?}");
    // The next window's event carries the count of the window before.
    app.clock.advance(app.accounts.throttle_window + time::Duration::seconds(1));
    assert_problem(app.login(ADMIN_EMAIL, WRONG), 401, "/problems/unauthenticated");
    let failed = events(app, "login_failed");
    assert_eq!(failed.len(), 3, "{failed:?}");
    assert_eq!(failed[2]["reason"], "wrong_password");
    assert_eq!(failed[2]["previous_window_failures"], 3);
    assert_eq!(failed[2]["failures"], 1);
    // A successful login says how many failures it ended.
    assert_eq!(app.login(ADMIN_EMAIL, ADMIN_PASSWORD).status().as_u16(), 200);
    let logins = events(app, "login");
    assert_eq!(logins.last().unwrap()["failed_attempts_before"], 1);
});

rekisteri_tests::app_test!(fn ax_2_refused_client_credentials_are_one_security_event_per_window(app) {
    let admin = app.bootstrap_admin();
    let org = app.create_organisation(&admin, "Pirkanmaa", "wellbeing_services_county");
    let response = app.post_as(
        &admin,
        "/v1/api-clients",
        &json!({"name": "Apotti", "organisation": org, "scopes": ["audit:read"]}),
    );
    assert_eq!(response.status().as_u16(), 201);
    let body: Value = response.json().unwrap();
    let client_id = body["client"]["id"].as_str().unwrap().to_owned();
    let refuse = |id: &str| {
        let response = app
            .client
            .post(app.url("/v1/auth/token"))
            .form(&[("grant_type", "client_credentials"), ("client_id", id), ("client_secret", "wrong")])
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 401);
    };
    for n in 0..5 {
        refuse(&client_id);
        refuse(&format!("no-such-client-{n}"));
    }
    let refused = events(app, "api_client_refused");
    assert_eq!(refused.len(), 2, "{refused:?}");
    app.clock.advance(app.accounts.throttle_window + time::Duration::seconds(1));
    refuse(&client_id);
    let refused = events(app, "api_client_refused");
    assert_eq!(refused.len(), 3, "{refused:?}");
    assert_eq!(refused[2]["previous_window_failures"], 5);
});
