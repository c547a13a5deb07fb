//! The access catalog: the org's objects (cached), packages checked against them, unique
//! names, deletion, merging, the default packages, and their audit entries.

use crate::common;

use common::*;
use services::catalog::CatalogError;
use shared::budget::Budget;
use shared::scope::{Level, VisibilityRule};

test_kit::both_databases!(org_objects_come_from_describe_and_are_cached, |engine| {
    let Some(t) = portal_with_org(engine).await else {
        return;
    };
    let objects = t.org_objects().await.unwrap();
    let names: Vec<&str> = objects.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, vec!["Account", "Contact", "Case", "Task"]);
    let case = objects.iter().find(|o| o.name == "Case").unwrap();
    assert_eq!(case.label, "Case");
    let subject = case.field("subject").unwrap();
    assert!(subject.editable && subject.permissionable);
    let status = case.field("Status").unwrap();
    assert!(!status.permissionable);
    let number = case.field("CaseNumber").unwrap();
    assert!(!number.editable);

    // Within five minutes the org is not asked again: with the org gone, the cache answers.
    let org = t.org.as_ref().unwrap();
    org.shutdown_token().cancel();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(t.org_objects().await.unwrap(), objects);
    // Clones of the portal share the cache.
    assert_eq!(t.portal.clone().org_objects().await.unwrap(), objects);
    t.forget_org_objects().await;
    assert!(t.org_objects().await.is_err());
});

test_kit::both_databases!(packages_are_validated_saved_merged_and_deleted, |engine| {
    let Some(t) = portal_with_org(engine).await else {
        return;
    };
    let (_, owner) = approver("owner@acme.example");

    // Names as the org spells them are stored, whatever the case typed.
    let mut cases = scope(
        "case",
        Level::Edit,
        &[("subject", Level::Read), ("PRIORITY", Level::Edit)],
    );
    cases.visibility.rule = VisibilityRule::Shared;
    let saved = t
        .save_package(
            None,
            "  Case triage ",
            "Triage support cases.",
            cases,
            Budget::default_for(500),
            &owner,
        )
        .await
        .unwrap();
    assert_eq!(saved.name, "Case triage");
    assert_eq!(saved.created_by, "owner@acme.example");
    let object = saved.scope.object("Case").unwrap();
    assert_eq!(object.object, "Case");
    assert_eq!(object.fields.get("Subject"), Some(&Level::Read));
    assert_eq!(object.fields.get("Priority"), Some(&Level::Edit));

    // Unknown objects and fields, and edit on read-only fields, are field errors naming them.
    let mut bad = scope(
        "Case",
        Level::Read,
        &[("Subjekt", Level::Read), ("CaseNumber", Level::Edit)],
    );
    bad.objects
        .push(scope("Opportunity", Level::Read, &[]).objects.remove(0));
    let Err(CatalogError::Invalid(errors)) = t
        .save_package(None, "Broken", "", bad, Budget::default_for(10), &owner)
        .await
    else {
        panic!("unknown fields must be refused");
    };
    let text = errors.to_string();
    for expected in [
        "Case.Subjekt",
        "Opportunity",
        "Case.CaseNumber is read-only",
    ] {
        assert!(text.contains(expected), "{expected} not in {text}");
    }
    assert!(errors.0.iter().all(|e| e.field == "scope"), "{text}");

    // Name rules: length and uniqueness (any case); budget rules apply.
    let Err(CatalogError::Invalid(errors)) = t
        .save_package(
            None,
            "CASE TRIAGE",
            "",
            scope("Task", Level::Read, &[]),
            Budget::default_for(10),
            &owner,
        )
        .await
    else {
        panic!("a duplicate name must be refused");
    };
    assert!(errors.get("name").unwrap().contains("already exists"));
    let mut budget = Budget::default_for(10);
    budget.calls_per_7_days = 1;
    let Err(CatalogError::Invalid(errors)) = t
        .save_package(
            None,
            "x",
            "",
            scope("Task", Level::Read, &[]),
            budget,
            &owner,
        )
        .await
    else {
        panic!("a short name must be refused");
    };
    assert!(errors.get("name").is_some());
    assert!(errors.get("calls_per_7_days").is_some());

    // A second package, then an update of the first keeping its id and author.
    let mut tasks = scope(
        "Task",
        Level::Edit,
        &[("Subject", Level::Read), ("ActivityDate", Level::Read)],
    );
    tasks.visibility.rule = VisibilityRule::Owned;
    let task_package = t
        .save_package(
            None,
            "Task work",
            "",
            tasks,
            Budget::default_for(200),
            &owner,
        )
        .await
        .unwrap();
    let (_, other) = approver("alice@acme.example");
    let updated = t
        .save_package(
            Some(&saved.id),
            "Case triage",
            "Triage and update support cases.",
            scope(
                "Case",
                Level::Read,
                &[("Subject", Level::Edit), ("Origin", Level::Read)],
            ),
            Budget::default_for(700),
            &other,
        )
        .await
        .unwrap();
    assert_eq!(updated.id, saved.id);
    assert_eq!(updated.created_by, "owner@acme.example");
    assert_eq!(updated.budget.calls_per_day, 700);
    // Renaming onto another package's name is refused; saving an unknown id is NotFound.
    assert!(matches!(
        t.save_package(
            Some(&saved.id),
            "task WORK",
            "",
            scope("Case", Level::Read, &[]),
            Budget::default_for(1),
            &owner
        )
        .await,
        Err(CatalogError::Invalid(_))
    ));
    assert!(matches!(
        t.save_package(
            Some("no-such-id"),
            "Fresh name",
            "",
            scope("Case", Level::Read, &[]),
            Budget::default_for(1),
            &owner
        )
        .await,
        Err(CatalogError::NotFound)
    ));
    let packages = t.packages().await.unwrap();
    assert_eq!(
        packages.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        vec!["Case triage", "Task work"]
    );

    // Merging: by name or id, highest level wins, the first package's visibility.
    let merged = t
        .scope_from_packages(&["case triage".into(), task_package.id.clone()])
        .await
        .unwrap();
    assert_eq!(merged.packages, vec!["Case triage", "Task work"]);
    assert_eq!(merged.visibility.rule, VisibilityRule::Shared);
    assert_eq!(
        merged.object("Case").unwrap().fields.get("Subject"),
        Some(&Level::Edit)
    );
    assert_eq!(merged.object("Task").unwrap().level, Level::Edit);
    let reversed = t
        .scope_from_packages(&["Task work".into(), "Case triage".into()])
        .await
        .unwrap();
    assert_eq!(reversed.visibility.rule, VisibilityRule::Owned);
    let Err(CatalogError::Invalid(errors)) = t
        .scope_from_packages(&["Case triage".into(), "Nope".into()])
        .await
    else {
        panic!("unknown packages must be refused");
    };
    assert!(errors.get("packages").unwrap().contains("Nope"));
    assert!(matches!(
        t.scope_from_packages(&[]).await,
        Err(CatalogError::Invalid(_))
    ));

    // Deleting.
    assert!(t.delete_package(&task_package.id, &owner).await.unwrap());
    assert!(!t.delete_package(&task_package.id, &owner).await.unwrap());
    assert_eq!(t.packages().await.unwrap().len(), 1);

    assert_eq!(
        audit_actions(&t, &saved.id).await,
        vec!["catalog.package_saved", "catalog.package_saved"]
    );
    assert_eq!(
        audit_actions(&t, &task_package.id).await,
        vec!["catalog.package_saved", "catalog.package_deleted"]
    );
    let details = audit_details(&t, "catalog.package_saved", &saved.id).await;
    assert_eq!(details["created"], false);
    assert_eq!(details["name"], "Case triage");
    assert_eq!(details["budget"]["calls_per_day"], 700);
    let deleted = audit_details(&t, "catalog.package_deleted", &task_package.id).await;
    assert_eq!(deleted["name"], "Task work");
    assert_audit_intact(&t).await;
});

test_kit::both_databases!(default_packages_fill_an_empty_catalog_once, |engine| {
    let Some(t) = portal_with_org(engine).await else {
        return;
    };
    let system = services::audit::Actor::system();
    t.seed_default_packages(&system).await.unwrap();
    t.seed_default_packages(&system).await.unwrap();
    let packages = t.packages().await.unwrap();
    assert_eq!(
        packages.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        vec!["Case handling", "Task updates"]
    );
    let case = &packages[0];
    assert_eq!(case.budget, Budget::default_for(1000));
    assert_eq!(case.scope.visibility.rule, VisibilityRule::Shared);
    let access = case.scope.object("Case").unwrap();
    assert_eq!(access.level, Level::Edit);
    assert_eq!(access.fields.len(), 3);
    assert!(access.fields.values().all(|l| *l == Level::Read));
    let task = &packages[1];
    assert_eq!(task.scope.visibility.rule, VisibilityRule::Owned);
    assert_eq!(
        task.scope
            .object("Task")
            .unwrap()
            .fields
            .keys()
            .collect::<Vec<_>>(),
        vec!["ActivityDate", "Description", "Subject"]
    );
    // A request built from both is what the seed stories need, and not risky.
    let scope = t
        .scope_from_packages(&["Case handling".into(), "Task updates".into()])
        .await
        .unwrap();
    assert!(scope.risks().is_empty());
    assert_eq!(
        count(
            &t,
            "SELECT COUNT(*) FROM audit_log WHERE action = $1",
            "catalog.package_saved"
        )
        .await,
        2
    );
    // Deleting one does not make the seeding run again (the catalog is not empty).
    t.delete_package(&packages[1].id, &system).await.unwrap();
    t.seed_default_packages(&system).await.unwrap();
    assert_eq!(t.packages().await.unwrap().len(), 1);
    assert_audit_intact(&t).await;
});
