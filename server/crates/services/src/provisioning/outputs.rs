//! What each step found or made, as types: written to `provisioning_steps.output` (and the
//! audit entry) as JSON, read back by later steps, the undo, the proof and the admin pages.
//!
//! The JSON is the one the steps wrote before they were typed (same keys, same order, the
//! same keys left out), so rows already in a database read back. Reading is lenient: a key
//! an older row lacks takes its default, and an output that cannot be read counts as not
//! recorded (the step that needs it then looks in the org or fails with "recorded no ...").

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Step;
use super::proof::Check;

/// The integration user (and, when its composite got that far, its licence assignment).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserMade {
    pub user_id: String,
    pub username: String,
    pub found: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub licence_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub licence_assignment_id: Option<String>,
}

/// The permission set licence assignment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LicenceMade {
    pub licence_assignment_id: String,
    pub licence_id: String,
    pub found: bool,
}

/// The permission set with its permissions, and the app permission set (on a first attempt
/// the composite also assigned both).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PermissionSetMade {
    pub permission_set_id: String,
    pub permission_set: String,
    pub found: bool,
    pub objects: usize,
    pub fields: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignment_id: Option<String>,
    pub app_permission_set_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_assignment_id: Option<String>,
}

/// Both permission set assignments.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AssignmentMade {
    pub assignment_id: String,
    pub app_assignment_id: String,
    pub expires: String,
    pub found: bool,
}

/// A record the owned rule transferred, and to whom it goes back.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OwnedRecord {
    pub object: String,
    pub id: String,
    pub previous_owner: Option<String>,
}

/// Record visibility, by rule: the manual shares (shared), the transferred records
/// (owned), or the group membership (group). The chosen records by object for the first
/// two.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VisibilityMade {
    pub rule: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shares: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owned: Option<Vec<OwnedRecord>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records: Option<BTreeMap<String, Vec<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_member_id: Option<String>,
}

/// The started deploy of the app.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AppMade {
    pub deploy_id: String,
    pub app: String,
}

/// The finished deploy, and the id Connect REST knows the app by.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AppDeployedMade {
    pub app_id: String,
    pub deploy_id: String,
    pub deployed_at: Option<i64>,
}

/// The app's OAuth consumer (the key is not a secret).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumerMade {
    pub app_id: String,
    pub consumer_id: String,
    pub consumer_key: String,
}

/// The proof's evidence (a failed proof records nothing: the step fails).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProofMade {
    pub passed: bool,
    pub checks: Vec<Check>,
}

/// The trusted IP ranges applied to the app (none: nothing deployed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RestrictMade {
    pub ip_ranges: Vec<String>,
    pub deployed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deploy_id: Option<String>,
}

/// What one step found or made.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum StepOutput {
    User(UserMade),
    Licence(LicenceMade),
    PermissionSet(PermissionSetMade),
    Assignment(AssignmentMade),
    Visibility(VisibilityMade),
    App(AppMade),
    AppDeployed(AppDeployedMade),
    Consumer(ConsumerMade),
    Proof(ProofMade),
    Restrict(RestrictMade),
}

impl StepOutput {
    /// The output `step` stored as `raw`, or None when it cannot be read.
    pub fn parse(step: Step, raw: &str) -> Option<Self> {
        fn read<T: serde::de::DeserializeOwned>(raw: &str) -> Option<T> {
            serde_json::from_str(raw).ok()
        }
        Some(match step {
            Step::User => Self::User(read(raw)?),
            Step::Licence => Self::Licence(read(raw)?),
            Step::PermissionSet => Self::PermissionSet(read(raw)?),
            Step::Assignment => Self::Assignment(read(raw)?),
            Step::Visibility => Self::Visibility(read(raw)?),
            Step::App => Self::App(read(raw)?),
            Step::AppDeployed => Self::AppDeployed(read(raw)?),
            Step::Consumer => Self::Consumer(read(raw)?),
            Step::Proof => Self::Proof(read(raw)?),
            Step::Restrict => Self::Restrict(read(raw)?),
        })
    }

    /// As stored and audited.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// What the earlier steps of a run recorded, by step.
#[derive(Debug, Clone, Default)]
pub struct Outputs(BTreeMap<Step, StepOutput>);

macro_rules! recorded {
    ($($name:ident: $variant:ident => $made:ty;)*) => {
        impl Outputs {
            $(
                pub fn $name(&self) -> Option<&$made> {
                    match self.0.get(&Step::$variant) {
                        Some(StepOutput::$variant(made)) => Some(made),
                        _ => None,
                    }
                }
            )*
        }
    };
}

recorded! {
    user: User => UserMade;
    licence: Licence => LicenceMade;
    permission_set: PermissionSet => PermissionSetMade;
    visibility: Visibility => VisibilityMade;
    app: App => AppMade;
    app_deployed: AppDeployed => AppDeployedMade;
    consumer: Consumer => ConsumerMade;
}

impl Outputs {
    /// The consumer in place of the one the consumer step recorded: the grant's current app
    /// after a rotation by a second app ([`crate::eca::current_app`]).
    pub fn set_consumer(&mut self, made: ConsumerMade) {
        self.0.insert(Step::Consumer, StepOutput::Consumer(made));
    }

    /// Adds what `step` stored (ignored when it cannot be read).
    pub fn insert(&mut self, step: Step, raw: &str) {
        if let Some(output) = StepOutput::parse(step, raw) {
            self.0.insert(step, output);
        }
    }
}

/// What the visibility step saves before it transfers records (the owned rule): their
/// previous owners by record id, so that cancelling can give them back after a crash.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Checkpoint {
    pub previous_owners: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Rows written before the outputs were typed read back, and are written the same way.
    #[test]
    fn stored_outputs_read_back_and_keep_their_json() {
        let user = json!({ "user_id": "005000000000001AAA", "username": "u@x", "found": false,
            "licence_id": "0PL000000000001AAA", "licence_assignment_id": "2LA000000000001AAA" });
        let parsed = StepOutput::parse(Step::User, &user.to_string()).unwrap();
        assert_eq!(parsed.to_value().to_string(), user.to_string());

        let shared = json!({ "rule": "shared", "shares": ["02s000000000001AAA"],
            "records": { "Case": ["500000000000001AAA"] } });
        let parsed = StepOutput::parse(Step::Visibility, &shared.to_string()).unwrap();
        assert_eq!(parsed.to_value().to_string(), shared.to_string());

        let owned = json!({ "rule": "owned", "owned": [{ "object": "Case",
            "id": "500000000000001AAA", "previous_owner": null }], "records": {} });
        let parsed = StepOutput::parse(Step::Visibility, &owned.to_string()).unwrap();
        assert_eq!(parsed.to_value().to_string(), owned.to_string());

        let set = json!({ "permission_set_id": "0PS000000000001AAA", "permission_set": "P",
            "found": true, "objects": 1, "fields": 2, "app_permission_set_id": "0PS000000000002AAA" });
        let parsed = StepOutput::parse(Step::PermissionSet, &set.to_string()).unwrap();
        assert_eq!(parsed.to_value().to_string(), set.to_string());

        // An older or hand-written row with fewer keys still reads.
        let mut outputs = Outputs::default();
        outputs.insert(Step::User, r#"{"user_id":"005000000000001AAA"}"#);
        assert_eq!(outputs.user().unwrap().user_id, "005000000000001AAA");
        outputs.insert(Step::Consumer, "not json");
        assert!(outputs.consumer().is_none());
    }
}
