//! The credential hand-over, over HTTP as the contractor's browser does it, against the
//! running portal and its embedded sandbox org, on SQLite and PostgreSQL: a link that a
//! scanner opens stays usable; the code and "Reveal now" show the credential once, and it
//! works against the org; of 1,000 concurrent reveals exactly one gets the secret; wrong
//! codes lock the link and alert the approvers; an expired link reveals nothing and an
//! approver's new link changes the secret; "I did not do this" changes it too; and every
//! step is in the audit log.

use crate::common;

use std::time::Duration;

use common::portal::{self, browser, call, link_path, mail_to, pairs, sign_in, six_digits, submit};
use common::{Db, TestApp};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::Row;
use test_kit::both_databases;

/// A grant approved by Blake and provisioned by the portal's workers, ready to hand over.
struct Ready {
    app: TestApp,
    contractor: portal::Contractor,
    approver: reqwest::Client,
    grant_id: String,
    /// `/reveal/<token>` from the "credential" mail.
    reveal_path: String,
}

async fn ready_grant(kind: Db) -> Option<Ready> {
    ready_grant_in(kind, true).await
}

/// With `secrets_via_api` false the org's credentials API returns no secrets
/// (`enableClientSecretInRestApiAccess` off), as Salesforce's health check recommends.
async fn ready_grant_in(kind: Db, secrets_via_api: bool) -> Option<Ready> {
    let app = TestApp::spawn_with(kind, |config| {
        config.roles = portal::one_role_each();
        config.provisioning_workers = 2;
        // A test below races 1,000 reveals at once; on a loaded machine more than the default
        // 512 can be in flight together and the surplus is shed with 503 (its own test is in
        // hardening.rs). This file is about who gets the secret, so none is shed here.
        config.http_max_concurrent_requests = 2_000;
    })
    .await?;
    if !secrets_via_api {
        let response = common::sandbox_http()
            .patch(format!(
                "{}/__sandbox/settings",
                app.sandbox_url.as_ref().unwrap()
            ))
            .json(&serde_json::json!({ "enableClientSecretInRestApiAccess": false }))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{:?}",
            response.text().await
        );
    }
    let contractor = submit(&app, "Reveal Ltd", true).await;
    let approver = browser();
    sign_in(&app, &approver, portal::BLAKE).await;
    let form = portal::approval_form(&contractor.request_id, "");
    let (status, body) = call(&app, &approver, "decide", &pairs(&form)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let grant_id = wait_for_state(&app, &contractor.request_id, "ready").await;
    let mail = mail_to(&app, &contractor.email, "Your API credential")
        .await
        .expect("the reveal link is mailed when the grant is ready");
    let reveal_path = link_path(&mail, "/reveal/").expect("a reveal link in the mail");
    Some(Ready {
        app,
        contractor,
        approver,
        grant_id,
        reveal_path,
    })
}

async fn wait_for_state(app: &TestApp, request_id: &str, want: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let row = sqlx::query("SELECT id, state, attention FROM grants WHERE request_id = $1")
            .bind(request_id)
            .fetch_optional(app.db.pool())
            .await
            .expect("read grants");
        if let Some(row) = &row {
            let state: String = row.get("state");
            if state == want {
                return row.get("id");
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "grant is {state}, not {want}: {:?}",
                row.get::<Option<String>, _>("attention")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn token_of(path: &str) -> &str {
    path.trim_start_matches("/reveal/")
}

/// Asks for a code as the contractor and reads it from their mail.
async fn code_for(r: &Ready, client: &reqwest::Client) -> String {
    let before = mail_count(&r.app, &r.contractor.email).await;
    let (status, body) = call(
        &r.app,
        client,
        "send_reveal_code",
        &[("token", token_of(&r.reveal_path))],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "send_reveal_code: {body}");
    assert_eq!(mail_count(&r.app, &r.contractor.email).await, before + 1);
    let mail = mail_to(&r.app, &r.contractor.email, "Your code to reveal")
        .await
        .expect("a code mail");
    six_digits(&mail).expect("six digits in the code mail")
}

async fn mail_count(app: &TestApp, to: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM mail_outbox WHERE recipient = $1")
        .bind(to)
        .fetch_one(app.db.pool())
        .await
        .expect("count mail")
}

async fn reveal(
    r: &Ready,
    client: &reqwest::Client,
    path: &str,
    code: &str,
) -> (StatusCode, String) {
    call(
        &r.app,
        client,
        "reveal_now",
        &[("token", token_of(path)), ("code", code)],
    )
    .await
}

/// "I did not do this" as the reveal page does it: a code mailed for the report, then the
/// report with that code.
async fn disown(r: &Ready, client: &reqwest::Client, path: &str) -> (StatusCode, String) {
    let (status, body) = call(
        &r.app,
        client,
        "send_disown_code",
        &[("token", token_of(path))],
    )
    .await;
    if status != StatusCode::OK {
        return (status, body);
    }
    let code = disown_code(&r.app, &r.contractor.email).await;
    call(
        &r.app,
        client,
        "disown_reveal",
        &[("token", token_of(path)), ("code", &code)],
    )
    .await
}

/// The newest code mailed to report a reveal.
async fn disown_code(app: &TestApp, email: &str) -> String {
    let mail = mail_to(app, email, "Your code to report")
        .await
        .expect("a code mailed for the report");
    six_digits(&mail).expect("six digits in the report code mail")
}

async fn count_actions(app: &TestApp, action: &str, target: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = $1 AND target_id = $2")
        .bind(action)
        .bind(target)
        .fetch_one(app.db.pool())
        .await
        .expect("count audit entries")
}

/// Exchanges the key and secret for a token at the org, as the seed's curl does.
async fn token_exchange(credential: &Value) -> StatusCode {
    portal::client_credentials(credential).await.0
}

async fn link_state(app: &TestApp, grant_id: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT state FROM reveal_links WHERE grant_id = $1 ORDER BY created_at, id")
        .bind(grant_id)
        .fetch_all(app.db.pool())
        .await
        .expect("read reveal_links")
}

async fn audit_actions(app: &TestApp, targets: &[&str]) -> Vec<String> {
    let mut actions = Vec::new();
    for row in sqlx::query("SELECT action, target_id FROM audit_log ORDER BY seq")
        .fetch_all(app.db.pool())
        .await
        .expect("read audit_log")
    {
        let target: String = row.get("target_id");
        if targets.contains(&target.as_str()) {
            actions.push(row.get::<String, _>("action"));
        }
    }
    actions
}

async fn approver_alerts(app: &TestApp, subject: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM mail_outbox m JOIN portal_users u ON u.email = m.recipient \
         WHERE u.is_approver = $1 AND m.subject LIKE $2",
    )
    .bind(true)
    .bind(format!("%{subject}%"))
    .fetch_one(app.db.pool())
    .await
    .expect("count alerts")
}

async fn the_credential_is_revealed_once(kind: Db) {
    let Some(r) = ready_grant(kind).await else {
        return;
    };
    let contractor = browser();

    // A scanner (or a chat preview) opens the link: the page says what it is for, with
    // headers that keep it out of caches and Referers, and nothing is used up.
    for _ in 0..2 {
        let page = r
            .app
            .client
            .get(r.app.at(&r.reveal_path))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let headers = page.headers().clone();
        assert_eq!(headers["cache-control"], "no-store");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        let html = page.text().await.unwrap();
        assert!(html.contains("Reveal Ltd"), "the page names the company");
        assert!(html.contains("Email me a code"), "the link is still usable");
    }
    assert_eq!(link_state(&r.app, &r.grant_id).await, ["open"]);

    // A code is needed, and a malformed or absent one reveals nothing.
    let (status, body) = reveal(&r, &contractor, &r.reveal_path, "123456").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("Ask for a code first"), "{body}");
    let code = code_for(&r, &contractor).await;
    let (status, body) = reveal(&r, &contractor, &r.reveal_path, "12ab").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("6 digits"), "{body}");

    // 1,000 concurrent "Reveal now" with the right code: exactly one gets the secret.
    let results = futures::future::join_all((0..1000).map(|_| {
        let (app, path, code) = (&r.app, r.reveal_path.clone(), code.clone());
        async move {
            let client = browser();
            let response = client
                .post(app.at("/api/reveal_now"))
                .header(reqwest::header::ORIGIN, app.url.as_str())
                .form(&[("token", token_of(&path)), ("code", code.as_str())])
                .timeout(Duration::from_secs(120))
                .send()
                .await
                .expect("reveal_now answers");
            let status = response.status();
            let no_store = response.headers().get("cache-control").cloned();
            (status, no_store, response.text().await.unwrap_or_default())
        }
    }))
    .await;
    let winners: Vec<&(StatusCode, _, String)> = results
        .iter()
        .filter(|(s, ..)| *s == StatusCode::OK)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one reveal succeeds");
    for (status, _, body) in &results {
        if *status != StatusCode::OK {
            assert_eq!(*status, StatusCode::CONFLICT, "{body}");
            assert!(!body.contains("consumer_secret"), "{body}");
        }
    }
    let (_, no_store, body) = winners[0];
    assert_eq!(no_store.as_ref().unwrap(), "no-store");
    let credential: Value = serde_json::from_str(body).expect("the credential as JSON");
    let secret = credential["consumer_secret"].as_str().unwrap().to_string();
    assert!(secret.len() >= 32, "a real secret");
    assert!(
        credential["token_url"]
            .as_str()
            .unwrap()
            .ends_with("/services/oauth2/token")
    );

    // It works against the org.
    assert_eq!(token_exchange(&credential).await, StatusCode::OK);

    // Reloading says it was revealed, and when; another reveal is refused.
    let html = r.app.get(&r.reveal_path).await.text().await.unwrap();
    assert!(html.contains("Already revealed"), "{html}");
    assert!(html.contains("I did not do this"));
    let (status, body) = reveal(&r, &contractor, &r.reveal_path, &code).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("already revealed"), "{body}");
    let state: String = sqlx::query_scalar("SELECT state FROM grants WHERE id = $1")
        .bind(&r.grant_id)
        .fetch_one(r.app.db.pool())
        .await
        .unwrap();
    assert_eq!(state, "active");

    // The secret is in none of the portal's tables (nor the audit log).
    assert_secret_not_stored(&r.app, &secret).await;

    // Every action of the flow, for this grant and its request, in order.
    let actions = audit_actions(&r.app, &[&r.grant_id, &r.contractor.request_id]).await;
    let mut expected = vec![
        "request.submitted",
        "request.verified",
        "request.approved",
        "grant.created",
    ];
    for _ in services::provisioning::Step::ALL {
        expected.extend(["provisioning.step_started", "provisioning.step_succeeded"]);
    }
    expected.extend(["reveal.link_issued", "reveal.code_sent", "secret.revealed"]);
    assert_eq!(actions, expected);
    let (status, body) = call(
        &r.app,
        &r.approver,
        "grant_progress",
        &[("id", &r.contractor.request_id)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("\"revealed\""), "{body}");

    // The security reviewer's evidence pack tells the whole story, and holds no secret.
    let reviewer = browser();
    sign_in(&r.app, &reviewer, portal::SAM).await;
    let evidence_path = format!("/audit/evidence/{}.json", r.grant_id);
    let refused = r
        .approver
        .get(r.app.at(&evidence_path))
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.status(),
        StatusCode::FORBIDDEN,
        "approvers do not get it"
    );
    let response = reviewer.get(r.app.at(&evidence_path)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let text = response.text().await.unwrap();
    assert!(
        !text.contains(&secret),
        "the secret is not in the evidence pack"
    );
    let pack: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(pack["format"], "portcullis-evidence/1");
    assert_eq!(pack["grant"]["id"], r.grant_id.as_str());
    assert_eq!(pack["request"]["id"], r.contractor.request_id.as_str());
    assert_eq!(pack["request"]["company"], "Reveal Ltd");
    let approvals = pack["approvals"].as_array().unwrap();
    assert_eq!(approvals.len(), 1, "{approvals:?}");
    assert_eq!(approvals[0]["approver"], portal::BLAKE.0);
    assert_eq!(approvals[0]["decision"], "approved");
    assert!(pack["scope_diff"].is_array());
    let steps = pack["provisioning"].as_array().unwrap();
    assert_eq!(steps.len(), services::provisioning::Step::ALL.len());
    assert!(steps.iter().all(|s| s["state"] == "succeeded"), "{steps:?}");
    let user_step = steps.iter().find(|s| s["step"] == "user").unwrap();
    assert!(
        user_step["salesforce"].to_string().contains("005"),
        "the integration user's Salesforce id: {user_step}"
    );
    let proof = pack["proof"].as_array().unwrap();
    assert!(!proof.is_empty());
    assert!(proof.iter().all(|c| c["pass"] == true), "{proof:?}");
    let receipt = &pack["reveal_receipt"][0];
    assert_eq!(receipt["state"], "revealed");
    assert!(receipt["revealed_at"].is_string(), "{receipt}");
    assert!(receipt["revealed_from_ip"].is_string(), "{receipt}");
    let entries = pack["audit"]["entries"].as_array().unwrap();
    let packed: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(packed, expected, "every audit entry of the grant, in order");
    for e in entries {
        let entry: services::audit::Entry = serde_json::from_value(e.clone()).unwrap();
        assert_eq!(
            services::audit::Entry::compute_hash(&entry.prev_hash, &entry.canonical()),
            entry.hash,
            "each packed entry matches its hash"
        );
    }
    assert_eq!(pack["audit"]["chain"]["status"], "intact");
    // With what the chain's anchors say about the span (a young log: none yet).
    let anchors = &pack["audit"]["chain"]["anchors"];
    assert_eq!(anchors["every"], 1_000, "{anchors}");
    assert_eq!(anchors["anchored_through"], 0, "{anchors}");
    assert!(anchors["self_consistent_from"].is_i64(), "{anchors}");
    let missing = reviewer
        .get(r.app.at("/audit/evidence/no-such-grant.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    r.app.stop().await.unwrap();
}

/// Every text column of every table, searched for the secret.
async fn assert_secret_not_stored(app: &TestApp, secret: &str) {
    let tables: Vec<String> = match app.kind {
        Db::Sqlite => sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(app.db.pool())
            .await
            .unwrap(),
        Db::Postgres => sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
        )
        .fetch_all(app.db.pool())
        .await
        .unwrap(),
    };
    assert!(tables.iter().any(|t| t == "audit_log"));
    if app.kind == Db::Postgres {
        for table in tables {
            let found: i64 = sqlx::query_scalar(&format!(
                "SELECT COUNT(*) FROM \"{table}\" t WHERE t::text LIKE '%' || $1 || '%'"
            ))
            .bind(secret)
            .fetch_one(app.db.pool())
            .await
            .unwrap();
            assert_eq!(found, 0, "the secret is stored in {table}");
        }
    }
    if app.kind == Db::Sqlite {
        // The whole database file (and its write-ahead log), byte for byte.
        for name in ["portcullis.db", "portcullis.db-wal"] {
            let path = app.dir.path().join(name);
            if let Ok(bytes) = std::fs::read(&path) {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "the secret is in {name}"
                );
            }
        }
    }
}

async fn wrong_codes_lock_the_link(kind: Db) {
    let Some(r) = ready_grant(kind).await else {
        return;
    };
    let contractor = browser();
    let code = code_for(&r, &contractor).await;
    let wrong = if code == "000000" { "000001" } else { "000000" };
    for attempt in 1..=5 {
        let (status, body) = reveal(&r, &contractor, &r.reveal_path, wrong).await;
        if attempt < 5 {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert!(body.contains(&format!("{} attempt", 5 - attempt)), "{body}");
        } else {
            assert_eq!(status, StatusCode::LOCKED, "{body}");
        }
    }
    // Locked: the right code reveals nothing now, and neither does a new one.
    let (status, body) = reveal(&r, &contractor, &r.reveal_path, &code).await;
    assert_eq!(status, StatusCode::LOCKED, "{body}");
    let (status, _) = call(
        &r.app,
        &contractor,
        "send_reveal_code",
        &[("token", token_of(&r.reveal_path))],
    )
    .await;
    assert_eq!(status, StatusCode::LOCKED);
    assert_eq!(link_state(&r.app, &r.grant_id).await, ["locked"]);
    assert_eq!(
        approver_alerts(&r.app, "credential link was locked").await,
        1
    );
    let html = r.app.get(&r.reveal_path).await.text().await.unwrap();
    assert!(html.contains("locked"), "{html}");
    let actions = audit_actions(&r.app, &[&r.grant_id]).await;
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "reveal.code_rejected")
            .count(),
        5
    );
    assert!(actions.contains(&"reveal.locked".to_string()));
    let (_, body) = call(
        &r.app,
        &r.approver,
        "grant_progress",
        &[("id", &r.contractor.request_id)],
    )
    .await;
    assert!(body.contains("\"locked\""), "{body}");
    r.app.stop().await.unwrap();
}

async fn an_expired_link_reveals_nothing_and_a_new_one_rotates(kind: Db) {
    let Some(r) = ready_grant(kind).await else {
        return;
    };
    let contractor = browser();
    let code = code_for(&r, &contractor).await;
    // 72 hours pass.
    sqlx::query("UPDATE reveal_links SET expires_at = $1 WHERE grant_id = $2")
        .bind(services::clock::now_ms() - 1)
        .bind(&r.grant_id)
        .execute(r.app.db.pool())
        .await
        .unwrap();
    let (status, body) = reveal(&r, &contractor, &r.reveal_path, &code).await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert!(body.contains("expired"), "{body}");
    let html = r.app.get(&r.reveal_path).await.text().await.unwrap();
    assert!(html.contains("expired on"), "{html}");
    let (_, body) = call(
        &r.app,
        &r.approver,
        "grant_progress",
        &[("id", &r.contractor.request_id)],
    )
    .await;
    assert!(body.contains("Credential not collected"), "{body}");

    // The approver sends a new link: the secret changes first, the old link is dead.
    let (status, body) = call(
        &r.app,
        &r.approver,
        "reissue_reveal_link",
        &[("request_id", &r.contractor.request_id)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mail = mail_to(&r.app, &r.contractor.email, "Your API credential")
        .await
        .unwrap();
    let new_path = link_path(&mail, "/reveal/").unwrap();
    assert_ne!(new_path, r.reveal_path);
    assert_eq!(
        link_state(&r.app, &r.grant_id).await,
        ["superseded", "open"]
    );
    let (status, _) = reveal(&r, &contractor, &r.reveal_path, &code).await;
    assert_eq!(status, StatusCode::GONE);
    let r2 = Ready {
        reveal_path: new_path,
        ..r
    };
    let code = code_for(&r2, &contractor).await;
    let (status, body) = reveal(&r2, &contractor, &r2.reveal_path, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let credential: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(token_exchange(&credential).await, StatusCode::OK);
    assert_ne!(
        credential["consumer_key"].as_str().unwrap(),
        provisioned_key(&r2.app, &r2.grant_id).await,
        "the new link came with rotated credentials"
    );
    let actions = audit_actions(&r2.app, &[&r2.grant_id]).await;
    assert!(
        actions.contains(&"secret.rotated".to_string()),
        "{actions:?}"
    );
    r2.app.stop().await.unwrap();
}

/// The consumer key provisioning recorded (rotation replaces key and secret in the org).
async fn provisioned_key(app: &TestApp, grant_id: &str) -> String {
    let output: String = sqlx::query_scalar(
        "SELECT output FROM provisioning_steps WHERE grant_id = $1 AND step = 'consumer'",
    )
    .bind(grant_id)
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    let output: Value = serde_json::from_str(&output).unwrap();
    output["consumer_key"].as_str().unwrap().to_string()
}

async fn i_did_not_do_this_rotates_the_secret(kind: Db) {
    let Some(r) = ready_grant(kind).await else {
        return;
    };
    let contractor = browser();
    let code = code_for(&r, &contractor).await;
    let (status, body) = reveal(&r, &contractor, &r.reveal_path, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let old: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(token_exchange(&old).await, StatusCode::OK);

    let (status, body) = disown(&r, &contractor, &r.reveal_path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The revealed secret no longer works; the approvers know.
    assert_ne!(token_exchange(&old).await, StatusCode::OK);
    assert_eq!(approver_alerts(&r.app, "reported as not theirs").await, 1);
    let html = r.app.get(&r.reveal_path).await.text().await.unwrap();
    assert!(html.contains("The secret was changed"), "{html}");
    let (status, _) = disown(&r, &contractor, &r.reveal_path).await;
    assert_eq!(status, StatusCode::CONFLICT, "reported once");
    let actions = audit_actions(&r.app, &[&r.grant_id]).await;
    assert!(
        actions.ends_with(&["secret.disowned".to_string(), "secret.rotated".to_string()]),
        "{actions:?}"
    );

    // A fresh link from the approver hands over the new secret, which works.
    let (status, body) = call(
        &r.app,
        &r.approver,
        "reissue_reveal_link",
        &[("request_id", &r.contractor.request_id)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mail = mail_to(&r.app, &r.contractor.email, "Your API credential")
        .await
        .unwrap();
    let r2 = Ready {
        reveal_path: link_path(&mail, "/reveal/").unwrap(),
        ..r
    };
    let code = code_for(&r2, &contractor).await;
    let (status, body) = reveal(&r2, &contractor, &r2.reveal_path, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let new: Value = serde_json::from_str(&body).unwrap();
    assert_ne!(new["consumer_secret"], old["consumer_secret"]);
    assert_eq!(token_exchange(&new).await, StatusCode::OK);
    assert_ne!(token_exchange(&old).await, StatusCode::OK);
    r2.app.stop().await.unwrap();
}

/// "I did not do this" needs a code mailed for that purpose (issue 15, finding 2): without
/// one, with the code that revealed the secret, or with a wrong one, nothing is rotated.
async fn i_did_not_do_this_needs_a_fresh_code(kind: Db) {
    let Some(r) = ready_grant(kind).await else {
        return;
    };
    let contractor = browser();
    let code = code_for(&r, &contractor).await;
    let (status, body) = reveal(&r, &contractor, &r.reveal_path, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let revealed: Value = serde_json::from_str(&body).unwrap();
    let token = token_of(&r.reveal_path);

    // No code, the reveal's own code, a malformed one, a made-up one: refused, and the
    // revealed secret still works (nothing was rotated, the grant is still active).
    for args in [
        vec![("token", token)],
        vec![("token", token), ("code", code.as_str())],
        vec![("token", token), ("code", "12ab")],
        vec![("token", token), ("code", "123456")],
    ] {
        let (status, body) = call(&r.app, &contractor, "disown_reveal", &args).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{args:?}: {body}");
        assert!(body.contains("code"), "{args:?}: {body}");
    }
    assert_eq!(token_exchange(&revealed).await, StatusCode::OK);
    assert_eq!(
        count_actions(&r.app, "secret.rotated", &r.grant_id).await,
        0
    );
    assert_eq!(
        count_actions(&r.app, "secret.disowned", &r.grant_id).await,
        0
    );

    // A code mailed for the report; a wrong one counts against it.
    let before = mail_count(&r.app, &r.contractor.email).await;
    let (status, body) = call(&r.app, &contractor, "send_disown_code", &[("token", token)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("•••@"), "the masked address: {body}");
    assert_eq!(mail_count(&r.app, &r.contractor.email).await, before + 1);
    let report_code = disown_code(&r.app, &r.contractor.email).await;
    assert_ne!(report_code, code);
    let wrong = if report_code == "000000" {
        "111111"
    } else {
        "000000"
    };
    let (status, body) = call(
        &r.app,
        &contractor,
        "disown_reveal",
        &[("token", token), ("code", wrong)],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("not right"), "{body}");
    assert_eq!(token_exchange(&revealed).await, StatusCode::OK);

    // The right one reports it: rotated, the approvers alerted.
    let (status, body) = call(
        &r.app,
        &contractor,
        "disown_reveal",
        &[("token", token), ("code", &report_code)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_ne!(token_exchange(&revealed).await, StatusCode::OK);
    assert_eq!(approver_alerts(&r.app, "reported as not theirs").await, 1);
    assert_eq!(
        count_actions(&r.app, "reveal.disown_code_sent", &r.grant_id).await,
        1
    );
    assert_eq!(
        count_actions(&r.app, "reveal.disown_code_rejected", &r.grant_id).await,
        1
    );
    // The code is used up.
    let (status, body) = call(
        &r.app,
        &contractor,
        "disown_reveal",
        &[("token", token), ("code", &report_code)],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // The mailed code is not stored as such.
    let stored: Vec<Option<String>> =
        sqlx::query_scalar("SELECT disown_code_hash FROM reveal_links WHERE grant_id = $1")
            .bind(&r.grant_id)
            .fetch_all(r.app.db.pool())
            .await
            .unwrap();
    assert!(stored.iter().flatten().all(|h| !h.contains(&report_code)));
    r.app.stop().await.unwrap();
}

/// A link that was superseded by a newer one, or revealed longer ago than the report window,
/// cannot report anything: an old link left in a mailbox must not rotate the contractor's
/// current secret and send the grant back to ready.
async fn i_did_not_do_this_only_on_the_newest_link_in_time(kind: Db) {
    let Some(r) = ready_grant(kind).await else {
        return;
    };
    let contractor = browser();
    let code = code_for(&r, &contractor).await;
    let (status, body) = reveal(&r, &contractor, &r.reveal_path, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let first_path = r.reveal_path.clone();

    // An approver sends a new link, and the contractor collects the new secret with it.
    let (status, body) = call(
        &r.app,
        &r.approver,
        "reissue_reveal_link",
        &[("request_id", &r.contractor.request_id)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mail = mail_to(&r.app, &r.contractor.email, "Your API credential")
        .await
        .unwrap();
    let second_path = link_path(&mail, "/reveal/").unwrap();
    assert_ne!(second_path, first_path);
    let r2 = Ready {
        reveal_path: second_path.clone(),
        ..r
    };
    let code = code_for(&r2, &contractor).await;
    let (status, body) = reveal(&r2, &contractor, &second_path, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let current: Value = serde_json::from_str(&body).unwrap();
    let rotations = count_actions(&r2.app, "secret.rotated", &r2.grant_id).await;

    // The first link, revealed and superseded: no report, no code, nothing rotated.
    let (status, body) = call(
        &r2.app,
        &contractor,
        "disown_reveal",
        &[("token", token_of(&first_path)), ("code", "123456")],
    )
    .await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert!(body.contains("newer link"), "{body}");
    let (status, body) = call(
        &r2.app,
        &contractor,
        "send_disown_code",
        &[("token", token_of(&first_path))],
    )
    .await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert!(body.contains("newer link"), "{body}");
    let html = r2.app.get(&first_path).await.text().await.unwrap();
    assert!(!html.contains("I did not do this"), "{html}");
    assert!(html.contains("newer link"), "{html}");
    assert_eq!(token_exchange(&current).await, StatusCode::OK);
    assert_eq!(
        count_actions(&r2.app, "secret.rotated", &r2.grant_id).await,
        rotations
    );
    let state: String = sqlx::query_scalar("SELECT state FROM grants WHERE id = $1")
        .bind(&r2.grant_id)
        .fetch_one(r2.app.db.pool())
        .await
        .unwrap();
    assert_eq!(state, "active", "the grant was not sent back to ready");

    // The newest link, revealed more than the window (7 days by default) ago: too late.
    let age = |sign: &'static str| {
        let app = &r2.app;
        let grant = r2.grant_id.clone();
        async move {
            sqlx::query(&format!(
                "UPDATE reveal_links SET revealed_at = revealed_at {sign} $1 WHERE grant_id = $2"
            ))
            .bind(8 * 24 * 3_600_000i64)
            .bind(&grant)
            .execute(app.db.pool())
            .await
            .unwrap();
        }
    };
    age("-").await;
    let before = mail_count(&r2.app, &r2.contractor.email).await;
    let (status, body) = call(
        &r2.app,
        &contractor,
        "send_disown_code",
        &[("token", token_of(&second_path))],
    )
    .await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert!(body.contains("too late to report"), "{body}");
    let (status, body) = call(
        &r2.app,
        &contractor,
        "disown_reveal",
        &[("token", token_of(&second_path)), ("code", "123456")],
    )
    .await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert_eq!(mail_count(&r2.app, &r2.contractor.email).await, before);
    let html = r2.app.get(&second_path).await.text().await.unwrap();
    assert!(html.contains("too late to report"), "{html}");
    assert_eq!(token_exchange(&current).await, StatusCode::OK);
    age("+").await;

    // The newest link can, and only a bounded number of codes is mailed for it.
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let (status, _) = call(
            &r2.app,
            &contractor,
            "send_disown_code",
            &[("token", token_of(&second_path))],
        )
        .await;
        statuses.push(status);
    }
    assert!(
        statuses[..3].iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    let (status, body) = disown(&r2, &contractor, &second_path).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let code = disown_code(&r2.app, &r2.contractor.email).await;
    let (status, body) = call(
        &r2.app,
        &contractor,
        "disown_reveal",
        &[("token", token_of(&second_path)), ("code", &code)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_ne!(token_exchange(&current).await, StatusCode::OK);
    r2.app.stop().await.unwrap();
}

/// What a link holder (anyone with the link, no session) sees when Salesforce fails is a
/// generic message, never Salesforce's own text; the audit log keeps the detail for the
/// admins. And the code mailed for the reveal is stored keyed, not as a plain hash
/// (issue 15, finding 13).
async fn link_holders_see_no_salesforce_error_text(kind: Db) {
    let Some(r) = ready_grant(kind).await else {
        return;
    };
    let contractor = browser();
    let code = code_for(&r, &contractor).await;
    let (link_id, stored): (String, String) =
        sqlx::query_as("SELECT id, code_hash FROM reveal_links WHERE grant_id = $1")
            .bind(&r.grant_id)
            .fetch_one(r.app.db.pool())
            .await
            .unwrap();
    let plain = hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        format!("{link_id}:{code}").as_bytes(),
    ));
    assert_ne!(
        stored, plain,
        "the reveal code is stored as a plain SHA-256"
    );

    // The org fails the credentials call with an error of its own.
    let rules = serde_json::json!([{
        "path": "/services/data/*/apps/oauth/credentials/*",
        "errorRate": 1.0,
        "errorStatus": 400,
        "errorCode": "INVALID_OPERATION",
        "errorMessage": "Internal detail 7f3a: consumer 0H4 is in state BROKEN"
    }]);
    let org = r.app.sandbox_url.as_ref().unwrap();
    test_kit::sandbox::set_faults(&common::sandbox_http(), org, rules).await;
    let (status, body) = reveal(&r, &contractor, &r.reveal_path, &code).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    for detail in ["7f3a", "INVALID_OPERATION", "BROKEN", "0H4"] {
        assert!(
            !body.contains(detail),
            "Salesforce's text reached the link holder: {body}"
        );
    }
    assert!(body.contains("Nothing was used up"), "{body}");
    let logged: String = sqlx::query_scalar(
        "SELECT details FROM audit_log WHERE action = 'secret.reveal_failed' AND target_id = $1",
    )
    .bind(&r.grant_id)
    .fetch_one(r.app.db.pool())
    .await
    .unwrap();
    assert!(
        logged.contains("7f3a"),
        "the admins keep the detail: {logged}"
    );

    // Once the org answers again, the same code reveals the credential.
    test_kit::sandbox::clear_faults(&common::sandbox_http(), org).await;
    let (status, body) = reveal(&r, &contractor, &r.reveal_path, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    r.app.stop().await.unwrap();
}

async fn bad_links_are_clear_refusals(kind: Db) {
    let Some(app) = portal::spawn_portal(kind).await else {
        return;
    };
    let client = browser();
    let fake = "A".repeat(43);
    for (name, args) in [
        ("send_reveal_code", vec![("token", fake.as_str())]),
        (
            "reveal_now",
            vec![("token", fake.as_str()), ("code", "123456")],
        ),
        ("disown_reveal", vec![("token", "not-a-token")]),
        ("send_disown_code", vec![("token", fake.as_str())]),
    ] {
        let (status, body) = call(&app, &client, name, &args).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{name}: {body}");
        assert!(body.contains("not valid"), "{name}: {body}");
    }
    let page = app.get(&format!("/reveal/{fake}")).await;
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("This link is not valid")
    );
    app.stop().await.unwrap();
}

async fn sealed_secrets_where_the_org_returns_none(kind: Db) {
    let Some(r) = ready_grant_in(kind, false).await else {
        return;
    };
    // Provisioning chose the secret, deployed it and sealed it (the proof used it).
    let sealed: String =
        sqlx::query_scalar("SELECT sealed FROM sealed_secrets WHERE grant_id = $1")
            .bind(&r.grant_id)
            .fetch_one(r.app.db.pool())
            .await
            .expect("a sealed secret");
    assert!(sealed.starts_with("v1:"));
    let contractor = browser();
    let code = code_for(&r, &contractor).await;
    let (status, body) = reveal(&r, &contractor, &r.reveal_path, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let old: Value = serde_json::from_str(&body).unwrap();
    let secret = old["consumer_secret"].as_str().unwrap().to_string();
    assert!(!sealed.contains(&secret), "sealed, not stored in the clear");
    assert_eq!(token_exchange(&old).await, StatusCode::OK);
    // The reveal destroyed the ciphertext.
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sealed_secrets")
        .fetch_one(r.app.db.pool())
        .await
        .unwrap();
    assert_eq!(left, 0);
    assert_secret_not_stored(&r.app, &secret).await;
    let details: String = sqlx::query_scalar(
        "SELECT details FROM audit_log WHERE action = 'secret.revealed' AND target_id = $1",
    )
    .bind(&r.grant_id)
    .fetch_one(r.app.db.pool())
    .await
    .unwrap();
    assert!(details.contains("\"source\":\"sealed\""), "{details}");

    // "I did not do this" rotates by deploying a new chosen secret: the old pair is refused.
    let (status, body) = disown(&r, &contractor, &r.reveal_path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_ne!(token_exchange(&old).await, StatusCode::OK);
    // Nothing can reveal the new one until a new link is sent; once the grace period is
    // over the sweeper destroys it (the grace is passed here by ageing the row).
    sqlx::query("UPDATE sealed_secrets SET created_at = created_at - 3600000")
        .execute(r.app.db.pool())
        .await
        .unwrap();
    assert_eq!(
        services::reveal::destroy_uncollectable(&r.app.db, &services::clock::SystemClock)
            .await
            .unwrap(),
        1
    );
    // A new link rotates again (sealed again) and hands over a pair that works.
    let (status, body) = call(
        &r.app,
        &r.approver,
        "reissue_reveal_link",
        &[("request_id", &r.contractor.request_id)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        services::reveal::destroy_uncollectable(&r.app.db, &services::clock::SystemClock)
            .await
            .unwrap(),
        0,
        "an open link keeps it"
    );
    let mail = mail_to(&r.app, &r.contractor.email, "Your API credential")
        .await
        .unwrap();
    let r2 = Ready {
        reveal_path: link_path(&mail, "/reveal/").unwrap(),
        ..r
    };
    let code = code_for(&r2, &contractor).await;
    let (status, body) = reveal(&r2, &contractor, &r2.reveal_path, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let new: Value = serde_json::from_str(&body).unwrap();
    assert_ne!(new["consumer_secret"], old["consumer_secret"]);
    assert_eq!(token_exchange(&new).await, StatusCode::OK);
    r2.app.stop().await.unwrap();
}

both_databases!(the_credential_is_revealed_once);
both_databases!(sealed_secrets_where_the_org_returns_none);
both_databases!(wrong_codes_lock_the_link);
both_databases!(an_expired_link_reveals_nothing_and_a_new_one_rotates);
both_databases!(i_did_not_do_this_rotates_the_secret);
both_databases!(i_did_not_do_this_needs_a_fresh_code);
both_databases!(i_did_not_do_this_only_on_the_newest_link_in_time);
both_databases!(bad_links_are_clear_refusals);
both_databases!(link_holders_see_no_salesforce_error_text);
