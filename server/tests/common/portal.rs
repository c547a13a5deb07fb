//! Driving the portal as its users do, over HTTP: people signing in through the sandbox
//! org's login page, contractors submitting and confirming requests, server functions
//! called by name, and a snapshot of the database to prove a refused call changed nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use services::roles::RoleMapping;
use sqlx::Row;

use super::{Db, TestApp};

/// The sandbox org's seeded people (see the sandbox org's seed).
pub const ALEX: (&str, &str) = ("admin@acme-sandbox.example", "Admin-Sandbox-1");
pub const BLAKE: (&str, &str) = ("approver@acme-sandbox.example", "Approver-Sandbox-2");
pub const SAM: (&str, &str) = ("security@acme-sandbox.example", "Security-Sandbox-3");
pub const NORA: (&str, &str) = ("nora@acme-sandbox.example", "Norole-Sandbox-4");

/// Who calls: the matrix's columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Persona {
    Anonymous,
    /// A contractor holding the links from their mail (and nothing else).
    LinkHolder,
    Approver,
    SecurityReviewer,
    Owner,
    /// Signed in with Salesforce, but no Portcullis role.
    NoRole,
}

impl Persona {
    pub const ALL: [Persona; 6] = [
        Persona::Anonymous,
        Persona::LinkHolder,
        Persona::Approver,
        Persona::SecurityReviewer,
        Persona::Owner,
        Persona::NoRole,
    ];

    pub fn signed_in(self) -> bool {
        !matches!(self, Persona::Anonymous | Persona::LinkHolder)
    }

    pub fn credentials(self) -> Option<(&'static str, &'static str)> {
        match self {
            Persona::Approver => Some(BLAKE),
            Persona::SecurityReviewer => Some(SAM),
            Persona::Owner => Some(ALEX),
            Persona::NoRole => Some(NORA),
            Persona::Anonymous | Persona::LinkHolder => None,
        }
    }
}

/// One role per person, by username only, so each persona has exactly its role (in the
/// default configuration Alex holds both the approver and the owner permission set).
pub fn one_role_each() -> RoleMapping {
    RoleMapping {
        approvers: vec![BLAKE.0.to_string()],
        security_reviewers: vec![SAM.0.to_string()],
        owners: vec![ALEX.0.to_string()],
        approver_permission_set: None,
        security_reviewer_permission_set: None,
        owner_permission_set: None,
    }
}

/// The portal with [`one_role_each`]; `None` when PostgreSQL is unavailable outside CI.
pub async fn spawn_portal(kind: Db) -> Option<TestApp> {
    TestApp::spawn_with(kind, |config| config.roles = one_role_each()).await
}

/// A browser-like client of its own: cookies kept, redirects not followed; it trusts the
/// embedded sandbox orgs' CA, as a browser whose user accepted it.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(super::sandbox_ca())
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .user_agent("portcullis-tests")
        .build()
        .expect("HTTP client")
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no Location in a {} response", response.status()))
        .to_string()
}

/// The steps of one sign-in, for tests that tamper with them.
pub struct SignIn {
    /// The org's authorize URL the portal redirected to (with state and code_challenge).
    pub authorize_url: url::Url,
}

impl SignIn {
    /// `GET /auth/login`: the portal remembers state and verifier and sends us to the org.
    pub async fn start(app: &TestApp, client: &reqwest::Client) -> Self {
        let response = client
            .get(app.at("/auth/login?return_to=/admin"))
            .send()
            .await
            .expect("GET /auth/login");
        assert!(
            response.status().is_redirection(),
            "/auth/login answered {}",
            response.status()
        );
        let authorize_url = url::Url::parse(&location(&response)).expect("authorize URL");
        Self { authorize_url }
    }

    pub fn param(&self, name: &str) -> Option<String> {
        self.authorize_url
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// Submits the org's login form (its hidden fields are the authorize URL's parameters,
    /// as the page renders them), with `replace` overriding some. Returns the callback URL
    /// the org sends the browser back to.
    pub async fn log_in(
        &self,
        client: &reqwest::Client,
        (username, password): (&str, &str),
        replace: &[(&str, &str)],
    ) -> String {
        let mut form: Vec<(String, String)> = self
            .authorize_url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        for (key, value) in replace {
            form.retain(|(k, _)| k != key);
            form.push((key.to_string(), value.to_string()));
        }
        form.push(("username".into(), username.into()));
        form.push(("password".into(), password.into()));
        form.push(("action".into(), "login".into()));
        let mut post_to = self.authorize_url.clone();
        post_to.set_query(None);
        let response = client
            .post(post_to)
            .form(&form)
            .send()
            .await
            .expect("POST the org's login form");
        assert!(
            response.status().is_redirection(),
            "the org's login form answered {}: {}",
            response.status(),
            response.text().await.unwrap_or_default()
        );
        location(&response)
    }
}

/// Follows the org's redirect back to the portal; returns where the portal sends us next.
pub async fn finish(client: &reqwest::Client, callback_url: &str) -> String {
    let response = client
        .get(callback_url)
        .send()
        .await
        .expect("GET /auth/callback");
    assert!(
        response.status().is_redirection(),
        "/auth/callback answered {}",
        response.status()
    );
    location(&response)
}

/// Signs `client` in as `who`, through the sandbox org's login page.
pub async fn sign_in(app: &TestApp, client: &reqwest::Client, who: (&str, &str)) {
    let flow = SignIn::start(app, client).await;
    let callback = flow.log_in(client, who, &[]).await;
    let next = finish(client, &callback).await;
    assert_eq!(next, "/admin", "sign-in as {} did not complete", who.0);
}

/// Who the portal thinks `client` is: the `viewer` server function's answer.
pub async fn viewer(app: &TestApp, client: &reqwest::Client) -> Value {
    let (status, body) = call(app, client, "viewer", &[]).await;
    assert_eq!(status, StatusCode::OK, "viewer: {body}");
    serde_json::from_str(&body).expect("viewer JSON")
}

/// A client per persona; the signed-in ones have signed in.
pub async fn personas(app: &TestApp) -> BTreeMap<Persona, reqwest::Client> {
    let mut clients = BTreeMap::new();
    for persona in Persona::ALL {
        let client = browser();
        if let Some(who) = persona.credentials() {
            sign_in(app, &client, who).await;
        }
        clients.insert(persona, client);
    }
    clients
}

/// Calls the server function `name` as the browser does (form-encoded POST to
/// `/api/<name>`, same origin). Returns the status and the body.
pub async fn call(
    app: &TestApp,
    client: &reqwest::Client,
    name: &str,
    args: &[(&str, &str)],
) -> (StatusCode, String) {
    let response = client
        .post(app.at(&format!("/api/{name}")))
        .header(reqwest::header::ORIGIN, app.url.as_str())
        .form(args)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST /api/{name}: {e}"));
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

/// The decision form approving `request_id` as the review page posts it: Case read with
/// Subject only (Description removed), shared records, a budget, 30 days, `ip_ranges`.
pub fn approval_form(request_id: &str, ip_ranges: &str) -> Vec<(String, String)> {
    let end = (chrono::Utc::now() + chrono::Duration::days(30))
        .date_naive()
        .to_string();
    [
        ("id", request_id),
        ("action", "approve"),
        ("object_level[Case]", "read"),
        ("field_level[Case.Subject]", "read"),
        ("field_level[Case.Description]", "none"),
        ("visibility", "shared"),
        ("record_ids", ""),
        ("group", ""),
        ("calls_per_day", "500"),
        ("calls_per_7_days", "3000"),
        ("warn_percent", "80"),
        ("hard_action", "none"),
        ("end_date", end.as_str()),
        ("ip_ranges", ip_ranges),
        ("reason", "The sync needs case subjects only."),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// A valid request form, as the request page posts it: Case access with Subject readable.
pub fn request_form(company: &str, email: &str, key: &str) -> Vec<(String, String)> {
    let end = (chrono::Utc::now() + chrono::Duration::days(60))
        .date_naive()
        .to_string();
    [
        ("company", company),
        ("contact_name", "Kim Kinetic"),
        ("contact_email", email),
        (
            "justification",
            "Overnight sync of support cases into our own CRM.",
        ),
        ("object_level[Case]", "edit"),
        ("field_level[Case.Subject]", "read"),
        ("field_level[Case.Description]", "read"),
        ("visibility", "shared"),
        ("calls_per_day", "500"),
        ("ip_ranges", "203.0.113.0/24"),
        ("end_date", end.as_str()),
        ("submission_key", key),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

pub fn pairs(form: &[(String, String)]) -> Vec<(&str, &str)> {
    form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// What a contractor holds after submitting and confirming a request.
#[derive(Clone, Debug)]
pub struct Contractor {
    pub request_id: String,
    pub email: String,
    /// The capability path `/status/<token>` from the "received" mail.
    pub status_path: String,
    /// The capability path `/verify/<token>` from the confirmation mail.
    pub verify_path: String,
    pub code: String,
}

/// The newest mail to `to` whose subject contains `subject`, from the database's mail table
/// (the outbox, or the queue of an SMTP-configured portal).
pub async fn mail_to(app: &TestApp, to: &str, subject: &str) -> Option<String> {
    let rows = sqlx::query(
        "SELECT subject, body FROM mail_outbox WHERE recipient = $1 ORDER BY created_at DESC",
    )
    .bind(to)
    .fetch_all(app.db.pool())
    .await
    .expect("read mail_outbox");
    rows.iter().find_map(|row| {
        let s: String = row.try_get("subject").ok()?;
        s.contains(subject)
            .then(|| row.try_get::<String, _>("body").ok())
            .flatten()
    })
}

/// The path of the first link to `prefix` (e.g. `/status/`) in `body`.
pub fn link_path(body: &str, prefix: &str) -> Option<String> {
    let start = body.find(prefix)?;
    let rest = &body[start..];
    let end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
    Some(rest[..end].to_string())
}

pub fn six_digits(body: &str) -> Option<String> {
    body.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .map(str::to_string)
}

/// Submits a request with `company` from a fresh client; returns what its mail carries.
/// With `confirm`, also confirms the address with the mailed code.
pub async fn submit(app: &TestApp, company: &str, confirm: bool) -> Contractor {
    let client = browser();
    let email = format!(
        "{}@{}.example",
        uuid::Uuid::new_v4().simple(),
        company.to_ascii_lowercase().replace(' ', "-")
    );
    let key = uuid::Uuid::new_v4().to_string();
    let form = request_form(company, &email, &key);
    let (status, body) = call(app, &client, "submit_request", &pairs(&form)).await;
    assert_eq!(status, StatusCode::OK, "submit_request: {body}");
    let answer: Value = serde_json::from_str(&body).expect("submit_request JSON");
    let request_id = answer["Submitted"]["request_id"]
        .as_str()
        .unwrap_or_else(|| panic!("not submitted: {body}"))
        .to_string();
    let confirmation = mail_to(app, &email, "Confirm your email")
        .await
        .expect("a confirmation mail");
    let code = six_digits(&confirmation).expect("a code in the confirmation mail");
    let verify_path = link_path(&confirmation, "/verify/").expect("a link in the mail");
    let mut status_path = String::new();
    if confirm {
        let (status, body) = call(
            app,
            &client,
            "verify_code",
            &[("request_id", &request_id), ("code", &code)],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "verify_code: {body}");
        assert!(body.contains("Verified"), "verify_code: {body}");
        let received = mail_to(app, &email, "was received")
            .await
            .expect("a 'received' mail");
        status_path = link_path(&received, "/status/").expect("a status link");
    }
    Contractor {
        request_id,
        email,
        status_path,
        verify_path,
        code,
    }
}

/// Every table's rows, as text, in a stable order: equal snapshots mean nothing changed.
/// Sessions are left out (reading a session may refresh its expiry), and so is the audit
/// log's text index (`audit_search` and, on SQLite, its FTS5 tables: binary, and written
/// only with `audit_log`, which is in the snapshot).
pub async fn snapshot(app: &TestApp) -> BTreeMap<String, Vec<String>> {
    let tables: Vec<String> = match app.kind {
        Db::Sqlite => sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%'",
        )
        .fetch_all(app.db.pool())
        .await,
        Db::Postgres => sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' AND table_name NOT LIKE '_sqlx%'",
        )
        .fetch_all(app.db.pool())
        .await,
    }
    .expect("list tables");
    let mut snapshot = BTreeMap::new();
    for table in tables
        .into_iter()
        .filter(|t| t != "sessions" && !t.starts_with("audit_search"))
    {
        // Every column cast to text: the Any driver decodes text on both engines, whatever
        // the column's own type (SQLite's BOOLEAN is one it cannot).
        let columns: Vec<String> = match app.kind {
            Db::Sqlite => sqlx::query_scalar(&format!(
                "SELECT name FROM pragma_table_info('{table}') ORDER BY cid"
            ))
            .fetch_all(app.db.pool())
            .await,
            Db::Postgres => sqlx::query_scalar(
                "SELECT column_name::text FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
            )
            .bind(&table)
            .fetch_all(app.db.pool())
            .await,
        }
        .unwrap_or_else(|e| panic!("columns of {table}: {e}"));
        let select = columns
            .iter()
            .map(|c| format!("CAST({c} AS TEXT) AS {c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(&format!("SELECT {select} FROM {table}"))
            .fetch_all(app.db.pool())
            .await
            .unwrap_or_else(|e| panic!("read {table}: {e}"));
        let mut lines: Vec<String> = rows
            .iter()
            .map(|row| {
                columns
                    .iter()
                    .enumerate()
                    .map(|(i, name)| {
                        let value: Option<String> = row.try_get(i).unwrap_or_else(|e| {
                            panic!("{table}.{name}: {e}");
                        });
                        format!("{name}={value:?}")
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .collect();
        lines.sort();
        snapshot.insert(table, lines);
    }
    snapshot
}

/// The tables whose rows differ between two snapshots.
pub fn changed_tables(
    before: &BTreeMap<String, Vec<String>>,
    after: &BTreeMap<String, Vec<String>>,
) -> Vec<String> {
    after
        .iter()
        .filter(|(table, rows)| before.get(*table) != Some(rows))
        .map(|(table, _)| table.clone())
        .collect()
}

/// Exchanges a revealed credential's key and secret for a token at the org (client
/// credentials), as the seed's curl does: the answer's status and body.
pub async fn client_credentials(credential: &Value) -> (StatusCode, String) {
    let response = super::sandbox_http()
        .post(credential["token_url"].as_str().expect("token_url"))
        .basic_auth(
            credential["consumer_key"].as_str().expect("consumer_key"),
            credential["consumer_secret"].as_str(),
        )
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("the org answers");
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}
