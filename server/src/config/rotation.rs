//! Settings of the rotation policy: how old a grant's secret may get, and how long a
//! rotation keeps the old secret working beside the new one.

use super::setting::{number, settings};

settings! {
    /// Secret rotation.
    pub const ROTATION = [
        SECRET_MAX_AGE_DAYS: i64 {
            default: Value("90"),
            parse: |raw| number(raw, 0..=3_650).map(|n| n as i64),
            help: "the maximum age of a grant's secret in days before it is rotated (0: never; approvers may set a grant's own on its page; 0 to 3650)",
        },
        SECRET_OVERLAP_DAYS: i64 {
            default: Value("7"),
            parse: |raw| number(raw, 1..=29).map(|n| n as i64),
            help: "how long a rotation keeps the old secret working beside the new one before retiring it (1 to 29 days; staged credentials expire after 30)",
        },
    ];
}
