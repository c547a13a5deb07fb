//! Property tests: printing round-trips, arbitrary input never panics, LIKE agrees with a naive
//! matcher, date-literal ranges are well-formed.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, TimeZone, Utc};
use proptest::prelude::*;
use proptest::sample::select;
use soql::{
    CompareOp, Condition, DateLiteral, FieldPath, ForClause, Ident, OrderItem, Query, SelectItem,
    Span, Value, WithClause, like_matches, parse,
};

const RESERVED: &[&str] = &[
    "AND", "ASC", "DESC", "EXCLUDES", "FIRST", "FROM", "HAVING", "IN", "INCLUDES", "LAST", "LIKE",
    "LIMIT", "NOT", "NULL", "NULLS", "OR", "SELECT", "WHERE", "WITH",
];

// --- AST generators --------------------------------------------------------------------------

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z][A-Za-z0-9_]{0,10}",
        // Realistic names, including ones that look like clause words or literals.
        select(vec![
            "Id",
            "Name",
            "Owner",
            "Custom_Field__c",
            "ns__Rel__r",
            "Order",
            "Group",
            "Count",
            "Today",
            "True",
            "Offset",
            "For",
            "Update",
            "TypeOf",
            "Using",
            "Data",
        ])
        .prop_map(String::from),
    ]
    .prop_filter("reserved word", |n| {
        !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(n))
    })
}

fn field_path() -> impl Strategy<Value = FieldPath> {
    prop::collection::vec(name(), 1..=3).prop_map(|parts| FieldPath {
        parts,
        span: Span::default(),
    })
}

fn string_content() -> impl Strategy<Value = String> {
    let interesting = select(vec![
        '\'', '\\', '"', '\n', '\r', '\t', '\u{8}', '\u{c}', '\0', '%', '_', 'é', '日', '🎉', ' ',
        'u',
    ]);
    prop::collection::vec(prop_oneof![any::<char>(), interesting], 0..16)
        .prop_map(|chars| chars.into_iter().collect())
}

fn date() -> impl Strategy<Value = NaiveDate> {
    (0i32..=9999, 1u32..=366).prop_map(|(year, ordinal)| {
        NaiveDate::from_yo_opt(year, ordinal)
            .or_else(|| NaiveDate::from_yo_opt(year, 365))
            .unwrap()
    })
}

fn datetime() -> impl Strategy<Value = DateTime<FixedOffset>> {
    (
        date(),
        0u32..24,
        0u32..60,
        0u32..60,
        prop_oneof![Just(0u32), 0u32..1000],
        prop_oneof![Just(0i32), -(23 * 60 + 59)..=(23 * 60 + 59)],
    )
        .prop_filter_map("unrepresentable", |(d, h, m, s, ms, offset_minutes)| {
            let time = NaiveTime::from_hms_milli_opt(h, m, s, ms)?;
            let offset = FixedOffset::east_opt(offset_minutes * 60)?;
            d.and_time(time).and_local_timezone(offset).single()
        })
}

fn date_literal() -> impl Strategy<Value = DateLiteral> {
    use DateLiteral::*;
    let simple = select(vec![
        Yesterday,
        Today,
        Tomorrow,
        LastWeek,
        ThisWeek,
        NextWeek,
        LastMonth,
        ThisMonth,
        NextMonth,
        Last90Days,
        Next90Days,
        ThisQuarter,
        LastQuarter,
        NextQuarter,
        ThisYear,
        LastYear,
        NextYear,
    ]);
    let makers: Vec<fn(u32) -> DateLiteral> = vec![
        LastNDays,
        NextNDays,
        NDaysAgo,
        LastNWeeks,
        NextNWeeks,
        LastNMonths,
        NextNMonths,
        NWeeksAgo,
        NMonthsAgo,
        LastNQuarters,
        NextNQuarters,
        NQuartersAgo,
        LastNYears,
        NextNYears,
        NYearsAgo,
    ];
    let numbered = (select(makers), prop_oneof![0u32..1000, any::<u32>()]).prop_map(|(f, n)| f(n));
    prop_oneof![simple, numbered]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        "[+-]?[0-9]{1,8}(\\.[0-9]{1,4})?".prop_map(Value::Number),
        string_content().prop_map(Value::String),
        date().prop_map(Value::Date),
        datetime().prop_map(Value::DateTime),
        date_literal().prop_map(Value::DateLiteral),
    ]
}

fn compare_op() -> impl Strategy<Value = CompareOp> {
    select(vec![
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Lt,
        CompareOp::Gt,
        CompareOp::Le,
        CompareOp::Ge,
    ])
}

/// A LIKE pattern in the tree's form: wildcards, literal text, and the escapes `\%`, `\_`
/// and `\\` (every literal backslash escaped, as the parser writes it).
fn like_pattern() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("%".to_string()),
            Just("_".to_string()),
            Just("\\%".to_string()),
            Just("\\_".to_string()),
            Just("\\\\".to_string()),
            string_content(),
        ],
        0..5,
    )
    .prop_map(|parts| {
        parts
            .into_iter()
            .map(|p| {
                if matches!(p.as_str(), "\\%" | "\\_" | "\\\\") {
                    p
                } else {
                    p.replace('\\', "\\\\")
                }
            })
            .collect()
    })
}

fn condition() -> impl Strategy<Value = Condition> {
    let leaf =
        prop_oneof![
            (field_path(), compare_op(), value())
                .prop_map(|(field, op, value)| Condition::Compare { field, op, value }),
            (
                field_path(),
                any::<bool>(),
                prop::collection::vec(value(), 1..4)
            )
                .prop_map(|(field, negated, values)| Condition::In {
                    field,
                    negated,
                    values
                }),
            (field_path(), like_pattern())
                .prop_map(|(field, pattern)| Condition::Like { field, pattern }),
        ];
    // Nested 0..4 deep.
    leaf.prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone())
                .prop_map(|(a, b)| Condition::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner.clone())
                .prop_map(|(a, b)| Condition::Or(Box::new(a), Box::new(b))),
            inner.prop_map(|c| Condition::Not(Box::new(c))),
        ]
    })
}

fn select_list() -> impl Strategy<Value = Vec<SelectItem>> {
    prop_oneof![
        // Distinct fields (Salesforce refuses duplicates, case-insensitively).
        prop::collection::vec(field_path(), 1..6).prop_map(|fields| {
            let mut seen = std::collections::HashSet::new();
            fields
                .into_iter()
                .filter(|f| seen.insert(f.dotted().to_ascii_lowercase()))
                .map(SelectItem::Field)
                .collect()
        }),
        Just(vec![SelectItem::Count {
            field: None,
            span: Span::default()
        }]),
        prop::collection::vec(field_path(), 1..3).prop_map(|fields| {
            fields
                .into_iter()
                .map(|f| SelectItem::Count {
                    field: Some(f),
                    span: Span::default(),
                })
                .collect()
        }),
    ]
}

fn query() -> impl Strategy<Value = Query> {
    let order_item =
        (field_path(), any::<bool>(), any::<bool>()).prop_map(|(field, descending, nulls_last)| {
            OrderItem {
                field,
                descending,
                nulls_last,
            }
        });
    (
        select_list(),
        name(),
        prop::option::of(condition()),
        prop::collection::vec(order_item, 0..3),
        prop::option::of(prop_oneof![0u64..100_000, any::<u64>()]),
        prop::option::of(0u64..=2000),
        prop::option::of(select(vec![
            WithClause::SecurityEnforced,
            WithClause::UserMode,
            WithClause::SystemMode,
        ])),
        prop::option::of(select(vec![
            ForClause::View,
            ForClause::Reference,
            ForClause::Update,
        ])),
    )
        .prop_map(
            |(select, from, where_clause, order_by, limit, offset, with, for_clause)| Query {
                select,
                from: Ident {
                    name: from,
                    span: Span::default(),
                },
                where_clause,
                order_by,
                limit,
                offset,
                with,
                for_clause,
            },
        )
}

// --- input generators for the never-panics properties ----------------------------------------

const VALID: &[&str] = &[
    "SELECT Id FROM Account",
    "SELECT Id, Name, Owner.Profile.Name FROM Account WHERE Name LIKE 'Ac\\%me%' AND (Industry IN ('Tech', 'Retail') OR AnnualRevenue >= -1000.50) ORDER BY Name DESC NULLS LAST LIMIT 10 OFFSET 5",
    "SELECT COUNT() FROM Case WHERE CreatedDate = LAST_N_DAYS:7 WITH SECURITY_ENFORCED",
    "SELECT count(Id) FROM Contact WHERE Birthdate > 2000-01-31 AND LastModifiedDate < 2026-11-22T10:00:00.123+01:00 FOR VIEW",
    "select id from Order where not (Status = 'Draft' or Status = null) and Name != 'O\\'Brien \\u00e9\\n' for update",
    "SELECT Id FROM PermissionSetAssignment WHERE PermissionSet.Name NOT IN ('A', 'B') AND Assignee.IsActive = true ORDER BY Id",
    "SELECT Id\nFROM Opportunity\nWHERE CloseDate = THIS_QUARTER\n  OR CloseDate = NEXT_N_MONTHS:3\nLIMIT 200",
    "SELECT Name FROM Account GROUP BY Name",
    "SELECT Id, (SELECT Id FROM Contacts) FROM Account WHERE Id IN (SELECT AccountId FROM Contact)",
];

/// Pieces of SOQL, for random token soups that get deeper into the parser than random bytes.
const VOCABULARY: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "NOT",
    "IN",
    "LIKE",
    "ORDER",
    "BY",
    "ASC",
    "DESC",
    "NULLS",
    "FIRST",
    "LAST",
    "LIMIT",
    "OFFSET",
    "WITH",
    "FOR",
    "VIEW",
    "UPDATE",
    "GROUP",
    "COUNT",
    "(",
    ")",
    ",",
    ".",
    ":",
    "=",
    "!=",
    "<>",
    "<",
    ">",
    "<=",
    ">=",
    "Id",
    "Name",
    "Owner",
    "Account",
    "'x'",
    "'\\''",
    "'\\",
    "'",
    "42",
    "-1.5",
    "2026-01-01",
    "2026-01-01T00:00:00Z",
    "TODAY",
    "LAST_N_DAYS",
    "null",
    "true",
    "SECURITY_ENFORCED",
    "\n",
    "é",
    "\u{0}",
];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec((select(VOCABULARY), select(vec!["", " ", "\n"])), 0..24).prop_map(
        |pieces| {
            pieces
                .into_iter()
                .map(|(t, sep)| format!("{t}{sep}"))
                .collect()
        },
    )
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize),
    Insert(usize, char),
    Swap(usize, usize),
}

fn mutated_valid_query() -> impl Strategy<Value = String> {
    let mutation = prop_oneof![
        any::<usize>().prop_map(Mutation::Delete),
        (
            any::<usize>(),
            prop_oneof![
                any::<char>(),
                select(vec![
                    '\'', '\\', '(', ')', ',', '.', ':', '-', ' ', '%', '0', 'T', 'Z'
                ]),
            ]
        )
            .prop_map(|(i, c)| Mutation::Insert(i, c)),
        (any::<usize>(), any::<usize>()).prop_map(|(i, j)| Mutation::Swap(i, j)),
    ];
    (select(VALID), prop::collection::vec(mutation, 1..6)).prop_map(|(text, mutations)| {
        let mut chars: Vec<char> = text.chars().collect();
        for m in mutations {
            let len = chars.len();
            match m {
                Mutation::Delete(i) if len > 0 => {
                    chars.remove(i % len);
                }
                Mutation::Insert(i, c) => chars.insert(i % (len + 1), c),
                Mutation::Swap(i, j) if len > 0 => chars.swap(i % len, j % len),
                _ => {}
            }
        }
        chars.into_iter().collect()
    })
}

/// `parse` must return; an error's span must lie within the input and render; a success must
/// print to text that parses back to the same tree.
fn check_total(text: &str) -> Result<(), TestCaseError> {
    match parse(text) {
        Ok(query) => {
            let printed = query.to_string();
            let reparsed = parse(&printed).map_err(|e| {
                TestCaseError::fail(format!(
                    "{printed:?} does not parse: {}",
                    e.message(&printed)
                ))
            })?;
            prop_assert_eq!(reparsed.without_spans(), query.without_spans());
        }
        Err(e) => {
            prop_assert!(e.span.start <= e.span.end, "{:?}", e);
            prop_assert!(e.span.end <= text.len(), "{:?}", e);
            prop_assert!(text.is_char_boundary(e.span.start) && text.is_char_boundary(e.span.end));
            let message = e.message(text);
            prop_assert!(message.contains("\nERROR at Row:"), "{}", message);
            prop_assert!(message.ends_with(&e.detail));
        }
    }
    Ok(())
}

/// A deliberately naive LIKE (exponential backtracking) to check the real one against.
fn naive_like(pattern: &[char], text: &[char]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some(('%', rest)) => (0..=text.len()).any(|i| naive_like(rest, &text[i..])),
        Some(('_', rest)) => !text.is_empty() && naive_like(rest, &text[1..]),
        Some(('\\', rest)) if matches!(rest.first(), Some('%' | '_' | '\\')) => {
            text.first() == rest.first() && naive_like(&rest[1..], &text[1..])
        }
        Some((c, rest)) => {
            text.first()
                .is_some_and(|t| t.to_lowercase().eq(c.to_lowercase()))
                && naive_like(rest, &text[1..])
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn printed_queries_parse_back_to_the_same_tree(query in query()) {
        let printed = query.to_string();
        let parsed = match parse(&printed) {
            Ok(parsed) => parsed,
            Err(e) => return Err(TestCaseError::fail(format!("{printed:?}: {}", e.message(&printed)))),
        };
        prop_assert_eq!(&parsed.without_spans(), &query);
        // Spans point at what they name.
        for item in &parsed.select {
            if let SelectItem::Field(f) = item {
                prop_assert_eq!(&printed[f.span.start..f.span.end], f.dotted());
            }
        }
        for item in &parsed.order_by {
            prop_assert_eq!(&printed[item.field.span.start..item.field.span.end], item.field.dotted());
        }
        prop_assert_eq!(&printed[parsed.from.span.start..parsed.from.span.end], parsed.from.name.as_str());
    }

    #[test]
    fn arbitrary_strings_never_panic(text in any::<String>()) {
        check_total(&text)?;
    }

    #[test]
    fn control_and_unicode_heavy_strings_never_panic(text in "[\\x00-\\x1f\\x7f'\\\\()%_ a-zA-Z0-9\u{80}-\u{10ffff}]{0,60}") {
        check_total(&text)?;
        check_total(&format!("SELECT Id FROM A WHERE Name = '{text}"))?;
    }

    #[test]
    fn token_soups_never_panic(text in token_soup()) {
        check_total(&text)?;
        check_total(&format!("SELECT Id FROM A WHERE {text}"))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5000, ..ProptestConfig::default() })]

    #[test]
    fn mutated_valid_queries_never_panic(text in mutated_valid_query()) {
        check_total(&text)?;
    }

    #[test]
    fn like_agrees_with_a_naive_matcher(
        pattern in prop::collection::vec(select(vec!['a', 'B', 'b', '%', '_', '\\', 'é', 'É']), 0..8),
        text in prop::collection::vec(select(vec!['a', 'A', 'b', '%', '_', '\\', 'é']), 0..10),
    ) {
        let p: String = pattern.iter().collect();
        let t: String = text.iter().collect();
        prop_assert_eq!(like_matches(&p, &t), naive_like(&pattern, &text), "{:?} LIKE {:?}", t, p);
    }

    #[test]
    fn date_literal_ranges_are_well_formed(
        literal in date_literal(),
        seconds in -2_208_988_800i64..7_258_118_400, // 1900..2200
    ) {
        let now = Utc.timestamp_opt(seconds, 0).unwrap();
        let (start, end) = literal.range(now);
        prop_assert!(start <= end);
        // Ranges are whole UTC days.
        prop_assert_eq!(start.time(), NaiveTime::MIN);
        prop_assert_eq!(end.time(), NaiveTime::MIN);
        use DateLiteral::*;
        let holds_now = matches!(
            literal,
            Today | ThisWeek | ThisMonth | ThisQuarter | ThisYear | Last90Days | LastNDays(_)
        );
        if holds_now {
            prop_assert!(start <= now && now < end, "{literal} at {now}: {start}..{end}");
            prop_assert!(literal.matches(CompareOp::Eq, now, now));
        }
        let is_past = matches!(
            literal,
            Yesterday | LastWeek | LastMonth | LastQuarter | LastYear | NDaysAgo(1..)
                | LastNWeeks(1..) | LastNMonths(1..) | NWeeksAgo(1..) | NMonthsAgo(1..)
                | LastNQuarters(1..) | NQuartersAgo(1..) | LastNYears(1..) | NYearsAgo(1..)
        );
        if is_past {
            prop_assert!(end <= now, "{literal} at {now}: {start}..{end}");
            prop_assert!(literal.matches(CompareOp::Gt, now, now));
        }
        let is_future = matches!(
            literal,
            Tomorrow | NextWeek | NextMonth | NextQuarter | NextYear | Next90Days | NextNDays(_)
                | NextNWeeks(_) | NextNMonths(_) | NextNQuarters(_) | NextNYears(_)
        );
        if is_future {
            prop_assert!(now < start, "{literal} at {now}: {start}..{end}");
            prop_assert!(literal.matches(CompareOp::Lt, now, now));
        }
    }
}
