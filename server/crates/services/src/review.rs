//! What the approvers' pages show, assembled from the rooms below: the queue page, a
//! request under review (its detail, blast radius, the org's objects, which records can be
//! shared, the decision form's starting values) and a grant's provisioning. The types are
//! `shared::review`'s; this module is the one place they are built.

use shared::GrantState;
use shared::budget::Budget;
use shared::org::OrgObject;
use shared::review::{
    DecisionRow, EventRow, EvidenceRow, Proposal, ProvisioningView, QueuePage, QueueRow,
    RecordSharingRow, RequestView, StepRow,
};

use crate::Portal;
use crate::clock::rfc3339;
use crate::decisions::QueueFilter;
use crate::ending::Reader;

/// How many of the grants that end soonest a run stopped for lack of a licence names.
const ENDING_SOONEST_SHOWN: i64 = 5;

/// A stored value the vocabulary does not know: the database is not as the portal wrote it.
fn corrupt(e: shared::UnknownValue) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(e))
}

impl Portal {
    /// One page of the approvers' queue, with each request's age.
    pub async fn queue_page(&self, filter: &QueueFilter) -> Result<QueuePage, sqlx::Error> {
        let view = self.queue(filter).await?;
        let now = self.clock.now_ms();
        Ok(QueuePage {
            rows: view
                .items
                .into_iter()
                .map(|i| QueueRow {
                    age_hours: (now - i.created_at) / 3_600_000,
                    created_at: rfc3339(i.created_at),
                    id: i.id,
                    company: i.company,
                    contact_name: i.contact_name,
                    contact_email: i.contact_email,
                    state: i.state,
                    risky: i.risky,
                    approvals: i.approvals,
                    approvals_required: i.approvals_required,
                    end_date: i.end_date,
                    calls_per_day: i.calls_per_day,
                })
                .collect(),
            counts: view.counts,
            next_cursor: view.next_cursor,
            extensions: self.extension_queue().await?,
        })
    }

    /// Request `id` as approver `viewer` reviews it. The org's answers (blast radius,
    /// objects, sharing models) are best effort: when the org cannot be asked the page says
    /// so and still shows the request.
    pub async fn review_request(
        &self,
        id: &str,
        viewer: &str,
    ) -> Result<Option<RequestView>, sqlx::Error> {
        let Some(detail) = self.request_detail(id).await? else {
            return Ok(None);
        };
        let (blast, blast_error) = match self.blast_radius(&detail.scope).await {
            Ok(blast) => (Some(blast), None),
            Err(e) => {
                tracing::warn!(error = %e, "blast radius failed");
                (
                    None,
                    Some(
                        "The org could not be asked right now; the blast radius is not available."
                            .to_string(),
                    ),
                )
            }
        };
        let org_objects: Vec<OrgObject> = self
            .org_objects()
            .await
            .map(|objects| objects.into_iter().map(OrgObject::grantable).collect())
            .unwrap_or_default();
        // Record sharing is offered only where the objects' sharing models allow a share.
        let mut sharing_objects: Vec<String> = org_objects.iter().map(|o| o.name.clone()).collect();
        for object in &detail.scope.objects {
            if !sharing_objects.contains(&object.object) {
                sharing_objects.push(object.object.clone());
            }
        }
        let (record_sharing, record_sharing_error) = match self
            .record_sharing(&sharing_objects)
            .await
        {
            Ok(rows) => (
                rows.into_iter()
                    .map(|r| RecordSharingRow {
                        object: r.object,
                        offered: r.offered,
                        note: r.note,
                    })
                    .collect(),
                None,
            ),
            Err(e) => {
                tracing::warn!(error = %e, "sharing models could not be read");
                (
                        Vec::new(),
                        Some(
                            "The org's sharing models could not be read right now, so it is not known which objects' records can be shared; approving checks again."
                                .to_string(),
                        ),
                    )
            }
        };
        let default_budget = Budget::default_for(detail.calls_per_day.max(1) as u64);
        let earlier = detail
            .decisions
            .iter()
            .rev()
            .find(|d| d.decision == "approved" && d.scope.is_some());
        let proposal = match earlier {
            Some(d) => Proposal {
                scope: d.scope.clone().unwrap_or_else(|| detail.scope.clone()),
                budget: d.budget.clone().unwrap_or(default_budget),
                end_date: d
                    .end_date
                    .clone()
                    .unwrap_or_else(|| detail.end_date.clone()),
                ip_ranges: d.ip_ranges.clone(),
                from_approver: Some(d.approver.clone()),
            },
            None => Proposal {
                scope: detail.scope.clone(),
                budget: default_budget,
                end_date: detail.end_date.clone(),
                ip_ranges: detail.ip_ranges.clone(),
                from_approver: None,
            },
        };
        Ok(Some(RequestView {
            proposal,
            id: detail.id,
            company: detail.company,
            contact_name: detail.contact_name,
            contact_email: detail.contact_email,
            justification: detail.justification,
            state: detail.state,
            scope: detail.scope,
            calls_per_day: detail.calls_per_day,
            ip_ranges: detail.ip_ranges,
            end_date: detail.end_date,
            created_at: rfc3339(detail.created_at),
            risky: detail.risky,
            risks: detail.risks,
            approvals_required: detail.approvals_required,
            decisions: detail
                .decisions
                .into_iter()
                .map(|d| DecisionRow {
                    approver: d.approver,
                    decision: d.decision,
                    reason: d.reason,
                    at: rfc3339(d.at),
                    changes: d.scope_changes,
                })
                .collect(),
            events: detail
                .events
                .into_iter()
                .map(|e| EventRow {
                    at: rfc3339(e.at),
                    message: e.message,
                    internal: !e.visible_to_contractor,
                })
                .collect(),
            blast,
            blast_error,
            org_objects,
            record_sharing,
            record_sharing_error,
            viewer: viewer.to_string(),
        }))
    }

    /// The provisioning of the grant made from request `request_id` (None before it is
    /// approved), with where its credential stands once the grant is usable.
    pub async fn provisioning_view(
        &self,
        request_id: &str,
    ) -> Result<Option<ProvisioningView>, sqlx::Error> {
        let Some(progress) = crate::provisioning::progress(&self.db, request_id).await? else {
            return Ok(None);
        };
        let state = GrantState::parse(&progress.state).map_err(corrupt)?;
        let credential = if state.is_usable() {
            Some(self.credential_status(&progress.grant_id).await?)
        } else {
            None
        };
        let access_end = crate::ending::access_end(&self.db, request_id, Reader::Staff).await?;
        // Stopped for lack of a licence: one comes free when the grants ending soonest end.
        let ending_soonest = if state == GrantState::NeedsAttention
            && progress
                .attention
                .as_deref()
                .is_some_and(crate::org_failure::is_licence_shortage)
        {
            crate::ending::ending_soonest(&self.db, ENDING_SOONEST_SHOWN).await?
        } else {
            Vec::new()
        };
        Ok(Some(ProvisioningView {
            credential,
            access_end,
            ending_soonest,
            state,
            attention: progress.attention,
            api_calls: progress.api_calls,
            steps: progress
                .steps
                .into_iter()
                .map(|s| {
                    Ok(StepRow {
                        label: s.label,
                        state: shared::StepState::parse(&s.state).map_err(corrupt)?,
                        attempts: s.attempts,
                        last_error: s.last_error,
                    })
                })
                .collect::<Result<_, sqlx::Error>>()?,
            evidence: progress
                .evidence
                .into_iter()
                .map(|c| EvidenceRow {
                    check: c.check,
                    expected: c.expected,
                    observed: c.observed,
                    pass: c.pass,
                })
                .collect(),
        }))
    }
}
