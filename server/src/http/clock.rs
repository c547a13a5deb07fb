//! Browser tests' control of the portal's clock (`SANDBOX_CLOCK_CONTROL=1`, sandbox mode
//! only): `POST /__portal/clock` with `{"advanceSeconds": N}` moves the portal's clock
//! forward by N seconds (it keeps running from there), so a test reaches a due date, and
//! a negative N moves it back.
//! Without the setting the route answers 404, as any unknown path does.

use std::sync::OnceLock;

use axum::Router;
use axum::extract::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use services::clock::{OffsetClock, SharedClock};

use super::AppState;

/// The portal's clock when tests control it (set once at start-up).
static CONTROLLED: OnceLock<OffsetClock> = OnceLock::new();

/// Turns the control on; the clock the portal must read.
pub fn enable() -> SharedClock {
    CONTROLLED.get_or_init(OffsetClock::default).shared()
}

pub fn router() -> Router<AppState> {
    Router::new().route("/__portal/clock", post(advance))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Advance {
    advance_seconds: i64,
}

async fn advance(Json(body): Json<Advance>) -> Response {
    let Some(clock) = CONTROLLED.get() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // Negative moves it back (a test puts it back when it is done).
    let ten_years = 10 * 365 * 86_400;
    if !(-ten_years..=ten_years).contains(&body.advance_seconds) {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            "advanceSeconds: at most ten years either way\n",
        )
            .into_response();
    }
    clock.advance_ms(body.advance_seconds * 1_000);
    Json(serde_json::json!({ "offsetSeconds": clock.offset_ms() / 1_000 })).into_response()
}
