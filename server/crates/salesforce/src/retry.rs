//! When a failed request is tried again, and how long to wait first.
//!
//! # Policy
//!
//! Waits grow exponentially with *full jitter*: before retry `n` (1-based) the client sleeps
//! a uniformly random time in `[0, min(max_delay, base_delay * 2^(n-1))]`, so many portal
//! instances hitting the same failing org do not retry in lockstep. At most `max_attempts`
//! attempts are made in all.
//!
//! What is retried depends on whether the request is safe to repeat:
//!
//! | failure | GET / PATCH / PUT / DELETE | POST (create, composite, deploy, ...) |
//! |---|---|---|
//! | could not connect (request certainly not sent) | retry | retry |
//! | no token could be obtained (request not sent) | retry if transient | retry if transient |
//! | HTTP 502, 503 (the edge or server did not process it) | retry | retry |
//! | HTTP 429, 403 `REQUEST_LIMIT_EXCEEDED` | retry when `retry_on_request_limit` | same |
//! | timeout or broken connection after sending | retry | stop: [`Error::OutcomeUnknown`] |
//! | HTTP 500, 504 and other 5xx | retry | stop: [`Error::OutcomeUnknown`] |
//! | any other 4xx | stop | stop |
//!
//! A POST that fails after it may have reached Salesforce is never repeated blindly: the
//! caller (an idempotent workflow step) looks up whether it took effect, by the step's
//! deterministic name, before trying again. 401 `INVALID_SESSION_ID` is handled before this
//! policy: the token is renewed once and the request replayed (see [`crate::auth`]).

use std::time::Duration;

use rand::Rng;

use crate::error::Error;

/// Backoff settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, including the first; 1 disables retrying.
    pub max_attempts: u32,
    /// The ceiling of the first wait.
    pub base_delay: Duration,
    /// No wait is longer than this.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 4 attempts, waits of at most 0.25 s, 0.5 s, 1 s (capped at 8 s for larger counts).
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retries.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The longest wait before retry number `retry` (1 for the first retry):
    /// `min(max_delay, base_delay * 2^(retry-1))`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let exponent = retry.saturating_sub(1).min(31);
        let factor = 1u32 << exponent;
        self.base_delay
            .checked_mul(factor)
            .map_or(self.max_delay, |d| d.min(self.max_delay))
    }

    /// A random wait in `[0, ceiling(retry)]` (full jitter).
    pub fn delay<R: Rng + ?Sized>(&self, retry: u32, rng: &mut R) -> Duration {
        let ceiling = self.ceiling(retry);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(rng.random_range(0..=nanos))
    }
}

/// Whether repeating a request can apply its effect twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Reads, updates, deletes, upserts by external id, token requests.
    Idempotent,
    /// Creates, composite requests, deploys, credential rotation.
    NonIdempotent,
}

impl Idempotency {
    /// The default for an HTTP method: POST is not safe to repeat, the others are.
    pub fn of_method(method: &reqwest::Method) -> Self {
        if method == reqwest::Method::POST {
            Idempotency::NonIdempotent
        } else {
            Idempotency::Idempotent
        }
    }
}

/// Whether the failed attempt got as far as sending the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Failed before sending (for example while obtaining a token).
    No,
    /// The request was handed to the connection; the error says how far it got.
    Maybe,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Retry,
    /// Return the error as it is.
    Stop,
    /// Return the error wrapped in [`Error::OutcomeUnknown`].
    StopOutcomeUnknown,
}

/// Classifies a failed attempt per the table in the module docs.
pub fn classify(
    error: &Error,
    sent: Sent,
    idempotency: Idempotency,
    retry_on_request_limit: bool,
) -> Decision {
    let retry_if = |yes: bool| if yes { Decision::Retry } else { Decision::Stop };
    // A request-limit refusal means nothing was processed, whatever the method.
    if matches!(error, Error::RequestLimitExceeded { .. }) || error.status() == Some(429) {
        return retry_if(retry_on_request_limit);
    }
    if sent == Sent::No {
        return retry_if(error.is_transient());
    }
    let unsafe_to_repeat = idempotency == Idempotency::NonIdempotent;
    let after_sending = if unsafe_to_repeat {
        Decision::StopOutcomeUnknown
    } else {
        Decision::Retry
    };
    match error {
        Error::Transport { kind, .. } if kind.certainly_not_sent() => Decision::Retry,
        Error::Transport { .. } => after_sending,
        // The edge could not reach the instance, or the instance refused to take it.
        Error::Api {
            status: 502 | 503, ..
        }
        | Error::OAuth {
            status: 502 | 503, ..
        } => Decision::Retry,
        Error::Api { status, .. } | Error::OAuth { status, .. } if *status >= 500 => after_sending,
        _ => Decision::Stop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ApiError, TransportKind};
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn api(status: u16, code: &str) -> Error {
        Error::Api {
            status,
            errors: vec![ApiError::new(code, "x")],
        }
    }

    fn transport(kind: TransportKind) -> Error {
        Error::Transport {
            kind,
            message: "x".into(),
        }
    }

    #[test]
    fn backoff_ceiling_doubles_up_to_the_cap() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        let ceilings: Vec<u128> = (1..=7).map(|n| policy.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, vec![100, 200, 400, 800, 1000, 1000, 1000]);
        // Huge retry counts neither overflow nor exceed the cap.
        assert_eq!(policy.ceiling(u32::MAX), Duration::from_secs(1));
        assert_eq!(policy.ceiling(0), Duration::from_millis(100));
    }

    #[test]
    fn jitter_stays_within_the_ceiling_and_spreads() {
        let policy = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(7);
        for retry in 1..=6 {
            let ceiling = policy.ceiling(retry);
            let delays: Vec<Duration> = (0..200).map(|_| policy.delay(retry, &mut rng)).collect();
            assert!(delays.iter().all(|d| *d <= ceiling));
            // Full jitter: both short and long waits occur.
            assert!(delays.iter().any(|d| *d < ceiling / 4));
            assert!(delays.iter().any(|d| *d > ceiling * 3 / 4));
        }
        let zero = RetryPolicy {
            base_delay: Duration::ZERO,
            ..policy
        };
        assert_eq!(zero.delay(3, &mut rng), Duration::ZERO);
    }

    #[test]
    fn default_policy_is_sensible() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.max_attempts, 4);
        assert_eq!(RetryPolicy::none().max_attempts, 1);
    }

    #[test]
    fn idempotent_requests_retry_every_transient_failure() {
        use Decision::*;
        let i = Idempotency::Idempotent;
        for (error, expected) in [
            (transport(TransportKind::Connect), Retry),
            (transport(TransportKind::Timeout), Retry),
            (transport(TransportKind::Interrupted), Retry),
            (api(500, "UNKNOWN_EXCEPTION"), Retry),
            (api(502, ""), Retry),
            (api(503, ""), Retry),
            (api(504, ""), Retry),
            (api(400, "MALFORMED_QUERY"), Stop),
            (api(401, "INVALID_SESSION_ID"), Stop),
            (api(403, "INSUFFICIENT_ACCESS"), Stop),
            (api(404, "NOT_FOUND"), Stop),
            (api(409, ""), Stop),
            (Error::decode("x", "y"), Stop),
        ] {
            assert_eq!(classify(&error, Sent::Maybe, i, false), expected, "{error}");
        }
    }

    #[test]
    fn non_idempotent_requests_retry_only_when_certainly_unprocessed() {
        use Decision::*;
        let n = Idempotency::NonIdempotent;
        for (error, expected) in [
            (transport(TransportKind::Connect), Retry),
            (api(502, ""), Retry),
            (api(503, ""), Retry),
            (transport(TransportKind::Timeout), StopOutcomeUnknown),
            (transport(TransportKind::Interrupted), StopOutcomeUnknown),
            (api(500, "UNKNOWN_EXCEPTION"), StopOutcomeUnknown),
            (api(504, ""), StopOutcomeUnknown),
            (api(400, "DUPLICATE_USERNAME"), Stop),
            (api(404, "NOT_FOUND"), Stop),
        ] {
            assert_eq!(classify(&error, Sent::Maybe, n, false), expected, "{error}");
        }
    }

    #[test]
    fn request_limit_retries_only_when_configured() {
        let limit = Error::RequestLimitExceeded {
            message: "TotalRequests Limit exceeded.".into(),
        };
        let too_many = api(429, "");
        for idempotency in [Idempotency::Idempotent, Idempotency::NonIdempotent] {
            for error in [&limit, &too_many] {
                assert_eq!(
                    classify(error, Sent::Maybe, idempotency, true),
                    Decision::Retry
                );
                assert_eq!(
                    classify(error, Sent::Maybe, idempotency, false),
                    Decision::Stop
                );
            }
        }
    }

    #[test]
    fn failures_before_sending_never_make_the_outcome_unknown() {
        let n = Idempotency::NonIdempotent;
        // The token endpoint timed out: the POST itself was never sent.
        assert_eq!(
            classify(&transport(TransportKind::Timeout), Sent::No, n, false),
            Decision::Retry
        );
        let refused = Error::OAuth {
            status: 400,
            error: "invalid_grant".into(),
            description: "user hasn't approved this consumer".into(),
        };
        assert_eq!(classify(&refused, Sent::No, n, false), Decision::Stop);
        let down = Error::OAuth {
            status: 500,
            error: String::new(),
            description: String::new(),
        };
        assert_eq!(classify(&down, Sent::No, n, false), Decision::Retry);
    }

    #[test]
    fn methods_map_to_idempotency() {
        assert_eq!(
            Idempotency::of_method(&reqwest::Method::POST),
            Idempotency::NonIdempotent
        );
        for method in [
            reqwest::Method::GET,
            reqwest::Method::PATCH,
            reqwest::Method::DELETE,
            reqwest::Method::PUT,
        ] {
            assert_eq!(Idempotency::of_method(&method), Idempotency::Idempotent);
        }
    }
}
