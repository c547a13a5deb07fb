//! Request logging. Paths that carry capability tokens (status, verification and reveal
//! links) are logged with the token cut out: a token in a log is a key left in the door.

use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{DefaultOnResponse, MakeSpan, TraceLayer};
use tracing::{Level, Span};

/// Path prefixes whose next segment is a secret token.
pub const CAPABILITY_PREFIXES: &[&str] = &["/status/", "/verify/", "/reveal/", "/usage/"];

/// The path as it may appear in logs.
pub fn loggable_path(path: &str) -> String {
    for prefix in CAPABILITY_PREFIXES {
        if let Some(rest) = path.strip_prefix(prefix) {
            let after = rest.find('/').map(|i| &rest[i..]).unwrap_or("");
            return format!("{prefix}…{after}");
        }
    }
    path.to_string()
}

#[derive(Clone, Debug)]
pub struct RedactingMakeSpan;

impl<B> MakeSpan<B> for RedactingMakeSpan {
    fn make_span(&mut self, request: &axum::http::Request<B>) -> Span {
        // The query string is left out entirely: OAuth callbacks carry codes in it.
        tracing::info_span!(
            "request",
            method = %request.method(),
            path = %loggable_path(request.uri().path()),
        )
    }
}

pub fn layer()
-> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, RedactingMakeSpan, (), DefaultOnResponse> {
    TraceLayer::new_for_http()
        .make_span_with(RedactingMakeSpan)
        .on_request(())
        .on_response(DefaultOnResponse::new().level(Level::INFO))
}

#[cfg(test)]
mod tests {
    use super::loggable_path;

    #[test]
    fn tokens_are_cut_out_of_logged_paths() {
        assert_eq!(loggable_path("/status/abcdef123"), "/status/…");
        assert_eq!(loggable_path("/reveal/abcdef/code"), "/reveal/…/code");
        assert_eq!(loggable_path("/admin"), "/admin");
    }
}
