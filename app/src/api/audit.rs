//! The security reviewers' side: finding audit entries, one entry in full, and verifying
//! the hash chain. Security reviewers and owners only; nothing here changes anything.
//! (The streamed exports and the evidence pack are plain routes of the server, because they
//! are downloads: `/audit/export.csv`, `/audit/export.jsonl`, `/audit/evidence/{grant}`.)

// A server function's arguments are its form's fields, one each.
#![allow(clippy::too_many_arguments)]

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// Who may read the audit log.
pub fn reviewer_or_owner(roles: &shared::auth::Roles) -> bool {
    roles.security_reviewer || roles.owner
}

/// One entry as the list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub actor_ip: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub outcome: String,
    /// The details, shortened for the table.
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    pub rows: Vec<AuditRow>,
    /// The cursor of the next (older) page.
    pub next_before: Option<i64>,
    /// Entries in the whole log.
    pub total: i64,
    /// The filter as URL parameters, for the export links and the next page.
    pub query: String,
    /// The grant the filter is about, when it names one (for the evidence pack link).
    pub grant: Option<String>,
}

/// One entry in full.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryView {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub actor_ip: String,
    pub user_agent: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub outcome: String,
    /// Pretty-printed JSON.
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

/// What "Verify chain" found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VerifyView {
    Intact {
        entries: i64,
        first_seq: i64,
        last_seq: i64,
        anchors: AnchorsView,
    },
    Broken {
        seq: i64,
        problem: String,
        detail: String,
        anchors: AnchorsView,
    },
}

/// What the chain's anchors (HMACs under a key kept outside the database) vouch for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnchorsView {
    /// Anchors are made every this many entries, and at shutdown.
    pub every: i64,
    /// Anchors made with this portal's key that hold.
    pub checked: i64,
    /// Entries up to here are vouched for by an anchor (0: none).
    pub anchored_through: i64,
    /// From here on the log is only self-consistent.
    pub self_consistent_from: Option<i64>,
    /// Anchors made with another key (not checkable here).
    pub other_keys: i64,
    /// Anchoring is behind or anchors were deleted.
    pub overdue: bool,
}

#[cfg(feature = "ssr")]
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

#[server(endpoint = "audit_search")]
pub async fn audit_search(
    actor: Option<String>,
    action: Option<String>,
    target_type: Option<String>,
    target_id: Option<String>,
    outcome: Option<String>,
    from: Option<String>,
    to: Option<String>,
    q: Option<String>,
    before: Option<String>,
) -> Result<AuditPage, ServerFnError> {
    use super::ssr::{internal, portal, refuse, require};
    use services::audit::search::{self, Query};
    use shared::auth::Role;
    require(&[Role::SecurityReviewer, Role::Owner]).await?;
    let portal = portal()?;
    let query = Query {
        actor,
        action,
        target_type,
        target_id,
        outcome,
        from,
        to,
        q,
    };
    let filter = query
        .filter()
        .map_err(|e| refuse(400, &format!("The filter's {e}.")))?;
    let before = match before.as_deref().map(str::trim).filter(|b| !b.is_empty()) {
        None => None,
        Some(raw) => Some(
            raw.parse::<i64>()
                .map_err(|_| refuse(400, &format!("'{raw}' is not a page cursor.")))?,
        ),
    };
    let page = search::search(&portal.db, &filter, before, 50)
        .await
        .map_err(internal)?;
    let total = search::total(&portal.db).await.map_err(internal)?;
    let grant = match (&filter.target_type, &filter.target_id) {
        (Some(t), Some(id)) if t == "grant" => Some(id.clone()),
        _ => None,
    };
    Ok(AuditPage {
        rows: page
            .entries
            .into_iter()
            .map(|e| AuditRow {
                at: services::clock::rfc3339(e.at),
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

#[server(endpoint = "audit_entry")]
pub async fn audit_entry(seq: String) -> Result<Option<EntryView>, ServerFnError> {
    use super::ssr::{internal, portal, refuse, require};
    use shared::auth::Role;
    require(&[Role::SecurityReviewer, Role::Owner]).await?;
    let portal = portal()?;
    let seq: i64 = seq
        .trim()
        .parse()
        .map_err(|_| refuse(400, &format!("'{seq}' is not an entry number.")))?;
    let Some(e) = services::audit::search::entry(&portal.db, seq)
        .await
        .map_err(internal)?
    else {
        return Ok(None);
    };
    let details = e.pretty_details();
    Ok(Some(EntryView {
        at: services::clock::rfc3339(e.at),
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

#[server(endpoint = "audit_verify")]
pub async fn audit_verify(
    from_seq: Option<String>,
    to_seq: Option<String>,
) -> Result<VerifyView, ServerFnError> {
    use super::ssr::{internal, portal, refuse, require};
    use services::audit::Verification;
    use shared::auth::Role;
    require(&[Role::SecurityReviewer, Role::Owner]).await?;
    let portal = portal()?;
    let number = |label: &str, raw: Option<String>| -> Result<Option<i64>, ServerFnError> {
        match raw.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(raw) => match raw.parse::<i64>() {
                Ok(n) if n >= 1 => Ok(Some(n)),
                _ => Err(refuse(
                    400,
                    &format!("'{raw}' is not an entry number ({label})."),
                )),
            },
        }
    };
    let from = number("from", from_seq)?;
    let to = number("to", to_seq)?;
    if let (Some(from), Some(to)) = (from, to)
        && to < from
    {
        return Err(refuse(400, "The range ends before it starts."));
    }
    let found =
        services::audit::anchor::verify_anchored(&portal.db, &portal.audit_anchor, from, to)
            .await
            .map_err(internal)?;
    let report = found.anchors;
    let anchors = AnchorsView {
        every: report.every,
        checked: report.checked,
        anchored_through: report.anchored_through,
        self_consistent_from: report.self_consistent_from,
        other_keys: report.other_keys,
        overdue: report.overdue,
    };
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
