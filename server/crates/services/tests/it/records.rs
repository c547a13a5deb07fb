//! The record picker's search against the in-process sandbox org: names found by a part of
//! them (in any case), the count of every match beside a page of at most 20, and the
//! approver's text taken literally: `'`, `%` and `_` neither break the query nor widen it.

use crate::common;

use common::*;
use salesforce::Soql;
use serde_json::json;
use services::records::RecordSearchError;

async fn account(t: &TestPortal, name: &str) -> String {
    t.salesforce()
        .create("Account", &json!({ "Name": name }))
        .await
        .unwrap()
        .as_str()
        .to_string()
}

fn names(page: &shared::records::RecordSearch) -> Vec<&str> {
    page.records.iter().map(|r| r.name.as_str()).collect()
}

test_kit::both_databases!(search_finds_records_by_name_with_counts, |engine| {
    let Some(t) = portal_with_org(engine).await else {
        return;
    };
    let widgets = account(&t, "Zyxw Widgets Ltd").await;
    account(&t, "O'Zyxw Partners").await;
    account(&t, "Zyxw 100% Pure").await;
    account(&t, "Zyxw100 Other").await;

    // A part of the name, in another case: the one record, with its id and name.
    let page = t.search_records("Account", "widgets", 0).await.unwrap();
    assert_eq!(page.object, "Account");
    assert_eq!(page.name_field, "Name");
    assert_eq!(page.total, 1);
    assert_eq!(page.records.len(), 1);
    assert_eq!(page.records[0].id, widgets);
    assert_eq!(page.records[0].name, "Zyxw Widgets Ltd");
    assert_eq!(page.summary(), "Showing 1–1 of 1");

    // Every match, ordered by name.
    let page = t.search_records("Account", "zyxw", 0).await.unwrap();
    assert_eq!(page.total, 4);
    assert_eq!(
        names(&page),
        [
            "O'Zyxw Partners",
            "Zyxw 100% Pure",
            "Zyxw Widgets Ltd",
            "Zyxw100 Other"
        ]
    );

    // No match.
    let page = t
        .search_records("Account", "no such account qqq", 0)
        .await
        .unwrap();
    assert_eq!(page.total, 0);
    assert!(page.records.is_empty());
    assert_eq!(page.summary(), "No records match.");

    // Blank: a page of every record the portal sees, with how many there are.
    let all = t
        .salesforce()
        .count(&Soql::count().from("Account").build().unwrap())
        .await
        .unwrap();
    assert!(all > 20, "the seed has ~50 accounts, found {all}");
    let page = t.search_records("Account", "  ", 0).await.unwrap();
    assert_eq!(page.total, all);
    assert_eq!(page.records.len(), 20);
    assert!(page.has_more());
    assert_eq!(page.summary(), format!("Showing 1–20 of {all}"));
});

test_kit::both_databases!(search_pages_through_the_matches, |engine| {
    let Some(t) = portal_with_org(engine).await else {
        return;
    };
    let mut made = Vec::new();
    for n in 1..=23 {
        made.push(account(&t, &format!("Qqpage {n:02}")).await);
    }
    let first = t.search_records("Account", "qqpage", 0).await.unwrap();
    assert_eq!(first.total, 23);
    assert_eq!(first.records.len(), 20);
    assert_eq!(first.records[0].name, "Qqpage 01");
    assert!(first.has_more());
    let second = t.search_records("Account", "qqpage", 20).await.unwrap();
    assert_eq!(second.total, 23);
    assert_eq!(second.offset, 20);
    assert_eq!(names(&second), ["Qqpage 21", "Qqpage 22", "Qqpage 23"]);
    assert!(!second.has_more());
    assert_eq!(second.summary(), "Showing 21–23 of 23");
    let mut seen: Vec<String> = first
        .records
        .iter()
        .chain(&second.records)
        .map(|r| r.id.clone())
        .collect();
    seen.sort();
    made.sort();
    assert_eq!(seen, made);
});

test_kit::both_databases!(search_text_is_taken_literally, |engine| {
    let Some(t) = portal_with_org(engine).await else {
        return;
    };
    account(&t, "O'Zyxw Partners").await;
    account(&t, "Zyxw 100% Pure").await;
    account(&t, "Zyxw100 Other").await;
    account(&t, r"Back\slash Zyxw").await;

    // A quote neither ends the string nor errors.
    let page = t.search_records("Account", "o'zyxw", 0).await.unwrap();
    assert_eq!(names(&page), ["O'Zyxw Partners"]);
    assert_eq!(page.total, 1);
    let page = t
        .search_records("Account", "' OR Name != '", 0)
        .await
        .unwrap();
    assert_eq!(page.total, 0);

    // `%` and `_` match themselves, never any text.
    let page = t.search_records("Account", "100%", 0).await.unwrap();
    assert_eq!(names(&page), ["Zyxw 100% Pure"]);
    assert_eq!(page.total, 1);
    let page = t.search_records("Account", "%", 0).await.unwrap();
    assert_eq!(names(&page), ["Zyxw 100% Pure"]);
    let page = t.search_records("Account", "Zyxw_", 0).await.unwrap();
    assert_eq!(page.total, 0);
    assert!(page.records.is_empty());

    // A backslash is a character like any other.
    let page = t.search_records("Account", r"k\s", 0).await.unwrap();
    assert_eq!(names(&page), [r"Back\slash Zyxw"]);
});

test_kit::both_databases!(only_the_grantable_objects_are_searched, |engine| {
    let Some(t) = portal_with_org(engine).await else {
        return;
    };
    for object in ["User", "Case WHERE Id != null", "", "PermissionSet"] {
        match t.search_records(object, "a", 0).await {
            Err(RecordSearchError::Invalid(errors)) => {
                assert!(
                    errors.0.iter().any(|e| e.field == "record_search"),
                    "{object}: {errors}"
                );
            }
            other => panic!("{object}: {other:?}"),
        }
    }
    let long = "x".repeat(256);
    assert!(matches!(
        t.search_records("Case", &long, 0).await,
        Err(RecordSearchError::Invalid(_))
    ));
    assert!(matches!(
        t.search_records("Case", "a", 2001).await,
        Err(RecordSearchError::Invalid(_))
    ));
    // Case is found by its name field, the case number.
    let page = t.search_records("Case", "", 0).await.unwrap();
    assert_eq!(page.name_field, "CaseNumber");
    assert!(page.total > 20);
    assert!(page.records.iter().all(|r| !r.name.is_empty()));
});
