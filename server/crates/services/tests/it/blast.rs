//! The blast-radius preview against an in-process sandbox org: the counts must match what
//! the org holds, and what the org does not have is reported, not failed on.

use crate::common;

use common::*;
use salesforce::{Cond, SalesforceId, Soql};
use serde::Deserialize;
use serde_json::json;
use shared::scope::{Level, Scope, Visibility, VisibilityRule};

#[derive(Deserialize)]
struct IdRow {
    #[serde(rename = "Id")]
    id: SalesforceId,
}

async fn ids(t: &TestPortal, object: &str, n: u32) -> Vec<String> {
    let query = Soql::select(&["Id"]).from(object).limit(n).build().unwrap();
    let rows: Vec<IdRow> = t.salesforce().query_all(&query).await.unwrap();
    rows.into_iter()
        .map(|r| r.id.as_str().to_string())
        .collect()
}

fn with_visibility(mut scope: Scope, rule: VisibilityRule, record_ids: Vec<String>) -> Scope {
    scope.visibility = Visibility {
        rule,
        record_ids,
        group: None,
    };
    scope
}

test_kit::both_databases!(
    shared_records_are_counted_and_missing_things_reported,
    |engine| {
        let Some(t) = portal_with_org(engine).await else {
            return;
        };
        let cases = ids(&t, "Case", 3).await;
        assert_eq!(cases.len(), 3);
        let tasks = ids(&t, "Task", 2).await;
        let accounts = ids(&t, "Account", 1).await;

        let mut scope = scope(
            "Case",
            Level::Edit,
            &[
                ("Subject", Level::Edit),
                ("Priority", Level::Read),
                ("NoSuchField__c", Level::Read),
                ("Status", Level::Read),
                ("CaseNumber", Level::Edit),
            ],
        );
        scope.objects.push(
            common::scope("Task", Level::Read, &[("Subject", Level::Read)])
                .objects
                .remove(0),
        );
        scope.objects.push(
            common::scope("Gadget__c", Level::Read, &[("Size__c", Level::Read)])
                .objects
                .remove(0),
        );
        // A deleted-looking case id (valid checksum, no record), a duplicate, garbage, and an
        // account that no granted object covers.
        let ghost = SalesforceId::parse("500000000000999")
            .unwrap()
            .as_str()
            .to_string();
        let mut record_ids = cases.clone();
        record_ids.push(cases[0].clone());
        record_ids.push(ghost.clone());
        record_ids.extend(tasks.clone());
        record_ids.push("not-an-id".into());
        record_ids.push(accounts[0].clone());
        let scope = with_visibility(scope, VisibilityRule::Shared, record_ids);

        let blast = t.blast_radius(&scope).await.unwrap();
        let case = blast.objects.iter().find(|o| o.object == "Case").unwrap();
        assert_eq!(case.record_count, Some(3), "{case:?}");
        assert_eq!(case.total_records, 200);
        assert_eq!(case.level, Level::Edit);
        assert_eq!(case.unknown_fields, vec!["NoSuchField__c"]);
        // Status is not governed by field-level security: it comes with the object.
        assert_eq!(case.object_access_fields, vec!["Status".to_string()]);
        assert!(case.fields.contains(&("Subject".into(), Level::Edit)));
        assert!(case.fields.contains(&("Priority".into(), Level::Read)));
        assert!(!case.fields.iter().any(|(f, _)| f == "Status"));
        let task = blast.objects.iter().find(|o| o.object == "Task").unwrap();
        assert_eq!(task.record_count, Some(2));
        assert_eq!(task.total_records, 100);
        let gadget = blast
            .objects
            .iter()
            .find(|o| o.object == "Gadget__c")
            .unwrap();
        assert_eq!(gadget.record_count, None);

        let problems = blast.problems.join("\n");
        for expected in [
            "Case.NoSuchField__c does not exist",
            "1 of the 4 chosen Case records do not exist",
            "no object Gadget__c",
            "'not-an-id' is not a Salesforce record id",
            accounts[0].as_str(),
            "Case.CaseNumber is read-only",
        ] {
            assert!(
                problems.contains(expected),
                "{expected} not in:\n{problems}"
            );
        }
        assert!(!problems.contains("Status"), "{problems}");
        assert!(blast.risks.is_empty());

        // View All exposes every record and is flagged.
        let mut view_all = common::scope("Account", Level::Read, &[("Phone", Level::Read)]);
        view_all.objects[0].view_all = true;
        let blast = t.blast_radius(&view_all).await.unwrap();
        assert_eq!(blast.objects[0].record_count, Some(50));
        assert_eq!(blast.objects[0].total_records, 50);
        assert!(
            blast
                .risks
                .iter()
                .any(|r| r.contains("View All on Account"))
        );
        assert!(blast.problems.is_empty(), "{:?}", blast.problems);

        // Owned with no chosen records: nothing yet.
        let owned = with_visibility(
            common::scope("Contact", Level::Read, &[("Email", Level::Edit)]),
            VisibilityRule::Owned,
            vec![],
        );
        let blast = t.blast_radius(&owned).await.unwrap();
        assert_eq!(blast.objects[0].record_count, Some(0));
        assert!(blast.objects[0].total_records >= 50);
        assert!(blast.risks.iter().any(|r| r.contains("Contact.Email")));
    }
);

test_kit::both_databases!(group_visibility_counts_what_the_group_sees, |engine| {
    let Some(t) = portal_with_org(engine).await else {
        return;
    };
    #[derive(Deserialize)]
    struct Group {
        #[serde(rename = "Id")]
        id: SalesforceId,
    }
    let group_id = |name: &'static str| {
        let client = t.salesforce().clone();
        async move {
            let query = Soql::select(&["Id"])
                .from("Group")
                .filter(Cond::eq("DeveloperName", name))
                .build()
                .unwrap();
            client
                .query_all::<Group>(&query)
                .await
                .unwrap()
                .remove(0)
                .id
        }
    };
    let tier2 = group_id("Tier_2_Support").await;
    let queue = group_id("Escalations_Queue").await;

    // Share two cases with Tier 2.
    let cases = ids(&t, "Case", 2).await;
    for case in &cases {
        t.salesforce()
            .create(
                "CaseShare",
                &json!({ "CaseId": case, "UserOrGroupId": tier2.as_str(), "CaseAccessLevel": "Read" }),
            )
            .await
            .unwrap();
    }
    let group_scope = |group: &str| {
        let mut scope = common::scope("Case", Level::Read, &[("Subject", Level::Read)]);
        scope.visibility = Visibility {
            rule: VisibilityRule::Group,
            record_ids: vec![],
            group: Some(group.into()),
        };
        scope
            .objects
            .push(common::scope("Task", Level::Read, &[]).objects.remove(0));
        scope
    };
    let blast = t
        .blast_radius(&group_scope("Tier 2 Support"))
        .await
        .unwrap();
    let case = &blast.objects[0];
    assert_eq!(case.record_count, Some(2), "{case:?}");
    assert!(case.counted.contains("CaseShare"), "{}", case.counted);
    // Tasks have no share object (their sharing follows the parent): not counted.
    assert_eq!(blast.objects[1].record_count, None);
    assert!(blast.objects[1].counted.contains("not counted"));
    assert!(blast.problems.is_empty(), "{:?}", blast.problems);

    // A queue's own cases count for it.
    let owned_by_queue = t
        .salesforce()
        .count(
            &Soql::count()
                .from("Case")
                .filter(Cond::eq("OwnerId", &queue))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(owned_by_queue > 0);
    let blast = t
        .blast_radius(&group_scope("Escalations_Queue"))
        .await
        .unwrap();
    assert_eq!(blast.objects[0].record_count, Some(owned_by_queue));

    // An unknown group is a problem, not an error; a quote in it changes no query.
    let blast = t
        .blast_radius(&group_scope("Nobody' OR Name != '"))
        .await
        .unwrap();
    assert_eq!(blast.objects[0].record_count, None);
    assert!(blast.problems.iter().any(|p| p.contains("no public group")));
});
