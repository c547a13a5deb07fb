//! Who is signed in, and what they may do.

use serde::{Deserialize, Serialize};

/// A person signed in with Salesforce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedInUser {
    pub username: String,
    pub user_id: String,
    pub name: String,
    pub email: String,
    /// Permission sets the user held at sign-in (for permission-set-mapped roles).
    pub permission_sets: Vec<String>,
}

/// Portcullis roles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roles {
    pub approver: bool,
    pub security_reviewer: bool,
    pub owner: bool,
}

impl Roles {
    pub fn any(&self) -> bool {
        self.approver || self.security_reviewer || self.owner
    }

    pub fn names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.owner {
            names.push("owner");
        }
        if self.approver {
            names.push("approver");
        }
        if self.security_reviewer {
            names.push("security reviewer");
        }
        names
    }
}

/// A role name as stored and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Approver,
    SecurityReviewer,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Approver => "approver",
            Role::SecurityReviewer => "security_reviewer",
            Role::Owner => "owner",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "approver" => Some(Role::Approver),
            "security_reviewer" => Some(Role::SecurityReviewer),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Role::Approver => "Approver",
            Role::SecurityReviewer => "Security reviewer",
            Role::Owner => "Owner",
        }
    }

    pub const ALL: [Role; 3] = [Role::Approver, Role::SecurityReviewer, Role::Owner];
}

/// The session of the page being rendered, as the pages see it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Viewer {
    pub user: Option<SignedInUser>,
    pub roles: Roles,
}
