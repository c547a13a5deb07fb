//! After a whole hand-over — provisioned, link, code, reveal, a reload, "I did not do
//! this" — the revealed secret appears nowhere it could stay: not in the portal's logs (the
//! real binary, logging at debug), not in the database file (SQLite, with its write-ahead
//! log) or a `pg_dump` of the database (PostgreSQL), not in the audit log. The test reads
//! the secret from the reveal's own response, then searches for it.

use crate::common;

use std::time::Duration;

use common::binary::{PortalProcess, approve_grants, case_scope, open_database, wait_for};
use common::sandbox::StandaloneOrg;
use common::{Db, PgDatabase, postgres_available};
use serde_json::Value;

async fn the_secret_is_not_kept(kind: Db) {
    if kind == Db::Postgres && !postgres_available("the_secret_is_not_kept::postgres").await {
        return;
    }
    let org = StandaloneOrg::start();
    let dir = tempfile::tempdir().unwrap();
    let pg = match kind {
        Db::Postgres => Some(PgDatabase::create().await),
        Db::Sqlite => None,
    };
    let url = match &pg {
        Some(pg) => pg.url.clone(),
        None => format!("sqlite://{}/portcullis.db?mode=rwc", dir.path().display()),
    };
    let db = open_database(&url).await;
    let grants = approve_grants(
        &db,
        &org,
        &["Leak Check Ltd".to_string()],
        &case_scope(vec![]),
        "",
    )
    .await;
    let log = dir.path().join("portal.log");
    let portal = PortalProcess::start_logged(&org, &url, dir.path(), 1, "debug", &log);
    let grant = grants[0].clone();
    wait_for(Duration::from_secs(90), "the grant to be ready", || {
        let (db, grant) = (db.clone(), grant.clone());
        async move {
            sqlx::query_scalar::<_, String>("SELECT state FROM grants WHERE id = $1")
                .bind(&grant)
                .fetch_one(db.pool())
                .await
                .is_ok_and(|s| s == "ready")
        }
    })
    .await;

    let newest_mail = |subject: &'static str| {
        let db = db.clone();
        async move {
            sqlx::query_scalar::<_, String>(
                "SELECT body FROM mail_outbox WHERE recipient = 'ops0@vendor.example' AND subject LIKE $1 ORDER BY created_at DESC",
            )
            .bind(format!("%{subject}%"))
            .fetch_all(db.pool())
            .await
            .unwrap()
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no mail '{subject}'"))
        }
    };
    let link_mail = newest_mail("Your API credential").await;
    let start = link_mail.find("/reveal/").expect("a reveal link");
    let token: String = link_mail[start + "/reveal/".len()..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();

    let browser = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let post = |name: &'static str, args: Vec<(&'static str, String)>| {
        let (browser, base) = (browser.clone(), portal.url.clone());
        async move {
            let response = browser
                .post(format!("{base}/api/{name}"))
                .header("origin", base.as_str())
                .form(&args)
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body = response.text().await.unwrap();
            assert!(status.is_success(), "{name}: {status} {body}");
            body
        }
    };
    let page = |path: String| {
        let (browser, base) = (browser.clone(), portal.url.clone());
        async move {
            browser
                .get(format!("{base}{path}"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    page(format!("/reveal/{token}")).await;
    post("send_reveal_code", vec![("token", token.clone())]).await;
    let code_mail = newest_mail("Your code").await;
    let code: String = code_mail
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .expect("a code")
        .to_string();
    let body = post("reveal_now", vec![("token", token.clone()), ("code", code)]).await;
    let credential: Value = serde_json::from_str(&body).unwrap();
    let secret = credential["consumer_secret"].as_str().unwrap().to_string();
    assert!(secret.len() >= 32);
    // The credential is real: the org hands out a token for it.
    let exchange = org
        .http()
        .post(credential["token_url"].as_str().unwrap())
        .basic_auth(credential["consumer_key"].as_str().unwrap(), Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert!(
        exchange.status().is_success(),
        "{:?}",
        exchange.text().await
    );
    let again = page(format!("/reveal/{token}")).await;
    assert!(again.contains("Already revealed"));
    post("send_disown_code", vec![("token", token.clone())]).await;
    let report_mail = newest_mail("Your code to report").await;
    let report_code: String = report_mail
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .expect("a report code")
        .to_string();
    post(
        "disown_reveal",
        vec![("token", token.clone()), ("code", report_code)],
    )
    .await;
    portal.stop();

    let contains = |haystack: &[u8]| {
        haystack
            .windows(secret.len())
            .any(|w| w == secret.as_bytes())
    };
    let logged = std::fs::read(&log).expect("the log");
    assert!(
        logged.len() > 1000,
        "the portal logged at debug ({} bytes)",
        logged.len()
    );
    assert!(!contains(&logged), "the secret is in the portal's log");
    let audit: Vec<String> = sqlx::query_scalar(
        "SELECT actor || actor_ip || user_agent || action || target_id || details FROM audit_log",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    assert!(audit.len() > 10);
    assert!(
        audit.iter().all(|e| !e.contains(&secret)),
        "the secret is in the audit log"
    );
    assert!(audit.iter().any(|e| e.contains("secret.revealed")));
    match &pg {
        Some(pg) => {
            let dump = std::process::Command::new("pg_dump")
                .arg("--data-only")
                .arg(&pg.url)
                .output()
                .expect("pg_dump runs");
            assert!(
                dump.status.success(),
                "{}",
                String::from_utf8_lossy(&dump.stderr)
            );
            assert!(dump.stdout.len() > 1000, "a real dump");
            assert!(
                !contains(&dump.stdout),
                "the secret is in the database dump"
            );
        }
        None => {
            db.close().await;
            for name in ["portcullis.db", "portcullis.db-wal"] {
                if let Ok(bytes) = std::fs::read(dir.path().join(name)) {
                    assert!(!contains(&bytes), "the secret is in {name}");
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secret_is_not_kept_sqlite() {
    the_secret_is_not_kept(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secret_is_not_kept_postgres() {
    the_secret_is_not_kept(Db::Postgres).await;
}
