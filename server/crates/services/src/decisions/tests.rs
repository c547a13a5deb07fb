use super::queue::{cursor_decode, cursor_encode, like_contains};
use super::*;
use shared::scope::ObjectAccess;

fn case_scope(fields: &[(&str, Level)], view_all: bool) -> Scope {
    Scope {
        objects: vec![ObjectAccess {
            object: "Case".into(),
            level: Level::Edit,
            fields: fields.iter().map(|(f, l)| (f.to_string(), *l)).collect(),
            view_all,
            modify_all: false,
        }],
        visibility: Visibility {
            rule: VisibilityRule::Shared,
            record_ids: vec![],
            group: None,
        },
        packages: vec![],
    }
}

#[test]
fn cursors_round_trip_and_garbage_is_ignored() {
    let c = cursor_encode(1_700_000_000_000, "0193-abc");
    assert_eq!(
        cursor_decode(&c),
        Some((1_700_000_000_000, "0193-abc".to_string()))
    );
    assert_eq!(cursor_decode("!!"), None);
    assert_eq!(cursor_decode(&URL_SAFE_NO_PAD.encode("nope")), None);
}

#[test]
fn like_patterns_escape_wildcards() {
    assert_eq!(like_contains("50%_a\\b"), "%50\\%\\_a\\\\b%");
}

#[test]
fn flags_show_up_in_scope_changes() {
    let asked = case_scope(&[("Subject", Level::Read)], false);
    let granted = case_scope(&[("Subject", Level::Read)], true);
    let changes = scope_changes(&asked, &granted);
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].item, "Case: View All");
    assert!(changes[0].is_widening());
    assert!(scope_changes(&granted, &asked)[0].is_narrowing());
}

#[test]
fn adding_records_or_changing_the_rule_widens_visibility() {
    let asked = case_scope(&[], false).visibility;
    let mut more = asked.clone();
    more.record_ids.push("500000000000001AAA".into());
    assert!(visibility_widens(&asked, &more));
    assert!(!visibility_widens(&more, &asked));
    let mut group = asked.clone();
    group.rule = VisibilityRule::Group;
    assert!(visibility_widens(&asked, &group));
    assert!(!visibility_widens(&asked, &asked));
}

#[test]
fn an_earlier_approval_covers_only_what_it_agreed_to() {
    let plain = case_scope(&[("Subject", Level::Read)], false);
    let more = case_scope(
        &[("Subject", Level::Read), ("Description", Level::Edit)],
        false,
    );
    let view_all = case_scope(&[("Subject", Level::Read)], true);
    assert!(covers(&plain, &plain));
    // Putting back a field, or adding View All, is more than was approved.
    assert!(!covers(&plain, &more));
    assert!(!covers(&plain, &view_all));
    // Narrowing what was approved is fine.
    assert!(covers(&more, &plain));
    assert!(covers(&view_all, &plain));
    // Records the approval did not name widen; dropping records narrows.
    let mut records = plain.clone();
    records
        .visibility
        .record_ids
        .push("500000000000001AAA".into());
    assert!(!covers(&plain, &records));
    assert!(covers(&records, &plain));
}

#[test]
fn scope_shapes_are_checked() {
    let mut scope = case_scope(&[("Bad Name", Level::Read)], false);
    scope.visibility.record_ids = vec!["not-an-id".into()];
    let errors = scope_problems(&scope);
    assert!(errors.get("scope").is_some());
    assert!(errors.get("visibility").is_some());
    scope.visibility.rule = VisibilityRule::Group;
    assert!(
        scope_problems(&scope)
            .get("visibility")
            .unwrap()
            .contains("group")
    );
}
