//! Bad input of every kind gets a Salesforce-shaped error (a JSON array of errorCode and
//! message, or an OAuth error object), never a 500, a panic or a dropped connection.

use crate::common;

use common::{Org, error_code, urlencode};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

struct Case {
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
}

fn case(
    method: Method,
    path: &str,
    content_type: Option<&'static str>,
    body: &[u8],
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        method,
        path: path.to_string(),
        content_type,
        body: body.to_vec(),
        status,
        code,
    }
}

fn flip_case(id: &str) -> String {
    let mut chars: Vec<char> = id.chars().collect();
    let i = chars
        .iter()
        .position(|c| c.is_ascii_alphabetic())
        .unwrap_or(3)
        .max(3);
    let i = (i..15)
        .find(|&i| chars[i].is_ascii_alphabetic())
        .expect("a letter in the id body");
    chars[i] = if chars[i].is_ascii_uppercase() {
        chars[i].to_ascii_lowercase()
    } else {
        chars[i].to_ascii_uppercase()
    };
    chars.into_iter().collect()
}

#[tokio::test]
async fn bad_rest_requests_get_salesforce_shaped_errors() {
    let org = Org::start().await;
    let case_id = org.id_of("SELECT Id FROM Case LIMIT 1").await;
    let user_id = org.id_of("SELECT Id FROM User LIMIT 1").await;
    let json = Some("application/json");
    let v = "/services/data/v66.0";
    let big = vec![b'x'; 11 * 1024 * 1024];
    let cases = vec![
        case(Method::POST, &format!("{v}/sobjects/Case"), json, b"{\"Subject\": ", 400, "JSON_PARSER_ERROR"),
        case(Method::POST, &format!("{v}/sobjects/Case"), json, b"[1,2]", 400, "JSON_PARSER_ERROR"),
        case(Method::POST, &format!("{v}/sobjects/Case"), json, b"", 400, "JSON_PARSER_ERROR"),
        case(Method::POST, &format!("{v}/sobjects/Case"), Some("text/plain"), b"Subject=x", 415, "UNSUPPORTED_MEDIA_TYPE"),
        case(Method::POST, &format!("{v}/sobjects/Case"), Some("application/xml"), b"<Case/>", 415, "UNSUPPORTED_MEDIA_TYPE"),
        case(Method::POST, &format!("{v}/sobjects/Case"), json, b"{\"NoSuchField__c\": 1}", 400, "INVALID_FIELD"),
        case(Method::POST, &format!("{v}/sobjects/Case"), json, b"{\"Id\": \"5005g0000000001AAA\"}", 400, "INVALID_FIELD"),
        case(Method::POST, &format!("{v}/sobjects/Case"), json, b"{\"CaseNumber\": \"1\"}", 400, "INVALID_FIELD_FOR_INSERT_UPDATE"),
        case(Method::POST, &format!("{v}/sobjects/Case"), json, b"{\"Status\": \"Exploded\"}", 400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"),
        case(Method::POST, &format!("{v}/sobjects/Case"), json, b"{\"IsEscalated\": \"maybe\"}", 400, "JSON_PARSER_ERROR"),
        case(Method::POST, &format!("{v}/sobjects/Case"), json, b"{\"AccountId\": \"nope\"}", 400, "MALFORMED_ID"),
        case(Method::POST, &format!("{v}/sobjects/Case"), json, format!("{{\"AccountId\": \"{user_id}\"}}").as_bytes(), 400, "FIELD_INTEGRITY_EXCEPTION"),
        case(Method::POST, &format!("{v}/sobjects/Case"), json, b"{\"AccountId\": \"0015g0000000999AAA\"}", 400, "INVALID_CROSS_REFERENCE_KEY"),
        case(Method::POST, &format!("{v}/sobjects/Case"), json, format!("{{\"Subject\": \"{}\"}}", "s".repeat(300)).as_bytes(), 400, "STRING_TOO_LONG"),
        case(Method::POST, &format!("{v}/sobjects/NoSuchObject"), json, b"{}", 404, "NOT_FOUND"),
        case(Method::POST, &format!("{v}/sobjects/Organization"), json, b"{\"Name\": \"x\"}", 400, "INVALID_TYPE_FOR_OPERATION"),
        case(Method::POST, &format!("{v}/sobjects/User"), json, b"{\"LastName\": \"x\"}", 400, "REQUIRED_FIELD_MISSING"),
        case(Method::POST, &format!("{v}/sobjects/Case"), json, &big, 413, "REQUEST_ENTITY_TOO_LARGE"),
        case(Method::GET, &format!("{v}/sobjects/Case/notanid"), None, b"", 400, "MALFORMED_ID"),
        case(Method::GET, &format!("{v}/sobjects/Case/{user_id}"), None, b"", 400, "MALFORMED_ID"),
        // The case of the id's body changed: its checksum no longer matches.
        case(Method::GET, &format!("{v}/sobjects/Case/{}", flip_case(&case_id)), None, b"", 400, "MALFORMED_ID"),
        case(Method::GET, &format!("{v}/sobjects/Case/{case_id}?fields=Subject,Nope"), None, b"", 400, "INVALID_FIELD"),
        case(Method::PATCH, &format!("{v}/sobjects/Case/{case_id}"), json, b"{\"Subject\": 12, \"Bogus\": true}", 400, "INVALID_FIELD"),
        case(Method::PUT, &format!("{v}/sobjects/Case/{case_id}"), json, b"{}", 405, "METHOD_NOT_ALLOWED"),
        case(Method::GET, &format!("{v}/sobjects/NoSuchObject/describe"), None, b"", 404, "NOT_FOUND"),
        case(Method::GET, &format!("{v}/query?q={}", urlencode("SELECT Id FORM Case")), None, b"", 400, "MALFORMED_QUERY"),
        case(Method::GET, &format!("{v}/query?q={}", urlencode("SELECT Id FROM Nope")), None, b"", 400, "INVALID_TYPE"),
        case(Method::GET, &format!("{v}/query?q={}", urlencode("SELECT Nope FROM Case")), None, b"", 400, "INVALID_FIELD"),
        case(Method::GET, &format!("{v}/query?q={}", urlencode("SELECT Id FROM Case WHERE IsClosed = 'yes'")), None, b"", 400, "INVALID_QUERY_FILTER_OPERATOR"),
        case(Method::GET, &format!("{v}/query?q={}", urlencode("SELECT Id FROM Case WHERE Id = 'abc'")), None, b"", 400, "INVALID_QUERY_FILTER_OPERATOR"),
        case(Method::GET, &format!("{v}/query?q={}", urlencode("SELECT Id FROM Case WHERE Subject = 'unterminated")), None, b"", 400, "MALFORMED_QUERY"),
        case(Method::GET, &format!("{v}/query"), None, b"", 400, "MALFORMED_QUERY"),
        case(Method::GET, &format!("{v}/query/01g5g0000000001-2000"), None, b"", 400, "INVALID_QUERY_LOCATOR"),
        case(Method::POST, &format!("{v}/composite"), json, b"{\"compositeRequest\": []}", 400, "INVALID_BATCH_REQUEST"),
        case(Method::POST, &format!("{v}/composite"), json, b"{\"compositeRequest\": [{\"method\": \"GET\", \"url\": \"/x\", \"referenceId\": \"a\"}]}", 400, "INVALID_BATCH_REQUEST"),
        case(Method::POST, &format!("{v}/composite"), json, b"{\"compositeRequest\": [{\"method\": \"get\", \"url\": \"/services/data/v66.0/limits\", \"referenceId\": \"a\"}]}", 400, "INVALID_BATCH_REQUEST"),
        case(Method::POST, &format!("{v}/composite/sobjects"), json, b"{\"records\": [{\"Subject\": \"x\"}]}", 400, "INVALID_BATCH_REQUEST"),
        case(Method::POST, &format!("{v}/metadata/deployRequest"), json, b"{}", 415, "UNSUPPORTED_MEDIA_TYPE"),
        case(Method::POST, &format!("{v}/metadata/deployRequest"), Some("multipart/form-data; boundary=B"), b"--B\r\nContent-Disposition: form-data; name=\"json\"\r\n\r\n{}", 400, "INVALID_MULTIPART_REQUEST"),
        case(Method::POST, &format!("{v}/metadata/deployRequest"), Some("multipart/form-data"), b"whatever", 400, "INVALID_MULTIPART_REQUEST"),
        case(Method::POST, &format!("{v}/metadata/deployRequest"), Some("multipart/form-data; boundary=B"), b"--B\r\nContent-Disposition: form-data; name=\"json\"\r\nContent-Type: application/json\r\n\r\n{\"deployOptions\":{}}\r\n--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d.zip\"\r\nContent-Type: application/zip\r\n\r\nnot a zip\r\n--B--\r\n", 400, "INVALID_MULTIPART_REQUEST"),
        case(Method::GET, "/services/data/v25.0/sobjects", None, b"", 410, "API_VERSION_RETIRED"),
        case(Method::GET, "/services/data/v99.0/sobjects", None, b"", 404, "NOT_FOUND"),
        case(Method::GET, "/services/data/banana/sobjects", None, b"", 404, "NOT_FOUND"),
        case(Method::GET, &format!("{v}/no/such/resource"), None, b"", 404, "NOT_FOUND"),
        case(Method::GET, "/no/such/path", None, b"", 404, "NOT_FOUND"),
    ];
    for c in cases {
        let mut request = org
            .http
            .request(c.method.clone(), org.url(&c.path))
            .bearer_auth(&org.admin_token);
        if let Some(ct) = c.content_type {
            request = request.header("content-type", ct);
        }
        let response = request.body(c.body.clone()).send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let body: Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{} {}: not JSON: {text:.200}", c.method, c.path));
        assert_eq!(
            status.as_u16(),
            c.status,
            "{} {}: {body}",
            c.method,
            &c.path[..c.path.len().min(120)]
        );
        assert_eq!(
            error_code(&body),
            c.code,
            "{} {}",
            c.method,
            &c.path[..c.path.len().min(120)]
        );
    }
}

#[tokio::test]
async fn requests_without_a_valid_token_are_refused() {
    let org = Org::start().await;
    for token in ["", "garbage", "00D5g0000000001!AQnope"] {
        let (status, body) = org
            .call(token, Method::GET, "/services/data/v66.0/sobjects", None)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(error_code(&body), "INVALID_SESSION_ID");
    }
    let response = org
        .http
        .get(org.url("/services/data/v66.0/limits"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bad_oauth_requests_get_oauth_errors() {
    let org = Org::start().await;
    let (id, secret) = org.portal_client();
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![], "invalid_request"),
        (vec![("grant_type", "magic")], "unsupported_grant_type"),
        (
            vec![("grant_type", "client_credentials")],
            "invalid_client_id",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "nope"),
                ("client_secret", "x"),
            ],
            "invalid_client_id",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", "wrong"),
            ],
            "invalid_client",
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("client_id", &id),
                ("client_secret", &secret),
                ("code", "nope"),
                ("redirect_uri", "http://x"),
            ],
            "invalid_grant",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("client_id", &id),
                ("client_secret", &secret),
                ("refresh_token", "nope"),
            ],
            "invalid_grant",
        ),
        (
            vec![
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", "a.b.c"),
            ],
            "invalid_grant",
        ),
        (
            vec![
                ("grant_type", "password"),
                ("client_id", &id),
                ("client_secret", &secret),
                ("username", "admin@acme-sandbox.example"),
                ("password", "wrong"),
            ],
            "invalid_grant",
        ),
    ];
    for (form, expected) in cases {
        let response = org
            .http
            .post(org.url("/services/oauth2/token"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{form:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], expected, "{form:?}: {body}");
        assert!(body["error_description"].is_string());
    }
    // Not form-encoded at all.
    let response = org
        .http
        .post(org.url("/services/oauth2/token"))
        .header("content-type", "application/json")
        .body("{\"grant_type\":\"client_credentials\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    // Revoking garbage.
    let response = org
        .http
        .post(org.url("/services/oauth2/revoke"))
        .form(&[("token", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn random_garbage_never_produces_a_server_error() {
    use rand::{Rng, SeedableRng};
    let org = Org::start().await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(20261122);
    let pieces = [
        "sobjects",
        "Case",
        "User",
        "describe",
        "query",
        "composite",
        "limits",
        "metadata",
        "deployRequest",
        "apps",
        "oauth",
        "credentials",
        "staged",
        "5005g0000000001AAA",
        "%00",
        "..",
        "%2F",
        "ünïcode",
        "q=SELECT",
        "LogFile",
        "EventLogFile",
        "usage",
        "tokens",
        "sobjects/Case/Id/x",
    ];
    let methods = [
        Method::GET,
        Method::POST,
        Method::PATCH,
        Method::DELETE,
        Method::PUT,
    ];
    let bodies: [&[u8]; 6] = [b"", b"{}", b"[]", b"{\"a\":", b"null", b"\xff\xfe\x00"];
    for _ in 0..400 {
        let depth = rng.random_range(0..5);
        let path: Vec<&str> = (0..depth)
            .map(|_| pieces[rng.random_range(0..pieces.len())])
            .collect();
        let url = format!("/services/data/v66.0/{}", path.join("/"));
        let method = methods[rng.random_range(0..methods.len())].clone();
        let body = bodies[rng.random_range(0..bodies.len())];
        let response = org
            .http
            .request(method.clone(), org.url(&url))
            .bearer_auth(&org.admin_token)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: connection failed: {e}"));
        assert!(
            response.status().as_u16() < 500,
            "{method} {url} -> {}",
            response.status()
        );
    }
    // Every kind of garbage query as well.
    for query in [
        "",
        " ",
        "SELECT",
        "SELECT FROM",
        "SELECT Id FROM Case WHERE",
        "SELECT Id FROM Case WHERE (",
        "'''",
        "SELECT Id FROM Case LIMIT -1",
        "SELECT COUNT() FROM Case GROUP BY Status",
    ] {
        let (status, body) = org.query(&org.admin_token, query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(error_code(&body), "MALFORMED_QUERY", "{query}: {body}");
    }
    let _ = json!(null);
}
