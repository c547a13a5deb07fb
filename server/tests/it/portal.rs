//! The portal over HTTP, as its users reach it: who may call what (the authorisation
//! matrix), bad input in every form field, cross-origin calls, a double-clicked Approve,
//! tampered sign-ins, and real SMTP delivery. Each test runs on SQLite and on PostgreSQL.

use crate::common;

use common::portal::{
    self, Contractor, Persona, SignIn, browser, call, changed_tables, finish, pairs, sign_in,
    snapshot, spawn_portal, submit, viewer,
};
use common::smtp::{SmtpSink, decode_quoted_printable};
use common::{Db, TestApp};
use reqwest::StatusCode;
use serde_json::Value;
use test_kit::both_databases;

fn strings(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn token_of(path: &str) -> String {
    path.rsplit('/').next().unwrap_or_default().to_string()
}

/// The `token` argument: the one in `path` for the link holder, a made-up one for others.
fn link_token(path: &str) -> Box<dyn Fn(Persona) -> Vec<(String, String)>> {
    let token = token_of(path);
    Box::new(move |persona| {
        let token = if persona == LinkHolder {
            token.clone()
        } else {
            made_up_token()
        };
        strings(&[("token", &token)])
    })
}

/// A well-formed token that opens nothing.
fn made_up_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// The example packages are added in the background at start-up; tests that compare
/// snapshots wait for them so the seeding is not mistaken for a change.
async fn seeded_package_ids(app: &TestApp) -> Vec<String> {
    for _ in 0..200 {
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM access_catalog ORDER BY name")
            .fetch_all(app.db.pool())
            .await
            .expect("read the catalog");
        if ids.len() >= 2 {
            return ids;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the example packages were not added");
}

/// A valid approval of `request_id`, as the review form posts it (Case read, Subject only).
fn approval(request_id: &str) -> Vec<(String, String)> {
    portal::approval_form(request_id, "203.0.113.0/24")
}

fn package_form(name: &str) -> Vec<(String, String)> {
    strings(&[
        ("name", name),
        ("description", "Read case subjects."),
        ("object_level[Case]", "read"),
        ("field_level[Case.Subject]", "read"),
        ("visibility", "shared"),
        ("calls_per_day", "1000"),
        ("calls_per_7_days", "7000"),
        ("warn_percent", "80"),
        ("hard_action", "none"),
    ])
}

// ---------------------------------------------------------------------------------------
// The authorisation matrix
// ---------------------------------------------------------------------------------------

/// One row of the matrix: a server function, who may call it, and what an allowed answer
/// shows (a denied one must not show it).
struct Row {
    function: &'static str,
    allowed: &'static [Persona],
    /// The call changes the database when allowed.
    writes: bool,
    /// The status an allowed call answers (a refusal on the merits is not a 403).
    allowed_status: StatusCode,
    /// Allowed only with a capability (a code or link from the contractor's mail) that only
    /// the link holder has; the others call with made-up ones.
    capability: bool,
    args: Box<dyn Fn(Persona) -> Vec<(String, String)>>,
    shows: Option<String>,
}

use Persona::{Approver, LinkHolder, NoRole, Owner, SecurityReviewer};

const EVERYONE: &[Persona] = &Persona::ALL;
const REVIEWERS: &[Persona] = &[Approver, Owner];
const APPROVERS: &[Persona] = &[Approver];
const OWNERS: &[Persona] = &[Owner];
const AUDITORS: &[Persona] = &[SecurityReviewer, Owner];
const LINK_HOLDER: &[Persona] = &[LinkHolder];

struct Fixture {
    /// Confirmed, waiting for review.
    waiting: Contractor,
    /// Not confirmed yet: one for the code, one for the link.
    by_code: Contractor,
    by_link: Contractor,
    company: String,
    packages: Vec<String>,
}

/// GETs a page once: its status and whole body. A page that answers and then stops
/// streaming fails the test: `/admin`, `/verify/…` and `/admin/requests/…` did in CI while
/// another test's portal was finding its routes (see `routes` in `portcullis::http`).
async fn get_page(
    client: &reqwest::Client,
    url: &str,
    path: &str,
    persona: Persona,
) -> (StatusCode, String) {
    let response = client.get(url).send().await.expect("GET a page");
    let status = response.status();
    match tokio::time::timeout(std::time::Duration::from_secs(10), response.text()).await {
        Ok(Ok(body)) => (status, body),
        Ok(Err(e)) => panic!("{path} as {persona:?}: {status} but the body broke off: {e:?}"),
        Err(_) => panic!("{path} as {persona:?}: {status} but the body did not finish within 10 s"),
    }
}

fn matrix(f: &Fixture) -> Vec<Row> {
    let waiting = f.waiting.clone();
    let by_code = f.by_code.clone();
    let by_link = f.by_link.clone();
    let packages = f.packages.clone();
    let no_args = || Box::new(|_: Persona| Vec::new()) as Box<dyn Fn(Persona) -> _>;
    vec![
        Row {
            function: "viewer",
            allowed: EVERYONE,
            writes: false,
            capability: false,
            allowed_status: StatusCode::OK,
            args: no_args(),
            shows: Some("roles".into()),
        },
        Row {
            function: "request_form",
            allowed: EVERYONE,
            writes: false,
            capability: false,
            allowed_status: StatusCode::OK,
            args: no_args(),
            shows: Some("Subject".into()),
        },
        Row {
            function: "submit_request",
            allowed: EVERYONE,
            writes: true,
            capability: false,
            allowed_status: StatusCode::OK,
            args: Box::new(|persona| {
                portal::request_form(
                    &format!("Matrix {persona:?}"),
                    &format!("{}@matrix.example", uuid::Uuid::new_v4().simple()),
                    &uuid::Uuid::new_v4().to_string(),
                )
            }),
            shows: Some("Submitted".into()),
        },
        Row {
            function: "verification_link",
            allowed: LINK_HOLDER,
            writes: false,
            capability: true,
            allowed_status: StatusCode::OK,
            args: link_token(&by_link.verify_path),
            shows: Some("Pending Two".into()),
        },
        Row {
            function: "verify_link",
            allowed: LINK_HOLDER,
            writes: true,
            capability: true,
            allowed_status: StatusCode::OK,
            args: link_token(&by_link.verify_path),
            shows: Some("Verified".into()),
        },
        Row {
            function: "verify_code",
            allowed: LINK_HOLDER,
            writes: true,
            capability: true,
            allowed_status: StatusCode::OK,
            args: Box::new(move |persona| {
                if persona == LinkHolder {
                    strings(&[("request_id", &by_code.request_id), ("code", &by_code.code)])
                } else {
                    let id = uuid::Uuid::now_v7().to_string();
                    strings(&[("request_id", &id), ("code", "123456")])
                }
            }),
            shows: Some("Verified".into()),
        },
        Row {
            function: "request_status",
            allowed: LINK_HOLDER,
            writes: false,
            capability: true,
            allowed_status: StatusCode::OK,
            args: link_token(&waiting.status_path),
            shows: Some(f.company.clone()),
        },
        // The request has no grant yet: the usage link says so, with the company's name.
        Row {
            function: "my_usage",
            allowed: LINK_HOLDER,
            writes: false,
            capability: true,
            allowed_status: StatusCode::OK,
            args: link_token(&waiting.status_path),
            shows: Some(f.company.clone()),
        },
        Row {
            function: "outbox",
            allowed: EVERYONE,
            writes: false,
            capability: false,
            allowed_status: StatusCode::OK,
            args: no_args(),
            shows: Some(waiting.email.clone()),
        },
        Row {
            function: "admin_queue",
            allowed: REVIEWERS,
            writes: false,
            capability: false,
            allowed_status: StatusCode::OK,
            args: no_args(),
            shows: Some(f.company.clone()),
        },
        Row {
            function: "admin_request",
            allowed: REVIEWERS,
            writes: false,
            capability: false,
            allowed_status: StatusCode::OK,
            args: Box::new({
                let id = waiting.request_id.clone();
                move |_| strings(&[("id", &id)])
            }),
            shows: Some(f.company.clone()),
        },
        Row {
            function: "grant_progress",
            allowed: REVIEWERS,
            writes: false,
            capability: false,
            allowed_status: StatusCode::OK,
            args: Box::new({
                let id = waiting.request_id.clone();
                move |_| strings(&[("id", &id)])
            }),
            shows: None,
        },
        // The record picker reads the org's records: approvers and owners only.
        Row {
            function: "search_records",
            allowed: REVIEWERS,
            writes: false,
            capability: false,
            allowed_status: StatusCode::OK,
            args: Box::new(|_| {
                strings(&[
                    ("form[object]", "Case"),
                    ("form[text]", ""),
                    ("form[offset]", "0"),
                ])
            }),
            shows: Some("CaseNumber".into()),
        },
        Row {
            function: "catalog",
            allowed: REVIEWERS,
            writes: false,
            capability: false,
            allowed_status: StatusCode::OK,
            args: no_args(),
            shows: Some("Case handling".into()),
        },
        // Changing the catalog is for owners (README); approvers may look.
        Row {
            function: "save_package",
            allowed: OWNERS,
            writes: true,
            capability: false,
            allowed_status: StatusCode::OK,
            args: Box::new(|persona| package_form(&format!("Matrix package {persona:?}"))),
            shows: Some("Saved".into()),
        },
        Row {
            function: "delete_package",
            allowed: OWNERS,
            writes: true,
            capability: false,
            allowed_status: StatusCode::OK,
            args: Box::new(move |persona| {
                let id = if persona == Owner {
                    &packages[1]
                } else {
                    &packages[0]
                };
                strings(&[("id", id)])
            }),
            shows: Some("true".into()),
        },
        Row {
            function: "settings",
            allowed: OWNERS,
            writes: false,
            capability: false,
            allowed_status: StatusCode::OK,
            args: no_args(),
            shows: Some("approvals_required".into()),
        },
        Row {
            function: "set_role",
            allowed: OWNERS,
            writes: true,
            capability: false,
            allowed_status: StatusCode::OK,
            args: Box::new(|_| {
                strings(&[
                    ("username", "helper@acme-sandbox.example"),
                    ("role", "security_reviewer"),
                    ("granted", "grant"),
                ])
            }),
            shows: Some("Saved".into()),
        },
        Row {
            function: "save_settings",
            allowed: OWNERS,
            writes: true,
            capability: false,
            allowed_status: StatusCode::OK,
            args: Box::new(|_| strings(&[("approvals_required", "1"), ("max_end_days", "200")])),
            shows: Some("Saved".into()),
        },
        Row {
            function: "usage_dashboard",
            allowed: REVIEWERS,
            writes: false,
            capability: false,
            allowed_status: StatusCode::OK,
            args: no_args(),
            shows: Some("monthly_cost".into()),
        },
        Row {
            function: "collect_usage_now",
            allowed: REVIEWERS,
            writes: true,
            capability: false,
            allowed_status: StatusCode::OK,
            args: no_args(),
            shows: Some("Collected".into()),
        },
        Row {
            function: "decide",
            allowed: APPROVERS,
            writes: true,
            capability: false,
            allowed_status: StatusCode::OK,
            args: Box::new({
                let id = waiting.request_id.clone();
                move |_| approval(&id)
            }),
            shows: Some("Approved".into()),
        },
        // After the approval above: the grant is waiting for a worker (none run here), so
        // there is nothing to retry, and cancelling it cancels it.
        Row {
            function: "retry_grant",
            allowed: APPROVERS,
            writes: false,
            capability: false,
            allowed_status: StatusCode::CONFLICT,
            args: Box::new({
                let id = waiting.request_id.clone();
                move |_| strings(&[("id", &id)])
            }),
            shows: Some("not waiting for an admin".into()),
        },
        Row {
            function: "cancel_grant",
            allowed: APPROVERS,
            writes: true,
            capability: false,
            allowed_status: StatusCode::OK,
            args: Box::new({
                let id = waiting.request_id.clone();
                move |_| strings(&[("id", &id)])
            }),
            shows: Some("Cancelled".into()),
        },
        // Nor can a cancelled grant be revoked (approvers and owners may revoke).
        Row {
            function: "revoke_access",
            allowed: REVIEWERS,
            writes: false,
            capability: false,
            allowed_status: StatusCode::CONFLICT,
            args: Box::new({
                let id = waiting.request_id.clone();
                move |_| strings(&[("id", &id), ("reason", "Matrix check")])
            }),
            shows: Some("only a ready, active or suspended grant can be revoked".into()),
        },
        // Nor is a cancelled grant suspended.
        Row {
            function: "lift_suspension",
            allowed: APPROVERS,
            writes: false,
            capability: false,
            allowed_status: StatusCode::CONFLICT,
            args: Box::new({
                let id = waiting.request_id.clone();
                move |_| strings(&[("id", &id), ("reason", "Matrix check")])
            }),
            shows: Some("not suspended".into()),
        },
        // The grant is cancelled now: no link can be sent for it.
        Row {
            function: "reissue_reveal_link",
            allowed: APPROVERS,
            writes: false,
            capability: false,
            allowed_status: StatusCode::CONFLICT,
            args: Box::new({
                let id = waiting.request_id.clone();
                move |_| strings(&[("request_id", &id)])
            }),
            shows: Some("only for a grant that is set up".into()),
        },
        Row {
            function: "audit_search",
            allowed: AUDITORS,
            writes: false,
            capability: false,
            allowed_status: StatusCode::OK,
            args: Box::new(|_| strings(&[("action", "request.submitted")])),
            shows: Some("request.submitted".into()),
        },
        Row {
            function: "audit_entry",
            allowed: AUDITORS,
            writes: false,
            capability: false,
            allowed_status: StatusCode::OK,
            args: Box::new(|_| strings(&[("seq", "1")])),
            shows: Some("prev_hash".into()),
        },
        // (A range of at most 10,000 entries is checked at once; the whole log in the
        // background, which `audit::reviewers_read_filter_verify_and_export` covers.)
        Row {
            function: "audit_verify",
            allowed: AUDITORS,
            writes: false,
            capability: false,
            allowed_status: StatusCode::OK,
            args: Box::new(|_| strings(&[("from_seq", "1"), ("to_seq", "3")])),
            shows: Some("Intact".into()),
        },
        Row {
            function: "audit_verify_status",
            allowed: AUDITORS,
            writes: false,
            capability: false,
            allowed_status: StatusCode::OK,
            args: no_args(),
            shows: Some("\"running\"".into()),
        },
    ]
}

/// Pages: the path each persona opens, who sees the content, and the text that is the
/// content (it must not appear for anyone else).
struct PageRow {
    path: Box<dyn Fn(Persona) -> String>,
    allowed: &'static [Persona],
    shows: String,
}

fn pages(f: &Fixture) -> Vec<PageRow> {
    let fixed = |p: &str| {
        let p = p.to_string();
        Box::new(move |_: Persona| p.clone()) as Box<dyn Fn(Persona) -> String>
    };
    // A page under the status link: the real one for the link holder, a made-up one for others.
    let by_link = |suffix: &str| {
        let mine = format!("{}{suffix}", f.waiting.status_path);
        let suffix = suffix.to_string();
        Box::new(move |persona: Persona| {
            if persona == LinkHolder {
                mine.clone()
            } else {
                format!("/status/{}{suffix}", made_up_token())
            }
        }) as Box<dyn Fn(Persona) -> String>
    };
    vec![
        PageRow {
            path: fixed("/admin"),
            allowed: REVIEWERS,
            shows: f.company.clone(),
        },
        PageRow {
            path: fixed(&format!("/admin/requests/{}", f.waiting.request_id)),
            allowed: REVIEWERS,
            shows: f.company.clone(),
        },
        PageRow {
            path: fixed("/admin/usage"),
            allowed: REVIEWERS,
            shows: "Salesforce Integration licences".into(),
        },
        PageRow {
            path: fixed("/admin/catalog"),
            allowed: REVIEWERS,
            shows: "Case handling".into(),
        },
        PageRow {
            path: fixed("/admin/settings"),
            allowed: OWNERS,
            shows: "Review settings".into(),
        },
        PageRow {
            path: fixed(&format!("/audit?target_id={}", f.waiting.request_id)),
            allowed: AUDITORS,
            // The request's details name the company.
            shows: f.company.clone(),
        },
        PageRow {
            path: fixed("/audit/entries/1"),
            allowed: AUDITORS,
            shows: "Previous hash".into(),
        },
        PageRow {
            path: by_link(""),
            allowed: LINK_HOLDER,
            shows: f.company.clone(),
        },
        PageRow {
            path: by_link("/usage"),
            allowed: LINK_HOLDER,
            shows: f.company.clone(),
        },
        PageRow {
            path: fixed("/outbox"),
            allowed: EVERYONE,
            shows: f.waiting.email.clone(),
        },
    ]
}

async fn authorisation_matrix(app: TestApp) {
    let company = "Rampart Ltd".to_string();
    let waiting = submit(&app, &company, true).await;
    let by_code = submit(&app, "Pending One", false).await;
    let by_link = submit(&app, "Pending Two", false).await;
    let packages = seeded_package_ids(&app).await;
    let clients = portal::personas(&app).await;
    let fixture = Fixture {
        waiting,
        by_code,
        by_link,
        company,
        packages,
    };

    // Each signed-in persona is who it signed in as, with exactly its role.
    for (persona, role) in [
        (Approver, "approver"),
        (SecurityReviewer, "security_reviewer"),
        (Owner, "owner"),
    ] {
        let v = viewer(&app, &clients[&persona]).await;
        let roles = &v["roles"];
        for r in ["approver", "security_reviewer", "owner"] {
            assert_eq!(roles[r], r == role, "{persona:?} has role {r}? {v}");
        }
    }
    let v = viewer(&app, &clients[&NoRole]).await;
    assert_eq!(v["user"]["username"], portal::NORA.0);
    assert_eq!(
        v["roles"],
        serde_json::json!({"approver": false, "security_reviewer": false, "owner": false})
    );

    // Pages first: they change nothing.
    let mut checked = 0;
    for row in pages(&fixture) {
        for persona in Persona::ALL {
            let path = (row.path)(persona);
            let (status, body) = get_page(&clients[&persona], &app.at(&path), &path, persona).await;
            assert_ne!(
                status,
                StatusCode::INTERNAL_SERVER_ERROR,
                "{path} as {persona:?}"
            );
            if row.allowed.contains(&persona) {
                assert_eq!(status, StatusCode::OK, "{path} as {persona:?}");
                assert!(
                    body.contains(&row.shows),
                    "{path} as {persona:?} should show '{}'",
                    row.shows
                );
            } else {
                assert!(
                    !body.contains(&row.shows),
                    "{path} as {persona:?} must not show '{}'",
                    row.shows
                );
                if path.starts_with("/admin") || path.starts_with("/audit") {
                    let expected = if persona.signed_in() {
                        "Not authorised"
                    } else {
                        "Sign in to continue"
                    };
                    assert!(
                        body.contains(expected),
                        "{path} as {persona:?}: {expected} ({status}): {}",
                        body.chars()
                            .rev()
                            .take(3000)
                            .collect::<String>()
                            .chars()
                            .rev()
                            .collect::<String>()
                    );
                } else {
                    assert_eq!(status, StatusCode::NOT_FOUND, "{path} as {persona:?}");
                }
            }
            checked += 1;
        }
    }

    for row in matrix(&fixture) {
        // Refused callers first, each proven to have changed nothing.
        for persona in Persona::ALL
            .into_iter()
            .filter(|p| !row.allowed.contains(p))
        {
            let before = snapshot(&app).await;
            let args = (row.args)(persona);
            let (status, body) = call(&app, &clients[&persona], row.function, &pairs(&args)).await;
            let after = snapshot(&app).await;
            let what = format!("{} as {persona:?} -> {status} {body}", row.function);
            if row.capability {
                assert!(status.is_client_error(), "{what}: refused");
            } else if persona.signed_in() {
                assert_eq!(status, StatusCode::FORBIDDEN, "{what}");
            } else {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}");
            }
            if let Some(shows) = &row.shows {
                assert!(
                    !body.contains(shows.as_str()),
                    "{what}: must not show {shows}"
                );
            }
            assert_eq!(
                changed_tables(&before, &after),
                Vec::<String>::new(),
                "{what}: a refused call changed the database"
            );
            checked += 1;
        }
        for persona in row.allowed.iter().copied() {
            let before = snapshot(&app).await;
            let args = (row.args)(persona);
            let (status, body) = call(&app, &clients[&persona], row.function, &pairs(&args)).await;
            let after = snapshot(&app).await;
            let what = format!("{} as {persona:?} -> {status} {body}", row.function);
            assert_eq!(status, row.allowed_status, "{what}");
            if let Some(shows) = &row.shows {
                assert!(body.contains(shows.as_str()), "{what}: should show {shows}");
            }
            if row.writes {
                assert!(
                    !changed_tables(&before, &after).is_empty(),
                    "{what}: an allowed call changed nothing"
                );
            }
            checked += 1;
        }
    }

    // Signing out works for everyone and leaves nobody signed in.
    for persona in Persona::ALL {
        let client = &clients[&persona];
        let response = client
            .post(app.at("/auth/logout"))
            .header(reqwest::header::ORIGIN, app.url.as_str())
            .send()
            .await
            .expect("POST /auth/logout");
        assert!(
            response.status().is_redirection(),
            "logout as {persona:?}: {}",
            response.status()
        );
        assert_eq!(viewer(&app, client).await["user"], Value::Null);
        let (status, _) = call(&app, client, "admin_queue", &[]).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{persona:?} after sign-out"
        );
        checked += 1;
    }
    // 10 pages, 31 functions and sign-out, each for 6 personas.
    assert_eq!(checked, (10 + 31 + 1) * 6);
}
both_databases!(the_authorisation_matrix_holds, with spawn_portal, authorisation_matrix);

/// The catalog page: approvers see the packages but not the controls that change them,
/// which only owners get (issue 15, finding 10).
async fn catalog_controls_are_for_owners(app: TestApp) {
    seeded_package_ids(&app).await;
    let clients = portal::personas(&app).await;
    let page = |persona: Persona| {
        let client = clients[&persona].clone();
        let url = app.at("/admin/catalog");
        async move {
            let response = client.get(url).send().await.expect("GET the catalog");
            assert_eq!(response.status(), StatusCode::OK, "{persona:?}");
            response.text().await.unwrap_or_default()
        }
    };
    let owner = page(Owner).await;
    assert!(owner.contains("Case handling"), "{owner}");
    assert!(owner.contains("Save package"), "the owner can add packages");
    assert!(
        owner.contains("Remove the package Case handling"),
        "the owner can remove packages"
    );
    let approver = page(Approver).await;
    assert!(
        approver.contains("Case handling"),
        "approvers see the catalog"
    );
    for control in ["Save package", "New package", "Remove the package"] {
        assert!(
            !approver.contains(control),
            "an approver must not be offered '{control}'"
        );
    }
}
both_databases!(
    only_owners_see_catalog_controls,
    with spawn_portal,
    catalog_controls_are_for_owners
);

// ---------------------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------------------

/// Posts `base` with `field` replaced by each of `bad` (or removed, for `None`), and checks
/// each answer: 422 with a message for `expect_field`, no 500, nothing stored.
async fn refuse_each(
    app: &TestApp,
    client: &reqwest::Client,
    function: &str,
    base: &[(String, String)],
    field: &str,
    bad: &[&str],
    expect_field: &str,
) -> usize {
    // Each bad submission of the request form gets a form key of its own, so none is
    // taken for a repeat of an earlier one.
    let fresh_key = function == "submit_request" && field != "submission_key";
    let mut checked = 0;
    for value in bad {
        // `object_level` alone stands for "no access chosen at all".
        let no_access = field == "object_level";
        let mut form: Vec<(String, String)> = base
            .iter()
            .filter(|(k, _)| {
                k != field
                    && !(no_access
                        && (k.starts_with("object_level[") || k.starts_with("field_level[")))
            })
            .cloned()
            .collect();
        if fresh_key {
            form.retain(|(k, _)| k != "submission_key");
            form.push(("submission_key".into(), uuid::Uuid::new_v4().to_string()));
        }
        if !no_access {
            form.push((field.to_string(), value.to_string()));
        }
        let before = snapshot(app).await;
        let (status, body) = call(app, client, function, &pairs(&form)).await;
        let after = snapshot(app).await;
        let what = format!("{function} with {field}={value:?} -> {status} {body}");
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{what}");
        let answer: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{what}: JSON"));
        let errors = answer["Invalid"]
            .as_array()
            .unwrap_or_else(|| panic!("{what}: field errors"));
        let message = errors
            .iter()
            .find(|e| e["field"] == expect_field)
            .and_then(|e| e["message"].as_str())
            .unwrap_or_else(|| panic!("{what}: no message for {expect_field}"));
        assert!(message.len() > 10, "{what}: a message that says something");
        assert_eq!(
            changed_tables(&before, &after),
            Vec::<String>::new(),
            "{what}: invalid input changed the database"
        );
        checked += 1;
    }
    checked
}

/// The page's form has the message slot (`id="<field>-error"`) for each field.
async fn page_shows_messages_for(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    fields: &[&str],
) {
    let body = client
        .get(app.at(path))
        .send()
        .await
        .expect("GET a page")
        .text()
        .await
        .unwrap_or_default();
    for field in fields {
        assert!(
            body.contains(&format!("id=\"{field}-error\"")),
            "{path} has no message slot for {field}"
        );
    }
}

async fn bad_input(app: TestApp) {
    let long = |n: usize| "x".repeat(n);
    let (c101, c2001, c1001, c81) = (long(101), long(2001), long(1001), long(81));
    let email255 = format!("{}@example.com", long(250));
    let past = "2020-01-01".to_string();
    let too_far = (chrono::Utc::now() + chrono::Duration::days(1000))
        .date_naive()
        .to_string();
    let contractor = browser();
    seeded_package_ids(&app).await;
    let mut checked = 0;

    // The request form.
    let base = portal::request_form("Valid Co", "kim@valid.example", "unused-key-unused-key");
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        ("company", vec!["", " ", "A", &c101], "company"),
        ("contact_name", vec!["", "K", &c101], "contact_name"),
        (
            "contact_email",
            vec![
                "",
                "not-an-email",
                "kim@",
                "@valid.example",
                "kim@valid",
                "a b@valid.example",
                &email255,
            ],
            "contact_email",
        ),
        (
            "justification",
            vec!["", "too short", &c2001],
            "justification",
        ),
        ("object_level", vec![""], "access"),
        ("object_level[NoSuchObject]", vec!["read"], "access"),
        ("object_level[Case]", vec!["admin"], "access"),
        ("field_level[Case.NoSuchField]", vec!["read"], "access"),
        ("field_level[Case.CaseNumber]", vec!["edit"], "access"),
        (
            "visibility",
            vec!["everything", "all-records"],
            "visibility",
        ),
        (
            "calls_per_day",
            vec!["", "0", "-5", "abc", "1e9", "100001", "3.5"],
            "calls_per_day",
        ),
        (
            "ip_ranges",
            vec!["10.0.0.0/33", "999.0.0.0/8", "banana", "10.0.0.0/8, nope"],
            "ip_ranges",
        ),
        (
            "end_date",
            vec!["", &past, &too_far, "31/12/2030", "2030-02-30"],
            "end_date",
        ),
        ("submission_key", vec!["short"], "submission_key"),
    ];
    for (field, values, expect) in &cases {
        checked += refuse_each(
            &app,
            &contractor,
            "submit_request",
            &base,
            field,
            values,
            expect,
        )
        .await;
    }
    page_shows_messages_for(
        &app,
        &contractor,
        "/request",
        &[
            "company",
            "contact_name",
            "contact_email",
            "justification",
            "access",
            "visibility",
            "calls_per_day",
            "ip_ranges",
            "end_date",
            "submission_key",
        ],
    )
    .await;

    // The confirmation code.
    let pending = submit(&app, "Codes Ltd", false).await;
    let (status, body) = call(
        &app,
        &contractor,
        "verify_code",
        &[("request_id", &pending.request_id), ("code", "12ab56")],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("\"field\":\"code\""), "{body}");
    checked += 1;

    // The review form, as an approver.
    let approver = browser();
    sign_in(&app, &approver, portal::BLAKE).await;
    let waiting = submit(&app, "Review Ltd", true).await;
    let base = approval(&waiting.request_id);
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        ("reason", vec!["", "  ", "ok", &c1001], "reason"),
        ("object_level", vec![""], "access"),
        ("object_level[NoSuchObject]", vec!["read"], "access"),
        ("field_level[Case.NoSuchField]", vec!["read"], "access"),
        (
            "record_ids",
            vec!["not-an-id", "001000000000000AAA, x"],
            "record_ids",
        ),
        ("visibility", vec!["group", "sideways"], "visibility"),
        (
            "calls_per_day",
            vec!["", "0", "abc", "1000001"],
            "calls_per_day",
        ),
        ("calls_per_7_days", vec!["", "10", "x"], "calls_per_7_days"),
        ("warn_percent", vec!["", "0", "100", "x"], "warn_percent"),
        ("hard_action", vec!["explode"], "hard_action"),
        (
            "end_date",
            vec!["", &past, &too_far, "tomorrow"],
            "end_date",
        ),
        ("ip_ranges", vec!["banana", "10.0.0.0/40"], "ip_ranges"),
    ];
    for (field, values, expect) in &cases {
        checked += refuse_each(&app, &approver, "decide", &base, field, values, expect).await;
    }
    page_shows_messages_for(
        &app,
        &approver,
        &format!("/admin/requests/{}", waiting.request_id),
        &[
            "reason",
            "access",
            "record_ids",
            "visibility",
            "calls_per_day",
            "calls_per_7_days",
            "warn_percent",
            "hard_action",
            "end_date",
            "ip_ranges",
        ],
    )
    .await;
    // Not a decision at all.
    let mut form = base.clone();
    form.retain(|(k, _)| k != "action");
    form.push(("action".into(), "destroy".into()));
    let (status, body) = call(&app, &approver, "decide", &pairs(&form)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("'destroy' is not a decision"), "{body}");
    checked += 1;

    // "Revoke access now" on the approved request's grant: a reason is required (and
    // bounded), and a refused one changes nothing.
    let (status, body) = call(&app, &approver, "decide", &pairs(&base)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let revoke = strings(&[("id", &waiting.request_id), ("reason", "Done")]);
    checked += refuse_each(
        &app,
        &approver,
        "revoke_access",
        &revoke,
        "reason",
        &["", "  ", &c1001],
        "reason",
    )
    .await;

    // The access catalog, as the owner (who alone may change it).
    let owner = browser();
    sign_in(&app, &owner, portal::ALEX).await;
    let base = package_form("Good package");
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        ("name", vec!["", "x", &c81], "name"),
        ("description", vec![&c1001], "description"),
        ("object_level", vec![""], "access"),
        ("object_level[NoSuchObject]", vec!["read"], "access"),
        ("field_level[Case.CaseNumber]", vec!["edit"], "access"),
        ("visibility", vec!["sideways"], "visibility"),
        ("calls_per_day", vec!["0", "x"], "calls_per_day"),
        ("calls_per_7_days", vec!["1"], "calls_per_7_days"),
        ("warn_percent", vec!["0", "100"], "warn_percent"),
        ("hard_action", vec!["explode"], "hard_action"),
    ];
    for (field, values, expect) in &cases {
        checked += refuse_each(&app, &owner, "save_package", &base, field, values, expect).await;
    }
    // A name that is taken.
    seeded_package_ids(&app).await;
    checked += refuse_each(
        &app,
        &owner,
        "save_package",
        &base,
        "name",
        &["case HANDLING"],
        "name",
    )
    .await;
    page_shows_messages_for(
        &app,
        &owner,
        "/admin/catalog",
        &[
            "name",
            "description",
            "access",
            "visibility",
            "calls_per_day",
            "calls_per_7_days",
            "warn_percent",
            "hard_action",
        ],
    )
    .await;

    // Settings and roles, as the owner.
    let base = strings(&[("approvals_required", "1"), ("max_end_days", "365")]);
    checked += refuse_each(
        &app,
        &owner,
        "save_settings",
        &base,
        "approvals_required",
        &["", "0", "3", "x"],
        "approvals_required",
    )
    .await;
    checked += refuse_each(
        &app,
        &owner,
        "save_settings",
        &base,
        "max_end_days",
        &["", "0", "731", "x"],
        "max_end_days",
    )
    .await;
    let base = strings(&[
        ("username", "helper@acme-sandbox.example"),
        ("role", "approver"),
        ("granted", "grant"),
    ]);
    checked += refuse_each(
        &app,
        &owner,
        "set_role",
        &base,
        "username",
        &["", "nobody", &c101],
        "username",
    )
    .await;
    checked += refuse_each(
        &app,
        &owner,
        "set_role",
        &base,
        "role",
        &["", "emperor"],
        "role",
    )
    .await;
    checked += refuse_each(
        &app,
        &owner,
        "set_role",
        &base,
        "granted",
        &["", "maybe"],
        "granted",
    )
    .await;
    page_shows_messages_for(
        &app,
        &owner,
        "/admin/settings",
        &[
            "approvals_required",
            "max_end_days",
            "username",
            "role",
            "granted",
        ],
    )
    .await;

    // Calls that are not forms at all: missing fields, JSON, bytes that are not UTF-8.
    for (function, body, content_type) in [
        (
            "submit_request",
            b"".to_vec(),
            "application/x-www-form-urlencoded",
        ),
        (
            "verify_code",
            b"request_id=x".to_vec(),
            "application/x-www-form-urlencoded",
        ),
        ("decide", b"{\"id\":".to_vec(), "application/json"),
        (
            "submit_request",
            b"company=\xff\xfe".to_vec(),
            "application/x-www-form-urlencoded",
        ),
        (
            "save_settings",
            b"approvals_required=1&approvals_required=2".to_vec(),
            "application/x-www-form-urlencoded",
        ),
    ] {
        let before = snapshot(&app).await;
        let response = owner
            .post(app.at(&format!("/api/{function}")))
            .header(reqwest::header::ORIGIN, app.url.as_str())
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body.clone())
            .send()
            .await
            .expect("POST");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(
            status.is_client_error(),
            "{function} with {:?} -> {status} {text}",
            String::from_utf8_lossy(&body)
        );
        assert!(!text.is_empty(), "{function}: the answer names the problem");
        assert!(changed_tables(&before, &snapshot(&app).await).is_empty());
        checked += 1;
    }
    assert!(checked > 100, "{checked} bad inputs checked");
}
both_databases!(
    bad_input_gets_a_message_for_its_field_and_changes_nothing,
    with spawn_portal,
    bad_input
);

// ---------------------------------------------------------------------------------------
// Cross-origin calls
// ---------------------------------------------------------------------------------------

async fn cross_origin(app: TestApp) {
    let waiting = submit(&app, "Origin Ltd", true).await;
    seeded_package_ids(&app).await;
    let approver = browser();
    sign_in(&app, &approver, portal::BLAKE).await;
    let owner = browser();
    sign_in(&app, &owner, portal::ALEX).await;
    type Call<'a> = (&'a reqwest::Client, &'static str, Vec<(String, String)>);
    let calls: Vec<Call> = vec![
        (
            &approver,
            "submit_request",
            portal::request_form(
                "Evil Co",
                "e@evil.example",
                &uuid::Uuid::new_v4().to_string(),
            ),
        ),
        (&approver, "decide", approval(&waiting.request_id)),
        (&owner, "save_package", package_form("Evil package")),
        (
            &owner,
            "save_settings",
            strings(&[("approvals_required", "2"), ("max_end_days", "30")]),
        ),
        (
            &owner,
            "set_role",
            strings(&[
                ("username", "evil@evil.example"),
                ("role", "owner"),
                ("granted", "grant"),
            ]),
        ),
    ];
    let hostile: [(&str, &str); 3] = [
        ("origin", "https://evil.example"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
    ];
    for (client, function, form) in &calls {
        for (header, value) in hostile {
            let before = snapshot(&app).await;
            let response = client
                .post(app.at(&format!("/api/{function}")))
                .header(header, value)
                .form(form)
                .send()
                .await
                .expect("POST");
            let status = response.status();
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{function} with {header}: {value}"
            );
            assert!(
                changed_tables(&before, &snapshot(&app).await).is_empty(),
                "{function} with {header}: {value} changed the database"
            );
        }
    }
    // Signing out someone from another site is refused too.
    let response = owner
        .post(app.at("/auth/logout"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        viewer(&app, &owner).await["user"]["username"],
        portal::ALEX.0
    );
    // The same call from the portal's own pages goes through.
    let (status, body) = call(
        &app,
        &approver,
        "decide",
        &pairs(&approval(&waiting.request_id)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
both_databases!(cross_origin_calls_are_refused, with spawn_portal, cross_origin);

// ---------------------------------------------------------------------------------------
// A double-clicked Approve
// ---------------------------------------------------------------------------------------

async fn double_click(app: TestApp) {
    let waiting = submit(&app, "Twice Ltd", true).await;
    let approver = browser();
    sign_in(&app, &approver, portal::BLAKE).await;
    let form = approval(&waiting.request_id);
    let args = pairs(&form);
    let (first, second) = tokio::join!(
        call(&app, &approver, "decide", &args),
        call(&app, &approver, "decide", &args),
    );
    let mut answers = [first, second];
    answers.sort_by_key(|(status, _)| *status);
    assert_eq!(answers[0].0, StatusCode::OK, "{answers:?}");
    assert!(answers[0].1.contains("Approved"), "{answers:?}");
    assert_eq!(answers[1].0, StatusCode::CONFLICT, "{answers:?}");
    assert!(answers[1].1.contains("Refused"), "{answers:?}");
    let count = |sql: &'static str| {
        let pool = app.db.pool().clone();
        let id = waiting.request_id.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .bind(id)
                .fetch_one(&pool)
                .await
                .expect("count")
        }
    };
    assert_eq!(
        count("SELECT COUNT(*) FROM decisions WHERE request_id = $1").await,
        1
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM grants WHERE request_id = $1").await,
        1
    );
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM audit_log WHERE target_id = $1 AND action = 'request.approved'"
        )
        .await,
        1
    );
    // A third click, later, is refused the same way and changes nothing.
    let before = snapshot(&app).await;
    let (status, _) = call(&app, &approver, "decide", &pairs(&form)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(changed_tables(&before, &snapshot(&app).await).is_empty());
}
both_databases!(a_double_clicked_approve_approves_once, with spawn_portal, double_click);

// ---------------------------------------------------------------------------------------
// Tampered sign-ins
// ---------------------------------------------------------------------------------------

async fn signed_in_as(app: &TestApp, client: &reqwest::Client) -> Option<String> {
    viewer(app, client).await["user"]["username"]
        .as_str()
        .map(str::to_string)
}

fn with_param(url: &str, name: &str, value: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("callback URL");
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == name {
                value.to_string()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    parsed.query_pairs_mut().clear().extend_pairs(pairs);
    parsed.to_string()
}

async fn failed_sign_ins(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'auth.sign_in_failed' AND outcome = 'failure'")
        .fetch_one(app.db.pool())
        .await
        .expect("count failed sign-ins")
}

async fn tampered_sign_ins(app: TestApp) {
    // A replayed callback: the sign-in attempt is used up, so the same URL fails later,
    // in the same browser after signing out and in another browser.
    let alice = browser();
    let flow = SignIn::start(&app, &alice).await;
    let callback = flow.log_in(&alice, portal::BLAKE, &[]).await;
    assert_eq!(finish(&alice, &callback).await, "/admin");
    assert_eq!(
        signed_in_as(&app, &alice).await.as_deref(),
        Some(portal::BLAKE.0)
    );
    alice
        .post(app.at("/auth/logout"))
        .header("origin", app.url.as_str())
        .send()
        .await
        .expect("logout");
    assert_eq!(
        finish(&alice, &callback).await,
        "/auth/failed?reason=expired"
    );
    assert_eq!(signed_in_as(&app, &alice).await, None);
    let mallory = browser();
    assert_eq!(
        finish(&mallory, &callback).await,
        "/auth/failed?reason=expired"
    );
    assert_eq!(signed_in_as(&app, &mallory).await, None);

    // A state that is not the one this browser was given.
    let failures = failed_sign_ins(&app).await;
    let flow = SignIn::start(&app, &alice).await;
    let callback = flow.log_in(&alice, portal::BLAKE, &[]).await;
    let forged = with_param(&callback, "state", "forged-state-value");
    assert_eq!(finish(&alice, &forged).await, "/auth/failed?reason=state");
    assert_eq!(signed_in_as(&app, &alice).await, None);
    // ... and the attempt is spent: the genuine callback no longer works either.
    assert_eq!(
        finish(&alice, &callback).await,
        "/auth/failed?reason=expired"
    );
    assert_eq!(signed_in_as(&app, &alice).await, None);

    // Login CSRF: the victim's browser is sent the attacker's callback while signing in.
    let victim = browser();
    let victim_flow = SignIn::start(&app, &victim).await;
    let attacker = browser();
    let attacker_flow = SignIn::start(&app, &attacker).await;
    let attackers_callback = attacker_flow.log_in(&attacker, portal::NORA, &[]).await;
    assert_eq!(
        finish(&victim, &attackers_callback).await,
        "/auth/failed?reason=state"
    );
    assert_eq!(signed_in_as(&app, &victim).await, None);
    drop(victim_flow);

    // A code issued for another PKCE challenge: the portal's verifier does not match it, and
    // the org refuses the exchange.
    let flow = SignIn::start(&app, &alice).await;
    assert_eq!(flow.param("code_challenge_method").as_deref(), Some("S256"));
    let other_challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    assert_ne!(
        flow.param("code_challenge").as_deref(),
        Some(other_challenge)
    );
    let callback = flow
        .log_in(
            &alice,
            portal::BLAKE,
            &[("code_challenge", other_challenge)],
        )
        .await;
    assert_eq!(
        finish(&alice, &callback).await,
        "/auth/failed?reason=exchange"
    );
    assert_eq!(signed_in_as(&app, &alice).await, None);

    // Each refusal of a sign-in in progress is in the audit log (the forged state, the
    // login CSRF, the PKCE mismatch); a callback with no sign-in in progress (the spent
    // one) is only counted: anyone can send those, and the audit log is permanent.
    assert!(
        failed_sign_ins(&app).await >= failures + 3,
        "failed sign-ins are audited"
    );
    // The page the browser lands on says what happened, with status 200 or 4xx, never 500.
    let response = alice
        .get(app.at("/auth/failed?reason=state"))
        .send()
        .await
        .expect("GET");
    assert!(!response.status().is_server_error());
    let status = response.status();
    let body = response.text().await.expect("the failure page's body");
    assert!(
        body.contains("Sign-in failed"),
        "the failure page explains itself ({status}): {body}"
    );
    // After all this, a clean sign-in still works.
    sign_in(&app, &alice, portal::BLAKE).await;
    assert_eq!(
        signed_in_as(&app, &alice).await.as_deref(),
        Some(portal::BLAKE.0)
    );
}
both_databases!(tampered_sign_ins_are_refused, with spawn_portal, tampered_sign_ins);

// ---------------------------------------------------------------------------------------
// Real SMTP delivery
// ---------------------------------------------------------------------------------------

async fn smtp_delivery(kind: Db) {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let smtp_url = format!("smtp://127.0.0.1:{}", sink.port);
    let Some(app) = TestApp::spawn_with(kind, |config| {
        config.smtp_url = Some(smtp_url.clone().into());
        config.mail_from = "Portcullis <portcullis@acme.example>".into();
        config.roles = portal::one_role_each();
    })
    .await
    else {
        return;
    };
    let company = "Postal Ltd";
    let client = browser();
    let email = format!("{}@postal.example", uuid::Uuid::new_v4().simple());
    let form = portal::request_form(company, &email, &uuid::Uuid::new_v4().to_string());
    let (status, body) = call(&app, &client, "submit_request", &pairs(&form)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The mail arrives at the SMTP server.
    let mut message = None;
    for _ in 0..200 {
        message = sink
            .messages()
            .into_iter()
            .find(|m| m.contains(&email) && m.contains("Confirm your email"));
        if message.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let message =
        decode_quoted_printable(&message.expect("the confirmation mail reached the SMTP server"));
    assert!(
        message.contains("From: Portcullis <portcullis@acme.example>"),
        "{message}"
    );
    assert!(message.contains(&format!("To: {email}")), "{message}");

    // Its link is the portal's, and confirms the address.
    let link = message
        .split_whitespace()
        .find(|w| w.starts_with(&format!("{}/verify/", app.url)))
        .unwrap_or_else(|| panic!("a link to {}/verify/ in {message}", app.url))
        .to_string();
    let page = client.get(&link).send().await.expect("open the link");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap_or_default();
    assert!(html.contains(company), "{html}");
    let token = token_of(&link);
    let (status, body) = call(&app, &client, "verify_link", &[("token", &token)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("Verified"), "{body}");

    // The queue records the delivery, and there is no outbox page with SMTP configured.
    let delivery: String = sqlx::query_scalar(
        "SELECT delivery FROM mail_outbox WHERE recipient = $1 AND subject LIKE 'Confirm%'",
    )
    .bind(&email)
    .fetch_one(app.db.pool())
    .await
    .expect("the queued mail");
    assert_eq!(delivery, "sent");
    let (status, _) = call(&app, &client, "outbox", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_delivers_the_verification_mail_with_the_right_link_sqlite() {
    smtp_delivery(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_delivers_the_verification_mail_with_the_right_link_postgres() {
    smtp_delivery(Db::Postgres).await;
}

#[test]
fn quoted_printable_is_decoded_like_a_mail_reader() {
    assert_eq!(decode_quoted_printable("a=3Db=\r\nc"), "a=bc");
    assert_eq!(decode_quoted_printable("no escapes"), "no escapes");
}
