//! The sandbox org's schema: the sObjects it knows, their fields and how each field behaves
//! (type, length, picklist values, whether field-level security applies to it, whether it
//! can be written). Describe results, validation and the SOQL engine all read from here.

use std::collections::HashMap;
use std::sync::OnceLock;

/// A field's data type, as Salesforce's describe reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldType {
    Id,
    String {
        length: u32,
    },
    TextArea {
        length: u32,
    },
    Email,
    Phone,
    Url,
    Picklist {
        values: &'static [&'static str],
        restricted: bool,
        default: Option<&'static str>,
    },
    Reference {
        to: &'static [&'static str],
        relationship: &'static str,
    },
    Boolean {
        default: bool,
    },
    DateTime,
    Date,
    Double,
    Int,
    Currency,
    AutoNumber,
    Base64,
}

impl FieldType {
    /// The `type` in describe.
    pub fn describe_name(&self) -> &'static str {
        match self {
            FieldType::Id => "id",
            FieldType::String { .. } | FieldType::AutoNumber => "string",
            FieldType::TextArea { .. } => "textarea",
            FieldType::Email => "email",
            FieldType::Phone => "phone",
            FieldType::Url => "url",
            FieldType::Picklist { .. } => "picklist",
            FieldType::Reference { .. } => "reference",
            FieldType::Boolean { .. } => "boolean",
            FieldType::DateTime => "datetime",
            FieldType::Date => "date",
            FieldType::Double => "double",
            FieldType::Int => "int",
            FieldType::Currency => "currency",
            FieldType::Base64 => "base64",
        }
    }

    /// The `soapType` in describe.
    pub fn soap_type(&self) -> &'static str {
        match self {
            FieldType::Id | FieldType::Reference { .. } => "tns:ID",
            FieldType::Boolean { .. } => "xsd:boolean",
            FieldType::DateTime => "xsd:dateTime",
            FieldType::Date => "xsd:date",
            FieldType::Double | FieldType::Currency => "xsd:double",
            FieldType::Int => "xsd:int",
            FieldType::Base64 => "xsd:base64Binary",
            _ => "xsd:string",
        }
    }

    /// The maximum length of text values, when the type has one.
    pub fn max_length(&self) -> Option<u32> {
        match self {
            FieldType::String { length } | FieldType::TextArea { length } => Some(*length),
            FieldType::Email | FieldType::Phone => Some(80),
            FieldType::Url => Some(255),
            FieldType::Picklist { .. } => Some(255),
            FieldType::Id | FieldType::Reference { .. } => Some(18),
            FieldType::AutoNumber => Some(30),
            _ => None,
        }
    }
}

/// How a field may be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Set on create and update.
    ReadWrite,
    /// Set on create only (e.g. CaseShare.CaseId).
    CreateOnly,
    /// Never written through the API (system fields, formulas, auto numbers).
    ReadOnly,
}

#[derive(Debug, Clone)]
pub struct FieldDef {
    pub name: &'static str,
    pub label: &'static str,
    pub field_type: FieldType,
    pub access: Access,
    /// Required on create (Salesforce: nillable = false and not defaulted).
    pub required: bool,
    pub nillable: bool,
    /// Whether FieldPermissions apply. Fields that are not permissionable (Id, system fields,
    /// OwnerId, universally required fields) are visible to anyone who can read the object,
    /// and writable by anyone who can edit it (when `access` allows).
    pub permissionable: bool,
    pub unique: bool,
    /// The record's name field (`Name`, `CaseNumber`, `Subject`).
    pub name_field: bool,
    pub external_id: bool,
}

/// Org-wide default sharing for an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// Only owners, shares, and users with View All see the records.
    Private,
    PublicRead,
    PublicReadWrite,
    /// Visible when the parent record is (Contact → Account, Task → What).
    ControlledByParent,
    /// Setup objects and others without record-level sharing.
    None,
}

/// What kind of object this is, for permissions and MIXED_DML_OPERATION.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Business data: access through object permissions, FLS and sharing.
    Data,
    /// Setup objects: access through user permissions.
    Setup,
}

#[derive(Debug, Clone)]
pub struct ObjectDef {
    pub name: &'static str,
    pub label: &'static str,
    pub label_plural: &'static str,
    pub key_prefix: &'static str,
    pub kind: Kind,
    pub sharing: Sharing,
    pub createable: bool,
    pub updateable: bool,
    pub deletable: bool,
    pub fields: Vec<FieldDef>,
    by_name: HashMap<String, usize>,
}

impl ObjectDef {
    /// A field by name, case-insensitively.
    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.by_name
            .get(&name.to_ascii_lowercase())
            .and_then(|i| self.fields.get(*i))
    }

    /// A relationship (e.g. `Owner` for `OwnerId`) by name, case-insensitively.
    pub fn relationship(&self, name: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| match &f.field_type {
            FieldType::Reference { relationship, .. } => relationship.eq_ignore_ascii_case(name),
            _ => false,
        })
    }

    pub fn name_field(&self) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.name_field)
    }

    pub fn is_setup(&self) -> bool {
        self.kind == Kind::Setup
    }
}

/// Field definition builder, to keep the object table readable.
struct F(FieldDef);

impl F {
    fn new(name: &'static str, label: &'static str, field_type: FieldType) -> Self {
        Self(FieldDef {
            name,
            label,
            field_type,
            access: Access::ReadWrite,
            required: false,
            nillable: true,
            permissionable: true,
            unique: false,
            name_field: false,
            external_id: false,
        })
    }
    fn string(name: &'static str, label: &'static str, length: u32) -> Self {
        Self::new(name, label, FieldType::String { length })
    }
    fn reference(
        name: &'static str,
        label: &'static str,
        to: &'static [&'static str],
        relationship: &'static str,
    ) -> Self {
        Self::new(name, label, FieldType::Reference { to, relationship })
    }
    fn boolean(name: &'static str, label: &'static str, default: bool) -> Self {
        Self::new(name, label, FieldType::Boolean { default }).not_null()
    }
    fn picklist(
        name: &'static str,
        label: &'static str,
        values: &'static [&'static str],
        default: Option<&'static str>,
    ) -> Self {
        Self::new(
            name,
            label,
            FieldType::Picklist {
                values,
                restricted: true,
                default,
            },
        )
    }
    /// Required on create, and (like Salesforce's universally required fields) not
    /// subject to field-level security.
    fn required(mut self) -> Self {
        self.0.required = true;
        self.0.nillable = false;
        self.0.permissionable = false;
        self
    }
    fn not_null(mut self) -> Self {
        self.0.nillable = false;
        self
    }
    fn read_only(mut self) -> Self {
        self.0.access = Access::ReadOnly;
        self
    }
    fn create_only(mut self) -> Self {
        self.0.access = Access::CreateOnly;
        self
    }
    fn system(mut self) -> Self {
        self.0.access = Access::ReadOnly;
        self.0.permissionable = false;
        self
    }
    fn no_fls(mut self) -> Self {
        self.0.permissionable = false;
        self
    }
    fn unique(mut self) -> Self {
        self.0.unique = true;
        self
    }
    fn name_field(mut self) -> Self {
        self.0.name_field = true;
        self
    }
    fn external_id(mut self) -> Self {
        self.0.external_id = true;
        self
    }
}

/// The user permissions the sandbox org models, as `Permissions<Name>` fields on Profile
/// and PermissionSet.
pub const USER_PERMISSIONS: &[&str] = &[
    "ApiEnabled",
    "ApiUserOnly",
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
    "EditTask",
    // "Use Any API Client": bypasses API Access Control's allow-list. Describes show it only
    // while API Access Control is on (`describe::apply_org_settings`).
    "UseAnyApiClient",
];

const TIME_ZONES: &[&str] = &[
    "America/Los_Angeles",
    "America/Denver",
    "America/Chicago",
    "America/New_York",
    "America/Sao_Paulo",
    "America/Toronto",
    "Europe/London",
    "Europe/Dublin",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Madrid",
    "Europe/Amsterdam",
    "Europe/Stockholm",
    "Europe/Warsaw",
    "Africa/Johannesburg",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
    "GMT",
];
const LOCALES: &[&str] = &[
    "en_US", "en_GB", "en_AU", "en_CA", "en_IE", "en_IN", "de_DE", "fr_FR", "es_ES", "it_IT",
    "nl_NL", "sv_SE", "ja_JP", "pt_BR",
];
const LANGUAGES: &[&str] = &[
    "en_US", "en_GB", "de", "fr", "es", "it", "nl_NL", "sv", "ja", "pt_BR",
];
const ENCODINGS: &[&str] = &[
    "UTF-8",
    "ISO-8859-1",
    "Shift_JIS",
    "ISO-2022-JP",
    "EUC-JP",
    "ks_c_5601-1987",
    "Big5",
    "GB2312",
];
const DATA_OBJECTS: &[&str] = &["Account", "Contact", "Case", "Task", "Project__c"];
const SHARE_LEVELS: &[&str] = &["Read", "Edit", "All"];
const ROW_CAUSES: &[&str] = &["Manual", "Owner", "Rule", "ImplicitChild", "Team"];

fn system_fields(fields: &mut Vec<FieldDef>, with_owner: Option<&'static [&'static str]>) {
    fields.insert(
        0,
        F::new("Id", "Record ID", FieldType::Id)
            .system()
            .not_null()
            .0,
    );
    if let Some(to) = with_owner {
        fields.push(
            F::reference("OwnerId", "Owner ID", to, "Owner")
                .no_fls()
                .not_null()
                .0,
        );
    }
    fields.push(F::boolean("IsDeleted", "Deleted", false).system().0);
    fields.push(
        F::new("CreatedDate", "Created Date", FieldType::DateTime)
            .system()
            .0,
    );
    fields.push(
        F::reference("CreatedById", "Created By ID", &["User"], "CreatedBy")
            .system()
            .0,
    );
    fields.push(
        F::new(
            "LastModifiedDate",
            "Last Modified Date",
            FieldType::DateTime,
        )
        .system()
        .0,
    );
    fields.push(
        F::reference(
            "LastModifiedById",
            "Last Modified By ID",
            &["User"],
            "LastModifiedBy",
        )
        .system()
        .0,
    );
    fields.push(
        F::new("SystemModstamp", "System Modstamp", FieldType::DateTime)
            .system()
            .0,
    );
}

/// Objects with manual shares (`<Object>Share`), and the Organization field holding
/// each one's org-wide default.
pub const SHARED_OBJECTS: &[&str] = &["Account", "Contact", "Case"];

/// `<Object>Share` with `<Object>Id`, `UserOrGroupId`, `<Object>AccessLevel`, `RowCause`.
fn share_object(
    parent: &'static str,
    label: &'static str,
    label_plural: &'static str,
    key_prefix: &'static str,
) -> ObjectDef {
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let name = leak(format!("{parent}Share"));
    object(
        name,
        label,
        label_plural,
        key_prefix,
        Kind::Setup,
        Sharing::None,
        (true, true, true),
        None,
        vec![
            F::reference(
                leak(format!("{parent}Id")),
                leak(format!("{parent} ID")),
                leak_list(parent),
                parent,
            )
            .required()
            .create_only()
            .no_fls(),
            F::reference(
                "UserOrGroupId",
                "User/Group ID",
                &["User", "Group"],
                "UserOrGroup",
            )
            .required()
            .create_only()
            .no_fls(),
            F::picklist(
                leak(format!("{parent}AccessLevel")),
                leak(format!("{parent} Access")),
                SHARE_LEVELS,
                None,
            )
            .required()
            .no_fls(),
            F::picklist("RowCause", "Row Cause", ROW_CAUSES, Some("Manual"))
                .create_only()
                .no_fls(),
        ],
    )
}

fn leak_list(parent: &'static str) -> &'static [&'static str] {
    Box::leak(vec![parent].into_boxed_slice())
}

#[allow(clippy::too_many_arguments)]
fn object(
    name: &'static str,
    label: &'static str,
    label_plural: &'static str,
    key_prefix: &'static str,
    kind: Kind,
    sharing: Sharing,
    (createable, updateable, deletable): (bool, bool, bool),
    owner: Option<&'static [&'static str]>,
    fields: Vec<F>,
) -> ObjectDef {
    let mut fields: Vec<FieldDef> = fields.into_iter().map(|f| f.0).collect();
    system_fields(&mut fields, owner);
    let by_name = fields
        .iter()
        .enumerate()
        .map(|(i, f)| (f.name.to_ascii_lowercase(), i))
        .collect();
    ObjectDef {
        name,
        label,
        label_plural,
        key_prefix,
        kind,
        sharing,
        createable,
        updateable,
        deletable,
        fields,
        by_name,
    }
}

fn permission_fields() -> Vec<F> {
    USER_PERMISSIONS
        .iter()
        .map(|p| {
            // Leaked once at start-up: field names must be 'static like the rest of the schema.
            let name: &'static str = Box::leak(format!("Permissions{p}").into_boxed_str());
            F::boolean(name, name, false).no_fls()
        })
        .collect()
}

fn build() -> Vec<ObjectDef> {
    use Kind::{Data, Setup};
    let crud = (true, true, true);
    let read_only = (false, false, false);
    let mut profile_fields = vec![
        F::string("Name", "Name", 255).required().name_field(),
        F::reference(
            "UserLicenseId",
            "User License ID",
            &["UserLicense"],
            "UserLicense",
        )
        .read_only()
        .no_fls(),
        F::string("UserType", "User Type", 40).read_only().no_fls(),
        F::string("Description", "Description", 255).no_fls(),
    ];
    profile_fields.extend(permission_fields());
    let mut permission_set_fields = vec![
        F::string("Name", "Name", 80).required().unique(),
        F::string("Label", "Label", 80).required().name_field(),
        F::string("Description", "Description", 255).no_fls(),
        F::reference(
            "LicenseId",
            "License ID",
            &["PermissionSetLicense", "UserLicense"],
            "License",
        )
        .no_fls(),
        F::boolean("IsOwnedByProfile", "Is Owned by Profile", false)
            .read_only()
            .no_fls(),
        F::reference("ProfileId", "Profile ID", &["Profile"], "Profile")
            .read_only()
            .no_fls(),
        F::boolean("IsCustom", "Custom", true).read_only().no_fls(),
        F::boolean(
            "HasActivationRequired",
            "Session Activation Required",
            false,
        )
        .no_fls(),
        F::string("NamespacePrefix", "Namespace Prefix", 15)
            .read_only()
            .no_fls(),
        F::string("Type", "Type", 40).read_only().no_fls(),
    ];
    permission_set_fields.extend(permission_fields());

    vec![
        object(
            "Organization",
            "Organization",
            "Organizations",
            "00D",
            Setup,
            Sharing::None,
            read_only,
            None,
            vec![
                F::string("Name", "Name", 80)
                    .required()
                    .name_field()
                    .read_only(),
                F::string("OrganizationType", "Edition", 40)
                    .read_only()
                    .no_fls(),
                F::boolean("IsSandbox", "Is Sandbox", true)
                    .read_only()
                    .no_fls(),
                F::string("InstanceName", "Instance Name", 5)
                    .read_only()
                    .no_fls(),
                F::string("DefaultCaseAccess", "Default Case Access", 40)
                    .read_only()
                    .no_fls(),
                F::string("DefaultAccountAccess", "Default Account Access", 40)
                    .read_only()
                    .no_fls(),
                F::string("DefaultContactAccess", "Default Contact Access", 40)
                    .read_only()
                    .no_fls(),
                F::string("TimeZoneSidKey", "Time Zone", 40)
                    .read_only()
                    .no_fls(),
            ],
        ),
        object(
            "UserLicense",
            "User License",
            "User Licenses",
            "100",
            Setup,
            Sharing::None,
            read_only,
            None,
            vec![
                F::string("Name", "Name", 40)
                    .required()
                    .name_field()
                    .read_only(),
                F::string("LicenseDefinitionKey", "License Definition Key", 40)
                    .read_only()
                    .no_fls(),
                F::new("TotalLicenses", "Total Licenses", FieldType::Int)
                    .read_only()
                    .no_fls(),
                F::new("UsedLicenses", "Used Licenses", FieldType::Int)
                    .read_only()
                    .no_fls(),
                F::string("Status", "Status", 40).read_only().no_fls(),
            ],
        ),
        object(
            "Profile",
            "Profile",
            "Profiles",
            "00e",
            Setup,
            Sharing::None,
            read_only,
            None,
            profile_fields,
        ),
        object(
            "PermissionSetLicense",
            "Permission Set License",
            "Permission Set Licenses",
            "0PL",
            Setup,
            Sharing::None,
            read_only,
            None,
            vec![
                F::string("DeveloperName", "Developer Name", 80)
                    .required()
                    .unique()
                    .read_only(),
                F::string("MasterLabel", "Label", 80)
                    .required()
                    .name_field()
                    .read_only(),
                F::string("PermissionSetLicenseKey", "License Key", 80)
                    .read_only()
                    .no_fls(),
                F::string("Status", "Status", 40).read_only().no_fls(),
                F::new("TotalLicenses", "Total Licenses", FieldType::Int)
                    .read_only()
                    .no_fls(),
                F::new("UsedLicenses", "Used Licenses", FieldType::Int)
                    .read_only()
                    .no_fls(),
                F::new("ExpirationDate", "Expiration Date", FieldType::Date)
                    .read_only()
                    .no_fls(),
                F::boolean(
                    "IsAvailableForIntegrations",
                    "Available for Integrations",
                    false,
                )
                .read_only()
                .no_fls(),
            ],
        ),
        object(
            "User",
            "User",
            "Users",
            "005",
            Setup,
            Sharing::None,
            (true, true, false),
            None,
            vec![
                F::string("Username", "Username", 80)
                    .required()
                    .unique()
                    .external_id(),
                F::string("LastName", "Last Name", 80).required(),
                F::string("FirstName", "First Name", 40).no_fls(),
                F::string("Name", "Full Name", 121)
                    .name_field()
                    .read_only()
                    .no_fls(),
                F::new("Email", "Email", FieldType::Email).required(),
                F::string("Alias", "Alias", 8).required(),
                F::string("CommunityNickname", "Nickname", 40)
                    .no_fls()
                    .unique(),
                F::picklist("TimeZoneSidKey", "Time Zone", TIME_ZONES, None).required(),
                F::picklist("LocaleSidKey", "Locale", LOCALES, None).required(),
                F::picklist("EmailEncodingKey", "Email Encoding", ENCODINGS, None).required(),
                F::picklist("LanguageLocaleKey", "Language", LANGUAGES, None).required(),
                F::reference("ProfileId", "Profile ID", &["Profile"], "Profile").required(),
                F::boolean("IsActive", "Active", true).no_fls(),
                F::string("UserType", "User Type", 40).read_only().no_fls(),
                F::string("CompanyName", "Company Name", 80).no_fls(),
                F::string("Department", "Department", 80).no_fls(),
                F::string("Title", "Title", 80).no_fls(),
                F::string("FederationIdentifier", "SAML Federation ID", 512).no_fls(),
                F::new("LastLoginDate", "Last Login", FieldType::DateTime).system(),
            ],
        ),
        object(
            "UserLogin",
            "User Login",
            "User Logins",
            "0Yw",
            Setup,
            Sharing::None,
            (false, true, false),
            None,
            vec![
                F::reference("UserId", "User ID", &["User"], "User")
                    .read_only()
                    .no_fls(),
                F::boolean("IsFrozen", "Is Frozen", false).no_fls(),
                F::boolean("IsPasswordLocked", "Is Password Locked", false).no_fls(),
            ],
        ),
        object(
            "PermissionSet",
            "Permission Set",
            "Permission Sets",
            "0PS",
            Setup,
            Sharing::None,
            crud,
            None,
            permission_set_fields,
        ),
        object(
            "ObjectPermissions",
            "Object Permissions",
            "Object Permissions",
            "110",
            Setup,
            Sharing::None,
            crud,
            None,
            vec![
                F::reference("ParentId", "Parent ID", &["PermissionSet"], "Parent")
                    .required()
                    .create_only(),
                F::picklist("SobjectType", "Sobject Type Name", DATA_OBJECTS, None)
                    .required()
                    .create_only(),
                F::boolean("PermissionsRead", "Read Access", false).no_fls(),
                F::boolean("PermissionsCreate", "Create Access", false).no_fls(),
                F::boolean("PermissionsEdit", "Edit Access", false).no_fls(),
                F::boolean("PermissionsDelete", "Delete Access", false).no_fls(),
                F::boolean("PermissionsViewAllRecords", "View All Records", false).no_fls(),
                F::boolean("PermissionsModifyAllRecords", "Modify All Records", false).no_fls(),
                F::boolean("PermissionsViewAllFields", "View All Fields", false).no_fls(),
            ],
        ),
        object(
            "FieldPermissions",
            "Field Permissions",
            "Field Permissions",
            "01k",
            Setup,
            Sharing::None,
            crud,
            None,
            vec![
                F::reference("ParentId", "Parent ID", &["PermissionSet"], "Parent")
                    .required()
                    .create_only(),
                F::picklist("SobjectType", "Sobject Type Name", DATA_OBJECTS, None)
                    .required()
                    .create_only(),
                F::string("Field", "Field Name", 255)
                    .required()
                    .create_only(),
                F::boolean("PermissionsRead", "Read Access", false).no_fls(),
                F::boolean("PermissionsEdit", "Edit Access", false).no_fls(),
            ],
        ),
        object(
            "PermissionSetAssignment",
            "Permission Set Assignment",
            "Permission Set Assignments",
            "0Pa",
            Setup,
            Sharing::None,
            crud,
            None,
            vec![
                F::reference("AssigneeId", "Assignee ID", &["User"], "Assignee")
                    .required()
                    .create_only(),
                F::reference(
                    "PermissionSetId",
                    "Permission Set ID",
                    &["PermissionSet"],
                    "PermissionSet",
                )
                .required()
                .create_only(),
                F::new("ExpirationDate", "Expiration Date", FieldType::DateTime).no_fls(),
                F::boolean("IsActive", "Is Active", true)
                    .read_only()
                    .no_fls(),
                F::boolean("IsRevoked", "Is Revoked", false)
                    .read_only()
                    .no_fls(),
            ],
        ),
        object(
            "PermissionSetLicenseAssign",
            "Permission Set License Assignment",
            "Permission Set License Assignments",
            "2LA",
            Setup,
            Sharing::None,
            (true, false, true),
            None,
            vec![
                F::reference("AssigneeId", "Assignee ID", &["User"], "Assignee")
                    .required()
                    .create_only(),
                F::reference(
                    "PermissionSetLicenseId",
                    "Permission Set License ID",
                    &["PermissionSetLicense"],
                    "PermissionSetLicense",
                )
                .required()
                .create_only(),
            ],
        ),
        object(
            "Group",
            "Group",
            "Groups",
            "00G",
            Setup,
            Sharing::None,
            crud,
            None,
            vec![
                F::string("Name", "Name", 40).required().name_field(),
                F::string("DeveloperName", "Developer Name", 80)
                    .no_fls()
                    .unique(),
                F::picklist(
                    "Type",
                    "Type",
                    &[
                        "Regular",
                        "Queue",
                        "Role",
                        "RoleAndSubordinates",
                        "Organization",
                    ],
                    None,
                )
                .required()
                .create_only(),
                F::boolean("DoesIncludeBosses", "Include Bosses", true).no_fls(),
                F::boolean("DoesSendEmailToMembers", "Send Email to Members", false).no_fls(),
                F::new("Email", "Email", FieldType::Email).no_fls(),
            ],
        ),
        object(
            "GroupMember",
            "Group Member",
            "Group Members",
            "011",
            Setup,
            Sharing::None,
            (true, false, true),
            None,
            vec![
                F::reference("GroupId", "Group ID", &["Group"], "Group")
                    .required()
                    .create_only(),
                F::reference(
                    "UserOrGroupId",
                    "User/Group ID",
                    &["User", "Group"],
                    "UserOrGroup",
                )
                .required()
                .create_only(),
            ],
        ),
        object(
            "Account",
            "Account",
            "Accounts",
            "001",
            Data,
            Sharing::Private,
            crud,
            Some(&["User"]),
            vec![
                F::string("Name", "Account Name", 255)
                    .required()
                    .name_field(),
                F::picklist(
                    "Type",
                    "Account Type",
                    &[
                        "Prospect",
                        "Customer - Direct",
                        "Customer - Channel",
                        "Partner",
                        "Other",
                    ],
                    None,
                ),
                F::picklist(
                    "Industry",
                    "Industry",
                    &[
                        "Agriculture",
                        "Banking",
                        "Construction",
                        "Education",
                        "Energy",
                        "Healthcare",
                        "Manufacturing",
                        "Retail",
                        "Technology",
                        "Transportation",
                    ],
                    None,
                ),
                F::new("Phone", "Account Phone", FieldType::Phone),
                F::new("Website", "Website", FieldType::Url),
                F::string("BillingCity", "Billing City", 40),
                F::string("BillingCountry", "Billing Country", 80),
                F::new("AnnualRevenue", "Annual Revenue", FieldType::Currency),
                F::new("NumberOfEmployees", "Employees", FieldType::Int),
                F::new(
                    "Description",
                    "Account Description",
                    FieldType::TextArea { length: 32000 },
                ),
            ],
        ),
        object(
            "Contact",
            "Contact",
            "Contacts",
            "003",
            Data,
            Sharing::ControlledByParent,
            crud,
            Some(&["User"]),
            vec![
                F::string("LastName", "Last Name", 80).required(),
                F::string("FirstName", "First Name", 40),
                F::string("Name", "Full Name", 121)
                    .name_field()
                    .read_only()
                    .no_fls(),
                F::new("Email", "Email", FieldType::Email),
                F::new("Phone", "Business Phone", FieldType::Phone),
                F::string("Title", "Title", 128),
                F::reference("AccountId", "Account ID", &["Account"], "Account"),
            ],
        ),
        object(
            "Case",
            "Case",
            "Cases",
            "500",
            Data,
            Sharing::Private,
            crud,
            Some(&["User", "Group"]),
            vec![
                F::new("CaseNumber", "Case Number", FieldType::AutoNumber)
                    .read_only()
                    .name_field()
                    .not_null(),
                F::string("Subject", "Subject", 255),
                F::new(
                    "Description",
                    "Description",
                    FieldType::TextArea { length: 32000 },
                ),
                F::picklist(
                    "Status",
                    "Status",
                    &[
                        "New",
                        "Working",
                        "In Progress",
                        "Escalated",
                        "On Hold",
                        "Closed",
                    ],
                    Some("New"),
                )
                .no_fls()
                .not_null(),
                F::picklist(
                    "Priority",
                    "Priority",
                    &["High", "Medium", "Low"],
                    Some("Medium"),
                ),
                F::picklist("Origin", "Case Origin", &["Phone", "Email", "Web"], None),
                F::picklist(
                    "Type",
                    "Case Type",
                    &[
                        "Mechanical",
                        "Electrical",
                        "Electronic",
                        "Structural",
                        "Other",
                    ],
                    None,
                ),
                F::picklist(
                    "Reason",
                    "Case Reason",
                    &[
                        "Installation",
                        "Equipment Complexity",
                        "Performance",
                        "Breakdown",
                        "Equipment Design",
                        "Feedback",
                        "Other",
                    ],
                    None,
                ),
                F::boolean("IsClosed", "Closed", false).read_only(),
                F::boolean("IsEscalated", "Escalated", false),
                F::new("ClosedDate", "Closed Date", FieldType::DateTime).read_only(),
                F::new("SuppliedEmail", "Web Email", FieldType::Email),
                F::reference("AccountId", "Account ID", &["Account"], "Account"),
                F::reference("ContactId", "Contact ID", &["Contact"], "Contact"),
            ],
        ),
        share_object("Account", "Account Share", "Account Shares", "00r"),
        share_object("Contact", "Contact Share", "Contact Shares", "03s"),
        share_object("Case", "Case Share", "Case Shares", "01n"),
        object(
            "Task",
            "Task",
            "Tasks",
            "00T",
            Data,
            Sharing::ControlledByParent,
            crud,
            Some(&["User", "Group"]),
            vec![
                F::string("Subject", "Subject", 255).name_field(),
                F::picklist(
                    "Status",
                    "Status",
                    &[
                        "Not Started",
                        "In Progress",
                        "Completed",
                        "Waiting on someone else",
                        "Deferred",
                    ],
                    Some("Not Started"),
                )
                .no_fls()
                .not_null(),
                F::picklist(
                    "Priority",
                    "Priority",
                    &["High", "Normal", "Low"],
                    Some("Normal"),
                )
                .no_fls()
                .not_null(),
                F::new("ActivityDate", "Due Date Only", FieldType::Date),
                F::new(
                    "Description",
                    "Description",
                    FieldType::TextArea { length: 32000 },
                ),
                F::boolean("IsClosed", "Closed", false).read_only(),
                F::reference("WhatId", "Related To ID", &["Account", "Case"], "What"),
                F::reference("WhoId", "Name ID", &["Contact"], "Who"),
            ],
        ),
        // A custom object, so that what the portal does for custom objects (their sharing
        // model is EntityDefinition's, not the Organization's) is tried against the org.
        object(
            "Project__c",
            "Project",
            "Projects",
            "a01",
            Data,
            Sharing::Private,
            crud,
            Some(&["User", "Group"]),
            vec![
                F::string("Name", "Project Name", 80)
                    .required()
                    .name_field(),
                F::new(
                    "Description__c",
                    "Description",
                    FieldType::TextArea { length: 32000 },
                ),
            ],
        ),
        // Row-based metadata about objects (query only, with View Setup and
        // Configuration). `InternalSharingModel` is a custom object's org-wide default;
        // standard objects' mirror the Organization's `Default<Object>Access`.
        // UNCONFIRMED: the value list (taken from Metadata API CustomObject.sharingModel:
        // Private, Read, ReadWrite, ReadWriteTransfer, FullAccess, ControlledByParent).
        object(
            "EntityDefinition",
            "Entity Definition",
            "Entity Definitions",
            "4ie",
            Setup,
            Sharing::None,
            read_only,
            None,
            vec![
                F::string("QualifiedApiName", "Qualified API Name", 250)
                    .read_only()
                    .name_field()
                    .no_fls(),
                F::string("DeveloperName", "Developer Name", 40)
                    .read_only()
                    .no_fls(),
                F::string("MasterLabel", "Master Label", 40)
                    .read_only()
                    .no_fls(),
                F::string("KeyPrefix", "Key Prefix", 3).read_only().no_fls(),
                F::string("InternalSharingModel", "Internal Sharing Model", 40)
                    .read_only()
                    .no_fls(),
                F::string("ExternalSharingModel", "External Sharing Model", 40)
                    .read_only()
                    .no_fls(),
            ],
        ),
        object(
            "EventLogFile",
            "Event Log File",
            "Event Log Files",
            "0AT",
            Setup,
            Sharing::None,
            read_only,
            None,
            vec![
                F::picklist(
                    "EventType",
                    "Event Type",
                    &["ApiTotalUsage", "API", "Login"],
                    None,
                )
                .read_only()
                .no_fls(),
                F::new("LogDate", "Log Date", FieldType::DateTime)
                    .read_only()
                    .no_fls(),
                F::new("LogFile", "Log File", FieldType::Base64)
                    .read_only()
                    .no_fls(),
                F::new("LogFileLength", "Log File Length", FieldType::Double)
                    .read_only()
                    .no_fls(),
                F::string("LogFileContentType", "Log File Content Type", 255)
                    .read_only()
                    .no_fls(),
                F::new(
                    "LogFileFieldNames",
                    "Log File Field Names",
                    FieldType::TextArea { length: 32000 },
                )
                .read_only()
                .no_fls(),
                F::new(
                    "LogFileFieldTypes",
                    "Log File Field Types",
                    FieldType::TextArea { length: 32000 },
                )
                .read_only()
                .no_fls(),
                F::picklist("Interval", "Interval", &["Daily", "Hourly"], None)
                    .read_only()
                    .no_fls(),
                F::new("Sequence", "Sequence", FieldType::Int)
                    .read_only()
                    .no_fls(),
                F::new("ApiVersion", "API Version", FieldType::Double)
                    .read_only()
                    .no_fls(),
            ],
        ),
    ]
}

/// All objects of the sandbox org.
pub fn objects() -> &'static [ObjectDef] {
    static OBJECTS: OnceLock<Vec<ObjectDef>> = OnceLock::new();
    OBJECTS.get_or_init(build)
}

/// An object by name, case-insensitively.
pub fn object_def(name: &str) -> Option<&'static ObjectDef> {
    objects().iter().find(|o| o.name.eq_ignore_ascii_case(name))
}

/// The Case object, which sharing rules refer to directly.
pub fn case() -> &'static ObjectDef {
    // Case is always in the table built by `build`; the index lookup keeps this infallible.
    let all = objects();
    all.iter()
        .find(|o| o.name == "Case")
        .unwrap_or(&all[all.len() - 1])
}

/// The object whose ids start with `prefix`.
pub fn object_by_prefix(prefix: &str) -> Option<&'static ObjectDef> {
    objects().iter().find(|o| o.key_prefix == prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_object_has_a_unique_prefix_and_system_fields() {
        let mut prefixes = std::collections::HashSet::new();
        for object in objects() {
            assert!(prefixes.insert(object.key_prefix), "{}", object.name);
            for field in ["Id", "CreatedDate", "SystemModstamp"] {
                assert!(object.field(field).is_some(), "{}.{field}", object.name);
            }
            for field in &object.fields {
                if let FieldType::Reference { to, .. } = &field.field_type {
                    for target in *to {
                        assert!(
                            object_def(target).is_some(),
                            "{}.{} -> {target}",
                            object.name,
                            field.name
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn lookups_are_case_insensitive() {
        let case = object_def("case").unwrap();
        assert_eq!(case.name, "Case");
        assert_eq!(case.field("SUBJECT").unwrap().name, "Subject");
        assert_eq!(case.relationship("owner").unwrap().name, "OwnerId");
        assert!(case.field("Origin").unwrap().permissionable);
        assert!(!case.field("Status").unwrap().permissionable);
    }
}
