//! What the security reviewers' pages show: a page of found entries, one entry in full,
//! and what verifying the chain found. The types are `shared::audit`'s; they are built here.

use shared::audit::{AuditPage, AuditQuery, AuditRow, EntryView, VerifyView};

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

    /// Verifies the chain over entries `from..=to` (each optional, at least 1) with its
    /// anchors.
    pub async fn audit_verify(
        &self,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<VerifyView, AuditViewError> {
        let number = |label: &'static str, raw: Option<&str>| match given(raw) {
            None => Ok(None),
            Some(raw) => match raw.parse::<i64>() {
                Ok(n) if n >= 1 => Ok(Some(n)),
                _ => Err(AuditViewError::RangeEnd(raw.to_string(), label)),
            },
        };
        let from = number("from", from)?;
        let to = number("to", to)?;
        if let (Some(from), Some(to)) = (from, to)
            && to < from
        {
            return Err(AuditViewError::Backwards);
        }
        let found = super::anchor::verify_anchored(&self.db, &self.audit_anchor, from, to).await?;
        let anchors = found.anchors;
        Ok(match found.chain {
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
        })
    }
}
