//! The audit log as a security reviewer relies on it: the database refuses changes, a
//! changed, missing or inserted entry is named by "verify", and the page's filters and
//! cursor paging return exactly the entries that match, on SQLite and PostgreSQL.

use serde_json::json;
use services::audit::search::{self, Filter};
use services::audit::{self, Actor, Entry, Event, Outcome, Problem, Verification};
use services::both_databases;
use services::testing::{Engine, TestDb, audit_fill};

const START: i64 = 1_790_000_000_000;

async fn append(db: &TestDb, action: &str, target: &str, details: serde_json::Value) -> i64 {
    let mut tx = db.db.begin_write().await.unwrap();
    let seq = audit::append(
        &mut tx.tx,
        Event {
            actor: &Actor {
                name: "reviewer@acme-sandbox.example".into(),
                ip: "198.51.100.7".into(),
                user_agent: "test".into(),
            },
            action,
            target_type: "grant",
            target_id: target,
            outcome: Outcome::Success,
            details,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    seq
}

async fn verify(db: &TestDb) -> Verification {
    audit::verify(&db.db, None, None).await.unwrap()
}

fn broken(v: &Verification) -> (i64, Problem) {
    match v {
        Verification::Broken { seq, problem, .. } => (*seq, *problem),
        other => panic!("expected a broken chain, got {other:?}"),
    }
}

async fn entry(db: &TestDb, seq: i64) -> Entry {
    search::entry(&db.db, seq).await.unwrap().unwrap()
}

async fn drop_triggers(db: &TestDb) {
    let statements: &[&str] = match db.engine {
        Engine::Sqlite => &[
            "DROP TRIGGER audit_log_no_update",
            "DROP TRIGGER audit_log_no_delete",
        ],
        Engine::Postgres => &[
            "DROP TRIGGER audit_log_no_update ON audit_log",
            "DROP TRIGGER audit_log_no_delete ON audit_log",
        ],
    };
    for sql in statements {
        sqlx::query(sql).execute(db.db.pool()).await.unwrap();
    }
}

async fn insert_raw(db: &TestDb, e: &Entry) {
    let sql = audit::insert_sql(1);
    audit::bind_entry(sqlx::query(&sql), e)
        .execute(db.db.pool())
        .await
        .unwrap();
}

both_databases!(the_database_refuses_changes_to_the_log, |engine| {
    let db = TestDb::new(engine).await.unwrap();
    append(&db, "grant.created", "g1", json!({"n": 1})).await;
    append(&db, "secret.revealed", "g1", json!({"n": 2})).await;
    let update = sqlx::query("UPDATE audit_log SET details = '{}' WHERE seq = 1")
        .execute(db.db.pool())
        .await;
    let error = update.expect_err("UPDATE is refused").to_string();
    assert!(error.contains("append-only"), "{error}");
    let delete = sqlx::query("DELETE FROM audit_log WHERE seq = 2")
        .execute(db.db.pool())
        .await;
    let error = delete.expect_err("DELETE is refused").to_string();
    assert!(error.contains("append-only"), "{error}");
    if engine == Engine::Postgres {
        let truncate = sqlx::query("TRUNCATE audit_log")
            .execute(db.db.pool())
            .await;
        assert!(truncate.is_err(), "TRUNCATE is refused");
    }
    assert!(matches!(
        verify(&db).await,
        Verification::Intact {
            entries: 2,
            last_seq: 2
        }
    ));
});

both_databases!(
    verify_names_the_changed_missing_or_inserted_entry,
    |engine| {
        let db = TestDb::new(engine).await.unwrap();
        audit_fill(&db.db, 20, START, 1_000).await;
        for i in 0..5 {
            append(&db, "provisioning.step_succeeded", "g1", json!({"i": i})).await;
        }
        assert!(matches!(
            verify(&db).await,
            Verification::Intact {
                entries: 25,
                last_seq: 25
            }
        ));
        drop_triggers(&db).await;

        // Changed: one field of entry 7.
        let original = entry(&db, 7).await;
        sqlx::query("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 7")
            .execute(db.db.pool())
            .await
            .unwrap();
        let v = verify(&db).await;
        assert_eq!(broken(&v), (7, Problem::Changed), "{v:?}");
        // Verifying a range that ends before it finds nothing; one that covers it does.
        assert!(matches!(
            audit::verify(&db.db, Some(1), Some(6)).await.unwrap(),
            Verification::Intact { entries: 6, .. }
        ));
        assert_eq!(
            broken(&audit::verify(&db.db, Some(5), Some(10)).await.unwrap()),
            (7, Problem::Changed)
        );
        sqlx::query("UPDATE audit_log SET actor = $1 WHERE seq = 7")
            .bind(&original.actor)
            .execute(db.db.pool())
            .await
            .unwrap();
        assert!(matches!(verify(&db).await, Verification::Intact { .. }));

        // Missing: entry 12 deleted.
        let twelve = entry(&db, 12).await;
        sqlx::query("DELETE FROM audit_log WHERE seq = 12")
            .execute(db.db.pool())
            .await
            .unwrap();
        let v = verify(&db).await;
        assert_eq!(broken(&v), (12, Problem::Missing), "{v:?}");
        insert_raw(&db, &twelve).await;
        assert!(matches!(verify(&db).await, Verification::Intact { .. }));

        // Missing at the end: the last entry deleted.
        let last = entry(&db, 25).await;
        sqlx::query("DELETE FROM audit_log WHERE seq = 25")
            .execute(db.db.pool())
            .await
            .unwrap();
        assert_eq!(broken(&verify(&db).await), (25, Problem::Missing));
        insert_raw(&db, &last).await;

        // Inserted at the end, by someone who knows the hashing: a well-formed, chained entry
        // the portal never wrote.
        let mut forged = Entry {
            seq: 26,
            at: last.at + 1,
            actor: "admin@acme-sandbox.example".into(),
            actor_ip: "203.0.113.9".into(),
            user_agent: "psql".into(),
            action: "request.approved".into(),
            target_type: "request".into(),
            target_id: "r-forged".into(),
            outcome: "success".into(),
            details: "{}".into(),
            prev_hash: last.hash.clone(),
            hash: String::new(),
        };
        forged.hash = Entry::compute_hash(&forged.prev_hash, &forged.canonical());
        insert_raw(&db, &forged).await;
        let v = verify(&db).await;
        assert_eq!(broken(&v), (26, Problem::Inserted), "{v:?}");
        sqlx::query("DELETE FROM audit_log WHERE seq = 26")
            .execute(db.db.pool())
            .await
            .unwrap();

        // Inserted in the middle: entry 15 replaced by a forged one chained to entry 14 (its
        // own hash is right); the chain breaks at the entry after it.
        let fourteen = entry(&db, 14).await;
        sqlx::query("DELETE FROM audit_log WHERE seq = 15")
            .execute(db.db.pool())
            .await
            .unwrap();
        let mut forged = Entry {
            seq: 15,
            at: fourteen.at,
            prev_hash: fourteen.hash.clone(),
            target_id: "r-forged".into(),
            ..forged
        };
        forged.hash = Entry::compute_hash(&forged.prev_hash, &forged.canonical());
        insert_raw(&db, &forged).await;
        let v = verify(&db).await;
        assert_eq!(broken(&v), (16, Problem::Inserted), "{v:?}");
        let Verification::Broken { detail, .. } = v else {
            unreachable!()
        };
        assert!(
            detail.contains("entry 16 does not follow entry 15"),
            "{detail}"
        );
    }
);

/// Which entries a filter should return.
type Keep = Box<dyn Fn(&Entry) -> bool>;

/// The entries of the whole log that `keep` accepts, newest first.
async fn expected(db: &TestDb, keep: impl Fn(&Entry) -> bool) -> Vec<i64> {
    let rows = sqlx::query(&format!(
        "SELECT {} FROM audit_log ORDER BY seq DESC",
        audit::COLUMNS
    ))
    .fetch_all(db.db.pool())
    .await
    .unwrap();
    rows.iter()
        .map(|r| Entry::from_row(r).unwrap())
        .filter(|e| keep(e))
        .map(|e| e.seq)
        .collect()
}

/// Every page of `filter`, following the cursor.
async fn all_pages(db: &TestDb, filter: &Filter, limit: i64) -> Vec<i64> {
    let mut seqs = Vec::new();
    let mut before = None;
    let mut pages = 0;
    loop {
        let page = search::search(&db.db, filter, before, limit).await.unwrap();
        assert!(page.entries.len() as i64 <= limit);
        seqs.extend(page.entries.iter().map(|e| e.seq));
        pages += 1;
        assert!(pages < 10_000, "the cursor does not advance");
        match page.next_before {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    seqs
}

both_databases!(
    filters_and_cursor_paging_return_exactly_the_matches,
    |engine| {
        let db = TestDb::new(engine).await.unwrap();
        audit_fill(&db.db, 3_000, START, 60_000).await;
        append(
            &db,
            "secret.revealed",
            "g-77",
            json!({"note": "100% done_ok"}),
        )
        .await;

        let cases: Vec<(Filter, Keep)> = vec![
            (Filter::default(), Box::new(|_| true)),
            (
                Filter {
                    actor: Some("system".into()),
                    ..Filter::default()
                },
                Box::new(|e| e.actor == "system"),
            ),
            (
                Filter {
                    action: Some("request.*".into()),
                    ..Filter::default()
                },
                Box::new(|e| e.action.starts_with("request.")),
            ),
            (
                Filter {
                    action: Some("secret.revealed".into()),
                    outcome: Some(Outcome::Failure),
                    ..Filter::default()
                },
                Box::new(|e| e.action == "secret.revealed" && e.outcome == "failure"),
            ),
            (
                Filter {
                    target_type: Some("grant".into()),
                    target_id: Some("target-1001".into()),
                    ..Filter::default()
                },
                Box::new(|e| e.target_type == "grant" && e.target_id == "target-1001"),
            ),
            (
                Filter {
                    from_ms: Some(START + 60_000 * 500),
                    to_ms: Some(START + 60_000 * 1_500 + 1),
                    ..Filter::default()
                },
                Box::new(|e| e.at >= START + 60_000 * 500 && e.at < START + 60_000 * 1_500 + 1),
            ),
            (
                Filter {
                    text: Some("NEEDLE".into()),
                    ..Filter::default()
                },
                Box::new(|e| e.details.to_lowercase().contains("needle")),
            ),
            (
                // LIKE's wildcards match themselves.
                Filter {
                    text: Some("100% done_".into()),
                    ..Filter::default()
                },
                Box::new(|e| e.details.contains("100% done_")),
            ),
            (
                Filter {
                    text: Some("0% d".into()),
                    actor: Some("nobody".into()),
                    ..Filter::default()
                },
                Box::new(|_| false),
            ),
            (
                Filter {
                    from_ms: Some(START + 60_000 * 10_000_000),
                    ..Filter::default()
                },
                Box::new(|_| false),
            ),
        ];
        for (filter, keep) in cases {
            let want = expected(&db, keep).await;
            let got = all_pages(&db, &filter, 250).await;
            assert_eq!(got.len(), want.len(), "{filter:?}");
            assert_eq!(got, want, "{filter:?}");
        }
        let needles = all_pages(
            &db,
            &Filter {
                text: Some("needle".into()),
                ..Filter::default()
            },
            1,
        )
        .await;
        assert_eq!(needles, vec![3_000, 2_000, 1_000]);
        assert_eq!(search::total(&db.db).await.unwrap(), 3_001);
        assert!(search::entry(&db.db, 99_999).await.unwrap().is_none());
        // Entry times never go backwards, even when an entry is appended "earlier".
        let last = entry(&db, 3_001).await;
        assert!(last.at >= entry(&db, 3_000).await.at);
    }
);
