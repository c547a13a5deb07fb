//! The `make run` default: the portal with its built-in sandbox org, which serves HTTPS with
//! its certificate in DATA_DIR, so Salesforce client libraries work against it unmodified
//! once told to trust that file (simple-salesforce from PyPI, jsforce from npm).

use crate::common;

use std::process::Command;

use common::{Db, TestApp};
use serde_json::Value;

fn script(name: &str) -> String {
    format!("{}/tests/scripts/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The embedded org's URL (https), its CA file, and the portal app's client id and secret.
async fn embedded(app: &TestApp) -> (String, std::path::PathBuf, String, String) {
    let base = app.sandbox_url.clone().expect("the embedded sandbox org");
    assert!(
        base.starts_with("https://"),
        "the embedded org speaks HTTPS: {base}"
    );
    let ca = app.dir.path().join("sandbox-org").join("cert.pem");
    assert!(
        ca.exists(),
        "its certificate is in DATA_DIR: {}",
        ca.display()
    );
    // Trusting exactly that file is enough (no certificate checks turned off).
    let pem = std::fs::read(&ca).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .build()
        .unwrap();
    let credentials: Value = http
        .get(format!("{base}/__sandbox/credentials"))
        .send()
        .await
        .expect("the embedded org answers over HTTPS with the CA in DATA_DIR")
        .json()
        .await
        .unwrap();
    let text = |k: &str| credentials[k].as_str().unwrap().to_string();
    (base, ca, text("portalClientId"), text("portalClientSecret"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_salesforce_works_against_the_embedded_sandbox_org() {
    let app = TestApp::spawn(Db::Sqlite).await.unwrap();
    let (base, ca, id, secret) = embedded(&app).await;
    let output = Command::new("python3")
        .arg(script("simple_salesforce_check.py"))
        .args([&base, &id, &secret])
        .arg(&ca)
        .env("REQUESTS_CA_BUNDLE", &ca)
        .output()
        .expect("run python3 (simple-salesforce is installed by scripts/setup.sh test)");
    assert!(
        output.status.success(),
        "simple-salesforce failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value =
        serde_json::from_str(String::from_utf8_lossy(&output.stdout).trim()).unwrap();
    assert_eq!(result["describeHasSubject"], true, "{result}");
    assert_eq!(result["hasNextRecordsUrl"], true, "{result}");
    assert_eq!(result["fetched"], result["totalSize"], "{result}");
    assert_eq!(result["createdInQuery"], true, "{result}");
    assert_eq!(result["rereadSubject"], "updated by simple-salesforce");
    assert_eq!(result["deleted"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsforce_works_against_the_embedded_sandbox_org() {
    let app = TestApp::spawn(Db::Sqlite).await.unwrap();
    let (base, ca, id, secret) = embedded(&app).await;
    let modules = format!("{}/../end2end/node_modules", env!("CARGO_MANIFEST_DIR"));
    let output = Command::new("node")
        .arg(script("jsforce_check.cjs"))
        .args([&base, &id, &secret])
        .env("NODE_PATH", &modules)
        .env("NODE_EXTRA_CA_CERTS", &ca)
        .output()
        .expect(
            "run node (jsforce is in end2end's package.json, installed by scripts/setup.sh test)",
        );
    assert!(
        output.status.success(),
        "jsforce failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value =
        serde_json::from_str(String::from_utf8_lossy(&output.stdout).trim()).unwrap();
    assert_eq!(result["describeHasSubject"], true, "{result}");
    assert_eq!(result["created"], true, "{result}");
    assert_eq!(result["rereadStatus"], "Working", "{result}");
    assert_eq!(result["rereadSubject"], "updated by jsforce");
    assert!(
        result["totalSize"].as_u64().unwrap() > 200,
        "paged past one batch: {result}"
    );
    assert_eq!(
        result["fetched"], result["totalSize"],
        "autoFetch followed nextRecordsUrl: {result}"
    );
    assert_eq!(result["createdInQuery"], true);
    assert_eq!(result["deleted"], true);
}
