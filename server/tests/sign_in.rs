//! Signing in, attacked from outside: hostile places to return to, anonymous callbacks and
//! logins that must leave no trace, a flood of them, the callback's checks in their order,
//! and a sign-in from another org. Sessions: their absolute lifetime, roles re-read from the
//! org while signed in, what the sessions table keeps, and the cookie's name under https.

mod common;

use common::portal::{self, SignIn, browser, viewer};
use common::{Db, TestApp};

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

/// Runs `body` on SQLite and on PostgreSQL with `env` as extra settings.
macro_rules! both_databases {
    ($name:ident, $env:expr, $body:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = super::common::TestApp::spawn_env(super::Db::Sqlite, $env, |_| {})
                    .await
                    .expect("SQLite is always available");
                super::$body(app).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) =
                    super::common::TestApp::spawn_env(super::Db::Postgres, $env, |_| {}).await
                {
                    super::$body(app).await;
                }
            }
        }
    };
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
    &[],
    state_before_error
);
