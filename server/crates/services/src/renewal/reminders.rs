//! Reminders of a grant's end date: to the contractor and to the approvers, 14, 3 and 1
//! days before it (a ready, active or suspended grant), each once.
//!
//! Once: a `renewal_reminders` row (grant, end date, threshold) is inserted in the
//! transaction that queues the mail and writes the audit entry; a second run, a restarted
//! portal or another instance finds the row (`ON CONFLICT DO NOTHING` inserts nothing) and
//! sends nothing. The end date is part of the key, so an extension's new end date is
//! reminded of again.
//!
//! Only the nearest threshold: a run sends, for each grant, the reminder of the smallest
//! threshold it has reached (days left ≤ threshold), never the larger ones it has passed.
//! A grant created (or extended) 10 days before its end gets the 14-day reminder at once
//! (saying 10 days), then the 3- and 1-day ones; one created 2 days before gets only the
//! 3-day reminder, then the 1-day one; a portal that was down through the 3-day mark sends
//! only the 1-day one. Days left are counted in whole UTC days from the clock's today to
//! the end date (the last day of access); the end date itself is day 0 and gets the 1-day
//! reminder if it has not had it.

use chrono::NaiveDate;
use serde_json::json;
use shared::GrantState;

use crate::Portal;
use crate::audit::{self, Actor, AuditAction, Target};
use crate::mail::Mail;
use crate::org_name::OrgName;

use super::{GrantRow, RENEWABLE};

/// The thresholds, in days before the end date, largest first.
pub const REMINDER_DAYS: [i64; 3] = [14, 3, 1];

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReminderRun {
    /// (grant id, threshold) of each reminder sent.
    pub sent: Vec<(String, i64)>,
}

/// The threshold whose reminder is due with `days_left` days to go: the smallest one
/// reached, or none (too early, or past the end).
pub fn due_threshold(days_left: i64) -> Option<i64> {
    if days_left < 0 {
        return None;
    }
    REMINDER_DAYS
        .iter()
        .rev()
        .copied()
        .find(|threshold| days_left <= *threshold)
}

fn reminder_mail(
    org: &OrgName,
    to: &str,
    grant: &GrantRow,
    days_left: i64,
    for_approvers: bool,
) -> Mail {
    let when = match days_left {
        0 => "today".to_string(),
        1 => "tomorrow".to_string(),
        n => format!("in {n} days"),
    };
    if for_approvers {
        Mail {
            to: to.to_string(),
            subject: format!("{}'s API access ends {when}", grant.company),
            body: format!(
                "Hello,\n\n{}'s API access (grant {}) ends {when}, at the end of {}.\n\n\
                 If the work goes on, the contractor can ask for more time from their status \
                 page; the request will appear in the review queue. Otherwise nothing needs \
                 doing: access ends on that date.\n",
                grant.company, grant.id, grant.end_date
            ),
        }
    } else {
        Mail {
            to: to.to_string(),
            subject: format!("{}'s API access ends {when}", grant.company),
            body: format!(
                "Hello,\n\n{}'s API access to {}'s Salesforce ends {when}, at the end of {} \
                 (UTC). After that the credential stops working.\n\n\
                 If you need longer, open your status page (the link in your confirmation \
                 email) and press \"Ask for more time\" with the new end date and the reason; \
                 {}'s approvers will decide.\n",
                grant.company, org, grant.end_date, org
            ),
        }
    }
}

impl Portal {
    /// Sends the reminders that are due (see the module's documentation), each once.
    pub async fn send_renewal_reminders(&self) -> Result<ReminderRun, sqlx::Error> {
        let today = self.clock().today();
        let grants: Vec<GrantRow> = sqlx::query_as(
            "SELECT g.id, g.request_id, g.state, g.company, g.contact_email, g.scope, g.end_date, \
             r.approvals_required FROM grants g JOIN access_requests r ON r.id = g.request_id \
             WHERE g.state IN ($1, $2, $3) ORDER BY g.end_date, g.id",
        )
        .bind(RENEWABLE[0].as_str())
        .bind(RENEWABLE[1].as_str())
        .bind(RENEWABLE[2].as_str())
        .fetch_all(self.db.pool())
        .await?;
        let mut run = ReminderRun::default();
        for grant in grants {
            let Ok(end) = NaiveDate::parse_from_str(&grant.end_date, "%Y-%m-%d") else {
                tracing::warn!(grant = %grant.id, end_date = %grant.end_date, "a grant's end date cannot be read");
                continue;
            };
            let days_left = (end - today).num_days();
            let Some(threshold) = due_threshold(days_left) else {
                continue;
            };
            if self.send_reminder(&grant, threshold, days_left).await? {
                run.sent.push((grant.id.clone(), threshold));
            }
        }
        if !run.sent.is_empty() {
            self.mail.wake();
        }
        Ok(run)
    }

    /// Sends one reminder unless it was sent; whether it was sent now.
    async fn send_reminder(
        &self,
        grant: &GrantRow,
        threshold: i64,
        days_left: i64,
    ) -> Result<bool, sqlx::Error> {
        let org = self.org_name().await;
        let mut tx = self.db.begin_write().await?;
        // The grant may have changed since it was listed (revoked, extended): read it again
        // in the transaction.
        let Some(current) = super::grant_in(&mut tx.tx, self.db.kind(), &grant.id).await? else {
            return Ok(false);
        };
        if !current.renewable() || current.end_date != grant.end_date {
            return Ok(false);
        }
        let now = self.clock().now_ms();
        let inserted = sqlx::query(
            "INSERT INTO renewal_reminders (grant_id, end_date, days_before, sent_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (grant_id, end_date, days_before) DO NOTHING",
        )
        .bind(&grant.id)
        .bind(&grant.end_date)
        .bind(threshold)
        .bind(now)
        .execute(&mut *tx.tx)
        .await?;
        if inserted.rows_affected() != 1 {
            // Sent before (this instance or another).
            return Ok(false);
        }
        let approvers = crate::roles::approver_emails(&mut tx.tx).await?;
        self.mail
            .queue(
                &mut tx.tx,
                &reminder_mail(&org, &grant.contact_email, grant, days_left, false),
            )
            .await?;
        for to in &approvers {
            self.mail
                .queue(&mut tx.tx, &reminder_mail(&org, to, grant, days_left, true))
                .await?;
        }
        super::history(
            &mut tx.tx,
            now,
            &grant.request_id,
            "renewal_reminder",
            &format!(
                "Reminder sent: access ends on {} ({} days left).",
                grant.end_date,
                days_left.max(0)
            ),
            true,
        )
        .await?;
        audit::record(
            &mut tx.tx,
            &Actor::system(),
            AuditAction::GrantRenewalReminderSent,
            Target::Grant,
            &grant.id,
            json!({
                "request_id": grant.request_id,
                "company": grant.company,
                "end_date": grant.end_date,
                "days_before": threshold,
                "days_left": days_left,
                "to": grant.contact_email,
                "approvers": approvers,
                "grant_state": current.grant_state().map(GrantState::as_str),
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smallest_threshold_reached_is_due() {
        assert_eq!(due_threshold(30), None);
        assert_eq!(due_threshold(15), None);
        assert_eq!(due_threshold(14), Some(14));
        assert_eq!(due_threshold(10), Some(14));
        assert_eq!(due_threshold(4), Some(14));
        assert_eq!(due_threshold(3), Some(3));
        assert_eq!(due_threshold(2), Some(3));
        assert_eq!(due_threshold(1), Some(1));
        assert_eq!(due_threshold(0), Some(1));
        assert_eq!(due_threshold(-1), None);
    }
}
