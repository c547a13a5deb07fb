//! The sandbox org's schema: the sObjects it knows, their fields and how each field behaves
//! (type, length, picklist values, whether field-level security applies to it, whether it
//! can be written). Describe results, validation and the SOQL engine all read from here.

use std::collections::HashMap;
use std::sync::OnceLock;

mod build;

use build::build;

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
        (name, label, label_plural, key_prefix),
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

/// An object: its `(name, label, label_plural, key_prefix)`, kind, sharing, `(createable,
/// updateable, deletable)`, owner field's targets and fields.
fn object(
    (name, label, label_plural, key_prefix): (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
    ),
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
