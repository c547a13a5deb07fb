//! Settings of staff sign-in: how long sessions last and how often sign-in may be tried.

use std::time::Duration;

use super::setting::{number, settings};

settings! {
    /// Sessions and the sign-in rate limits.
    pub const SIGN_IN = [
        SESSION_IDLE_MINUTES: Duration {
            default: Value("480"),
            parse: |raw| number(raw, 1..=43_200).map(|m| Duration::from_secs(60 * m)),
            help: "sign-in sessions end after this much inactivity",
        },
        SESSION_MAX_HOURS: Duration {
            default: Value("12"),
            parse: |raw| number(raw, 1..=720).map(|h| Duration::from_secs(3600 * h)),
            help: "sign-in sessions end this long after the sign-in, however active (1 to 720)",
        },
        SESSION_RECHECK_MINUTES: Duration {
            default: Value("5"),
            parse: |raw| number(raw, 0..=60).map(|m| Duration::from_secs(60 * m)),
            help: "how often a signed-in person's standing is read again from the org: deactivated or frozen signs them out, a removed permission set takes its role away (0 to 60; `0`: on every request, one API call each)",
        },
        AUTH_RATE_LIMIT_PER_MINUTE: u32 {
            default: Value("30"),
            parse: |raw| number(raw, 2..=1_000_000).map(|n| n as u32),
            help: "requests to `/auth/login` and `/auth/callback` one client (an IPv4 address, an IPv6 /64) may make a minute (a sign-in is two); more get 429 with `Retry-After`",
        },
        AUTH_GLOBAL_RATE_LIMIT_PER_MINUTE: u32 {
            default: Value("300"),
            parse: |raw| number(raw, 2..=10_000_000).map(|n| n as u32),
            help: "the same for all clients together, per instance",
        },
    ];
}
