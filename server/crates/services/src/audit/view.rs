//! What the security reviewers' pages show: a page of found entries, one entry in full,
//! and what verifying the chain found (or that it runs in the background). The types are `shared::audit`'s; they are built here.

use shared::audit::{
    AuditPage, AuditQuery, AuditRow, EntryView, VERIFY_INLINE_MAX, VerifyAnswer, VerifyView,
};

use super::Verification;
use super::search::{self, QueryError, ToFilter};
use crate::Portal;
use crate::clock::rfc3339;

/// Why a reviewer's question cannot be answered.
#[derive(Debug, thiserror::Error)]
pub enum AuditViewError {
    #[error("The filter's {0}.")]
    Filter(QueryError),
    #[error("'{0}' is not a page cursor.")]
    Cursor(String),
    #[error("'{0}' is not an entry number.")]
    EntryNumber(String),
    /// `(raw, "from" or "to")`.
    #[error("'{0}' is not an entry number ({1}).")]
    RangeEnd(String, &'static str),
    #[error("The range ends before it starts.")]
    Backwards,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// The details, shortened for the table.
fn summary(details: &str) -> String {
    const MAX: usize = 160;
    if details.chars().count() <= MAX {
        details.to_string()
    } else {
        let mut short: String = details.chars().take(MAX).collect();
        short.push('…');
        short
    }
}

fn given(raw: Option<&str>) -> Option<&str> {
    raw.map(str::trim).filter(|s| !s.is_empty())
}

impl Portal {
    /// The entries `query` finds, 50 a page, older than entry `before` when given.
    pub async fn audit_page(
        &self,
        query: &AuditQuery,
        before: Option<&str>,
    ) -> Result<AuditPage, AuditViewError> {
        let filter = query.filter().map_err(AuditViewError::Filter)?;
        let before = match given(before) {
            None => None,
            Some(raw) => Some(
                raw.parse::<i64>()
                    .map_err(|_| AuditViewError::Cursor(raw.to_string()))?,
            ),
        };
        let page = search::search(&self.db, &filter, before, 50).await?;
        let total = search::total(&self.db).await?;
        let grant = match (&filter.target_type, &filter.target_id) {
            (Some(t), Some(id)) if t == "grant" => Some(id.clone()),
            _ => None,
        };
        Ok(AuditPage {
            rows: page
                .entries
                .into_iter()
                .map(|e| AuditRow {
                    at: rfc3339(e.at),
                    summary: summary(&e.details),
                    seq: e.seq,
                    actor: e.actor,
                    actor_ip: e.actor_ip,
                    action: e.action,
                    target_type: e.target_type,
                    target_id: e.target_id,
                    outcome: e.outcome,
                })
                .collect(),
            next_before: page.next_before,
            total,
            query: query.to_url_query(),
            grant,
        })
    }

    /// Entry number `seq` in full, details pretty-printed.
    pub async fn audit_entry(&self, seq: &str) -> Result<Option<EntryView>, AuditViewError> {
        let number: i64 = seq
            .trim()
            .parse()
            .map_err(|_| AuditViewError::EntryNumber(seq.to_string()))?;
        let Some(e) = search::entry(&self.db, number).await? else {
            return Ok(None);
        };
        let details = e.pretty_details();
        Ok(Some(EntryView {
            at: rfc3339(e.at),
            seq: e.seq,
            actor: e.actor,
            actor_ip: e.actor_ip,
            user_agent: e.user_agent,
            action: e.action,
            target_type: e.target_type,
            target_id: e.target_id,
            outcome: e.outcome,
            details,
            prev_hash: e.prev_hash,
            hash: e.hash,
        }))
    }

    /// "Verify chain" over entries `from..=to` (each optional, at least 1), pressed by
    /// `by`: a range of at most [`VERIFY_INLINE_MAX`] entries is verified with its anchors
    /// here and now; the whole log, a larger range or one open at an end starts the
    /// background verification ([`super::job`]), unless one is running already.
    pub async fn audit_verify(
        &self,
        by: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<VerifyAnswer, AuditViewError> {
        let number = |label: &'static str, raw: Option<&str>| match given(raw) {
            None => Ok(None),
            Some(raw) => match raw.parse::<i64>() {
                Ok(n) if n >= 1 => Ok(Some(n)),
                _ => Err(AuditViewError::RangeEnd(raw.to_string(), label)),
            },
        };
        let from = number("from", from)?;
        let to = number("to", to)?;
        if let (Some(from), Some(to)) = (from, to) {
            if to < from {
                return Err(AuditViewError::Backwards);
            }
            if to - from < VERIFY_INLINE_MAX {
                let found = super::anchor::verify_anchored(
                    &self.db,
                    &self.audit_anchor,
                    Some(from),
                    Some(to),
                )
                .await?;
                return Ok(VerifyAnswer::Checked(view_of(found)));
            }
        }
        Ok(if self.start_audit_verification(by, from, to).await? {
            VerifyAnswer::Started
        } else {
            VerifyAnswer::AlreadyRunning
        })
    }
}

/// What the page shows of a verification with its anchors.
pub fn view_of(found: super::anchor::Checked) -> VerifyView {
    let anchors = found.anchors;
    match found.chain {
        Verification::Intact { entries, last_seq } => VerifyView::Intact {
            entries,
            first_seq: if entries == 0 {
                0
            } else {
                last_seq - entries + 1
            },
            last_seq,
            anchors,
        },
        Verification::Broken {
            seq,
            problem,
            detail,
        } => VerifyView::Broken {
            seq,
            problem: problem.as_str().to_string(),
            detail,
            anchors,
        },
    }
}
