//! Portcullis's domain types — a contractor's email, IP ranges, the access asked for, the
//! API budget — with the validation that makes invalid values impossible to construct, and
//! the data transfer types of the pages. Compiled into the server and into the browser
//! (so forms can be checked as they are typed), so it depends on nothing heavier than serde.

// The workspace denies unwrap, expect and panic; unit tests may use them.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod access_review;
pub mod assurance;
pub mod audit;
pub mod auth;
pub mod blast;
pub mod budget;
pub mod doctor;
pub mod ending;
pub mod fields;
pub mod grant;
pub mod org;
pub mod records;
pub mod renewal;
pub mod request;
pub mod reveal;
pub mod review;
pub mod rotation;
pub mod scope;
pub mod usage;
pub mod vocabulary;

pub use audit::{AuditAction, Target};
pub use budget::{Budget, HardAction};
pub use fields::{FieldError, FieldErrors};
pub use grant::{GrantId, GrantState, StepName, StepState};
pub use request::RequestId;
pub use vocabulary::UnknownValue;
