//! The approvers' queue: filters, counts, keyset paging, and unverified requests kept out.

use crate::common;

use std::collections::HashSet;

use common::*;
use services::decisions::QueueFilter;
use shared::request::RequestState;

fn count_of(counts: &[(RequestState, i64)], state: RequestState) -> i64 {
    counts
        .iter()
        .find(|(s, _)| *s == state)
        .map(|(_, n)| *n)
        .unwrap()
}

test_kit::both_databases!(queue_filters_counts_and_pages, |engine| {
    let Some(t) = portal(engine).await else {
        return;
    };
    // 24 verified requests from three companies, 4 never verified, 2 expired.
    let mut verified = Vec::new();
    for i in 0..24 {
        let company = ["Kinetic Ltd", "Acme 50%_Off", "Northwind"][i % 3];
        let email = format!("ops{i}@vendor{i}.example");
        verified.push(submit_verified(&t, company, &email, case_scope()).await);
    }
    let mut unverified = Vec::new();
    for i in 0..6 {
        unverified.push(
            submit(
                &t,
                "Kinetic Ltd",
                &format!("late{i}@kinetic.example"),
                case_scope(),
            )
            .await,
        );
    }
    // Two of the unverified ones run out of time.
    for id in &unverified[..2] {
        sqlx::query("UPDATE access_requests SET verification_expires_at = 0 WHERE id = $1")
            .bind(id)
            .execute(t.db.db.pool())
            .await
            .unwrap();
    }
    assert_eq!(t.expire_unverified().await.unwrap(), 2);

    // The default queue: verified requests only, newest first, with every state counted.
    let view = t.queue(&QueueFilter::default()).await.unwrap();
    assert_eq!(view.items.len(), 24);
    assert!(view.next_cursor.is_none());
    assert!(
        view.items
            .iter()
            .all(|i| i.state == RequestState::Submitted)
    );
    let shown: HashSet<&str> = view.items.iter().map(|i| i.id.as_str()).collect();
    assert!(unverified.iter().all(|id| !shown.contains(id.as_str())));
    assert!(
        view.items
            .windows(2)
            .all(|w| (w[0].created_at, &w[0].id) >= (w[1].created_at, &w[1].id))
    );
    assert_eq!(count_of(&view.counts, RequestState::Submitted), 24);
    assert_eq!(count_of(&view.counts, RequestState::PendingVerification), 4);
    assert_eq!(count_of(&view.counts, RequestState::Expired), 2);
    assert_eq!(count_of(&view.counts, RequestState::Approved), 0);
    assert_eq!(view.counts.len(), RequestState::ALL.len());
    let first = &view.items[0];
    assert_eq!(first.approvals, 0);
    assert_eq!(first.approvals_required, 1);
    assert!(!first.risky);
    assert_eq!(first.calls_per_day, 500);
    assert_eq!(first.contact_name, "Dana Contractor");

    // Unverified requests appear only when asked for by state.
    let pending = t
        .queue(&QueueFilter {
            state: Some(RequestState::PendingVerification),
            ..QueueFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(pending.items.len(), 4);
    let expired = t
        .queue(&QueueFilter {
            state: Some(RequestState::Expired),
            ..QueueFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(expired.items.len(), 2);

    // Company: a case-insensitive substring; % and _ match only themselves.
    let kinetic = t
        .queue(&QueueFilter {
            company: Some("kINETIC".into()),
            ..QueueFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(kinetic.items.len(), 8);
    assert!(kinetic.items.iter().all(|i| i.company == "Kinetic Ltd"));
    // Counts follow the company filter but not the state filter.
    assert_eq!(count_of(&kinetic.counts, RequestState::Submitted), 8);
    assert_eq!(
        count_of(&kinetic.counts, RequestState::PendingVerification),
        4
    );
    let percent = t
        .queue(&QueueFilter {
            company: Some("50%_o".into()),
            ..QueueFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(percent.items.len(), 8);
    let wildcard = t
        .queue(&QueueFilter {
            company: Some("%".into()),
            ..QueueFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(wildcard.items.len(), 8, "% is a literal character");
    let nobody = t
        .queue(&QueueFilter {
            company: Some("Globex".into()),
            ..QueueFilter::default()
        })
        .await
        .unwrap();
    assert!(nobody.items.is_empty());
    assert!(nobody.counts.iter().all(|(_, n)| *n == 0));

    // Age: make five requests three days old.
    let old: Vec<&String> = verified.iter().take(5).collect();
    for id in &old {
        sqlx::query("UPDATE access_requests SET created_at = created_at - $1 WHERE id = $2")
            .bind(72 * 3_600_000i64)
            .bind(*id)
            .execute(t.db.db.pool())
            .await
            .unwrap();
    }
    let older = t
        .queue(&QueueFilter {
            min_age_hours: Some(48),
            ..QueueFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(older.items.len(), 5);
    assert_eq!(count_of(&older.counts, RequestState::Submitted), 5);
    assert_eq!(
        count_of(&older.counts, RequestState::PendingVerification),
        0
    );
    let recent = t
        .queue(&QueueFilter {
            max_age_hours: Some(24),
            ..QueueFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(recent.items.len(), 19);
    let between = t
        .queue(&QueueFilter {
            min_age_hours: Some(1),
            max_age_hours: Some(100),
            company: Some("kinetic".into()),
            ..QueueFilter::default()
        })
        .await
        .unwrap();
    // Of the five old ones (indexes 0..5), Kinetic's are 0 and 3.
    assert_eq!(between.items.len(), 2);

    // Keyset paging: 7 per page over 24 gives 7, 7, 7, 3, each request exactly once.
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = t
            .queue(&QueueFilter {
                limit: 7,
                before: cursor.clone(),
                ..QueueFilter::default()
            })
            .await
            .unwrap();
        pages += 1;
        assert!(page.items.len() <= 7);
        seen.extend(page.items.iter().map(|i| i.id.clone()));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 4);
    assert_eq!(seen.len(), 24);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 24);
    let all: Vec<String> = view.items.iter().map(|i| i.id.clone()).collect();
    let mut sorted_seen = seen.clone();
    sorted_seen.sort();
    let mut sorted_all = all.clone();
    sorted_all.sort();
    assert_eq!(sorted_seen, sorted_all);

    // Paging holds when requests share a timestamp (ties broken by id).
    sqlx::query("UPDATE access_requests SET created_at = 1700000000000")
        .execute(t.db.db.pool())
        .await
        .unwrap();
    let mut seen = HashSet::new();
    let mut cursor = None;
    loop {
        let page = t
            .queue(&QueueFilter {
                limit: 5,
                before: cursor.clone(),
                ..QueueFilter::default()
            })
            .await
            .unwrap();
        for item in &page.items {
            assert!(seen.insert(item.id.clone()), "{} shown twice", item.id);
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 24);

    // Limits are clamped, and a cursor that cannot be read starts at the beginning.
    let one = t
        .queue(&QueueFilter {
            limit: 0,
            ..QueueFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(one.items.len(), 1);
    assert!(one.next_cursor.is_some());
    let many = t
        .queue(&QueueFilter {
            limit: 10_000,
            before: Some("not a cursor".into()),
            ..QueueFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(many.items.len(), 24);
    assert_audit_intact(&t).await;
});

test_kit::both_databases!(queue_shows_decided_requests_and_their_approvals, |engine| {
    let Some(t) = portal(engine).await else {
        return;
    };
    let approved = submit_verified(&t, "Kinetic Ltd", "a@kinetic.example", case_scope()).await;
    let rejected = submit_verified(&t, "Kinetic Ltd", "b@kinetic.example", case_scope()).await;
    let waiting = submit_verified(&t, "Kinetic Ltd", "c@kinetic.example", case_scope()).await;
    let (alice, alice_actor) = approver("alice@acme.example");
    t.approve(
        &approved,
        &alice,
        services::decisions::ApprovalInput {
            scope: case_scope(),
            budget: shared::Budget::default_for(500),
            end_date: future_date(30),
            ip_ranges: String::new(),
            reason: "Needed for the triage project.".into(),
        },
        &alice_actor,
    )
    .await
    .unwrap();
    t.reject(&rejected, &alice, "Not this quarter.", &alice_actor)
        .await
        .unwrap();

    let view = t.queue(&QueueFilter::default()).await.unwrap();
    assert_eq!(view.items.len(), 3);
    assert_eq!(count_of(&view.counts, RequestState::Approved), 1);
    assert_eq!(count_of(&view.counts, RequestState::Rejected), 1);
    assert_eq!(count_of(&view.counts, RequestState::Submitted), 1);
    let item = view.items.iter().find(|i| i.id == approved).unwrap();
    assert_eq!(item.state, RequestState::Approved);
    assert_eq!(item.approvals, 1);
    let submitted = t
        .queue(&QueueFilter {
            state: Some(RequestState::Submitted),
            ..QueueFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(submitted.items.len(), 1);
    assert_eq!(submitted.items[0].id, waiting);
});

// The builder behind the queue's filters, on both engines: numbered placeholders, IN lists,
// one statement run more than once.
#[derive(Debug, PartialEq, Eq, sqlx::FromRow)]
struct Setting {
    key: String,
    value: String,
    updated_at: i64,
}

test_kit::both_databases!(query_builder_binds_on_both_engines, |engine| {
    let Some(test) = test_kit::TestDb::new(engine).await else {
        return;
    };
    for (key, at) in [("a", 1i64), ("b", 2), ("c", 3), ("d", 4)] {
        sqlx::query(
            "INSERT INTO settings (key, value, updated_by, updated_at) VALUES ($1, $2, 'test', $3)",
        )
        .bind(key)
        .bind(format!("value of {key}"))
        .bind(at)
        .execute(test.db.pool())
        .await
        .unwrap();
    }
    let mut query = services::db::QueryBuilder::new("SELECT key, value, updated_at FROM settings");
    query
        .and_where()
        .push("key IN (")
        .push_binds(["a", "b", "c"])
        .push(")");
    query.and_where().push("updated_at >= ").push_bind(2i64);
    query.push(" ORDER BY key DESC");
    let rows: Vec<Setting> = query
        .build_query_as()
        .fetch_all(test.db.pool())
        .await
        .unwrap();
    assert_eq!(
        rows,
        vec![
            Setting {
                key: "c".into(),
                value: "value of c".into(),
                updated_at: 3
            },
            Setting {
                key: "b".into(),
                value: "value of b".into(),
                updated_at: 2
            },
        ]
    );
    // The same statement, built once, runs again (as a count and a page share filters).
    let keys: Vec<String> = query
        .build_query_scalar()
        .fetch_all(test.db.pool())
        .await
        .unwrap();
    assert_eq!(keys, ["c", "b"]);
    let mut delete = services::db::QueryBuilder::new("DELETE FROM settings");
    delete.and_where().push("key = ").push_bind("d");
    let deleted = delete.build().execute(test.db.pool()).await.unwrap();
    assert_eq!(deleted.rows_affected(), 1);
});
