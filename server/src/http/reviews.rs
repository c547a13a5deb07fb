//! The decisions of an access review as CSV (`/admin/reviews/<id>/decisions.csv`), for the
//! people who may open the review pages (approvers, owners, security reviewers).

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use shared::auth::SignedInUser;
use tower_sessions::Session;

use super::AppState;
use super::auth::USER_KEY;

pub fn router() -> Router<AppState> {
    Router::new().route("/admin/reviews/{id}/decisions.csv", get(decisions_csv))
}

fn plain(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}

async fn decisions_csv(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    let user: Option<SignedInUser> = session.get(USER_KEY).await.ok().flatten();
    let Some(user) = user else {
        return plain(StatusCode::UNAUTHORIZED, "Sign in with Salesforce first.");
    };
    match state.portal.roles_of(&user).await {
        Ok(roles) if roles.any() => {}
        Ok(_) => {
            return plain(
                StatusCode::FORBIDDEN,
                "You are signed in, but not authorised to read access reviews.",
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "reading roles failed");
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong on our side; please try again.",
            );
        }
    }
    if id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return plain(StatusCode::NOT_FOUND, "There is no such access review.");
    }
    match state.portal.review_decisions_csv(&id).await {
        Ok(Some(csv)) => {
            let mut response = Response::new(Body::from(csv));
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            if let Ok(value) =
                HeaderValue::from_str(&format!("attachment; filename=\"access-review-{id}.csv\""))
            {
                headers.insert(header::CONTENT_DISPOSITION, value);
            }
            response
        }
        Ok(None) => plain(StatusCode::NOT_FOUND, "There is no such access review."),
        Err(e) => {
            tracing::error!(error = %e, "reading an access review's decisions failed");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong on our side; please try again.",
            )
        }
    }
}
