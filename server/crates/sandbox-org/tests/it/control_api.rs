//! The sandbox-only control API (`/__sandbox/*`) answers only requests meant for it: a page
//! on another site cannot drive it with a form POST (writes need a JSON body), and a
//! DNS-rebinding page cannot reach it under its own host name (the Host header must name
//! this machine or the org's own listen address).

use crate::common;

use common::Org;
use reqwest::StatusCode;

const FAULTS: &str = r#"{"rules":[{"path":"/services/*","errorRate":1}]}"#;

async fn faults_in_force(org: &Org) -> usize {
    let body: serde_json::Value = org
        .http
        .get(org.url("/__sandbox/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["rules"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn writes_need_a_json_body() {
    let org = Org::start().await;
    // What a cross-site HTML form can send: form-encoded or plain text, never JSON.
    for content_type in [
        Some("application/x-www-form-urlencoded"),
        Some("text/plain"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        for (method, path) in [
            (reqwest::Method::PUT, "/__sandbox/faults"),
            (reqwest::Method::POST, "/__sandbox/event-log-files"),
            (reqwest::Method::PATCH, "/__sandbox/settings"),
        ] {
            let mut request = org.http.request(method.clone(), org.url(path)).body(FAULTS);
            if let Some(content_type) = content_type {
                request = request.header(reqwest::header::CONTENT_TYPE, content_type);
            }
            let response = request.send().await.unwrap();
            assert_eq!(
                response.status(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{method} {path} as {content_type:?}"
            );
            let body = response.text().await.unwrap();
            assert!(body.contains("application/json"), "{body}");
        }
    }
    assert_eq!(faults_in_force(&org).await, 0, "nothing was changed");
    // JSON is accepted, as before.
    let response = org
        .http
        .put(org.url("/__sandbox/faults"))
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/json; charset=utf-8",
        )
        .body(FAULTS)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(faults_in_force(&org).await, 1);
}

#[tokio::test]
async fn other_host_names_are_refused() {
    let org = Org::start().await;
    let port = org.org.local_addr().port();
    for host in [
        format!("evil.example:{port}"),
        "evil.example".to_string(),
        format!("127.0.0.1.evil.example:{port}"),
        format!("localhost.evil.example:{port}"),
    ] {
        for (method, path) in [
            (reqwest::Method::GET, "/__sandbox/credentials"),
            (reqwest::Method::GET, "/__sandbox/calls"),
            (reqwest::Method::PUT, "/__sandbox/faults"),
            (reqwest::Method::DELETE, "/__sandbox/faults"),
        ] {
            let response = org
                .http
                .request(method.clone(), org.url(path))
                .header(reqwest::header::HOST, host.as_str())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(FAULTS)
                .send()
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                StatusCode::FORBIDDEN,
                "{method} {path} with Host: {host}"
            );
            let body = response.text().await.unwrap();
            assert!(
                !body.contains("portalClientSecret"),
                "{path} with Host {host} leaked: {body}"
            );
        }
    }
    assert_eq!(faults_in_force(&org).await, 0);
    // This machine's names and the org's own address are fine.
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "localhost".to_string(),
    ] {
        let response = org
            .http
            .get(org.url("/__sandbox/credentials"))
            .header(reqwest::header::HOST, host.as_str())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "Host: {host}");
    }
    // The Salesforce API itself is not the control API: clients reach a real org under any
    // of its names, and so they do here.
    let response = org
        .http
        .get(org.url("/services/data"))
        .header(reqwest::header::HOST, format!("acme.my.example:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// Over HTTP/2 the host travels as `:authority`, not `Host`: this machine's name is still
/// accepted (clients of the standalone org speak HTTP/2 over TLS).
#[tokio::test]
async fn http2_requests_name_their_host_in_the_authority() {
    let org = Org::start().await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = h2
        .get(org.url("/__sandbox/credentials"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), StatusCode::OK);
    let port = org.org.local_addr().port();
    let response = h2
        .get(format!("http://localhost:{port}/__sandbox/calls"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
