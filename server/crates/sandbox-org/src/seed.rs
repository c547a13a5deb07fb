//! The demo org "Acme": people who sign in, support agents who own ~50 Accounts, ~200 Cases
//! and ~100 Tasks, the licences and profile integration users need, org-wide defaults
//! Private, and the portal's own External Client App (JWT bearer and client credentials).
//! Seeding is deterministic apart from generated keys and secrets.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::apps::{
    App, AppKind, Consumer, PermittedUsers, Policy, new_consumer_key, new_consumer_secret,
};
use crate::schema::{self, FieldType};
use crate::store::{OrgData, Record, sf_datetime};

/// A person seeded with a password (for the login page and the password grant).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    pub name: String,
    pub username: String,
    pub password: String,
    /// What they are for, in the demo (e.g. "System Administrator, approver").
    pub role: String,
    pub user_id: String,
}

/// Everything a portal needs to connect to a freshly seeded org.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeededCredentials {
    pub org_id: String,
    pub portal_app_name: String,
    pub portal_client_id: String,
    pub portal_client_secret: String,
    /// The user the portal provisions as (JWT bearer `sub`, client credentials run-as).
    pub provisioner_username: String,
    pub people: Vec<Person>,
}

pub struct SeedOptions {
    pub daily_api_limit: u64,
    /// Callback URLs of the portal app (the portal's sign-in callback).
    pub portal_callbacks: Vec<String>,
}

pub struct Seeded {
    pub data: OrgData,
    pub credentials: SeededCredentials,
    pub portal_private_key_pem: String,
}

/// A small deterministic generator, so every seeded org has the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
}

struct Seeder {
    data: OrgData,
    creator: String,
    now: DateTime<Utc>,
}

impl Seeder {
    fn put(&mut self, object: &str, fields: Vec<(&str, Value)>) -> String {
        let Some(def) = schema::object_def(object) else {
            return String::new();
        };
        let id = self.data.new_id(def.key_prefix).as_str().to_string();
        let mut record = Record::new();
        for field in &def.fields {
            match &field.field_type {
                FieldType::Boolean { default } => {
                    record.insert(field.name.into(), json!(default));
                }
                FieldType::Picklist {
                    default: Some(d), ..
                } => {
                    record.insert(field.name.into(), json!(d));
                }
                _ => {}
            }
        }
        for (name, value) in fields {
            record.insert(name.to_string(), value);
        }
        let stamp = sf_datetime(self.now);
        let creator = if self.creator.is_empty() {
            id.clone()
        } else {
            self.creator.clone()
        };
        record.insert("Id".into(), json!(id));
        record.insert("IsDeleted".into(), json!(false));
        for (name, value) in [
            ("CreatedDate", json!(stamp)),
            ("CreatedById", json!(creator)),
            ("LastModifiedDate", json!(stamp)),
            ("LastModifiedById", json!(creator)),
            ("SystemModstamp", json!(stamp)),
        ] {
            record.entry(name.to_string()).or_insert(value);
        }
        crate::records::derive_fields(def, &mut record, self.now);
        self.data.insert(def.name, &id, record);
        id
    }

    fn user(
        &mut self,
        first: &str,
        last: &str,
        username: &str,
        alias: &str,
        profile: &str,
    ) -> String {
        let id = self.put(
            "User",
            vec![
                ("Username", json!(username)),
                ("FirstName", json!(first)),
                ("LastName", json!(last)),
                ("Email", json!(username)),
                ("Alias", json!(alias)),
                ("CommunityNickname", json!(alias)),
                ("TimeZoneSidKey", json!("America/Los_Angeles")),
                ("LocaleSidKey", json!("en_US")),
                ("EmailEncodingKey", json!("UTF-8")),
                ("LanguageLocaleKey", json!("en_US")),
                ("ProfileId", json!(profile)),
                ("IsActive", json!(true)),
                ("UserType", json!("Standard")),
                ("CompanyName", json!("Acme")),
            ],
        );
        self.put(
            "UserLogin",
            vec![
                ("UserId", json!(id)),
                ("IsFrozen", json!(false)),
                ("IsPasswordLocked", json!(false)),
            ],
        );
        id
    }

    fn permissions(perms: &[&str]) -> Vec<(&'static str, Value)> {
        schema::USER_PERMISSIONS
            .iter()
            .map(|p| {
                let name: &'static str = schema::object_def("Profile")
                    .and_then(|d| d.field(&format!("Permissions{p}")))
                    .map(|f| f.name)
                    .unwrap_or("PermissionsApiEnabled");
                (name, json!(perms.contains(p)))
            })
            .collect()
    }

    fn profile(&mut self, name: &str, license: &str, perms: &[&str]) -> (String, String) {
        let mut fields = vec![
            ("Name", json!(name)),
            ("UserLicenseId", json!(license)),
            ("UserType", json!("Standard")),
        ];
        fields.extend(Self::permissions(perms));
        let profile = self.put("Profile", fields);
        let mut ps_fields = vec![
            ("Name", json!(format!("X{}", &profile[..15]))),
            ("Label", json!(format!("{name} (profile)"))),
            ("IsOwnedByProfile", json!(true)),
            ("ProfileId", json!(profile)),
            ("IsCustom", json!(false)),
            ("Type", json!("Profile")),
            ("LicenseId", json!(license)),
        ];
        ps_fields.extend(Self::permissions(perms));
        let owned = self.put("PermissionSet", ps_fields);
        (profile, owned)
    }

    fn permission_set(&mut self, name: &str, label: &str, perms: &[&str]) -> String {
        let mut fields = vec![
            ("Name", json!(name)),
            ("Label", json!(label)),
            ("IsOwnedByProfile", json!(false)),
            ("IsCustom", json!(true)),
            ("Type", json!("Regular")),
        ];
        fields.extend(Self::permissions(perms));
        self.put("PermissionSet", fields)
    }

    fn assign(&mut self, user: &str, permission_set: &str) {
        self.put(
            "PermissionSetAssignment",
            vec![
                ("AssigneeId", json!(user)),
                ("PermissionSetId", json!(permission_set)),
                ("IsActive", json!(true)),
            ],
        );
    }
}

const ADMIN_PERMS: &[&str] = &[
    "ApiEnabled",
    "ModifyAllData",
    "ViewAllData",
    "ViewSetup",
    "ManageUsers",
    "ManageInternalUsers",
    "ManageProfilesPermissionsets",
    "AssignPermissionSets",
    "CustomizeApplication",
    "ViewEventLogFiles",
    "FreezeUsers",
    "ViewAllUsers",
    "TransferAnyEntity",
];

const COMPANIES: &[&str] = &[
    "Northwind",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Wonka",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Hooli",
    "Vandelay",
    "Pied Piper",
    "Dunder Mifflin",
    "Acme Rockets",
    "Gringotts",
    "Oscorp",
    "Massive Dynamic",
    "Aperture",
    "Black Mesa",
    "Monarch",
    "Virtucon",
    "Zorg",
    "Blue Sun",
    "Tricell",
];
const SUFFIXES: &[&str] = &["Ltd", "Inc", "GmbH"];
const INDUSTRIES: &[&str] = &[
    "Banking",
    "Energy",
    "Healthcare",
    "Manufacturing",
    "Retail",
    "Technology",
    "Transportation",
];
const CITIES: &[&str] = &[
    "Bristol", "Leeds", "Berlin", "Lyon", "Austin", "Denver", "Toronto", "Dublin",
];
const FIRST_NAMES: &[&str] = &[
    "Ada", "Grace", "Linus", "Barbara", "Ken", "Margaret", "Dennis", "Radia", "Tim", "Frances",
    "Edsger", "Hedy",
];
const LAST_NAMES: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Torvalds",
    "Liskov",
    "Thompson",
    "Hamilton",
    "Ritchie",
    "Perlman",
    "Berners-Lee",
    "Allen",
    "Dijkstra",
    "Lamarr",
];
const CASE_SUBJECTS: &[&str] = &[
    "Query Regarding Instrumentation",
    "Pump pressure drops overnight",
    "Invoice shows wrong VAT rate",
    "Sensor readings out of range",
    "Cannot reset controller password",
    "Replacement part delivery late",
    "Firmware update failed",
    "Noise from cooling unit",
    "Request for maintenance visit",
    "Warranty claim for motor",
    "Dashboard shows stale data",
    "Training request for new staff",
    "Calibration certificate missing",
    "Leak detected near valve 4",
    "Portal login locked out",
];
const CASE_DESCRIPTIONS: &[&str] = &[
    "Customer reports the issue started after the last site visit.",
    "Happens intermittently, usually at night; logs attached by the customer.",
    "Customer asks for a callback before Friday.",
    "Second report this month; please check the earlier case.",
    "",
];
const CASE_STATUSES: &[&str] = &[
    "New",
    "Working",
    "In Progress",
    "Escalated",
    "On Hold",
    "Closed",
];
const PRIORITIES: &[&str] = &["High", "Medium", "Low"];
const ORIGINS: &[&str] = &["Phone", "Email", "Web"];
const TASK_SUBJECTS: &[&str] = &[
    "Call customer back",
    "Send replacement part",
    "Schedule site visit",
    "Email quote",
    "Update firmware",
    "Confirm fix with customer",
];
const TASK_STATUSES: &[&str] = &[
    "Not Started",
    "In Progress",
    "Completed",
    "Waiting on someone else",
    "Deferred",
];

/// The seeded custom object's records.
const PROJECT_NAMES: &[&str] = &[
    "Turbine retrofit",
    "Plant 3 commissioning",
    "Sensor network upgrade",
];

/// Seeds a new org.
pub fn seed(options: &SeedOptions) -> Result<Seeded, String> {
    let now = Utc::now();
    let mut seeder = Seeder {
        data: OrgData {
            name: "Acme (Sandbox Org)".into(),
            next_case_number: 1000,
            ..OrgData::default()
        },
        creator: String::new(),
        now,
    };
    seeder.data.settings.daily_api_limit = options.daily_api_limit;
    let org_id = seeder.data.new_id("00D").as_str().to_string();
    seeder.data.org_id = org_id.clone();
    let org_record = {
        let stamp = sf_datetime(now);
        let mut r = Record::new();
        for (k, v) in [
            ("Id", json!(org_id)),
            ("Name", json!("Acme (Sandbox Org)")),
            ("OrganizationType", json!("Developer Edition")),
            ("IsSandbox", json!(true)),
            ("InstanceName", json!("SBX1")),
            ("DefaultCaseAccess", json!("None")),
            ("DefaultAccountAccess", json!("None")),
            ("DefaultContactAccess", json!("ControlledByParent")),
            ("TimeZoneSidKey", json!("GMT")),
            ("IsDeleted", json!(false)),
            ("CreatedDate", json!(stamp)),
            ("LastModifiedDate", json!(stamp)),
            ("SystemModstamp", json!(stamp)),
        ] {
            r.insert(k.into(), v);
        }
        r
    };
    seeder.data.insert("Organization", &org_id, org_record);

    let salesforce = seeder.put(
        "UserLicense",
        vec![
            ("Name", json!("Salesforce")),
            ("LicenseDefinitionKey", json!("SFDC")),
            ("TotalLicenses", json!(20)),
            ("Status", json!("Active")),
        ],
    );
    let integration = seeder.put(
        "UserLicense",
        vec![
            ("Name", json!("Salesforce Integration")),
            ("LicenseDefinitionKey", json!(INTEGRATION_LICENSE_KEY)),
            ("TotalLicenses", json!(5)),
            ("Status", json!("Active")),
        ],
    );
    seeder.put(
        "PermissionSetLicense",
        vec![
            ("DeveloperName", json!("SalesforceAPIIntegrationPsl")),
            ("MasterLabel", json!("Salesforce API Integration")),
            (
                "PermissionSetLicenseKey",
                json!("SalesforceAPIIntegrationPsl"),
            ),
            ("Status", json!("Active")),
            ("TotalLicenses", json!(5)),
            ("IsAvailableForIntegrations", json!(true)),
        ],
    );

    let (admin_profile, _) = seeder.profile("System Administrator", &salesforce, ADMIN_PERMS);
    let (standard_profile, standard_ps) =
        seeder.profile("Standard User", &salesforce, &["ApiEnabled", "EditTask"]);
    seeder.profile(
        "Minimum Access - API Only Integrations",
        &integration,
        &["ApiEnabled", "ApiUserOnly"],
    );

    // Standard users work with the business objects through their profile.
    for object in ["Account", "Contact", "Case", "Task"] {
        // Tasks have no object permissions ("Edit Tasks" above).
        if object != "Task" {
            seeder.put(
                "ObjectPermissions",
                vec![
                    ("ParentId", json!(standard_ps)),
                    ("SobjectType", json!(object)),
                    ("PermissionsRead", json!(true)),
                    ("PermissionsCreate", json!(true)),
                    ("PermissionsEdit", json!(true)),
                    ("PermissionsDelete", json!(true)),
                ],
            );
        }
        if let Some(def) = schema::object_def(object) {
            for field in def.fields.iter().filter(|f| f.permissionable) {
                let editable = field.access != schema::Access::ReadOnly;
                seeder.put(
                    "FieldPermissions",
                    vec![
                        ("ParentId", json!(standard_ps)),
                        ("SobjectType", json!(object)),
                        ("Field", json!(format!("{object}.{}", field.name))),
                        ("PermissionsRead", json!(true)),
                        ("PermissionsEdit", json!(editable)),
                    ],
                );
            }
        }
    }

    let domain = "acme-sandbox.example";
    let admin = seeder.user(
        "Alex",
        "Morgan",
        &format!("admin@{domain}"),
        "amorgan",
        &admin_profile,
    );
    seeder.creator = admin.clone();
    let approver = seeder.user(
        "Blake",
        "Chen",
        &format!("approver@{domain}"),
        "bchen",
        &admin_profile,
    );
    let security = seeder.user(
        "Sam",
        "Rivera",
        &format!("security@{domain}"),
        "srivera",
        &standard_profile,
    );
    let nobody = seeder.user(
        "Nora",
        "Quinn",
        &format!("nora@{domain}"),
        "nquinn",
        &standard_profile,
    );
    let provisioner = seeder.user(
        "Portcullis",
        "Provisioner",
        &format!("provisioner@{domain}"),
        "pcprov",
        &admin_profile,
    );
    let agents: Vec<String> = [
        ("Priya", "Patel", "ppatel"),
        ("Jordan", "Lee", "jlee"),
        ("Maria", "Garcia", "mgarcia"),
        ("Tom", "Becker", "tbecker"),
    ]
    .iter()
    .map(|(first, last, alias)| {
        seeder.user(
            first,
            last,
            &format!("{alias}@{domain}"),
            alias,
            &standard_profile,
        )
    })
    .collect();

    let api_only = seeder.permission_set(
        "Portcullis_API_Only",
        "Portcullis: API only",
        &["ApiUserOnly"],
    );
    let approver_ps = seeder.permission_set("Portcullis_Approver", "Portcullis approver", &[]);
    let reviewer_ps = seeder.permission_set(
        "Portcullis_Security_Reviewer",
        "Portcullis security reviewer",
        &[],
    );
    let owner_ps = seeder.permission_set("Portcullis_Owner", "Portcullis owner", &[]);
    seeder.assign(&provisioner, &api_only);
    seeder.assign(&admin, &approver_ps);
    seeder.assign(&admin, &owner_ps);
    seeder.assign(&approver, &approver_ps);
    seeder.assign(&security, &reviewer_ps);

    let tier2 = seeder.put(
        "Group",
        vec![
            ("Name", json!("Tier 2 Support")),
            ("DeveloperName", json!("Tier_2_Support")),
            ("Type", json!("Regular")),
        ],
    );
    for member in &agents[1..3] {
        seeder.put(
            "GroupMember",
            vec![("GroupId", json!(tier2)), ("UserOrGroupId", json!(member))],
        );
    }
    let queue = seeder.put(
        "Group",
        vec![
            ("Name", json!("Escalations Queue")),
            ("DeveloperName", json!("Escalations_Queue")),
            ("Type", json!("Queue")),
        ],
    );

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut accounts = Vec::new();
    for i in 0..50 {
        let name = format!(
            "{} {}",
            COMPANIES[i % COMPANIES.len()],
            SUFFIXES[i / COMPANIES.len() % SUFFIXES.len()]
        );
        let owner = rng.pick(&agents).clone();
        let id = seeder.put(
            "Account",
            vec![
                ("Name", json!(name)),
                ("Industry", json!(rng.pick(INDUSTRIES))),
                ("BillingCity", json!(rng.pick(CITIES))),
                (
                    "Phone",
                    json!(format!("+44 117 496 {:04}", rng.next() % 10_000)),
                ),
                ("NumberOfEmployees", json!(10 + rng.next() % 5000)),
                ("Type", json!("Customer - Direct")),
                ("OwnerId", json!(owner)),
            ],
        );
        accounts.push((id, owner));
    }
    let mut contacts = Vec::new();
    for _ in 0..60 {
        let (account, owner) = rng.pick(&accounts).clone();
        let first = rng.pick(FIRST_NAMES);
        let last = rng.pick(LAST_NAMES);
        let id = seeder.put(
            "Contact",
            vec![
                ("FirstName", json!(first)),
                ("LastName", json!(last)),
                (
                    "Email",
                    json!(format!(
                        "{}.{}@example.com",
                        first.to_lowercase(),
                        last.to_lowercase().replace('-', "")
                    )),
                ),
                ("AccountId", json!(account)),
                ("OwnerId", json!(owner)),
            ],
        );
        contacts.push((id, account));
    }
    let mut cases = Vec::new();
    for i in 0..200 {
        let (contact, account) = rng.pick(&contacts).clone();
        let owner = if i % 25 == 0 {
            queue.clone()
        } else {
            rng.pick(&agents).clone()
        };
        seeder.data.next_case_number += 1;
        let number = format!("{:08}", seeder.data.next_case_number);
        let description = *rng.pick(CASE_DESCRIPTIONS);
        seeder.now = now - Duration::hours((200 - i) as i64 * 7);
        let id = seeder.put(
            "Case",
            vec![
                ("CaseNumber", json!(number)),
                ("Subject", json!(rng.pick(CASE_SUBJECTS))),
                (
                    "Description",
                    if description.is_empty() {
                        Value::Null
                    } else {
                        json!(description)
                    },
                ),
                ("Status", json!(rng.pick(CASE_STATUSES))),
                ("Priority", json!(rng.pick(PRIORITIES))),
                ("Origin", json!(rng.pick(ORIGINS))),
                ("AccountId", json!(account)),
                ("ContactId", json!(contact)),
                ("OwnerId", json!(owner)),
            ],
        );
        cases.push((id, owner));
    }
    seeder.now = now;
    for i in 0..100 {
        let (what, owner) = if i % 3 == 0 {
            rng.pick(&accounts).clone()
        } else {
            rng.pick(&cases).clone()
        };
        let owner = if owner == queue {
            agents[0].clone()
        } else {
            owner
        };
        seeder.put(
            "Task",
            vec![
                ("Subject", json!(rng.pick(TASK_SUBJECTS))),
                ("Status", json!(rng.pick(TASK_STATUSES))),
                ("Priority", json!("Normal")),
                (
                    "ActivityDate",
                    json!(
                        (now + Duration::days((rng.next() % 30) as i64 - 10))
                            .format("%Y-%m-%d")
                            .to_string()
                    ),
                ),
                ("WhatId", json!(what)),
                ("OwnerId", json!(owner)),
            ],
        );
    }

    // A custom object's records, and every object's EntityDefinition row (its sharing
    // model; standard objects' as on the Organization record).
    for (i, name) in PROJECT_NAMES.iter().enumerate() {
        let owner = agents[i % agents.len()].clone();
        seeder.put(
            "Project__c",
            vec![("Name", json!(name)), ("OwnerId", json!(owner))],
        );
    }
    for (object, model) in [
        ("Account", "Private"),
        ("Contact", "ControlledByParent"),
        ("Case", "Private"),
        ("Task", "ControlledByParent"),
        ("Project__c", "Private"),
    ] {
        let prefix = schema::object_def(object).map_or("", |d| d.key_prefix);
        seeder.put(
            "EntityDefinition",
            vec![
                ("QualifiedApiName", json!(object)),
                ("DeveloperName", json!(object.trim_end_matches("__c"))),
                ("MasterLabel", json!(object.trim_end_matches("__c"))),
                ("KeyPrefix", json!(prefix)),
                ("InternalSharingModel", json!(model)),
                ("ExternalSharingModel", json!("Private")),
            ],
        );
    }

    // The portal's own app: JWT bearer (certificate) and client credentials as the
    // provisioner; people sign in to the portal through it.
    let identity = crate::tls::portal_identity()?;
    let app_id = seeder.data.new_id("0xI").as_str().to_string();
    let consumer_id = seeder.data.new_id("0Hx").as_str().to_string();
    let connected_app_id = seeder.data.new_id("0H4").as_str().to_string();
    let key = new_consumer_key();
    let secret = new_consumer_secret();
    let provisioner_username = format!("provisioner@{domain}");
    seeder.data.apps.insert(
        app_id.clone(),
        App {
            id: app_id,
            connected_app_id,
            developer_name: "Portcullis_Portal".into(),
            label: "Portcullis".into(),
            kind: AppKind::ExternalClientApp,
            contact_email: format!("admin@{domain}"),
            description: "The Portcullis portal's own connection to this org".into(),
            enabled: true,
            created_by_id: admin.clone(),
            created_date: now,
            consumer: Consumer {
                id: consumer_id,
                key: key.clone(),
                secret: secret.clone(),
            },
            staged: Vec::new(),
            callback_urls: options.portal_callbacks.clone(),
            scopes: vec![
                "Api".into(),
                "Web".into(),
                "OpenID".into(),
                "Profile".into(),
            ],
            certificate_pem: Some(identity.certificate_pem.clone()),
            client_credentials_enabled: true,
            pkce_required: true,
            consumer_secret_optional: false,
            trusted_ip_ranges: Vec::new(),
            component_names: Default::default(),
            active_from: None,
            policy: Policy {
                client_credentials_enabled: true,
                client_credentials_user: Some(provisioner_username.clone()),
                permitted_users: PermittedUsers::AdminApprovedPreAuthorized,
                permission_sets: vec!["Portcullis_API_Only".into()],
                profiles: vec!["System Administrator".into(), "Standard User".into()],
                ip_relaxation: "Enforce".into(),
                refresh_token_policy: "Zero".into(),
            },
        },
    );

    let people_spec = [
        (
            "Alex Morgan",
            format!("admin@{domain}"),
            "Admin-Sandbox-1",
            "System Administrator; holds Portcullis_Approver and Portcullis_Owner",
            admin,
        ),
        (
            "Blake Chen",
            format!("approver@{domain}"),
            "Approver-Sandbox-2",
            "System Administrator; holds Portcullis_Approver",
            approver,
        ),
        (
            "Sam Rivera",
            format!("security@{domain}"),
            "Security-Sandbox-3",
            "Standard User; holds Portcullis_Security_Reviewer",
            security,
        ),
        (
            "Nora Quinn",
            format!("nora@{domain}"),
            "Norole-Sandbox-4",
            "Standard User; no Portcullis role",
            nobody,
        ),
    ];
    let mut people = Vec::new();
    for (name, username, password, role, user_id) in people_spec {
        seeder
            .data
            .passwords
            .insert(user_id.clone(), crate::oauth::hash_password(password));
        people.push(Person {
            name: name.into(),
            username,
            password: password.into(),
            role: role.into(),
            user_id,
        });
    }

    Ok(Seeded {
        credentials: SeededCredentials {
            org_id,
            portal_app_name: "Portcullis_Portal".into(),
            portal_client_id: key,
            portal_client_secret: secret,
            provisioner_username,
            people,
        },
        data: seeder.data,
        portal_private_key_pem: identity.private_key_pem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_org_has_the_documented_shape() {
        let seeded = seed(&SeedOptions {
            daily_api_limit: 15_000,
            portal_callbacks: vec![],
        })
        .unwrap();
        let data = &seeded.data;
        assert_eq!(data.table("Account").count(), 50);
        assert_eq!(data.table("Case").count(), 200);
        assert_eq!(data.table("Task").count(), 100);
        assert!(
            data.find_by("Profile", "Name", "Minimum Access - API Only Integrations")
                .is_some()
        );
        assert!(
            data.find_by(
                "PermissionSetLicense",
                "DeveloperName",
                "SalesforceAPIIntegrationPsl"
            )
            .is_some()
        );
        let owners: std::collections::HashSet<&str> = data
            .table("Case")
            .filter_map(|(_, c)| c.get("OwnerId").and_then(Value::as_str))
            .collect();
        assert!(owners.len() >= 4, "cases spread over several owners");
        assert_eq!(seeded.credentials.people.len(), 4);
    }
}

/// The Salesforce Integration user licence's `LicenseDefinitionKey`. The real value is not
/// in Salesforce's list of keys (UNCONFIRMED); the portal also accepts the licence's name.
pub const INTEGRATION_LICENSE_KEY: &str = "SFDC_INTEGRATION";

/// A language the org can answer in (standard names translated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    English,
    German,
}

impl Language {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "en_US" | "en" => Some(Self::English),
            "de" | "de_DE" => Some(Self::German),
            _ => None,
        }
    }
}

/// Standard names and their German translations: (object, field, English, German).
const TRANSLATIONS: &[(&str, &str, &str, &str)] = &[
    (
        "Profile",
        "Name",
        "System Administrator",
        "Systemadministrator",
    ),
    ("Profile", "Name", "Standard User", "Standardbenutzer"),
    (
        "Profile",
        "Name",
        "Minimum Access - API Only Integrations",
        "Minimaler Zugriff – nur API-Integrationen",
    ),
    (
        "UserLicense",
        "Name",
        "Salesforce Integration",
        "Salesforce-Integration",
    ),
    (
        "UserLicense",
        "MasterLabel",
        "Salesforce Integration",
        "Salesforce-Integration",
    ),
    (
        "PermissionSetLicense",
        "MasterLabel",
        "Salesforce API Integration",
        "Salesforce-API-Integration",
    ),
];

/// Renames the standard records as an org answering in `language` names them.
pub fn translate(data: &mut OrgData, language: Language) {
    for (object, field, english, german) in TRANSLATIONS {
        let (from, to) = match language {
            Language::German => (english, german),
            Language::English => (german, english),
        };
        let ids: Vec<String> = data
            .table(object)
            .filter(|(_, r)| r.get(*field).and_then(Value::as_str) == Some(*from))
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            if let Some(record) = data.get_mut(object, &id) {
                record.insert((*field).to_string(), json!(to));
            }
        }
    }
}
