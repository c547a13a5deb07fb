//! The objects the sandbox org knows, field by field: the data objects, their share
//! objects, and the setup objects the portal provisions (users, licences, permission sets,
//! permissions, External Client App records).

use super::*;

pub(super) fn build() -> Vec<ObjectDef> {
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
            ("Organization", "Organization", "Organizations", "00D"),
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
            ("UserLicense", "User License", "User Licenses", "100"),
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
            ("Profile", "Profile", "Profiles", "00e"),
            Setup,
            Sharing::None,
            read_only,
            None,
            profile_fields,
        ),
        object(
            (
                "PermissionSetLicense",
                "Permission Set License",
                "Permission Set Licenses",
                "0PL",
            ),
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
            ("User", "User", "Users", "005"),
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
            ("UserLogin", "User Login", "User Logins", "0Yw"),
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
            ("PermissionSet", "Permission Set", "Permission Sets", "0PS"),
            Setup,
            Sharing::None,
            crud,
            None,
            permission_set_fields,
        ),
        object(
            (
                "ObjectPermissions",
                "Object Permissions",
                "Object Permissions",
                "110",
            ),
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
            (
                "FieldPermissions",
                "Field Permissions",
                "Field Permissions",
                "01k",
            ),
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
            (
                "PermissionSetAssignment",
                "Permission Set Assignment",
                "Permission Set Assignments",
                "0Pa",
            ),
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
            (
                "PermissionSetLicenseAssign",
                "Permission Set License Assignment",
                "Permission Set License Assignments",
                "2LA",
            ),
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
            ("Group", "Group", "Groups", "00G"),
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
            ("GroupMember", "Group Member", "Group Members", "011"),
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
            ("Account", "Account", "Accounts", "001"),
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
            ("Contact", "Contact", "Contacts", "003"),
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
            ("Case", "Case", "Cases", "500"),
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
            ("Task", "Task", "Tasks", "00T"),
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
            ("Project__c", "Project", "Projects", "a01"),
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
            (
                "EntityDefinition",
                "Entity Definition",
                "Entity Definitions",
                "4ie",
            ),
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
            ("EventLogFile", "Event Log File", "Event Log Files", "0AT"),
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
