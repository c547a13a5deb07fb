//! Who may do what: a user's effective permissions (profile + assigned permission sets),
//! object permissions, field-level security, and record-level access (ownership, manual
//! shares, group membership, View All / Modify All, org-wide defaults).
//!
//! Computed from the org's own setup records on every request, so that a change made
//! through the API (a new FieldPermissions row, an expired assignment) takes effect at once,
//! as in Salesforce.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::schema::{self, FieldDef, Kind, ObjectDef, Sharing};
use crate::store::{OrgData, Record, parse_sf_datetime};

/// Object permissions, merged across profile and permission sets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ObjectPerms {
    pub read: bool,
    pub create: bool,
    pub edit: bool,
    pub delete: bool,
    pub view_all: bool,
    pub modify_all: bool,
    pub view_all_fields: bool,
}

impl ObjectPerms {
    fn merge(&mut self, other: &ObjectPerms) {
        self.read |= other.read;
        self.create |= other.create;
        self.edit |= other.edit;
        self.delete |= other.delete;
        self.view_all |= other.view_all;
        self.modify_all |= other.modify_all;
        self.view_all_fields |= other.view_all_fields;
    }

    fn all() -> Self {
        Self {
            read: true,
            create: true,
            edit: true,
            delete: true,
            view_all: true,
            modify_all: true,
            view_all_fields: true,
        }
    }
}

/// Record-level access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    None,
    Read,
    Edit,
    All,
}

impl Level {
    pub fn parse(raw: &str) -> Level {
        match raw {
            "Read" => Level::Read,
            "Edit" => Level::Edit,
            "All" => Level::All,
            _ => Level::None,
        }
    }
}

/// A user's effective access, computed once per request.
#[derive(Debug, Clone)]
pub struct Access {
    pub user_id: String,
    pub profile_id: String,
    pub perms: HashSet<&'static str>,
    objects: HashMap<&'static str, ObjectPerms>,
    /// (object, lower-case field) → (read, edit)
    fields: HashMap<(&'static str, String), (bool, bool)>,
    /// Groups (and queues) the user belongs to, directly or through nested groups.
    pub groups: HashSet<String>,
    /// Permission sets the user holds through unexpired assignments (ids).
    pub permission_set_ids: HashSet<String>,
}

fn bool_field(record: &Record, name: &str) -> bool {
    record.get(name).and_then(Value::as_bool).unwrap_or(false)
}

fn str_field<'a>(record: &'a Record, name: &str) -> Option<&'a str> {
    record.get(name).and_then(Value::as_str)
}

/// Whether any permission set assignment's `ExpirationDate` has passed at `now`.
pub fn has_expired_assignments(data: &OrgData, now: DateTime<Utc>) -> bool {
    data.table("PermissionSetAssignment")
        .any(|(_, a)| !assignment_active(a, now))
}

/// Removes the permission set assignments whose `ExpirationDate` has passed at `now`; how
/// many. Salesforce documents that assigned users keep the permissions "until the
/// expiration date" and that access is removed then; that the assignment record itself is
/// deleted (no longer returned by a query) is the stricter reading: UNCONFIRMED, as is
/// how long after the moment a real org's background job removes it (here: the next
/// request the org answers; access itself ends at the moment, see [`assignment_active`]).
pub fn remove_expired_assignments(data: &mut OrgData, now: DateTime<Utc>) -> usize {
    let expired: Vec<String> = data
        .table("PermissionSetAssignment")
        .filter(|(_, a)| !assignment_active(a, now))
        .map(|(id, _)| id.clone())
        .collect();
    for id in &expired {
        data.remove("PermissionSetAssignment", id);
    }
    expired.len()
}

/// Whether a permission set assignment is in force at `now`.
pub fn assignment_active(assignment: &Record, now: DateTime<Utc>) -> bool {
    match str_field(assignment, "ExpirationDate").and_then(parse_sf_datetime) {
        Some(expires) => expires > now,
        None => true,
    }
}

impl Access {
    /// Computes the access of `user_id` from the org's setup records.
    pub fn compute(data: &OrgData, user_id: &str, now: DateTime<Utc>) -> Access {
        let user = data.get("User", user_id);
        let profile_id = user
            .and_then(|u| str_field(u, "ProfileId"))
            .unwrap_or_default()
            .to_string();

        // The profile's own permission set carries its object and field permissions.
        let mut sets: Vec<String> = data
            .table("PermissionSet")
            .filter(|(_, ps)| {
                bool_field(ps, "IsOwnedByProfile")
                    && str_field(ps, "ProfileId") == Some(profile_id.as_str())
            })
            .map(|(id, _)| id.clone())
            .collect();
        let mut permission_set_ids = HashSet::new();
        for (_, assignment) in data.table("PermissionSetAssignment") {
            if str_field(assignment, "AssigneeId") == Some(user_id)
                && assignment_active(assignment, now)
                && let Some(ps) = str_field(assignment, "PermissionSetId")
            {
                sets.push(ps.to_string());
                permission_set_ids.insert(ps.to_string());
            }
        }

        let mut perms = HashSet::new();
        let mut grant_user_perms = |record: &Record| {
            for name in schema::USER_PERMISSIONS {
                if bool_field(record, &format!("Permissions{name}")) {
                    perms.insert(*name);
                }
            }
        };
        if let Some(profile) = data.get("Profile", &profile_id) {
            grant_user_perms(profile);
        }
        for ps in &sets {
            if let Some(record) = data.get("PermissionSet", ps) {
                grant_user_perms(record);
            }
        }

        let set_ids: HashSet<&str> = sets.iter().map(String::as_str).collect();
        let mut objects: HashMap<&'static str, ObjectPerms> = HashMap::new();
        for (_, op) in data.table("ObjectPermissions") {
            if !str_field(op, "ParentId").is_some_and(|p| set_ids.contains(p)) {
                continue;
            }
            let Some(def) = str_field(op, "SobjectType").and_then(schema::object_def) else {
                continue;
            };
            let granted = ObjectPerms {
                read: bool_field(op, "PermissionsRead"),
                create: bool_field(op, "PermissionsCreate"),
                edit: bool_field(op, "PermissionsEdit"),
                delete: bool_field(op, "PermissionsDelete"),
                view_all: bool_field(op, "PermissionsViewAllRecords"),
                modify_all: bool_field(op, "PermissionsModifyAllRecords"),
                view_all_fields: bool_field(op, "PermissionsViewAllFields"),
            };
            objects.entry(def.name).or_default().merge(&granted);
        }

        let mut fields: HashMap<(&'static str, String), (bool, bool)> = HashMap::new();
        for (_, fp) in data.table("FieldPermissions") {
            if !str_field(fp, "ParentId").is_some_and(|p| set_ids.contains(p)) {
                continue;
            }
            let Some(def) = str_field(fp, "SobjectType").and_then(schema::object_def) else {
                continue;
            };
            let Some(field) = str_field(fp, "Field")
                .and_then(|f| f.split_once('.'))
                .map(|(_, f)| f)
            else {
                continue;
            };
            let entry = fields
                .entry((def.name, field.to_ascii_lowercase()))
                .or_insert((false, false));
            entry.0 |= bool_field(fp, "PermissionsRead");
            entry.1 |= bool_field(fp, "PermissionsEdit");
        }

        Access {
            user_id: user_id.to_string(),
            profile_id,
            perms,
            objects,
            fields,
            groups: group_memberships(data, user_id),
            permission_set_ids,
        }
    }

    pub fn has(&self, perm: &str) -> bool {
        self.perms.contains(perm)
    }

    pub fn modify_all_data(&self) -> bool {
        self.has("ModifyAllData")
    }

    pub fn view_all_data(&self) -> bool {
        self.has("ViewAllData") || self.modify_all_data()
    }

    /// Object permissions on a business object.
    pub fn object(&self, def: &ObjectDef) -> ObjectPerms {
        if self.modify_all_data() {
            return ObjectPerms::all();
        }
        let mut perms = self.objects.get(def.name).copied().unwrap_or_default();
        // Activities have no object permissions (ObjectPermissions refuses them): a user
        // reads the tasks of the records they can see, and "Edit Tasks" lets them create
        // and edit them. Their records follow the parent's sharing (no TaskShare).
        if matches!(def.name, "Task" | "Event") {
            let edit = self.has("EditTask");
            perms = ObjectPerms {
                read: true,
                create: edit,
                edit,
                delete: edit,
                ..ObjectPerms::default()
            };
        }
        if self.has("ViewAllData") {
            perms.read = true;
            perms.view_all = true;
            perms.view_all_fields = true;
        }
        perms
    }

    /// Whether the user may read records of `def` at all (query, describe, retrieve).
    pub fn can_read_object(&self, def: &ObjectDef) -> bool {
        match def.kind {
            Kind::Data => self.object(def).read,
            Kind::Setup => self.can_read_setup(def),
        }
    }

    fn can_read_setup(&self, def: &ObjectDef) -> bool {
        if self.view_all_data() {
            return true;
        }
        match def.name {
            "User" | "Group" | "GroupMember" | "Organization" => true,
            "UserLogin" => self.has("ManageUsers") || self.has("FreezeUsers"),
            "EventLogFile" => self.has("ViewEventLogFiles"),
            "AccountShare" | "ContactShare" | "CaseShare" => self.can_read_shared_parent(def),
            _ => self.has("ViewSetup"),
        }
    }

    /// Whether the user may create/update/delete records of a setup object.
    pub fn can_write_setup(&self, def: &ObjectDef) -> bool {
        if self.modify_all_data() {
            return true;
        }
        match def.name {
            "User" => self.has("ManageUsers") || self.has("ManageInternalUsers"),
            "UserLogin" => self.has("ManageUsers") || self.has("FreezeUsers"),
            "PermissionSet" | "ObjectPermissions" | "FieldPermissions" => {
                self.has("ManageProfilesPermissionsets")
            }
            "PermissionSetAssignment" | "PermissionSetLicenseAssign" => {
                self.has("AssignPermissionSets") || self.has("ManageUsers")
            }
            "Group" | "GroupMember" => self.has("ManageUsers"),
            // Case owners share their own cases; checked per record.
            "AccountShare" | "ContactShare" | "CaseShare" => self.can_read_shared_parent(def),
            _ => false,
        }
    }

    /// Whether the user may read the object a share object shares (`CaseShare`: Case).
    fn can_read_shared_parent(&self, share: &ObjectDef) -> bool {
        schema::object_def(share.name.trim_end_matches("Share"))
            .is_some_and(|p| self.object(p).read)
    }

    /// Field-level security: may the user see this field?
    pub fn field_readable(&self, def: &ObjectDef, field: &FieldDef) -> bool {
        if def.kind == Kind::Setup || !field.permissionable {
            return true;
        }
        let object = self.object(def);
        if object.view_all_fields || self.view_all_data() {
            return true;
        }
        self.fields
            .get(&(def.name, field.name.to_ascii_lowercase()))
            .is_some_and(|(read, _)| *read)
    }

    /// Field-level security: may the user write this field (object permission aside)?
    pub fn field_editable(&self, def: &ObjectDef, field: &FieldDef) -> bool {
        if def.kind == Kind::Setup || !field.permissionable || self.modify_all_data() {
            return true;
        }
        self.fields
            .get(&(def.name, field.name.to_ascii_lowercase()))
            .is_some_and(|(_, edit)| *edit)
    }

    /// Whether the user (or a group/queue they belong to) is `owner_id`.
    pub fn is_or_contains(&self, owner_id: &str) -> bool {
        owner_id == self.user_id || self.groups.contains(owner_id)
    }
}

/// Group ids the user belongs to, following nested groups.
fn group_memberships(data: &OrgData, user_id: &str) -> HashSet<String> {
    let mut members_of: HashMap<&str, Vec<&str>> = HashMap::new();
    for (_, gm) in data.table("GroupMember") {
        if let (Some(group), Some(member)) =
            (str_field(gm, "GroupId"), str_field(gm, "UserOrGroupId"))
        {
            members_of.entry(member).or_default().push(group);
        }
    }
    let mut groups = HashSet::new();
    let mut frontier = vec![user_id.to_string()];
    while let Some(member) = frontier.pop() {
        for group in members_of.get(member.as_str()).into_iter().flatten() {
            if groups.insert(group.to_string()) {
                frontier.push(group.to_string());
            }
        }
    }
    groups
}

/// Record-level sharing for one request: caches manual shares and parent lookups.
pub struct RecordSharing<'a> {
    data: &'a OrgData,
    access: &'a Access,
    shares: HashMap<&'static str, HashMap<String, Level>>,
    defaults: HashMap<&'static str, String>,
}

impl<'a> RecordSharing<'a> {
    pub fn new(data: &'a OrgData, access: &'a Access) -> Self {
        Self {
            data,
            access,
            shares: HashMap::new(),
            defaults: HashMap::new(),
        }
    }

    /// The user's manual-share level on a record of `object` (Account, Contact, Case).
    fn share_level(&mut self, object: &'static str, record_id: &str) -> Level {
        let (data, access) = (self.data, self.access);
        let shares = self.shares.entry(object).or_insert_with(|| {
            let (table, record_field, level_field) = (
                format!("{object}Share"),
                format!("{object}Id"),
                format!("{object}AccessLevel"),
            );
            let mut levels: HashMap<String, Level> = HashMap::new();
            for (_, share) in data.table(&table) {
                let Some(grantee) = str_field(share, "UserOrGroupId") else {
                    continue;
                };
                if !access.is_or_contains(grantee) {
                    continue;
                }
                if let Some(record) = str_field(share, &record_field) {
                    let level = Level::parse(str_field(share, &level_field).unwrap_or(""));
                    let entry = levels.entry(record.to_string()).or_insert(Level::None);
                    *entry = (*entry).max(level);
                }
            }
            levels
        });
        shares.get(record_id).copied().unwrap_or(Level::None)
    }

    /// The object's sharing model: the org-wide default set in the org (Organization's
    /// `Default<Object>Access`) for objects that have one, else the schema's.
    fn sharing_model(&mut self, def: &ObjectDef) -> Sharing {
        if !schema::SHARED_OBJECTS.contains(&def.name) && !def.name.ends_with("__c") {
            return def.sharing;
        }
        let data = self.data;
        let name = def.name;
        let default = self
            .defaults
            .entry(name)
            .or_insert_with(|| crate::records::org_wide_default(data, name));
        match default.as_str() {
            "Read" => Sharing::PublicRead,
            "Edit" | "ReadEditTransfer" => Sharing::PublicReadWrite,
            "ControlledByParent" => Sharing::ControlledByParent,
            _ => Sharing::Private,
        }
    }

    /// The user's access to a record of `def` (object permissions applied).
    pub fn level(&mut self, def: &ObjectDef, id: &str, record: &Record) -> Level {
        if def.kind == Kind::Setup {
            return self.setup_level(def, record);
        }
        let perms = self.access.object(def);
        if !perms.read {
            return Level::None;
        }
        let sharing = self.sharing_level(def, id, record, 0);
        let mut level = sharing;
        if perms.modify_all {
            level = Level::All;
        } else if perms.view_all {
            level = level.max(Level::Read);
        }
        // Without object Edit, sharing can give no more than Read.
        if !perms.edit && level > Level::Read && !perms.modify_all {
            level = Level::Read;
        }
        level
    }

    fn sharing_level(&mut self, def: &ObjectDef, id: &str, record: &Record, depth: u8) -> Level {
        if let Some(owner) = str_field(record, "OwnerId")
            && self.access.is_or_contains(owner)
        {
            return Level::All;
        }
        let sharing = self.sharing_model(def);
        let mut level = match sharing {
            Sharing::PublicRead => Level::Read,
            Sharing::PublicReadWrite => Level::Edit,
            _ => Level::None,
        };
        if let Some(object) = schema::SHARED_OBJECTS.iter().find(|o| **o == def.name) {
            level = level.max(self.share_level(object, id));
        }
        if sharing == Sharing::ControlledByParent && depth < 3 {
            let parent = match def.name {
                "Contact" => str_field(record, "AccountId"),
                "Task" => str_field(record, "WhatId"),
                _ => None,
            };
            if let Some(parent_id) = parent
                && let Some(parent_def) = parent_id.get(..3).and_then(schema::object_by_prefix)
                && let Some(parent_record) = self.data.get(parent_def.name, parent_id)
            {
                let parent_perms = self.access.object(parent_def);
                let mut parent_level = if parent_perms.modify_all {
                    Level::All
                } else {
                    self.sharing_level(parent_def, parent_id, parent_record, depth + 1)
                };
                if parent_perms.view_all {
                    parent_level = parent_level.max(Level::Read);
                }
                level = level.max(parent_level.min(Level::Edit));
            }
        }
        level
    }

    fn setup_level(&mut self, def: &ObjectDef, record: &Record) -> Level {
        if !self.access.can_read_object(def) {
            return Level::None;
        }
        if matches!(def.name, "AccountShare" | "ContactShare" | "CaseShare") {
            // Share rows are visible to whoever may share the case: its owner, or an admin.
            if self.access.modify_all_data() || self.access.view_all_data() {
                return if self.access.modify_all_data() {
                    Level::All
                } else {
                    Level::Read
                };
            }
            let parent = def.name.trim_end_matches("Share");
            let case = str_field(record, &format!("{parent}Id"))
                .and_then(|c| self.data.get(parent, c).map(|r| (c.to_string(), r.clone())));
            return match case {
                Some((_, case))
                    if str_field(&case, "OwnerId")
                        .is_some_and(|o| self.access.is_or_contains(o)) =>
                {
                    Level::All
                }
                _ => Level::None,
            };
        }
        if self.access.can_write_setup(def) {
            Level::All
        } else {
            Level::Read
        }
    }
}
