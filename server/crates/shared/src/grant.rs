//! A grant's vocabulary: the states a grant and its provisioning steps go through, the
//! steps' names, and the grant's id. The stored text is what `grants.state`,
//! `provisioning_steps.state` and `provisioning_steps.step` hold.

use crate::vocabulary::{id, vocabulary};

id! {
    /// A grant's id (`grants.id`).
    GrantId
}

vocabulary! {
    /// Where a grant stands, from approval to cancellation.
    pub enum GrantState: "a grant state" {
        /// Approved; no worker has started its provisioning yet.
        Approved = "approved", "waiting for a worker";
        /// Workers are running its steps.
        Provisioning = "provisioning", "in progress";
        /// A step failed for good: an admin retries or cancels.
        NeedsAttention = "needs_attention", "needs attention";
        /// Every step succeeded and the least-privilege proof passed.
        Ready = "ready", "ready: the proof passed";
        /// The contractor collected the credential.
        Active = "active", "active: the contractor collected the credential";
        /// Over its budget (or called from outside its IP ranges): access suspended until
        /// an approver lifts it.
        Suspended = "suspended", "suspended: the API budget was used up (lift it on the API usage page)";
        /// Cancelled while steps had run: workers undo them.
        Cancelling = "cancelling", "cancelling: undoing what was made";
        Cancelled = "cancelled", "cancelled";
        /// An approver or owner revoked it: workers take its access away (the token and the
        /// user first, then everything provisioning made, newest first).
        Revoking = "revoking", "revoking: access is being taken away";
        /// Revoked and torn down: nothing of it is left in the org but the deactivated user.
        Revoked = "revoked", "revoked: access was taken away";
        /// Past its end date: workers take its access away as for a revoke.
        Expiring = "expiring", "expiring: the end date passed, access is being taken away";
        /// Ended on its end date and torn down.
        Expired = "expired", "expired: access ended on the end date";
    }
}

impl GrantState {
    /// Nothing more happens to the grant without an admin.
    pub fn is_settled(self) -> bool {
        matches!(
            self,
            Self::Ready
                | Self::Active
                | Self::NeedsAttention
                | Self::Cancelled
                | Self::Suspended
                | Self::Revoked
                | Self::Expired
        )
    }

    /// Access is being taken away (a teardown is running).
    pub fn is_ending(self) -> bool {
        matches!(self, Self::Revoking | Self::Expiring)
    }

    /// Access ended for good (revoked or expired, and torn down).
    pub fn has_ended(self) -> bool {
        matches!(self, Self::Revoked | Self::Expired)
    }

    /// A grant in this state can be revoked: its credential exists (or is suspended).
    pub fn is_revocable(self) -> bool {
        matches!(self, Self::Ready | Self::Active | Self::Suspended)
    }

    /// The credential exists and may be used (or collected).
    pub fn is_usable(self) -> bool {
        matches!(self, Self::Ready | Self::Active)
    }
}

vocabulary! {
    /// Where one provisioning step stands (forward, then undo when the grant is cancelled,
    /// revoked or expired: a teardown undoes the steps as a cancel does).
    pub enum StepState: "a step state" {
        /// Waiting for a worker (first run, or a retry after a transient failure).
        Pending = "pending", "pending";
        /// Leased by a worker.
        Running = "running", "running";
        Succeeded = "succeeded", "succeeded";
        /// Failed for good: the grant needs attention.
        Failed = "failed", "failed";
        /// The grant was cancelled before the step started.
        Cancelled = "cancelled", "cancelled";
        /// Being undone (the grant is cancelling).
        Undoing = "undoing", "undoing";
        Undone = "undone", "undone";
    }
}

vocabulary! {
    /// The provisioning steps, in the order they run.
    pub enum StepName: "a provisioning step" {
        User = "user", "Integration user";
        Licence = "licence", "API integration licence";
        PermissionSet = "permission_set", "Permission set and its permissions";
        Assignment = "assignment", "Permission set assignment (expires with the grant)";
        Visibility = "visibility", "Record visibility";
        App = "app", "External Client App (deploy started)";
        AppDeployed = "app_deployed", "External Client App (deployed)";
        Consumer = "consumer", "The app's OAuth consumer";
        Proof = "proof", "Least-privilege proof";
        Restrict = "restrict", "IP ranges recorded on the app (checked in the usage files)";
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocabulary::check;

    #[test]
    fn every_value_round_trips_and_none_is_listed_twice() {
        check(GrantState::ALL, GrantState::as_str, GrantState::label);
        check(StepState::ALL, StepState::as_str, StepState::label);
        check(StepName::ALL, StepName::as_str, StepName::label);
    }

    #[test]
    fn an_unknown_state_is_named_in_the_error() {
        let error = GrantState::parse("frozen").unwrap_err();
        assert_eq!(error.to_string(), "'frozen' is not a grant state");
        assert_eq!(
            StepState::parse("done").unwrap_err().to_string(),
            "'done' is not a step state"
        );
    }

    #[test]
    fn ids_are_their_text() {
        let id = GrantId::new("g-1");
        assert_eq!(id.as_str(), "g-1");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"g-1\"");
        assert_eq!(serde_json::from_str::<GrantId>("\"g-1\"").unwrap(), id);
    }
}
