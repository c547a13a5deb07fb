//! Signing in, attacked from outside: hostile places to return to, anonymous callbacks and
//! logins that must leave no trace, a flood of them, the callback's checks in their order,
//! and a sign-in from another org. Sessions: their absolute lifetime, roles re-read from the
//! org while signed in, what the sessions table keeps, and the cookie's name under https.

use crate::common;

use common::portal::{self, SignIn, browser, call, viewer};
use common::{Db, TestApp};
use reqwest::StatusCode;
use salesforce::{Cond, SalesforceId, Soql};
use serde_json::Value;
use test_kit::both_databases;

/// Settings that let a test sign in many times from one address.
const MANY_SIGN_INS: &[(&str, &str)] = &[
    ("AUTH_RATE_LIMIT_PER_MINUTE", "10000"),
    ("AUTH_GLOBAL_RATE_LIMIT_PER_MINUTE", "10000"),
];

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no Location in a {} response", response.status()))
        .to_string()
}

/// `GET /auth/login?return_to=…` with `return_to` percent-encoded as a browser sends it.
async fn start_returning_to(app: &TestApp, client: &reqwest::Client, return_to: &str) -> SignIn {
    let mut login = url::Url::parse(&app.at("/auth/login")).unwrap();
    login.query_pairs_mut().append_pair("return_to", return_to);
    let response = client.get(login).send().await.expect("GET /auth/login");
    assert!(
        response.status().is_redirection(),
        "/auth/login with return_to={return_to:?} answered {}",
        response.status()
    );
    SignIn {
        authorize_url: url::Url::parse(&location(&response)).expect("authorize URL"),
    }
}

/// Audit entries about signing in (the portal also audits the example packages it adds
/// to the catalog at start-up, in the background).
async fn audit_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action LIKE 'auth.%'")
        .fetch_one(app.db.pool())
        .await
        .expect("count audit entries")
}

async fn session_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM sessions")
        .fetch_one(app.db.pool())
        .await
        .expect("count sessions")
}

// ---------------------------------------------------------------------------------------
// Finding 3: where a completed sign-in sends the browser
// ---------------------------------------------------------------------------------------

/// Values of `return_to` that must never take a signed-in browser off the portal, nor fail
/// the sign-in: each falls back to `/admin`.
const HOSTILE_RETURN_TO: &[&str] = &[
    // Browsers drop tabs and line breaks from URLs: "/\t/evil" is "//evil".
    "/\t/evil.example/phish",
    "/\n/evil.example/phish",
    "/\r/evil.example/phish",
    "/\r\nSet-Cookie: planted=1",
    "\t//evil.example",
    " //evil.example",
    "//evil.example",
    "///evil.example",
    "//evil.example/%2F..",
    "/\\evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    "https:evil.example",
    "https://evil.example/phish",
    "http:/evil.example",
    "javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    // Control characters: the one that gave a 500 after a completed sign-in, and others.
    "/\u{1}admin",
    "/admin\u{0}",
    "/admin\u{7f}",
    "/\u{b}/evil.example",
    // Unicode whitespace a browser may treat as a separator.
    "/\u{a0}/evil.example",
    "/\u{2028}/evil.example",
    "/\u{3000}/evil.example",
    "",
    "admin",
];

/// Values that stay on the portal: kept exactly (re-serialised to the same text).
const KEPT_RETURN_TO: &[&str] = &[
    "/admin/requests/0193f0c2-1111-7000-8000-000000000001",
    "/audit?actor=security%40acme-sandbox.example&action=request.*",
    "/admin/usage#top",
];

async fn hostile_return_to(app: TestApp) {
    let origin = url::Url::parse(&app.url).unwrap().origin();
    let very_long = format!("/{}", "a".repeat(5000));
    let double_encoded = [
        // Encoded controls stay encoded: harmless paths on the portal itself.
        "/%2F%2Fevil.example",
        "/%09/evil.example",
        "/%0d%0aSet-Cookie:%20planted=1",
    ];
    let mut cases: Vec<(&str, Option<&str>)> = HOSTILE_RETURN_TO
        .iter()
        .map(|v| (*v, Some("/admin")))
        .collect();
    cases.push((very_long.as_str(), Some("/admin")));
    cases.extend(double_encoded.iter().map(|v| (*v, None)));
    cases.extend(KEPT_RETURN_TO.iter().map(|v| (*v, Some(*v))));

    for (return_to, expected) in cases {
        let client = browser();
        let flow = start_returning_to(&app, &client, return_to).await;
        let callback = flow.log_in(&client, portal::BLAKE, &[]).await;
        let response = client
            .get(&callback)
            .send()
            .await
            .expect("GET /auth/callback");
        let status = response.status();
        assert!(
            status.is_redirection(),
            "return_to={return_to:?}: the completed sign-in answered {status}"
        );
        let to = location(&response);
        // Where a browser goes: the WHATWG URL parser (url crate) resolves it against the
        // page, dropping tabs and line breaks as browsers do.
        let resolved = url::Url::parse(&app.url).unwrap().join(&to);
        assert!(
            resolved.as_ref().is_ok_and(|u| u.origin() == origin),
            "return_to={return_to:?}: sent to {to:?}, which a browser resolves to {resolved:?}"
        );
        if let Some(expected) = expected {
            assert_eq!(to, expected, "return_to={return_to:?}");
        }
        assert!(
            !to.chars().any(|c| c.is_control() || c.is_whitespace()),
            "return_to={return_to:?}: {to:?}"
        );
        assert_eq!(
            viewer(&app, &client).await["user"]["username"],
            portal::BLAKE.0,
            "return_to={return_to:?}: the sign-in itself completed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_sign_in_never_leaves_the_portal() {
    let app = TestApp::spawn_env(Db::Sqlite, MANY_SIGN_INS, |_| {})
        .await
        .expect("SQLite");
    hostile_return_to(app).await;
}

// ---------------------------------------------------------------------------------------
// Finding 4: anonymous requests write nothing permanent
// ---------------------------------------------------------------------------------------

async fn anonymous_sign_in_requests(app: TestApp) {
    let audit_before = audit_count(&app).await;
    let sessions_before = session_count(&app).await;
    let attacker_text = "A".repeat(60 * 1024);
    for i in 0..40 {
        let client = browser();
        let query: Vec<(&str, String)> = match i % 4 {
            0 => vec![("code", format!("forged-{i}")), ("state", format!("s{i}"))],
            1 => vec![
                ("error", "access_denied".into()),
                ("error_description", attacker_text.clone()),
            ],
            2 => vec![("state", attacker_text.clone())],
            _ => vec![],
        };
        let response = client
            .get(app.at("/auth/callback"))
            .query(&query)
            .send()
            .await
            .expect("GET /auth/callback");
        assert!(
            response.status().is_redirection(),
            "an anonymous callback answered {}",
            response.status()
        );
        assert_eq!(location(&response), "/auth/failed?reason=expired");
    }
    for _ in 0..40 {
        let response = browser()
            .get(app.at("/auth/login?return_to=/admin"))
            .send()
            .await
            .expect("GET /auth/login");
        assert!(response.status().is_redirection());
    }
    assert_eq!(
        audit_count(&app).await,
        audit_before,
        "anonymous callbacks wrote to the permanent audit log"
    );
    assert_eq!(
        session_count(&app).await,
        sessions_before,
        "anonymous logins created session rows"
    );
    // They are counted for the operator instead.
    let metrics = browser()
        .get(app.at("/metrics"))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(metrics.status(), StatusCode::OK);
    let text = metrics.text().await.unwrap();
    assert!(
        text.lines()
            .any(|l| l == "portcullis_auth_callbacks_without_sign_in_total 40"),
        "{text}"
    );
    // A genuine sign-in still works, and creates exactly one session.
    let client = browser();
    portal::sign_in(&app, &client, portal::BLAKE).await;
    assert_eq!(session_count(&app).await, sessions_before + 1);
}
both_databases!(
    anonymous_callbacks_and_logins_leave_no_trace,
    with | db | TestApp::spawn_env(db, super::MANY_SIGN_INS, |_| {}),
    anonymous_sign_in_requests
);

/// A refusal with a sign-in in progress is audited, with the reason cut short.
async fn long_reasons(app: TestApp) {
    let client = browser();
    let flow = SignIn::start(&app, &client).await;
    let state = flow.param("state").expect("state");
    let response = client
        .get(app.at("/auth/callback"))
        .query(&[
            ("state", state.as_str()),
            ("error", &"E".repeat(5000)),
            ("error_description", &"D".repeat(5000)),
        ])
        .send()
        .await
        .expect("GET /auth/callback");
    assert_eq!(location(&response), "/auth/failed?reason=denied");
    let details: String = sqlx::query_scalar(
        "SELECT details FROM audit_log WHERE action = 'auth.sign_in_failed' ORDER BY seq DESC LIMIT 1",
    )
    .fetch_one(app.db.pool())
    .await
    .expect("the refusal is audited");
    let details: Value = serde_json::from_str(&details).unwrap();
    let reason = details["reason"].as_str().expect("a reason");
    assert!(
        reason.chars().count() <= 210,
        "the audited reason is {} characters long",
        reason.chars().count()
    );
    assert!(reason.starts_with("Salesforce refused: EEE"), "{reason}");
}
both_databases!(
    audited_sign_in_failures_keep_a_short_reason,
    with | db | TestApp::spawn_env(db, &[], |_| {}),
    long_reasons
);

/// The pending sign-in lives in a short-lived, sealed cookie: no session row, and neither
/// the state nor the verifier readable from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pending_sign_in_is_a_sealed_short_lived_cookie() {
    let app = TestApp::spawn(Db::Sqlite).await.unwrap();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client
        .get(app.at("/auth/login?return_to=/audit"))
        .send()
        .await
        .unwrap();
    let state = url::Url::parse(&location(&response))
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("state");
    let cookies: Vec<String> = response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let pending = cookies
        .iter()
        .find(|c| c.starts_with("portcullis_sign_in="))
        .unwrap_or_else(|| panic!("no sign-in cookie: {cookies:?}"));
    let lower = pending.to_ascii_lowercase();
    assert!(lower.contains("httponly"), "{pending}");
    assert!(lower.contains("samesite=lax"), "{pending}");
    assert!(lower.contains("path=/"), "{pending}");
    let max_age: u64 = lower
        .split(';')
        .find_map(|p| p.trim().strip_prefix("max-age="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Max-Age: {pending}"));
    assert!((60..=900).contains(&max_age), "{pending}");
    let value = pending
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("portcullis_sign_in=");
    assert!(!value.contains(&state), "the state is readable: {pending}");
    use base64::Engine;
    for engine in [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ] {
        let decoded = engine
            .decode(value.trim_start_matches("v1:"))
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&decoded);
        assert!(
            !text.contains(&state) && !text.contains("verifier") && !text.contains("/audit"),
            "the sign-in cookie is readable: {text}"
        );
    }
    assert_eq!(session_count(&app).await, 0);

    // A cookie changed by one character is no sign-in at all.
    let mut tampered = value.to_string();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let flow = SignIn {
        authorize_url: url::Url::parse(&location(&response)).unwrap(),
    };
    let jarred = browser();
    let callback = flow.log_in(&jarred, portal::BLAKE, &[]).await;
    let answer = client
        .get(&callback)
        .header(
            reqwest::header::COOKIE,
            format!("portcullis_sign_in={tampered}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(location(&answer), "/auth/failed?reason=expired");
    // The genuine cookie signs in, and comes back to where it asked to.
    let answer = client
        .get(&callback)
        .header(
            reqwest::header::COOKIE,
            format!("portcullis_sign_in={value}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(location(&answer), "/audit");
    let cleared = answer
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_ascii_lowercase())
        .find(|c| c.starts_with("portcullis_sign_in="))
        .expect("the sign-in cookie is cleared");
    assert!(cleared.contains("max-age=0"), "{cleared}");
}

// ---------------------------------------------------------------------------------------
// Findings 4 and 6: /auth/* is rate-limited per client and in total
// ---------------------------------------------------------------------------------------

async fn login_from(app: &TestApp, client: &str) -> reqwest::Response {
    browser()
        .get(app.at("/auth/login"))
        .header("x-forwarded-for", client)
        .send()
        .await
        .expect("GET /auth/login")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_requests_are_rate_limited_per_client_and_in_total() {
    let app = TestApp::spawn_env(
        Db::Sqlite,
        &[
            ("TRUSTED_PROXIES", "127.0.0.1/32"),
            ("AUTH_RATE_LIMIT_PER_MINUTE", "5"),
            ("AUTH_GLOBAL_RATE_LIMIT_PER_MINUTE", "12"),
        ],
        |_| {},
    )
    .await
    .unwrap();
    for _ in 0..5 {
        assert!(
            login_from(&app, "203.0.113.1")
                .await
                .status()
                .is_redirection()
        );
    }
    let refused = login_from(&app, "203.0.113.1").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key(reqwest::header::RETRY_AFTER));
    assert!(
        !refused.text().await.unwrap().is_empty(),
        "the refusal says why"
    );
    // Callbacks count against the same budget.
    let callback = browser()
        .get(app.at("/auth/callback?code=x&state=y"))
        .header("x-forwarded-for", "203.0.113.1")
        .send()
        .await
        .unwrap();
    assert_eq!(callback.status(), StatusCode::TOO_MANY_REQUESTS);
    // Another client has its own budget...
    for _ in 0..5 {
        assert!(
            login_from(&app, "203.0.113.2")
                .await
                .status()
                .is_redirection()
        );
    }
    // ... until the portal-wide limit is reached (12 admitted in all).
    assert!(
        login_from(&app, "203.0.113.3")
            .await
            .status()
            .is_redirection()
    );
    assert!(
        login_from(&app, "203.0.113.4")
            .await
            .status()
            .is_redirection()
    );
    assert_eq!(
        login_from(&app, "203.0.113.5").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // The rest of the portal is not affected.
    assert_eq!(
        browser()
            .get(app.at("/healthz"))
            .header("x-forwarded-for", "203.0.113.1")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

// ---------------------------------------------------------------------------------------
// Finding 13: the callback checks state before anything else, and the org
// ---------------------------------------------------------------------------------------

async fn state_before_error(app: TestApp) {
    let client = browser();
    let flow = SignIn::start(&app, &client).await;
    // An error with a state that is not this browser's: a forged callback, not a refusal.
    let response = client
        .get(app.at("/auth/callback"))
        .query(&[("state", "forged"), ("error", "access_denied")])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response), "/auth/failed?reason=state");
    drop(flow);
    // With the right state, Salesforce's refusal is reported as such.
    let flow = SignIn::start(&app, &client).await;
    let state = flow.param("state").unwrap();
    let response = client
        .get(app.at("/auth/callback"))
        .query(&[("state", state.as_str()), ("error", "access_denied")])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response), "/auth/failed?reason=denied");
}
both_databases!(
    the_callback_checks_state_before_error,
    with | db | TestApp::spawn_env(db, &[], |_| {}),
    state_before_error
);

async fn other_org(app: TestApp) {
    let audit_before = audit_count(&app).await;
    let client = browser();
    let flow = SignIn::start(&app, &client).await;
    let callback = flow.log_in(&client, portal::ALEX, &[]).await;
    let response = client.get(&callback).send().await.unwrap();
    assert_eq!(location(&response), "/auth/failed?reason=org");
    assert_eq!(viewer(&app, &client).await["user"], Value::Null);
    let details: String = sqlx::query_scalar(
        "SELECT details FROM audit_log WHERE action = 'auth.sign_in_failed' ORDER BY seq DESC LIMIT 1",
    )
    .fetch_one(app.db.pool())
    .await
    .expect("the refusal is audited");
    assert!(details.contains("organization"), "{details}");
    assert_eq!(audit_count(&app).await, audit_before + 1);
    let page = client
        .get(app.at("/auth/failed?reason=org"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("another Salesforce org"), "{page}");
}
both_databases!(
    a_sign_in_from_another_org_is_refused,
    with | db | TestApp::spawn_env(db, &[("SALESFORCE_ORG_ID", "00D000000000001")], |_| {}),
    other_org
);

// ---------------------------------------------------------------------------------------
// Finding 7: sessions
// ---------------------------------------------------------------------------------------

async fn absolute_lifetime(app: TestApp) {
    let client = browser();
    portal::sign_in(&app, &client, portal::SAM).await;
    assert_eq!(
        viewer(&app, &client).await["user"]["username"],
        portal::SAM.0
    );
    // Signed in 11 hours ago: still signed in (the default lifetime is 12 hours).
    let hour = 3600_i64;
    sqlx::query("UPDATE sessions SET created_at = created_at - $1")
        .bind(11 * hour)
        .execute(app.db.pool())
        .await
        .expect("sessions keep when they began");
    assert_eq!(
        viewer(&app, &client).await["user"]["username"],
        portal::SAM.0
    );
    // 12 hours and a minute: over, however active the session was.
    sqlx::query("UPDATE sessions SET created_at = created_at - $1")
        .bind(hour + 60)
        .execute(app.db.pool())
        .await
        .unwrap();
    assert_eq!(viewer(&app, &client).await["user"], Value::Null);
    let (status, _) = call(&app, &client, "audit_search", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
both_databases!(
    sessions_end_after_their_absolute_lifetime,
    with | db | TestApp::spawn_env(db, &[], |_| {}),
    absolute_lifetime
);

/// A client acting as the embedded sandbox org's administrator (as Setup would).
async fn org_admin(app: &TestApp) -> salesforce::Client {
    let base = app.sandbox_url.clone().expect("the embedded sandbox org");
    let credentials: Value = common::sandbox_http()
        .get(format!("{base}/__sandbox/credentials"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = |key: &str| credentials[key].as_str().unwrap().to_string();
    let mut config = salesforce::ClientConfig::new(
        salesforce::Url::parse(&base).unwrap(),
        salesforce::PortalAuth::JwtBearer {
            client_id: text("portalClientId"),
            username: text("provisionerUsername"),
            private_key_pem: salesforce::SecretString::from(text("portalPrivateKeyPem")),
            audience: base.clone(),
        },
    );
    // The embedded org serves HTTPS with the CA in DATA_DIR/sandbox-org/cert.pem.
    config.ca_file = Some(app.dir.path().join("sandbox-org").join("cert.pem"));
    salesforce::Client::new(config).unwrap()
}

async fn first_id(client: &salesforce::Client, sobject: &str, conds: Vec<Cond>) -> SalesforceId {
    let soql = Soql::select(&["Id"])
        .from(sobject)
        .filter(Cond::and(conds))
        .build()
        .unwrap();
    let page = client.query::<Value>(&soql).await.expect("query the org");
    let id = page.records.first().and_then(|r| r["Id"].as_str());
    SalesforceId::parse(id.unwrap_or_else(|| panic!("no {sobject} found"))).unwrap()
}

async fn roles_rechecked(app: TestApp) {
    let org = org_admin(&app).await;
    let blake = browser();
    portal::sign_in(&app, &blake, portal::BLAKE).await;
    assert_eq!(viewer(&app, &blake).await["roles"]["approver"], true);

    // The org takes the approver permission set away; Blake stays signed in.
    let assignment = first_id(
        &org,
        "PermissionSetAssignment",
        vec![
            Cond::eq("Assignee.Username", portal::BLAKE.0),
            Cond::eq("PermissionSet.Name", "Portcullis_Approver"),
        ],
    )
    .await;
    org.delete("PermissionSetAssignment", &assignment)
        .await
        .expect("remove the assignment");
    let v = viewer(&app, &blake).await;
    assert_eq!(v["user"]["username"], portal::BLAKE.0);
    assert_eq!(v["roles"]["approver"], false, "{v}");
    let (status, _) = call(&app, &blake, "admin_queue", &[]).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a removed approver keeps rights"
    );

    // Deactivated in the org: signed out of the portal.
    let sam = browser();
    portal::sign_in(&app, &sam, portal::SAM).await;
    let sam_id = first_id(&org, "User", vec![Cond::eq("Username", portal::SAM.0)]).await;
    org.update("User", &sam_id, &serde_json::json!({ "IsActive": false }))
        .await
        .expect("deactivate Sam");
    assert_eq!(viewer(&app, &sam).await["user"], Value::Null);

    // Frozen in the org: signed out too.
    let alex = browser();
    portal::sign_in(&app, &alex, portal::ALEX).await;
    let alex_id = first_id(&org, "User", vec![Cond::eq("Username", portal::ALEX.0)]).await;
    let login = first_id(&org, "UserLogin", vec![Cond::eq("UserId", alex_id)]).await;
    org.update(
        "UserLogin",
        &login,
        &serde_json::json!({ "IsFrozen": true }),
    )
    .await
    .expect("freeze Alex");
    assert_eq!(viewer(&app, &alex).await["user"], Value::Null);
    let ended: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'auth.session_ended'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    assert_eq!(ended, 2, "each ended session is audited");
}
both_databases!(
    roles_are_rechecked_in_the_org_while_signed_in,
    with | db | TestApp::spawn_env(db, &[("SESSION_RECHECK_MINUTES", "0")], |_| {}),
    roles_rechecked
);

fn sha256_hex(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    hex::encode(digest.as_ref())
}

async fn hashed_ids(app: TestApp) {
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let client = reqwest::Client::builder()
        .add_root_certificate(common::sandbox_ca())
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    portal::sign_in(&app, &client, portal::BLAKE).await;
    use reqwest::cookie::CookieStore;
    let header = jar
        .cookies(&app.url.parse().unwrap())
        .expect("cookies")
        .to_str()
        .unwrap()
        .to_string();
    let id = header
        .split("; ")
        .find_map(|c| c.strip_prefix("portcullis_session="))
        .unwrap_or_else(|| panic!("no session cookie in {header}"))
        .to_string();
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM sessions")
        .fetch_all(app.db.pool())
        .await
        .unwrap();
    assert!(
        !ids.contains(&id),
        "the sessions table holds the session id itself"
    );
    assert_eq!(ids, vec![sha256_hex(&id)]);
    assert_eq!(
        viewer(&app, &client).await["user"]["username"],
        portal::BLAKE.0
    );
}
both_databases!(
    the_sessions_table_keeps_only_hashes,
    with | db | TestApp::spawn_env(db, &[], |_| {}),
    hashed_ids
);

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_directory_and_database_file_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("fresh-data");
    let data_text = data.display().to_string();
    let url = format!("sqlite://{}/portcullis.db?mode=rwc", data.display());
    let app = TestApp::spawn_env(
        Db::Sqlite,
        &[("DATA_DIR", &data_text), ("DATABASE_URL", &url)],
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "DATA_DIR");
    for name in ["portcullis.db", "portcullis.db-wal", "portcullis.db-shm"] {
        let path = data.join(name);
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{name}");
        }
    }
    assert!(data.join("portcullis.db").exists());
}

/// Under an https PUBLIC_URL, cookies are `__Host-` and `Secure`, on `/`, with no Domain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_are_host_only_and_secure_under_https() {
    let app = TestApp::spawn_env(Db::Sqlite, &[("PUBLIC_URL", "https://portal.test")], |_| {})
        .await
        .unwrap();
    // The portal answers on its local port; PUBLIC_URL is what users would see.
    let local = format!("http://127.0.0.1:{}", app.port);
    let client = reqwest::Client::builder()
        .add_root_certificate(common::sandbox_ca())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client
        .get(format!("{local}/auth/login"))
        .send()
        .await
        .unwrap();
    let set_cookies = |r: &reqwest::Response| -> Vec<String> {
        r.headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    };
    let check = |cookie: &str| {
        let lower = cookie.to_ascii_lowercase();
        assert!(cookie.starts_with("__Host-"), "{cookie}");
        assert!(lower.contains("; secure"), "{cookie}");
        assert!(lower.contains("; path=/"), "{cookie}");
        assert!(!lower.contains("domain="), "{cookie}");
    };
    let pending = set_cookies(&response)
        .into_iter()
        .find(|c| c.contains("sign_in="))
        .expect("a sign-in cookie");
    check(&pending);
    let flow = SignIn {
        authorize_url: url::Url::parse(&location(&response)).unwrap(),
    };
    let callback = flow.log_in(&browser(), portal::BLAKE, &[]).await;
    let callback = url::Url::parse(&callback).unwrap();
    assert_eq!(callback.host_str(), Some("portal.test"));
    let answer = client
        .get(format!(
            "{local}{}?{}",
            callback.path(),
            callback.query().unwrap_or_default()
        ))
        .header(
            reqwest::header::COOKIE,
            pending.split(';').next().unwrap().to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(location(&answer), "/admin");
    let session = set_cookies(&answer)
        .into_iter()
        .find(|c| c.contains("portcullis_session="))
        .unwrap_or_else(|| panic!("no session cookie: {:?}", set_cookies(&answer)));
    check(&session);
}
