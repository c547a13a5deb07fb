//! The sandbox org and the Salesforce client together: the seed article's curl + jq
//! sequence over HTTPS, an unmodified third-party client library (simple-salesforce), the
//! client under injected faults, and typed errors for the daily API limit.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::sandbox::{StandaloneOrg, first_cases, provision_contractor};
use salesforce::{Client, ClientConfig, Cond, PortalAuth, RetryPolicy, SecretString, Soql, Url};
use serde_json::{Value, json};

fn script(name: &str) -> String {
    format!("{}/tests/scripts/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Splits the script's output into its `== name` sections.
fn sections(output: &str) -> std::collections::HashMap<String, Vec<String>> {
    let mut out = std::collections::HashMap::new();
    let mut current = String::new();
    for line in output.lines() {
        if let Some(name) = line.strip_prefix("== ") {
            current = name.to_string();
            out.entry(current.clone()).or_insert_with(Vec::new);
        } else if !current.is_empty() {
            out.get_mut(&current).unwrap().push(line.to_string());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_article_commands_run_against_a_standalone_sandbox_org() {
    let org = StandaloneOrg::start();
    assert!(
        org.base_url.starts_with("https://"),
        "standalone means HTTPS: {}",
        org.base_url
    );
    let client = org.admin_client();
    let cases = first_cases(&client, 3).await;
    let contractor = provision_contractor(&client, "Kinetic", &cases).await;

    let output = Command::new("sh")
        .arg(script("seed000.sh"))
        .args([
            &org.base_url,
            &contractor.consumer_key,
            &contractor.consumer_secret,
        ])
        .arg(&org.ca_file)
        .output()
        .expect("run seed000.sh (needs curl and jq)");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "seed000.sh failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let s = sections(&stdout);
    assert_eq!(
        s["token"],
        vec!["00D".to_string()],
        "a token was issued: {stdout}"
    );

    let objects: Vec<String> = s["sobjects"]
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(objects.contains(&"Case".to_string()), "{objects:?}");
    assert!(
        !objects.contains(&"Account".to_string()),
        "only granted objects are listed: {objects:?}"
    );

    let mut fields: Vec<String> = s["describe"]
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    fields.sort();
    let mut expected: Vec<String> = [
        "Id",
        "OwnerId",
        "IsDeleted",
        "CreatedDate",
        "CreatedById",
        "LastModifiedDate",
        "LastModifiedById",
        "SystemModstamp",
        "Subject",
        "Description",
        "Priority",
        "Status",
    ]
    .iter()
    .map(|f| f.to_string())
    .collect();
    expected.sort();
    assert_eq!(fields, expected, "describe lists only the permitted fields");

    let records: Vec<Value> = s["query"]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut seen: Vec<&str> = records.iter().map(|r| r["Id"].as_str().unwrap()).collect();
    seen.sort();
    let mut granted: Vec<&str> = cases.iter().map(|c| c.as_str()).collect();
    granted.sort();
    assert_eq!(
        seen, granted,
        "the query returns exactly the 3 shared cases"
    );

    assert_eq!(s["patch status"], vec!["204".to_string()]);
    let reread: Value = serde_json::from_str(&s["reread"][0]).unwrap();
    assert_eq!(reread["Status"], "In Progress");
    assert_eq!(
        s["query origin"],
        vec![r#"{"errorCode":"INVALID_FIELD"}"#.to_string()]
    );
    assert_eq!(
        s["patch subject"],
        vec![r#"{"errorCode":"INVALID_FIELD_FOR_INSERT_UPDATE"}"#.to_string()]
    );

    // Seen from the admin side, the contractor changed Status and nothing else.
    let case: Value = client
        .get(
            "Case",
            &salesforce::SalesforceId::parse(reread["Id"].as_str().unwrap()).unwrap(),
            Some(&["Status", "Subject"]),
        )
        .await
        .unwrap();
    assert_eq!(case["Status"], "In Progress");
    assert_ne!(case["Subject"], "Changed by the contractor");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_salesforce_runs_unmodified_against_the_sandbox_org() {
    let org = StandaloneOrg::start();
    let output = Command::new("python3")
        .arg(script("simple_salesforce_check.py"))
        .args([&org.base_url, &org.client_id, &org.client_secret])
        .arg(&org.ca_file)
        // requests lets this variable override a session's own `verify`; it is also how a
        // user tells requests-based clients to trust the org's certificate.
        .env("REQUESTS_CA_BUNDLE", &org.ca_file)
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
    assert_eq!(result["describeHasSubject"], true);
    assert_eq!(result["firstPageDone"], false, "{result}");
    assert_eq!(result["hasNextRecordsUrl"], true);
    assert_eq!(result["firstPageSize"], 200);
    assert_eq!(
        result["totalSize"], 201,
        "200 seeded cases and the one it created"
    );
    assert_eq!(result["fetched"], 201, "query_all followed nextRecordsUrl");
    assert_eq!(result["distinct"], 201);
    assert_eq!(result["createdInQuery"], true);
    assert_eq!(result["rereadStatus"], "Working");
    assert_eq!(result["rereadSubject"], "updated by simple-salesforce");
    assert_eq!(result["deleted"], true);
    assert!(
        result["apiUsage"].as_str().unwrap().contains("15000"),
        "the limit header was parsed: {result}"
    );
}

/// An in-process sandbox org over HTTP, with a client acting as its provisioning user.
async fn in_process_org(faults: Vec<sandbox_org::FaultRule>) -> (sandbox_org::SandboxOrg, Client) {
    common::init_crypto();
    let org = sandbox_org::SandboxOrg::start(sandbox_org::SandboxConfig {
        faults,
        ..Default::default()
    })
    .await
    .unwrap();
    let credentials = org.credentials().clone();
    let mut config = ClientConfig::new(
        Url::parse(org.base_url()).unwrap(),
        PortalAuth::JwtBearer {
            client_id: credentials["portalClientId"].as_str().unwrap().to_string(),
            username: credentials["provisionerUsername"]
                .as_str()
                .unwrap()
                .to_string(),
            private_key_pem: SecretString::from(org.portal_private_key_pem().unwrap()),
            audience: org.base_url().to_string(),
        },
    );
    config.retry = RetryPolicy {
        max_attempts: 12,
        base_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(400),
    };
    config.request_timeout = Duration::from_secs(20);
    (org, Client::new(config).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_integration_users_survive_thirty_percent_injected_errors_and_one_second_delays() {
    let (org, client) = in_process_org(Vec::new()).await;
    // Enough licences for 20 users (the seeded org has 5, as a real one might).
    let http = reqwest::Client::new();
    let response = http
        .patch(format!("{}/__sandbox/settings", org.base_url()))
        .json(&json!({ "integrationLicenses": 25 }))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    // Authenticate before the faults start (token requests are faulted too, and retried).
    client.limits().await.unwrap();
    let rules = json!({ "rules": [{ "path": "/services/*", "errorRate": 0.3, "errorStatus": 503, "errorCode": "SERVER_UNAVAILABLE", "delayMs": 1000 }] });
    let response = http
        .put(format!("{}/__sandbox/faults", org.base_url()))
        .json(&rules)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());

    let started = Instant::now();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                provision_contractor(&client, &format!("Faulty{i:02}"), &[]).await
            })
        })
        .collect();
    for task in tasks {
        task.await
            .expect("every provisioning finishes despite the faults");
    }
    let elapsed = started.elapsed();

    http.delete(format!("{}/__sandbox/faults", org.base_url()))
        .send()
        .await
        .unwrap();
    let users = client
        .count(
            &Soql::count()
                .from("User")
                .filter(Cond::like_starts_with("Username", "faulty"))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let sets = client
        .count(
            &Soql::count()
                .from("PermissionSet")
                .filter(Cond::like_starts_with("Name", "Faulty"))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let assignments = client
        .count(
            &Soql::count()
                .from("PermissionSetAssignment")
                .filter(Cond::like_starts_with("PermissionSet.Name", "Faulty"))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    // Two permission sets each: the contractor's permissions, and the licence-less one
    // that pre-authorises the app (issue 14, item 3).
    assert_eq!(
        (users, sets, assignments),
        (20, 40, 40),
        "exactly 20 users and 2 × 20 sets and assignments, no duplicates"
    );
    let calls: Value = http
        .get(format!("{}/__sandbox/calls", org.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let injected = calls["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["effects"][0] == "injected fault")
        .count();
    assert!(
        injected > 20,
        "faults were really injected ({injected}); took {elapsed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_api_limit_surfaces_as_a_typed_error() {
    let (org, client) = in_process_org(Vec::new()).await;
    client.limits().await.unwrap();
    let info = client
        .last_limit_info()
        .expect("Sforce-Limit-Info is parsed");
    assert_eq!(info.max, 15_000);
    reqwest::Client::new()
        .patch(format!("{}/__sandbox/settings", org.base_url()))
        .json(&json!({ "dailyApiLimit": 2 }))
        .send()
        .await
        .unwrap();
    let _ = client.limits().await;
    let error = client.limits().await.expect_err("over the limit");
    assert!(
        matches!(error, salesforce::Error::RequestLimitExceeded { .. }),
        "{error:?}"
    );
    assert!(
        !error.is_transient() || matches!(error, salesforce::Error::RequestLimitExceeded { .. })
    );
}
