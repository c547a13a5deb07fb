//! Finding entries: filters by actor, action, target, outcome and time, a text search in the
//! details, and cursor paging newest first (`before` a sequence number, never OFFSET, so a
//! page deep in a million entries costs what the first one does).
//!
//! The text search uses the full-text index `audit_search` (FTS5 on SQLite, a `tsvector`
//! with a GIN index on PostgreSQL; kept by triggers in the entry's own transaction, see the
//! migration `20261206000010`). It matches what was typed at the start of a word: the
//! query's words ([`words`]: runs of letters and digits, case-insensitively), in order and
//! next to each other, the last one as a prefix (`acme co` finds "Acme Corp", `kinetic.ex`
//! finds "dev@kinetic.example", `cme` finds nothing); and the details must contain the text
//! as typed (case-insensitively, as `LIKE` on the lower-cased details), so punctuation
//! counts and words in different fields do not make a phrase. A query with no letter or
//! digit is the old scan: the details contain it.

use super::{COLUMNS, Entry, Outcome};
use crate::db::{Database, DatabaseKind, QueryBuilder};

/// What the reviewer asked for. Every field narrows; an empty filter is the whole log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Exactly this actor (a Salesforce username, `contractor:<email>` or `system`).
    pub actor: Option<String>,
    /// Exactly this action, or a family: `request.*` (or `request.`) is every request event.
    pub action: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub outcome: Option<Outcome>,
    /// Unix milliseconds, inclusive.
    pub from_ms: Option<i64>,
    /// Unix milliseconds, exclusive.
    pub to_ms: Option<i64>,
    /// Text in the details, at the start of a word, case-insensitively (see the module's
    /// documentation; ASCII case for the text as typed on SQLite).
    pub text: Option<String>,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        *self == Filter::default()
    }
}

/// One page, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub entries: Vec<Entry>,
    /// Pass as `before` for the next (older) page; `None` on the last page.
    pub next_before: Option<i64>,
}

/// The largest page anyone gets.
pub const MAX_PAGE: i64 = 1_000;

/// `%`, `_` and the escape character itself match literally.
fn like_escape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len() + 2);
    for c in raw.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The words of `text` as the index splits the details: runs of letters and digits, in
/// lower case.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// How a text search is asked of the index.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Text {
    /// The index's query (the words as a phrase, the last one a prefix), and the text as
    /// typed for `LIKE`.
    Indexed { query: String, like: String },
    /// No letter or digit to look up: the details are scanned for the text.
    Scan { like: String },
}

impl Text {
    fn new(raw: &str, kind: DatabaseKind) -> Self {
        let like = format!("%{}%", like_escape(&raw.to_lowercase()));
        let words = words(raw);
        if words.is_empty() {
            return Text::Scan { like };
        }
        // The words hold letters and digits only: nothing in them needs quoting.
        let query = match kind {
            // FTS5: a phrase whose last token is a prefix, `"acme co"*`.
            DatabaseKind::Sqlite => format!("\"{}\"*", words.join(" ")),
            // tsquery: `'acme' <-> 'co':*`.
            DatabaseKind::Postgres => {
                let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
                format!("{}:*", quoted.join(" <-> "))
            }
        };
        Text::Indexed { query, like }
    }
}

/// The first entry at or after `at_ms` (entry times never go backwards, so every entry
/// from it on is at or after `at_ms`).
async fn first_seq_from(db: &Database, at_ms: i64) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT seq FROM audit_log WHERE at >= $1 ORDER BY at, seq LIMIT 1")
        .bind(at_ms)
        .fetch_optional(db.pool())
        .await
}

/// Adds the filter's WHERE clause to `query`; `false` when the filter matches nothing.
async fn push_conditions(
    query: &mut QueryBuilder,
    db: &Database,
    filter: &Filter,
    before: Option<i64>,
    text: Option<&Text>,
) -> Result<bool, sqlx::Error> {
    // On SQLite a text search is driven by the index, whose rowid is the entry's seq: the
    // bounds on seq go to it, so it starts where the page does.
    let seq = match (text, db.kind()) {
        (Some(Text::Indexed { .. }), DatabaseKind::Sqlite) => "audit_search.rowid",
        _ => "seq",
    };
    if let Some(actor) = &filter.actor {
        query.and_where().push("actor = ").push_bind(actor.as_str());
    }
    if let Some(action) = &filter.action {
        match action
            .strip_suffix(".*")
            .or_else(|| action.strip_suffix('.'))
        {
            // A family is a range of the index on action: "request." up to "request/".
            Some(family) => {
                query
                    .and_where()
                    .push("action >= ")
                    .push_bind(format!("{family}."));
                query
                    .and_where()
                    .push("action < ")
                    .push_bind(format!("{family}/"));
            }
            None => {
                query
                    .and_where()
                    .push("action = ")
                    .push_bind(action.as_str());
            }
        }
    }
    if let Some(target_type) = &filter.target_type {
        query
            .and_where()
            .push("target_type = ")
            .push_bind(target_type.as_str());
    }
    if let Some(target_id) = &filter.target_id {
        query
            .and_where()
            .push("target_id = ")
            .push_bind(target_id.as_str());
    }
    if let Some(outcome) = filter.outcome {
        query
            .and_where()
            .push("outcome = ")
            .push_bind(outcome.as_str());
    }
    if let Some(from) = filter.from_ms {
        match first_seq_from(db, from).await? {
            Some(first) => {
                query
                    .and_where()
                    .push(format_args!("{seq} >= "))
                    .push_bind(first);
            }
            None => return Ok(false),
        }
    }
    if let Some(to) = filter.to_ms
        && let Some(end) = first_seq_from(db, to).await?
    {
        query
            .and_where()
            .push(format_args!("{seq} < "))
            .push_bind(end);
    }
    if let Some(before) = before {
        query
            .and_where()
            .push(format_args!("{seq} < "))
            .push_bind(before);
    }
    let like = match text {
        None => None,
        Some(Text::Scan { like }) => Some(like),
        Some(Text::Indexed { query: words, like }) => {
            match db.kind() {
                DatabaseKind::Sqlite => query.and_where().push("audit_search MATCH "),
                DatabaseKind::Postgres => query.and_where().push("words @@ to_tsquery('simple', "),
            };
            query.push_bind(words.as_str());
            if db.kind() == DatabaseKind::Postgres {
                query.push(")");
            }
            Some(like)
        }
    };
    if let Some(like) = like {
        query
            .and_where()
            .push("LOWER(details) LIKE ")
            .push_bind(like.as_str())
            .push(" ESCAPE '\\'");
    }
    Ok(true)
}

/// On PostgreSQL a text search looks at the newest this many entries (below the cursor)
/// first, walking them newest first by the primary key and testing each one's words: a
/// common word fills the page after a few rows, and a rare one costs at most this many
/// tests (about 0.5 µs each), with no index scan at all. Only when they do not fill the page
/// does it go on to the index over the rest, where the matches are fewer. (Asked of the
/// whole log at once, the planner builds a bitmap of every match of each word — hundreds
/// of thousands for a common word or a short prefix — re-reads and sorts them: a second at
/// a million entries; even restricted to the newest 20,000 entries by a range, the bitmap
/// of the whole index is built first, 30–70 ms.)
const PG_WINDOW: i64 = 5_000;

/// A page of at most `limit` entries older than `before` (the newest when `None`).
pub async fn search(
    db: &Database,
    filter: &Filter,
    before: Option<i64>,
    limit: i64,
) -> Result<Page, sqlx::Error> {
    let limit = limit.clamp(1, MAX_PAGE);
    let text = filter.text.as_deref().map(|raw| Text::new(raw, db.kind()));
    let indexed = matches!(text, Some(Text::Indexed { .. }));
    // One more than asked for says whether there is a next page.
    let mut entries = if indexed && db.kind() == DatabaseKind::Postgres {
        let below = match before {
            Some(before) => before,
            None => total(db).await? + 1,
        };
        let window = below - PG_WINDOW;
        let mut newest = fetch(
            db,
            filter,
            before,
            text.as_ref(),
            limit + 1,
            Some((window, below)),
        )
        .await?;
        if (newest.len() as i64) <= limit
            && window > 1
            && let Some(Text::Indexed { query: words, like }) = &text
        {
            let rest = limit + 1 - newest.len() as i64;
            newest.extend(older_matches(db, filter, before, words, like, window, rest).await?);
        }
        newest
    } else {
        fetch(db, filter, before, text.as_ref(), limit + 1, None).await?
    };
    let next_before = if entries.len() as i64 > limit {
        entries.truncate(limit as usize);
        entries.last().map(|e| e.seq)
    } else {
        None
    };
    Ok(Page {
        entries,
        next_before,
    })
}

/// PostgreSQL, past the newest entries: the index's matches below `window` first (a bitmap
/// of few: the word is not common, or the newest entries would have filled the page), then
/// at most `limit` of their entries the rest of the filter keeps, newest first.
async fn older_matches(
    db: &Database,
    filter: &Filter,
    before: Option<i64>,
    words: &str,
    like: &str,
    window: i64,
    limit: i64,
) -> Result<Vec<Entry>, sqlx::Error> {
    let mut query = QueryBuilder::new(
        "WITH matches AS MATERIALIZED (SELECT seq FROM audit_search \
         WHERE words @@ to_tsquery('simple', ",
    );
    query
        .push_bind(words)
        .push(") AND seq < ")
        .push_bind(window);
    if let Some(before) = before {
        query.push(" AND seq < ").push_bind(before);
    }
    query.push(format_args!(") SELECT {COLUMNS} FROM audit_log"));
    // The text as typed is checked on the entries; the words were the index's.
    let typed = Text::Scan {
        like: like.to_string(),
    };
    if !push_conditions(&mut query, db, filter, before, Some(&typed)).await? {
        return Ok(Vec::new());
    }
    query
        .and_where()
        .push("seq IN (SELECT seq FROM matches)")
        .push(format_args!(" ORDER BY seq DESC LIMIT {limit}"));
    // Without parallel workers: starting one costs more than the bitmap of a phrase's few
    // thousand matches it would share (measured 25–50 % slower at a million entries).
    let mut tx = db.pool().begin().await?;
    sqlx::query("SET LOCAL max_parallel_workers_per_gather = 0")
        .execute(&mut *tx)
        .await?;
    let entries = query.build_query_as().fetch_all(&mut *tx).await?;
    tx.commit().await?;
    Ok(entries)
}

/// At most `limit` entries the filter matches older than `before`, newest first; on
/// PostgreSQL's index, those of the `window` (from its first seq up to, not including, its
/// second: the newest [`PG_WINDOW`] below the cursor).
async fn fetch(
    db: &Database,
    filter: &Filter,
    before: Option<i64>,
    text: Option<&Text>,
    limit: i64,
    window: Option<(i64, i64)>,
) -> Result<Vec<Entry>, sqlx::Error> {
    let indexed = matches!(text, Some(Text::Indexed { .. }));
    let mut query = match (indexed, db.kind(), window) {
        // The index first, newest first, each match's entry by its seq: a page of a common
        // word stops after the page, a rare word reads only its matches.
        (true, DatabaseKind::Sqlite, _) => QueryBuilder::new(format!(
            "SELECT {COLUMNS} FROM audit_search \
             CROSS JOIN audit_log ON audit_log.seq = audit_search.rowid"
        )),
        // The window's rows newest first by the primary key (the subquery's LIMIT keeps the
        // planner from turning the words' test into a bitmap of the whole index), each row's
        // words tested, its entry read only when they match.
        (true, DatabaseKind::Postgres, Some((from, below))) => {
            let mut query = QueryBuilder::new(format!(
                "SELECT {COLUMNS} FROM (SELECT seq, words FROM audit_search WHERE seq >= "
            ));
            query.push_bind(from).push(" AND seq < ").push_bind(below).push(format_args!(
                " ORDER BY seq DESC LIMIT {PG_WINDOW}) AS audit_search JOIN audit_log USING (seq)"
            ));
            query
        }
        (true, DatabaseKind::Postgres, None) => QueryBuilder::new(format!(
            "SELECT {COLUMNS} FROM audit_log JOIN audit_search USING (seq)"
        )),
        (false, _, _) => QueryBuilder::new(format!("SELECT {COLUMNS} FROM audit_log")),
    };
    let order = match (indexed, db.kind()) {
        (true, DatabaseKind::Sqlite) => "audit_search.rowid",
        _ => "seq",
    };
    if !push_conditions(&mut query, db, filter, before, text).await? {
        return Ok(Vec::new());
    }
    query.push(format_args!(" ORDER BY {order} DESC LIMIT {limit}"));
    query.build_query_as().fetch_all(db.pool()).await
}

/// One entry by its sequence number.
pub async fn entry(db: &Database, seq: i64) -> Result<Option<Entry>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM audit_log WHERE seq = $1"))
        .bind(seq)
        .fetch_optional(db.pool())
        .await
}

/// The number of entries in the log (from the chain head: no count over the table).
pub async fn total(db: &Database) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT last_seq FROM audit_head WHERE id = 1")
        .fetch_one(db.pool())
        .await
}

use shared::audit::{AuditAction, Target};

pub use shared::audit::AuditQuery as Query;

/// A field of the query that is not usable, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct QueryError {
    pub field: &'static str,
    pub message: String,
}

fn given(raw: &Option<String>) -> Option<&str> {
    raw.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "any")
}

fn bounded(field: &'static str, raw: &Option<String>) -> Result<Option<String>, QueryError> {
    match given(raw) {
        Some(value) if value.chars().count() > 200 => Err(QueryError {
            field,
            message: "is longer than 200 characters".into(),
        }),
        other => Ok(other.map(str::to_string)),
    }
}

/// Unix milliseconds of a UTC date or date-time; `end_of_day` moves a bare date to the
/// start of the next day (for an exclusive upper bound).
pub fn parse_time(raw: &str, end_of_day: bool) -> Option<i64> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Some(t.timestamp_millis());
    }
    for format in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(raw, format) {
            return Some(t.and_utc().timestamp_millis());
        }
    }
    let date = NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok()?;
    let date = if end_of_day { date.succ_opt()? } else { date };
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

/// The filter a query asks for (the query is `shared`'s, the filter the services').
pub trait ToFilter {
    /// The filter this query asks for, or the first field that is not usable.
    fn filter(&self) -> Result<Filter, QueryError>;
}

impl ToFilter for Query {
    fn filter(&self) -> Result<Filter, QueryError> {
        let action = bounded("action", &self.action)?;
        if let Some(action) = &action {
            // One action, or a family of them (`request.*`, or `request.`): only what the
            // portal writes, so a mistyped filter is named rather than silently empty.
            let valid = match action
                .strip_suffix(".*")
                .or_else(|| action.strip_suffix('.'))
            {
                Some(family) => AuditAction::is_family(family),
                None => AuditAction::parse(action).is_ok(),
            };
            if !valid {
                return Err(QueryError {
                    field: "action",
                    message: format!(
                        "'{action}' is not an action (like request.submitted, or request.* for all request events)"
                    ),
                });
            }
        }
        let target_type = bounded("target_type", &self.target_type)?;
        if let Some(t) = &target_type
            && Target::parse(t).is_err()
        {
            let known: Vec<&str> = Target::ALL.iter().map(|t| t.as_str()).collect();
            return Err(QueryError {
                field: "target_type",
                message: format!("'{t}' is not a target type ({})", known.join(", ")),
            });
        }
        let outcome = match given(&self.outcome) {
            None => None,
            Some("success") => Some(Outcome::Success),
            Some("failure") => Some(Outcome::Failure),
            Some("denied") => Some(Outcome::Denied),
            Some(other) => {
                return Err(QueryError {
                    field: "outcome",
                    message: format!("'{other}' is not an outcome (success, failure or denied)"),
                });
            }
        };
        let time = |field: &'static str, raw: &Option<String>, end: bool| {
            match given(raw) {
            None => Ok(None),
            Some(raw) => parse_time(raw, end).map(Some).ok_or_else(|| QueryError {
                field,
                message: format!("'{raw}' is not a date (YYYY-MM-DD) or a date and time (YYYY-MM-DDTHH:MM), in UTC"),
            }),
        }
        };
        let from_ms = time("from", &self.from, false)?;
        let to_ms = time("to", &self.to, true)?;
        if let (Some(from), Some(to)) = (from_ms, to_ms)
            && to <= from
        {
            return Err(QueryError {
                field: "to",
                message: "is not after 'from'".into(),
            });
        }
        Ok(Filter {
            actor: bounded("actor", &self.actor)?,
            action,
            target_type,
            target_id: bounded("target_id", &self.target_id)?,
            outcome,
            from_ms,
            to_ms,
            text: bounded("q", &self.q)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(f: impl FnOnce(&mut Query)) -> Query {
        let mut query = Query::default();
        f(&mut query);
        query
    }

    #[test]
    fn dates_and_times_are_utc_and_a_bare_end_date_includes_its_day() {
        let day = parse_time("2026-11-22", false).unwrap();
        assert_eq!(parse_time("2026-11-22", true).unwrap() - day, 86_400_000);
        assert_eq!(
            parse_time("2026-11-22T14:20", false).unwrap() - day,
            51_600_000
        );
        assert_eq!(
            parse_time("2026-11-22T14:20:00Z", false),
            parse_time("2026-11-22T14:20", false)
        );
        assert_eq!(parse_time("22/11/2026", false), None);
    }

    #[test]
    fn bad_fields_are_named() {
        let field = |query: Query| query.filter().unwrap_err().field;
        assert_eq!(field(q(|q| q.outcome = Some("maybe".into()))), "outcome");
        assert_eq!(field(q(|q| q.from = Some("yesterday".into()))), "from");
        assert_eq!(field(q(|q| q.action = Some("DROP TABLE".into()))), "action");
        assert_eq!(
            field(q(|q| q.target_type = Some("org".into()))),
            "target_type"
        );
        assert_eq!(field(q(|q| q.q = Some("x".repeat(201)))), "q");
        assert_eq!(
            field(q(|q| {
                q.from = Some("2026-11-22".into());
                q.to = Some("2026-11-21".into());
            })),
            "to"
        );
        let ok = q(|q| {
            q.outcome = Some("any".into());
            q.actor = Some("  ".into());
        });
        assert!(ok.filter().unwrap().is_empty());
    }

    #[test]
    fn the_action_filter_takes_exactly_the_vocabulary() {
        let accepts = |action: &str| q(|q| q.action = Some(action.into())).filter().is_ok();
        for action in AuditAction::ALL {
            assert!(accepts(action.as_str()), "{action}");
            assert!(accepts(&format!("{}.*", action.family())), "{action}");
            assert!(accepts(&format!("{}.", action.family())), "{action}");
        }
        for refused in ["request.exploded", "org.*", "request", ".*", "*"] {
            assert!(!accepts(refused), "{refused}");
        }
        for target in Target::ALL {
            assert!(
                q(|q| q.target_type = Some(target.as_str().into()))
                    .filter()
                    .is_ok()
            );
        }
    }

    #[test]
    fn the_url_query_keeps_only_given_fields() {
        let query = q(|q| {
            q.actor = Some("a b@c".into());
            q.outcome = Some("any".into());
            q.action = Some("request.*".into());
        });
        assert_eq!(query.to_url_query(), "actor=a%20b%40c&action=request.%2A");
    }
}
