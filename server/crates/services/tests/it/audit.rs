//! The audit log as a security reviewer relies on it: the database refuses changes, a
//! changed, missing or inserted entry is named by "verify", and the page's filters and
//! cursor paging return exactly the entries that match, on SQLite and PostgreSQL.

use serde_json::json;
use services::audit::search::{self, Filter};
use services::audit::{self, Actor, AuditAction, Entry, Outcome, Problem, Target, Verification};
use test_kit::both_databases;
use test_kit::{Engine, TestDb, audit_fill};

const START: i64 = 1_790_000_000_000;

async fn append(db: &TestDb, action: AuditAction, target: &str, details: serde_json::Value) -> i64 {
    let mut tx = db.db.begin_write().await.unwrap();
    let seq = audit::record(
        &mut tx.tx,
        &Actor {
            name: "reviewer@acme-sandbox.example".into(),
            ip: "198.51.100.7".into(),
            user_agent: "test".into(),
        },
        action,
        Target::Grant,
        target,
        details,
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
    append(&db, AuditAction::GrantCreated, "g1", json!({"n": 1})).await;
    append(&db, AuditAction::SecretRevealed, "g1", json!({"n": 2})).await;
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
            append(
                &db,
                AuditAction::ProvisioningStepSucceeded,
                "g1",
                json!({"i": i}),
            )
            .await;
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
            AuditAction::SecretRevealed,
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

/// The whole log as the portal keeps it, rewritten from `seq` on by someone with write
/// access: triggers dropped, one entry changed, every hash after it and the head recomputed.
async fn rewrite_consistently(db: &TestDb, seq: i64) {
    let rows = sqlx::query(&format!(
        "SELECT {} FROM audit_log WHERE seq >= $1 ORDER BY seq",
        audit::COLUMNS
    ))
    .bind(seq - 1)
    .fetch_all(db.db.pool())
    .await
    .unwrap();
    let mut entries: Vec<Entry> = rows.iter().map(|r| Entry::from_row(r).unwrap()).collect();
    let mut prev = entries.remove(0).hash;
    for mut e in entries {
        if e.seq == seq {
            e.details = r#"{"rewritten":true}"#.into();
        }
        e.prev_hash = prev.clone();
        e.hash = Entry::compute_hash(&e.prev_hash, &e.canonical());
        sqlx::query("UPDATE audit_log SET details = $1, prev_hash = $2, hash = $3 WHERE seq = $4")
            .bind(&e.details)
            .bind(&e.prev_hash)
            .bind(&e.hash)
            .bind(e.seq)
            .execute(db.db.pool())
            .await
            .unwrap();
        prev = e.hash;
    }
    sqlx::query("UPDATE audit_head SET last_hash = $1 WHERE id = 1")
        .bind(&prev)
        .execute(db.db.pool())
        .await
        .unwrap();
}

async fn drop_anchor_triggers(db: &TestDb) {
    let statements: &[&str] = match db.engine {
        Engine::Sqlite => &[
            "DROP TRIGGER audit_anchors_no_update",
            "DROP TRIGGER audit_anchors_no_delete",
        ],
        Engine::Postgres => &[
            "DROP TRIGGER audit_anchors_no_update ON audit_anchors",
            "DROP TRIGGER audit_anchors_no_delete ON audit_anchors",
        ],
    };
    for sql in statements {
        sqlx::query(sql).execute(db.db.pool()).await.unwrap();
    }
}

// Issue 15, finding 12: anchors (an HMAC of an entry's hash under a key outside the
// database) every N entries and at shutdown vouch for the log up to them; verify says from
// which entry on it is only self-consistent, and catches rewritten entries, forged anchors
// and anchors deleted from under a running portal.
both_databases!(
    anchors_vouch_for_the_log_up_to_where_they_were_made,
    |engine| {
        use services::audit::anchor::{Anchorer, verify_anchored};
        let db = TestDb::new(engine).await.unwrap();
        let key = [7u8; 32];
        let anchorer = Anchorer::new(&key, 10);
        audit_fill(&db.db, 25, START, 1_000).await;
        assert_eq!(
            anchorer.catch_up(&db.db).await.unwrap(),
            2,
            "entries 10 and 20"
        );
        assert_eq!(anchorer.catch_up(&db.db).await.unwrap(), 0, "nothing twice");
        let checked = verify_anchored(&db.db, &anchorer, None, None)
            .await
            .unwrap();
        assert!(matches!(
            checked.chain,
            Verification::Intact { entries: 25, .. }
        ));
        assert_eq!(checked.anchors.checked, 2);
        assert_eq!(checked.anchors.anchored_through, 20);
        assert_eq!(checked.anchors.self_consistent_from, Some(21));
        assert!(!checked.anchors.overdue);

        // At shutdown the head is anchored: every entry is vouched for.
        assert_eq!(
            anchorer.anchor_head(&db.db, "shutdown").await.unwrap(),
            Some(25)
        );
        assert_eq!(
            anchorer.anchor_head(&db.db, "shutdown").await.unwrap(),
            None
        );
        let checked = verify_anchored(&db.db, &anchorer, None, None)
            .await
            .unwrap();
        assert_eq!(checked.anchors.anchored_through, 25);
        assert_eq!(checked.anchors.self_consistent_from, None);
        let json = serde_json::to_value(&checked).unwrap();
        assert_eq!(json["status"], "intact");
        assert_eq!(json["anchors"]["anchored_through"], 25);

        // The anchors table refuses changes, like the log.
        let update = sqlx::query("UPDATE audit_anchors SET hash = 'x'")
            .execute(db.db.pool())
            .await;
        assert!(update.unwrap_err().to_string().contains("append-only"));

        // Another key (another portal's) can check none of them and vouches for nothing.
        let stranger = Anchorer::new(&[8u8; 32], 10);
        let checked = verify_anchored(&db.db, &stranger, None, None)
            .await
            .unwrap();
        assert!(matches!(checked.chain, Verification::Intact { .. }));
        assert_eq!(checked.anchors.other_keys, 3);
        assert_eq!(checked.anchors.anchored_through, 0);
        assert_eq!(checked.anchors.self_consistent_from, Some(1));

        // A rewrite of entry 15 with every hash recomputed: the chain agrees with itself, the
        // anchor of entry 20 does not.
        drop_triggers(&db).await;
        rewrite_consistently(&db, 15).await;
        assert!(matches!(verify(&db).await, Verification::Intact { .. }));
        let checked = verify_anchored(&db.db, &anchorer, None, None)
            .await
            .unwrap();
        assert_eq!(
            broken(&checked.chain),
            (11, Problem::Rewritten),
            "{checked:?}"
        );
        assert_eq!(checked.anchors.anchored_through, 10);
        assert_eq!(checked.anchors.self_consistent_from, Some(11));
        // A portal started afresh (same key, nothing remembered) sees it too, and anchors
        // nothing on top of the rewritten entries.
        let restarted = Anchorer::new(&key, 10);
        audit_fill(&db.db, 10, START + 100_000, 1_000).await;
        assert_eq!(restarted.catch_up(&db.db).await.unwrap(), 0);
        let checked = verify_anchored(&db.db, &restarted, None, None)
            .await
            .unwrap();
        assert_eq!(broken(&checked.chain).1, Problem::Rewritten);

        // Hiding it by deleting the anchors that no longer agree: the running portal remembers
        // the newest anchor it made.
        drop_anchor_triggers(&db).await;
        sqlx::query("DELETE FROM audit_anchors WHERE seq > 10")
            .execute(db.db.pool())
            .await
            .unwrap();
        let checked = verify_anchored(&db.db, &anchorer, None, None)
            .await
            .unwrap();
        let (seq, problem) = broken(&checked.chain);
        assert_eq!(seq, 11);
        assert!(
            matches!(problem, Problem::Rewritten | Problem::Unanchored),
            "{checked:?}"
        );
        // A portal started afresh has only the rows: it does not say the log is anchored past
        // entry 10, and says from where it is only self-consistent.
        let fresh = Anchorer::new(&key, 10);
        let checked = verify_anchored(&db.db, &fresh, None, None).await.unwrap();
        assert_eq!(checked.anchors.anchored_through, 10);
        assert_eq!(checked.anchors.self_consistent_from, Some(11));
        assert!(checked.anchors.overdue, "35 entries, 25 of them unanchored");

        // An anchor made up without the key does not hold.
        sqlx::query(
            "INSERT INTO audit_anchors (seq, key_id, hash, at, reason, every, mac) \
         SELECT seq, $1, hash, 0, 'interval', 10, $2 FROM audit_log WHERE seq = 30",
        )
        .bind(fresh.key_id())
        .bind("00".repeat(32))
        .execute(db.db.pool())
        .await
        .unwrap();
        let checked = verify_anchored(&db.db, &fresh, None, None).await.unwrap();
        assert_eq!(broken(&checked.chain), (30, Problem::Forged), "{checked:?}");
    }
);

/// Every string shaped `family.action` in an audit family, anywhere in the services' and the
/// server's sources, is an `AuditAction`. Writing an entry takes an `AuditAction` (the audit
/// module keeps `Event` and `append` private), so this is the backstop for an action spelled
/// as text elsewhere (parsed, compared, or put in a query). (`assert_audit_intact` checks
/// the entries the flows actually wrote.)
#[test]
fn every_action_named_in_the_source_is_in_the_vocabulary() {
    use std::path::{Path, PathBuf};

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    // Strings of an audit family that are not actions: the session's keys.
    const NOT_ACTIONS: &[&str] = &["auth.user", "auth.checked_at"];
    let services = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&services.join("src"), &mut files);
    rust_files(&services.join("../../src"), &mut files);
    assert!(files.len() > 40, "found the sources: {files:?}");

    let mut named = std::collections::BTreeSet::new();
    for file in &files {
        // Test-only modules in files of their own name made-up actions or file names
        // (`reveal.rs`) on purpose.
        if file
            .file_name()
            .is_some_and(|n| n == "tests.rs" || n == "layering.rs")
        {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        // Unit tests (at the end of a file) name made-up actions on purpose.
        let text = text.split("#[cfg(test)]\nmod tests").next().unwrap();
        for (i, _) in text.match_indices('"') {
            let rest = &text[i + 1..];
            let Some(end) = rest.find('"') else { continue };
            let word = &rest[..end];
            let Some((family, action)) = word.split_once('.') else {
                continue;
            };
            let shaped =
                |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c == '_');
            if shaped(family) && shaped(action) && AuditAction::is_family(family) {
                named.insert((word.to_string(), file.display().to_string()));
            }
        }
    }
    // The scan sees audit-family strings where they are (the session's keys), so an empty
    // result below is not a scan that read nothing.
    for known in NOT_ACTIONS {
        assert!(named.iter().any(|(w, _)| w == known), "{known} not found");
    }
    let missing: Vec<_> = named
        .iter()
        .filter(|(word, _)| !NOT_ACTIONS.contains(&word.as_str()))
        .filter(|(word, _)| AuditAction::parse(word).is_err())
        .collect();
    assert!(
        missing.is_empty(),
        "written but not in AuditAction (so not in the audit filter): {missing:?}"
    );
}
