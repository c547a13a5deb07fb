//! The audit log's text search index (issue 20), on SQLite (FTS5) and PostgreSQL (tsvector
//! and GIN): written and rolled back with the entry, filled for entries written before the
//! migration, and matching what was typed at the start of a word.

use serde_json::json;
use services::Database;
use services::audit::search::{self, Filter};
use services::audit::{self, Actor, AuditAction, Entry, Target, Verification};
use services::db::DatabaseKind;
use test_kit::both_databases;
use test_kit::{Engine, PgDatabase, TestDb, audit_fill};

const START: i64 = 1_790_000_000_000;

async fn record(db: &Database, details: serde_json::Value) -> i64 {
    let mut tx = db.begin_write().await.unwrap();
    let seq = audit::record(
        &mut tx.tx,
        &Actor::system(),
        AuditAction::RequestSubmitted,
        Target::Request,
        "r-1",
        details,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    seq
}

/// Every entry a text search finds, newest first.
async fn found(db: &Database, text: &str) -> Vec<i64> {
    let filter = Filter {
        text: Some(text.into()),
        ..Filter::default()
    };
    let mut seqs = Vec::new();
    let mut before = None;
    loop {
        let page = search::search(db, &filter, before, 100).await.unwrap();
        seqs.extend(page.entries.iter().map(|e| e.seq));
        match page.next_before {
            Some(next) => before = Some(next),
            None => return seqs,
        }
    }
}

/// The search's meaning, written out: the query's words, in order, next to each other in
/// the details' words (the last one a prefix), and the details contain the text as typed,
/// case-insensitively; a query without letters or digits: the details contain it.
fn matches(details: &str, text: &str) -> bool {
    let typed = details.to_lowercase().contains(&text.to_lowercase());
    let want = search::words(text);
    if want.is_empty() {
        return typed;
    }
    let have = search::words(details);
    let phrase = have.windows(want.len()).any(|w| {
        w.iter().zip(&want).enumerate().all(|(i, (h, q))| {
            if i + 1 == want.len() {
                h.starts_with(q.as_str())
            } else {
                h == q
            }
        })
    });
    typed && phrase
}

async fn all_entries(db: &Database) -> Vec<Entry> {
    sqlx::query_as(&format!(
        "SELECT {} FROM audit_log ORDER BY seq DESC",
        audit::COLUMNS
    ))
    .fetch_all(db.pool())
    .await
    .unwrap()
}

both_databases!(
    the_index_is_written_and_rolled_back_with_the_entry,
    |engine| {
        let db = TestDb::new(engine).await.unwrap();
        let db = &db.db;
        // Written and rolled back: not found, and the chain is as if it never was.
        let mut tx = db.begin_write().await.unwrap();
        let seq = audit::record(
            &mut tx.tx,
            &Actor::system(),
            AuditAction::RequestSubmitted,
            Target::Request,
            "r-1",
            json!({"company": "Zebulon Widgets"}),
        )
        .await
        .unwrap();
        // The index row is there inside the transaction.
        let in_tx: i64 = match db.kind() {
            DatabaseKind::Sqlite => {
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM audit_search WHERE audit_search MATCH 'zebulon'",
                )
                .fetch_one(&mut *tx.tx)
                .await
            }
            DatabaseKind::Postgres => sqlx::query_scalar(
                "SELECT COUNT(*) FROM audit_search WHERE words @@ to_tsquery('simple', 'zebulon')",
            )
            .fetch_one(&mut *tx.tx)
            .await,
        }
        .unwrap();
        assert_eq!(in_tx, 1, "indexed in the entry's transaction");
        // (Dropped uncommitted: rolled back, and the SQLite write lock let go.)
        drop(tx);
        assert!(found(db, "zebulon").await.is_empty(), "rolled back with it");
        let index_rows: i64 = sqlx::query_scalar(match db.kind() {
            DatabaseKind::Sqlite => {
                "SELECT COUNT(*) FROM audit_search WHERE audit_search MATCH 'zebulon'"
            }
            DatabaseKind::Postgres => "SELECT COUNT(*) FROM audit_search",
        })
        .fetch_one(db.pool())
        .await
        .unwrap();
        assert_eq!(index_rows, 0);

        // Written: found at once, as the same sequence number the rollback gave back.
        let written = record(db, json!({"company": "Zebulon Widgets"})).await;
        assert_eq!(written, seq);
        assert_eq!(found(db, "Zebulon").await, vec![written]);
        assert_eq!(found(db, "zebulon wid").await, vec![written]);
        // The index is not part of the entry: its hash is its content's, and the chain holds.
        let entry = search::entry(db, written).await.unwrap().unwrap();
        assert_eq!(
            entry.hash,
            Entry::compute_hash(audit::GENESIS, &entry.canonical())
        );
        assert!(matches!(
            audit::verify(db, None, None).await.unwrap(),
            Verification::Intact { entries: 1, .. }
        ));
    }
);

both_databases!(
    text_search_finds_what_was_typed_at_the_start_of_a_word,
    |engine| {
        let db = TestDb::new(engine).await.unwrap();
        let db = &db.db;
        audit_fill(db, 1_200, START, 60_000).await;
        let acme = record(
            db,
            json!({"company": "Acme Corp", "email": "dev@kinetic.example"}),
        )
        .await;
        let id = record(
            db,
            json!({"grant": "0015g00000AbCdEAAZ", "step": "create_user"}),
        )
        .await;
        let action = record(db, json!({"after": "request.approved", "by": "O'Brien"})).await;
        let percent = record(db, json!({"note": "100% done_ok"})).await;
        let accents = record(db, json!({"company": "Café Müller GmbH"})).await;

        let cases: &[(&str, &[i64])] = &[
            // Part of a company name: a word, the start of one, several.
            ("acme", &[acme]),
            ("ACME", &[acme]),
            ("Acme Co", &[acme]),
            ("cme", &[]),
            ("corp email", &[]),
            // An email, whole or in part.
            ("dev@kinetic.example", &[acme]),
            ("kinetic", &[acme]),
            ("kinetic.ex", &[acme]),
            ("dev@kinetic.org", &[]),
            // An id, whole or its start.
            ("0015g00000AbCdEAAZ", &[id]),
            ("0015g00000abcd", &[id]),
            ("00000AbCdE", &[]),
            ("create_user", &[id]),
            // An action.
            ("request.approved", &[action]),
            ("approved", &[action]),
            ("request approved", &[]),
            ("O'Brien", &[action]),
            // Punctuation counts; LIKE's wildcards match themselves.
            ("100% done_", &[percent]),
            ("100 done", &[]),
            ("%", &[percent]),
            // Letters beyond ASCII.
            ("café", &[accents]),
            ("Müller", &[accents]),
            ("cafe", &[]),
        ];
        for (text, want) in cases {
            let mut want = want.to_vec();
            want.sort_unstable_by(|a, b| b.cmp(a));
            assert_eq!(found(db, text).await, want, "{text:?}");
        }
        // The generated entries: the index and the meaning written out agree, word and
        // prefix, rare and common.
        let entries = all_entries(db).await;
        for text in [
            "needle",
            "NEEDLE",
            "the needle in",
            "needle in entry 1000",
            "generated entry 11",
            "generated",
            "entry 7",
            "api_calls",
            "nee",
            "eedle",
            "\"note\":\"the",
        ] {
            let want: Vec<i64> = entries
                .iter()
                .filter(|e| matches(&e.details, text))
                .map(|e| e.seq)
                .collect();
            assert_eq!(found(db, text).await, want, "{text:?}");
        }
        assert_eq!(found(db, "needle").await, vec![1_000]);
        // With the other filters and the cursor.
        let page = search::search(
            db,
            &Filter {
                text: Some("generated".into()),
                actor: Some("system".into()),
                ..Filter::default()
            },
            Some(600),
            3,
        )
        .await
        .unwrap();
        let got: Vec<i64> = page.entries.iter().map(|e| e.seq).collect();
        let want: Vec<i64> = entries
            .iter()
            .filter(|e| e.seq < 600 && e.actor == "system")
            .take(3)
            .map(|e| e.seq)
            .collect();
        assert_eq!(got, want);
        assert_eq!(page.next_before, want.last().copied());
    }
);

/// A fresh database with the migrations before `before` applied (and what keeps it).
async fn migrated_before(
    engine: Engine,
    before: i64,
) -> (Database, tempfile::TempDir, Option<PgDatabase>) {
    let dir = tempfile::tempdir().unwrap();
    let mut pg = None;
    let (url, kind, file, folder) = match engine {
        Engine::Sqlite => {
            let file = dir.path().join("old.db");
            (
                format!("sqlite://{}?mode=rwc", file.display()),
                DatabaseKind::Sqlite,
                Some(file),
                "sqlite",
            )
        }
        Engine::Postgres => {
            let created = PgDatabase::create().await;
            let url = created.url.clone();
            pg = Some(created);
            (url, DatabaseKind::Postgres, None, "postgres")
        }
    };
    let db = Database::connect(&url, kind, 2, "old database", file.as_deref())
        .await
        .unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../migrations")
        .join(folder);
    let mut migrator = sqlx::migrate::Migrator::new(path).await.unwrap();
    migrator.migrations = migrator
        .migrations
        .iter()
        .filter(|m| m.version < before)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    migrator.run(db.pool()).await.unwrap();
    (db, dir, pg)
}

both_databases!(
    the_migration_indexes_the_entries_already_written,
    |engine| {
        let (db, _dir, pg) = migrated_before(engine, 20261206000010).await;
        audit_fill(&db, 2_500, START, 1_000).await;
        let old = record(&db, json!({"company": "Northwind Traders"})).await;
        db.migrate("old database").await.unwrap();
        assert_eq!(found(&db, "northwind").await, vec![old]);
        assert_eq!(found(&db, "needle").await, vec![2_000, 1_000]);
        // And what is written after the migration is indexed as it is written.
        let new = record(&db, json!({"company": "Northwind Logistics"})).await;
        assert_eq!(found(&db, "Northwind").await, vec![new, old]);
        assert!(matches!(
            audit::verify(&db, None, None).await.unwrap(),
            Verification::Intact { entries: 2_502, .. }
        ));
        db.close().await;
        drop(pg);
    }
);

both_databases!(
    a_search_past_the_newest_entries_finds_the_older_matches,
    |engine| {
        // More entries than PostgreSQL's first look at the newest (5,000): the older
        // matches come from the index over the rest, in order, across pages.
        let db = TestDb::new(engine).await.unwrap();
        let db = &db.db;
        audit_fill(db, 7_500, START, 1_000).await;
        let needles: Vec<i64> = (1..=7).rev().map(|n| n * 1_000).collect();
        assert_eq!(found(db, "needle").await, needles);
        let mut paged = Vec::new();
        let mut before = None;
        loop {
            let page = search::search(
                db,
                &Filter {
                    text: Some("the needle".into()),
                    ..Filter::default()
                },
                before,
                3,
            )
            .await
            .unwrap();
            paged.extend(page.entries.iter().map(|e| e.seq));
            match page.next_before {
                Some(next) => before = Some(next),
                None => break,
            }
        }
        assert_eq!(paged, needles);
        // A word in every entry still pages newest first.
        let page = search::search(
            db,
            &Filter {
                text: Some("generated".into()),
                ..Filter::default()
            },
            Some(1_500),
            3,
        )
        .await
        .unwrap();
        let got: Vec<i64> = page.entries.iter().map(|e| e.seq).collect();
        assert_eq!(got, vec![1_499, 1_498, 1_497]);
    }
);
