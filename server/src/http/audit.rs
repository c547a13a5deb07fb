//! The audit log's downloads, for security reviewers and owners: the filtered log streamed
//! as CSV or JSON Lines (page by page along the cursor, so a million entries never sit in
//! memory), and one grant's evidence pack as JSON.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use services::audit::Entry;
use services::audit::search::{self, Filter, ToFilter};
use shared::auth::SignedInUser;
use tower_sessions::Session;

use super::AppState;
use super::auth::USER_KEY;

/// Entries read from the database per round trip of an export.
const EXPORT_PAGE: i64 = 1_000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/audit/export.csv", get(export_csv))
        .route("/audit/export.jsonl", get(export_jsonl))
        .route("/audit/evidence/{grant}", get(evidence))
}

fn plain(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}

/// The signed-in security reviewer or owner, or the refusal to send.
async fn reviewer(state: &AppState, session: &Session) -> Result<SignedInUser, Response> {
    let user: Option<SignedInUser> = session.get(USER_KEY).await.ok().flatten();
    let Some(user) = user else {
        return Err(plain(
            StatusCode::UNAUTHORIZED,
            "Sign in with Salesforce first.",
        ));
    };
    match state.portal.roles_of(&user).await {
        Ok(roles) if app::api::audit::reviewer_or_owner(&roles) => Ok(user),
        Ok(_) => Err(plain(
            StatusCode::FORBIDDEN,
            "You are signed in, but not authorised to read the audit log.",
        )),
        Err(e) => {
            tracing::error!(error = %e, "reading roles failed");
            Err(plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong on our side; please try again.",
            ))
        }
    }
}

fn download(content_type: &'static str, filename: &str, body: Body) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

fn stamp() -> String {
    chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string()
}

/// The columns of both exports, in order.
const HEADER: [&str; 12] = [
    "seq",
    "at",
    "actor",
    "actor_ip",
    "user_agent",
    "action",
    "target_type",
    "target_id",
    "outcome",
    "details",
    "prev_hash",
    "hash",
];

/// One CSV field (RFC 4180 quoting). A text value a spreadsheet would run as a formula
/// (starting with `=`, `+`, `-`, `@`, tab or carriage return) gets a leading `'`; the JSON
/// Lines export is the exact record, for checking hashes.
fn csv_field(out: &mut String, value: &str, defuse: bool) {
    let risky = defuse && value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky || value.contains([',', '"', '\n', '\r']) {
        out.push('"');
        if risky {
            out.push('\'');
        }
        for c in value.chars() {
            if c == '"' {
                out.push('"');
            }
            out.push(c);
        }
        out.push('"');
    } else {
        out.push_str(value);
    }
}

fn csv_row(out: &mut String, e: &Entry) {
    let at = services::clock::rfc3339(e.at);
    let seq = e.seq.to_string();
    let fields: [(&str, bool); 12] = [
        (&seq, false),
        (&at, false),
        (&e.actor, true),
        (&e.actor_ip, true),
        (&e.user_agent, true),
        (&e.action, true),
        (&e.target_type, true),
        (&e.target_id, true),
        (&e.outcome, true),
        (&e.details, true),
        (&e.prev_hash, false),
        (&e.hash, false),
    ];
    for (i, (value, defuse)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(out, value, *defuse);
    }
    out.push_str("\r\n");
}

fn jsonl_row(out: &mut String, e: &Entry) {
    // The stored record as it is hashed, plus the time in words (what the audit stream
    // sends too).
    out.push_str(&e.json_line());
    out.push('\n');
}

/// The filtered log, newest first, as a stream of chunks (one per page of entries).
fn stream_entries(
    state: AppState,
    filter: Filter,
    header: Option<String>,
    row: fn(&mut String, &Entry),
) -> Body {
    // (cursor, finished, header still to send)
    let start = (None::<i64>, false, header);
    let chunks = futures::stream::unfold(start, move |(before, done, header)| {
        let db = state.portal.db().clone();
        let filter = filter.clone();
        async move {
            if done {
                return None;
            }
            let mut out = header.unwrap_or_default();
            match search::search(&db, &filter, before, EXPORT_PAGE).await {
                Ok(page) => {
                    for entry in &page.entries {
                        row(&mut out, entry);
                    }
                    let finished = page.next_before.is_none();
                    Some((
                        Ok::<_, std::io::Error>(axum::body::Bytes::from(out)),
                        (page.next_before, finished, None),
                    ))
                }
                Err(e) => {
                    // The status is sent already; ending the body with an error makes the
                    // download fail visibly instead of looking complete.
                    tracing::error!(error = %e, "audit export failed part-way");
                    Some((
                        Err(std::io::Error::other("the export stopped: database error")),
                        (before, true, None),
                    ))
                }
            }
        }
    });
    Body::from_stream(chunks)
}

async fn export(
    state: AppState,
    session: Session,
    query: Result<Query<search::Query>, axum::extract::rejection::QueryRejection>,
    csv: bool,
) -> Response {
    if let Err(refusal) = reviewer(&state, &session).await {
        return refusal;
    }
    let Ok(Query(query)) = query else {
        return plain(
            StatusCode::BAD_REQUEST,
            "The filter's parameters are not readable.",
        );
    };
    let filter = match query.filter() {
        Ok(filter) => filter,
        Err(e) => return plain(StatusCode::BAD_REQUEST, &format!("The filter's {e}.")),
    };
    if csv {
        let header = format!("{}\r\n", HEADER.join(","));
        download(
            "text/csv; charset=utf-8",
            &format!("audit-{}.csv", stamp()),
            stream_entries(state, filter, Some(header), csv_row),
        )
    } else {
        download(
            "application/x-ndjson",
            &format!("audit-{}.jsonl", stamp()),
            stream_entries(state, filter, None, jsonl_row),
        )
    }
}

async fn export_csv(
    State(state): State<AppState>,
    session: Session,
    query: Result<Query<search::Query>, axum::extract::rejection::QueryRejection>,
) -> Response {
    export(state, session, query, true).await
}

async fn export_jsonl(
    State(state): State<AppState>,
    session: Session,
    query: Result<Query<search::Query>, axum::extract::rejection::QueryRejection>,
) -> Response {
    export(state, session, query, false).await
}

async fn evidence(
    State(state): State<AppState>,
    session: Session,
    Path(grant): Path<String>,
) -> Response {
    if let Err(refusal) = reviewer(&state, &session).await {
        return refusal;
    }
    let grant = grant.strip_suffix(".json").unwrap_or(&grant).to_string();
    let valid = !grant.is_empty()
        && grant.len() <= 64
        && grant.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !valid {
        return plain(StatusCode::NOT_FOUND, "There is no grant with that id.");
    }
    match state.portal.evidence_pack(&grant).await {
        Ok(Some(pack)) => {
            let body = serde_json::to_string_pretty(&pack).unwrap_or_default();
            download(
                "application/json",
                &format!("evidence-{grant}.json"),
                Body::from(body),
            )
        }
        Ok(None) => plain(StatusCode::NOT_FOUND, "There is no grant with that id."),
        Err(e) => {
            tracing::error!(error = %e, "building an evidence pack failed");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong on our side; please try again.",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(value: &str) -> String {
        let mut out = String::new();
        csv_field(&mut out, value, true);
        out
    }

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(field("@SUM(A1)"), "\"'@SUM(A1)\"");
    }
}
