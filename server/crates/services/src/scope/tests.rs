use std::collections::HashMap;

use shared::org::{OrgField, OrgObject};
use shared::scope::{Level, ObjectAccess, Scope, Visibility, VisibilityRule};

use super::{Selection, build};

fn field(name: &str, editable: bool, permissionable: bool) -> OrgField {
    OrgField {
        name: name.into(),
        label: name.into(),
        editable,
        permissionable,
    }
}

/// Case (Subject editable, Origin read-only, Id not permissionable) and Account (Phone).
fn org() -> Vec<OrgObject> {
    vec![
        OrgObject {
            name: "Case".into(),
            label: "Case".into(),
            fields: vec![
                field("Id", false, false),
                field("Subject", true, true),
                field("Origin", false, true),
            ],
        },
        OrgObject {
            name: "Account".into(),
            label: "Account".into(),
            fields: vec![field("Phone", true, true)],
        },
    ]
}

fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn selection(objects: &[(&str, &str)], fields: &[(&str, &str)], visibility: &str) -> Selection {
    Selection {
        packages: HashMap::new(),
        objects: map(objects),
        fields: map(fields),
        visibility: visibility.into(),
    }
}

fn refused(selection: &Selection) -> (String, String) {
    let error = build(&org(), None, selection).expect_err("the selection is refused");
    (error.field, error.message)
}

#[test]
fn objects_and_fields_become_a_sorted_scope_with_the_chosen_rule() {
    let scope = build(
        &org(),
        None,
        &selection(
            &[("Case", "edit"), ("Account", "read"), ("Contact", "none")],
            &[
                ("Case.Subject", "edit"),
                ("Case.Origin", "read"),
                ("Account.Phone", ""),
            ],
            "owned",
        ),
    )
    .expect("a valid selection");
    assert_eq!(
        scope
            .objects
            .iter()
            .map(|o| (o.object.as_str(), o.level))
            .collect::<Vec<_>>(),
        [("Account", Level::Read), ("Case", Level::Edit)],
        "objects are sorted, 'none' is left out"
    );
    let case = scope.object("Case").expect("Case is granted");
    assert_eq!(case.fields.get("Subject"), Some(&Level::Edit));
    assert_eq!(case.fields.get("Origin"), Some(&Level::Read));
    assert!(
        scope.object("Account").expect("Account").fields.is_empty(),
        "an empty field level chooses nothing"
    );
    assert_eq!(scope.visibility.rule, VisibilityRule::Owned);
    assert!(!case.view_all && !case.modify_all);
}

#[test]
fn nothing_chosen_is_an_empty_scope_shared_by_default() {
    let scope = build(&org(), None, &selection(&[], &[], "")).expect("empty is not an error");
    assert!(scope.is_empty());
    assert_eq!(scope.visibility.rule, VisibilityRule::Shared);
}

#[test]
fn an_unknown_level_is_refused_naming_the_object() {
    assert_eq!(
        refused(&selection(&[("Case", "admin")], &[], "")),
        (
            "access".into(),
            "'admin' is not an access level for Case.".into()
        )
    );
}

#[test]
fn an_object_the_org_lacks_is_refused() {
    assert_eq!(
        refused(&selection(&[("Opportunity", "read")], &[], "")),
        (
            "access".into(),
            "There is no object Opportunity in the org.".into()
        )
    );
}

#[test]
fn a_field_path_without_its_object_name_is_refused() {
    assert_eq!(
        refused(&selection(&[("Case", "read")], &[("Subject", "read")], "")),
        ("access".into(), "'Subject' is not a field.".into())
    );
}

#[test]
fn an_unknown_field_level_is_refused_naming_the_field() {
    assert_eq!(
        refused(&selection(
            &[("Case", "read")],
            &[("Case.Subject", "all")],
            ""
        )),
        (
            "access".into(),
            "'all' is not an access level for Case.Subject.".into()
        )
    );
}

#[test]
fn a_field_the_org_cannot_grant_is_refused() {
    for path in ["Case.Id", "Case.Nope"] {
        assert_eq!(
            refused(&selection(&[("Case", "read")], &[(path, "read")], "")),
            (
                "access".into(),
                format!("There is no field {path} the org can grant.")
            ),
            "{path}"
        );
    }
}

#[test]
fn field_edit_needs_object_edit_and_an_editable_field() {
    let message = |path: &str| {
        (
            "access".to_string(),
            format!(
                "{path} can only be edited when Case records can be edited and the field itself is editable."
            ),
        )
    };
    assert_eq!(
        refused(&selection(
            &[("Case", "read")],
            &[("Case.Subject", "edit")],
            ""
        )),
        message("Case.Subject"),
        "the object is only read"
    );
    assert_eq!(
        refused(&selection(
            &[("Case", "edit")],
            &[("Case.Origin", "edit")],
            ""
        )),
        message("Case.Origin"),
        "the org does not let the field be edited"
    );
}

#[test]
fn a_field_without_its_object_is_refused() {
    assert_eq!(
        refused(&selection(
            &[("Case", "none")],
            &[("Case.Subject", "read")],
            ""
        )),
        (
            "access".into(),
            "Choose read or edit for Case before choosing its fields.".into()
        )
    );
}

#[test]
fn an_unknown_visibility_rule_is_an_error_on_visibility() {
    assert_eq!(
        refused(&selection(&[("Case", "read")], &[], "everyone")),
        (
            "visibility".into(),
            "'everyone' is not a record visibility rule.".into()
        )
    );
}

fn package_scope() -> Scope {
    Scope {
        objects: vec![ObjectAccess {
            object: "Case".into(),
            level: Level::Read,
            fields: [("Origin".to_string(), Level::Read)].into(),
            view_all: false,
            modify_all: false,
        }],
        visibility: Visibility {
            rule: VisibilityRule::Group,
            record_ids: Vec::new(),
            group: None,
        },
        packages: vec!["Case handling".into()],
    }
}

#[test]
fn chosen_objects_widen_the_packages_scope_and_keep_its_rule() {
    let scope = build(
        &org(),
        Some(package_scope()),
        &selection(
            &[("Case", "edit"), ("Account", "read")],
            &[("Case.Subject", "edit")],
            "",
        ),
    )
    .expect("a valid selection");
    let case = scope.object("Case").expect("Case");
    assert_eq!(case.level, Level::Edit, "the higher level wins");
    assert_eq!(case.fields.get("Origin"), Some(&Level::Read), "kept");
    assert_eq!(case.fields.get("Subject"), Some(&Level::Edit), "added");
    assert!(scope.object("Account").is_some());
    assert_eq!(
        scope.visibility.rule,
        VisibilityRule::Group,
        "no rule chosen: the packages' rule"
    );
    assert_eq!(scope.packages, ["Case handling"]);
}

#[test]
fn a_field_of_an_object_a_package_grants_needs_no_object_choice() {
    let scope = build(
        &org(),
        Some(package_scope()),
        &selection(&[], &[("Case.Subject", "read")], "shared"),
    )
    .expect("the package grants Case");
    assert_eq!(
        scope.visibility.rule,
        VisibilityRule::Shared,
        "the chosen rule wins"
    );
    assert_eq!(
        scope.object("Case").expect("Case").level,
        Level::Read,
        "the package's level"
    );
}

#[test]
fn only_packages_marked_on_are_chosen() {
    let selection = Selection {
        packages: map(&[("b", "on"), ("a", "true"), ("c", "off"), ("d", "")]),
        ..Selection::default()
    };
    assert_eq!(selection.chosen_packages(), ["a", "b"]);
}
