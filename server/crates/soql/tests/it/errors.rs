//! Every error the parser reports: its code, detail, position and rendered message.

use soql::{ErrorCode, SoqlError, Span, parse, render_message};

fn err(text: &str) -> SoqlError {
    match parse(text) {
        Ok(query) => panic!("{text:?} parsed: {query:?}"),
        Err(e) => {
            assert!(
                e.span.start <= e.span.end && e.span.end <= text.len(),
                "{e:?}"
            );
            e
        }
    }
}

/// The detail, after checking the code is MALFORMED_QUERY.
fn detail(text: &str) -> String {
    let e = err(text);
    assert_eq!(e.code, ErrorCode::MalformedQuery, "{text}");
    assert_eq!(e.error_code(), "MALFORMED_QUERY");
    e.detail
}

/// The text the error's span covers.
fn at(text: &str) -> &str {
    let e = err(text);
    &text[e.span.start..e.span.end]
}

#[test]
fn salesforce_message_example() {
    let text = "SELECT Id FORM Case";
    let e = err(text);
    assert_eq!(e.detail, "unexpected token: FORM");
    assert_eq!(
        e.message(text),
        "\nSELECT Id FORM Case\n          ^\nERROR at Row:1:Column:11\nunexpected token: FORM"
    );
    assert_eq!(e.to_string(), "MALFORMED_QUERY: unexpected token: FORM");
}

#[test]
fn end_of_input() {
    let text = "SELECT Id FROM";
    let e = err(text);
    assert_eq!(
        e.message(text),
        "\nSELECT Id FROM\n              ^\nERROR at Row:1:Column:15\nunexpected token: <EOF>"
    );
    // Trailing whitespace does not move the caret off the query's last line.
    let text = "SELECT Id\nFROM   \n\n";
    assert_eq!(
        err(text).message(text),
        "\nFROM   \n    ^\nERROR at Row:2:Column:5\nunexpected token: <EOF>"
    );
    assert_eq!(detail(""), "unexpected token: <EOF>");
    assert_eq!(
        err("").message(""),
        "\n\n^\nERROR at Row:1:Column:1\nunexpected token: <EOF>"
    );
    assert_eq!(detail("   "), "unexpected token: <EOF>");
    assert_eq!(detail("SELECT Id FROM A WHERE"), "unexpected token: <EOF>");
    assert_eq!(
        detail("SELECT Id FROM A WHERE (A = 1"),
        "unexpected token: <EOF>"
    );
    assert_eq!(
        detail("SELECT Id FROM A ORDER BY"),
        "unexpected token: <EOF>"
    );
    assert_eq!(
        detail("SELECT Id FROM A WHERE X IN ("),
        "unexpected token: <EOF>"
    );
}

#[test]
fn multi_line_multibyte_message() {
    let text = "SELECT Id\nFROM Account\nWHERE Name = 'Zoë' ANDD Id = '1'";
    let e = err(text);
    assert_eq!(e.detail, "unexpected token: ANDD");
    assert_eq!(
        e.message(text),
        "\nWHERE Name = 'Zoë' ANDD Id = '1'\n                   ^\nERROR at Row:3:Column:20\nunexpected token: ANDD"
    );
    // CRLF line ends: the row counts lines, the line is shown without its '\r'.
    let text = "SELECT Id\r\nFROM 帳簿 X";
    let e = err(text);
    assert_eq!(e.detail, "unexpected token: 帳");
    assert!(
        e.message(text)
            .starts_with("\nFROM 帳簿 X\n     ^\nERROR at Row:2:Column:6\n")
    );
}

#[test]
fn render_message_for_evaluator_errors() {
    // The evaluator reports INVALID_FIELD / INVALID_TYPE with a span from the AST.
    let text = "SELECT Id, Nmae FROM Account";
    let query = parse(text).unwrap();
    let soql::SelectItem::Field(field) = &query.select[1] else {
        panic!()
    };
    let detail = "No such column 'Nmae' on entity 'Account'.";
    assert_eq!(
        render_message(text, field.span, detail),
        "\nSELECT Id, Nmae FROM Account\n           ^\nERROR at Row:1:Column:12\nNo such column 'Nmae' on entity 'Account'."
    );
    let e = SoqlError::new(ErrorCode::InvalidField, detail, field.span);
    assert_eq!(e.error_code(), "INVALID_FIELD");
    assert_eq!(e.message(text), render_message(text, field.span, detail));

    let text = "SELECT Id FROM Acount";
    let e = SoqlError::new(
        ErrorCode::InvalidType,
        "sObject type 'Acount' is not supported.",
        parse(text).unwrap().from.span,
    );
    assert_eq!(e.error_code(), "INVALID_TYPE");
    assert_eq!(
        e.message(text),
        "\nSELECT Id FROM Acount\n               ^\nERROR at Row:1:Column:16\nsObject type 'Acount' is not supported."
    );
    // Spans that are out of range or split a character still render.
    assert!(render_message("é", Span::new(1, 9), "x").contains("Row:1:Column:1"));
    assert!(render_message("ab", Span::new(7, 9), "x").contains("Row:1:Column:3"));
}

#[test]
fn unexpected_tokens() {
    assert_eq!(detail("SELECT Id, FROM Account"), "unexpected token: FROM");
    assert_eq!(detail("SELECT FROM Account"), "unexpected token: FROM");
    assert_eq!(
        detail("SELECT FROM(Id) FROM Account"),
        "unexpected token: FROM"
    );
    assert_eq!(
        detail("SELECT Id FROM Account Account2"),
        "unexpected token: Account2"
    );
    assert_eq!(detail("SELECT Id FROM Account;"), "unexpected token: ;");
    assert_eq!(
        detail("SELECT Id FROM Account, Contact"),
        "unexpected token: ,"
    );
    assert_eq!(
        detail("SELECT Id FROM Account WHERE Name = \"x\""),
        "unexpected token: \""
    );
    assert_eq!(
        detail("SELECT Id FROM Account WHERE Name = x"),
        "unexpected token: x"
    );
    assert_eq!(
        detail("SELECT Id FROM Account WHERE Name"),
        "unexpected token: <EOF>"
    );
    // SOQL has no `NOT LIKE`: it is written `NOT Name LIKE 'x'`.
    assert_eq!(
        detail("SELECT Id FROM Account WHERE Name NOT LIKE 'x'"),
        "unexpected token: NOT"
    );
    assert_eq!(
        detail("SELECT Id FROM Account WHERE Name IN ()"),
        "unexpected token: )"
    );
    assert_eq!(
        detail("SELECT Id FROM Account WHERE Name IN ('a',)"),
        "unexpected token: )"
    );
    assert_eq!(
        detail("SELECT Id FROM Account WHERE Name IN 'a'"),
        "unexpected token: 'a'"
    );
    assert_eq!(
        detail("SELECT Id FROM Account WHERE ()"),
        "unexpected token: )"
    );
    assert_eq!(
        detail("SELECT Id FROM Account WHERE Name = 'a')"),
        "unexpected token: )"
    );
    assert_eq!(
        detail("SELECT Id FROM Account WHERE Limit = 1"),
        "unexpected token: Limit"
    );
    assert_eq!(
        detail("SELECT Owner.From FROM Account"),
        "unexpected token: From"
    );
    assert_eq!(detail("SELECT Id. FROM Account"), "unexpected token: FROM");
    assert_eq!(
        detail("SELECT Id FROM Account ORDER Name"),
        "unexpected token: ORDER"
    );
    assert_eq!(
        detail("SELECT Id FROM Account ORDER BY Name NULLS"),
        "unexpected token: <EOF>"
    );
    assert_eq!(
        detail("SELECT Id FROM Account WITH"),
        "unexpected token: <EOF>"
    );
    assert_eq!(
        detail("SELECT Id FROM Account WITH SHARING"),
        "unexpected token: SHARING"
    );
    assert_eq!(
        detail("SELECT Id FROM Account FOR SHARE"),
        "unexpected token: SHARE"
    );
    assert_eq!(
        detail("SELECT Id FROM Account WHERE A = 1 = 2"),
        "unexpected token: ="
    );
    assert_eq!(
        detail("SELECT Id FROM Account WHERE Amount = 5abc"),
        "unexpected token: abc"
    );
    assert_eq!(
        detail("SELECT Id FROM Account WHERE Amount = 1.5.5"),
        "unexpected token: ."
    );
    assert_eq!(
        detail("SELECT Id FROM Account WHERE Amount = - 5"),
        "unexpected token: -"
    );
    assert_eq!(
        detail("SELECT Id FROM Account WHERE D = TODAY:3"),
        "unexpected token: :"
    );
    assert_eq!(detail("SELECT _Id FROM Account"), "unexpected token: _");
    assert_eq!(detail("Id FROM Account"), "unexpected token: Id");
    assert_eq!(at("SELECT Id, FROM Account"), "FROM");
}

#[test]
fn clause_order_follows_salesforce() {
    // WITH comes after WHERE; ORDER BY after WITH; then LIMIT, OFFSET, FOR.
    assert_eq!(
        detail("SELECT Id FROM A WITH SECURITY_ENFORCED WHERE X = 1"),
        "unexpected token: WHERE"
    );
    assert_eq!(
        detail("SELECT Id FROM A ORDER BY Id WHERE X = 1"),
        "unexpected token: WHERE"
    );
    assert_eq!(
        detail("SELECT Id FROM A ORDER BY Id WITH USER_MODE"),
        "unexpected token: WITH"
    );
    assert_eq!(
        detail("SELECT Id FROM A LIMIT 1 ORDER BY Id"),
        "unexpected token: ORDER"
    );
    assert_eq!(
        detail("SELECT Id FROM A OFFSET 1 LIMIT 1"),
        "unexpected token: LIMIT"
    );
    assert_eq!(
        detail("SELECT Id FROM A FOR VIEW LIMIT 1"),
        "unexpected token: LIMIT"
    );
    assert_eq!(
        detail("SELECT Id FROM A FOR VIEW FOR UPDATE"),
        "unexpected token: FOR"
    );
    assert_eq!(
        detail("SELECT Id FROM A LIMIT 1 LIMIT 2"),
        "unexpected token: LIMIT"
    );
    assert_eq!(
        detail("SELECT Id FROM A WHERE X = 1 WHERE Y = 2"),
        "unexpected token: WHERE"
    );
}

#[test]
fn mixing_and_or_needs_parentheses() {
    let text = "SELECT Id FROM A WHERE A = 1 AND B = 2 OR C = 3";
    let e = err(text);
    assert_eq!(e.detail, "unexpected token: OR");
    assert!(e.message(text).contains("ERROR at Row:1:Column:40"));
    assert_eq!(
        detail("SELECT Id FROM A WHERE A = 1 OR B = 2 AND C = 3"),
        "unexpected token: AND"
    );
    assert_eq!(
        detail("SELECT Id FROM A WHERE (A = 1 OR B = 2 AND C = 3) AND D = 4"),
        "unexpected token: AND"
    );
    assert_eq!(
        detail("SELECT Id FROM A WHERE NOT A = 1 OR B = 2 AND C = 3"),
        "unexpected token: AND"
    );
    assert_eq!(
        detail("SELECT Id FROM A WHERE A = 1 AND"),
        "unexpected token: <EOF>"
    );
    assert_eq!(
        detail("SELECT Id FROM A WHERE AND A = 1"),
        "unexpected token: AND"
    );
}

#[test]
fn select_list_rules() {
    let text = "SELECT Id, Name, name FROM Account";
    let e = err(text);
    assert_eq!(e.detail, "duplicate field selected: name");
    assert_eq!(&text[e.span.start..e.span.end], "name");
    assert_eq!(
        detail("SELECT Owner.Name, Id, owner.NAME FROM Account"),
        "duplicate field selected: owner.NAME"
    );
    // Same last part, different paths: not duplicates.
    assert!(parse("SELECT Name, Owner.Name, Account.Owner.Name FROM Contact").is_ok());

    assert_eq!(
        detail("SELECT COUNT(), Id FROM Account"),
        "COUNT() must be the only element in the SELECT list"
    );
    assert_eq!(at("SELECT Id, COUNT() FROM Account"), "COUNT()");
    assert_eq!(
        detail("SELECT COUNT(), COUNT() FROM Account"),
        "COUNT() must be the only element in the SELECT list"
    );
    assert_eq!(
        detail("SELECT COUNT(Id), Name FROM Account"),
        "Field must be grouped or aggregated: Name"
    );
    assert_eq!(
        detail("SELECT COUNT(Id FROM Account"),
        "unexpected token: FROM"
    );
    assert_eq!(
        detail("SELECT COUNT(*) FROM Account"),
        "unexpected token: *"
    );
}

#[test]
fn unsupported_constructs_are_named() {
    for (text, expected, span_text) in [
        (
            "SELECT Id, (SELECT Id FROM Contacts) FROM Account",
            "the sandbox org does not support parent-to-child relationship subqueries ((SELECT ... FROM ...) in the SELECT list)",
            "(",
        ),
        (
            "SELECT FIELDS(ALL) FROM Account LIMIT 200",
            "the sandbox org does not support FIELDS()",
            "FIELDS",
        ),
        (
            "SELECT TYPEOF What WHEN Account THEN Phone END FROM Event",
            "the sandbox org does not support TYPEOF",
            "TYPEOF",
        ),
        (
            "SELECT SUM(Amount) FROM Opportunity",
            "the sandbox org does not support the aggregate function SUM()",
            "SUM",
        ),
        (
            "SELECT count_distinct(Name) FROM Lead",
            "the sandbox org does not support the aggregate function count_distinct()",
            "count_distinct",
        ),
        (
            "SELECT toLabel(Status) FROM Case",
            "the sandbox org does not support the function toLabel()",
            "toLabel",
        ),
        (
            "SELECT Id FROM Account WHERE CALENDAR_YEAR(CreatedDate) = 2026",
            "the sandbox org does not support the function CALENDAR_YEAR()",
            "CALENDAR_YEAR",
        ),
        (
            "SELECT Id FROM Account ORDER BY COUNT(Id)",
            "the sandbox org does not support COUNT() outside the SELECT list",
            "COUNT",
        ),
        (
            "SELECT Name FROM Account GROUP BY Name",
            "the sandbox org does not support GROUP BY",
            "GROUP",
        ),
        (
            "SELECT Name FROM Account WHERE X = 1 group by Name",
            "the sandbox org does not support GROUP BY",
            "group",
        ),
        (
            "SELECT Name FROM Account HAVING COUNT(Id) > 1",
            "the sandbox org does not support HAVING",
            "HAVING",
        ),
        (
            "SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Contact)",
            "the sandbox org does not support semi-join subqueries (IN (SELECT ...))",
            "SELECT",
        ),
        (
            "SELECT Id FROM Account WHERE Id NOT IN (SELECT AccountId FROM Contact)",
            "the sandbox org does not support anti-join subqueries (NOT IN (SELECT ...))",
            "SELECT",
        ),
        (
            "SELECT Id FROM Account USING SCOPE Mine",
            "the sandbox org does not support USING SCOPE",
            "USING",
        ),
        (
            "SELECT Id FROM A WHERE Colors__c INCLUDES ('Red')",
            "the sandbox org does not support INCLUDES (multi-select picklist filters)",
            "INCLUDES",
        ),
        (
            "SELECT Id FROM A WHERE Colors__c excludes ('Red')",
            "the sandbox org does not support EXCLUDES (multi-select picklist filters)",
            "excludes",
        ),
        (
            "SELECT Title FROM KnowledgeArticleVersion WITH DATA CATEGORY Geography__c AT usa__c",
            "the sandbox org does not support WITH DATA CATEGORY",
            "DATA",
        ),
        (
            "SELECT Id FROM FAQ__kav UPDATE VIEWSTAT",
            "the sandbox org does not support UPDATE VIEWSTAT",
            "UPDATE",
        ),
        (
            "SELECT Id FROM FAQ__kav FOR VIEW UPDATE tracking",
            "the sandbox org does not support UPDATE TRACKING",
            "UPDATE",
        ),
        (
            "SELECT Id FROM Opportunity WHERE CloseDate = THIS_FISCAL_YEAR",
            "the sandbox org does not support fiscal date literals such as THIS_FISCAL_YEAR",
            "THIS_FISCAL_YEAR",
        ),
        (
            "SELECT Id FROM Opportunity WHERE CloseDate = last_n_fiscal_quarters:2",
            "the sandbox org does not support fiscal date literals such as LAST_N_FISCAL_QUARTERS",
            "last_n_fiscal_quarters",
        ),
    ] {
        let e = err(text);
        assert_eq!(e.code, ErrorCode::MalformedQuery, "{text}");
        assert_eq!(e.detail, expected, "{text}");
        assert_eq!(&text[e.span.start..e.span.end], span_text, "{text}");
    }
}

#[test]
fn like_takes_only_strings() {
    assert_eq!(
        detail("SELECT Id FROM A WHERE Name LIKE 5"),
        "LIKE requires a quoted string, found: 5"
    );
    assert_eq!(
        detail("SELECT Id FROM A WHERE Name LIKE null"),
        "LIKE requires a quoted string, found: null"
    );
    assert_eq!(
        detail("SELECT Id FROM A WHERE Name LIKE"),
        "LIKE requires a quoted string, found: <EOF>"
    );
}

#[test]
fn string_literal_errors() {
    let text = r"SELECT Id FROM A WHERE Name = 'ab\xc' AND X = 1";
    let e = err(text);
    assert_eq!(
        e.detail,
        r"Invalid string literal 'ab\xc'. Illegal escape sequence \x in string literal"
    );
    assert_eq!(&text[e.span.start..e.span.end], r"\x");
    assert!(e.message(text).contains("ERROR at Row:1:Column:34"));

    assert!(
        detail(r"SELECT Id FROM A WHERE Name = 'a\'b\qc'").contains(r"Illegal escape sequence \q")
    );
    assert!(
        detail(r"SELECT Id FROM A WHERE Name = '\u12'").contains(r"Illegal escape sequence \u")
    );
    assert!(
        detail(r"SELECT Id FROM A WHERE Name = '\uD800'").contains(r"Illegal escape sequence \u")
    );
    assert!(
        detail(r"SELECT Id FROM A WHERE Name = '\U00e9'").contains(r"Illegal escape sequence \U")
    );
    assert_eq!(
        detail(r"SELECT Id FROM A WHERE Name = 'abc\"),
        r"Invalid string literal 'abc\. Illegal escape sequence \ in string literal"
    );
    assert_eq!(
        detail("SELECT Id FROM A WHERE Name = 'abc"),
        "Invalid string literal 'abc. Missing closing quote"
    );
    assert_eq!(at("SELECT Id FROM A WHERE Name = 'abc"), "'abc");
}

#[test]
fn date_and_datetime_errors() {
    for bad in [
        "2026-02-30",
        "2026-13-01",
        "2026-00-10",
        "2026-1-01",
        "2026-01-01T10:00:00",
        "2026-01-01T10:00Z",
        "2026-01-01T25:00:00Z",
        "2026-01-01T10:00:00+1:00",
        "2026-01-01 10:00:00Z",
    ] {
        let text = format!("SELECT Id FROM A WHERE D = {bad}");
        let e = err(&text);
        assert_eq!(e.code, ErrorCode::MalformedQuery);
        assert!(
            e.detail.starts_with("invalid date or dateTime literal: ")
                || e.detail.starts_with("unexpected token"),
            "{bad}: {}",
            e.detail
        );
    }
    let text = "SELECT Id FROM A WHERE D = 2026-02-30 AND E = 1";
    let e = err(text);
    assert!(
        e.detail
            .starts_with("invalid date or dateTime literal: 2026-02-30 ")
    );
    assert_eq!(&text[e.span.start..e.span.end], "2026-02-30");
}

#[test]
fn date_literal_errors() {
    assert_eq!(
        detail("SELECT Id FROM A WHERE D = XYZ:3"),
        "unknown date literal: XYZ"
    );
    assert_eq!(at("SELECT Id FROM A WHERE D = XYZ:3"), "XYZ");
    assert_eq!(
        detail("SELECT Id FROM A WHERE D = LAST_N_DAYS"),
        "date literal LAST_N_DAYS needs a number (LAST_N_DAYS:n), found: <EOF>"
    );
    assert_eq!(
        detail("SELECT Id FROM A WHERE D = last_n_days AND X = 1"),
        "date literal LAST_N_DAYS needs a number (LAST_N_DAYS:n), found: AND"
    );
    for n in ["-1", "1.5", "x", "4294967296", "'3'"] {
        assert_eq!(
            detail(&format!("SELECT Id FROM A WHERE D = NEXT_N_WEEKS:{n}")),
            format!("date literal NEXT_N_WEEKS:n needs a non-negative integer n, found: {n}")
        );
    }
}

#[test]
fn limit_and_offset_errors() {
    assert_eq!(
        detail("SELECT Id FROM A LIMIT -1"),
        "LIMIT must be a non-negative integer, found: -1"
    );
    assert_eq!(
        detail("SELECT Id FROM A LIMIT 1.5"),
        "LIMIT must be a non-negative integer, found: 1.5"
    );
    assert_eq!(
        detail("SELECT Id FROM A LIMIT ten"),
        "unexpected token: ten"
    );
    assert_eq!(detail("SELECT Id FROM A LIMIT"), "unexpected token: <EOF>");
    assert_eq!(
        detail("SELECT Id FROM A LIMIT 18446744073709551616"),
        "LIMIT value is too large: 18446744073709551616"
    );
    assert_eq!(
        detail("SELECT Id FROM A OFFSET -5"),
        "OFFSET must be a non-negative integer, found: -5"
    );
    let text = "SELECT Id FROM A LIMIT 10 OFFSET 2001";
    let e = err(text);
    assert_eq!(e.detail, "maximum SOQL offset allowed is 2000");
    assert_eq!(&text[e.span.start..e.span.end], "2001");
    assert_eq!(
        e.message(text),
        "\nSELECT Id FROM A LIMIT 10 OFFSET 2001\n                                 ^\nERROR at Row:1:Column:34\nmaximum SOQL offset allowed is 2000"
    );
    assert_eq!(
        detail("SELECT Id FROM A OFFSET 99999999999999999999999"),
        "OFFSET value is too large: 99999999999999999999999"
    );
}

#[test]
fn nesting_limits_are_errors_not_stack_overflows() {
    let deep_parens = format!(
        "SELECT Id FROM A WHERE {}A = 1{}",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    assert!(detail(&deep_parens).contains("nested more than 100 levels deep"));
    let deep_not = format!("SELECT Id FROM A WHERE {}A = 1", "NOT ".repeat(100_000));
    assert!(detail(&deep_not).contains("nested more than 100 levels deep"));
    let long_chain = vec!["A = 1"; 100_000].join(" AND ");
    let text = format!("SELECT Id FROM A WHERE {long_chain}");
    assert_eq!(
        detail(&text),
        "the sandbox org does not support WHERE conditions nested more than 500 levels deep"
    );
    // Deep nesting combining parentheses and chains is bounded too.
    let mixed = format!(
        "SELECT Id FROM A WHERE {}A = 1{}",
        "(A = 1 AND ".repeat(90),
        ")".repeat(90)
    );
    assert!(parse(&mixed).is_ok());
}

#[test]
fn unknown_characters() {
    for (text, token) in [
        ("SELECT Id FROM A WHERE X = ?", "?"),
        ("SELECT Id FROM A WHERE X = :var", ":"),
        ("SELECT Id FROM A WHERE X == 1", "="),
        ("SELECT Id FROM A WHERE X = 1 && Y = 2", "&"),
        ("SELECT Id FROM A WHERE X ! 1", "!"),
        ("SELECT Id\u{0} FROM A", "\u{0}"),
        ("SELECT Íd FROM A", "Í"),
        ("SELECT Id FROM A WHERE X = 'a' 🎉", "🎉"),
    ] {
        assert_eq!(
            detail(text),
            format!("unexpected token: {token}"),
            "{text:?}"
        );
        assert_eq!(at(text), token, "{text:?}");
        let _ = err(text).message(text);
    }
}

#[test]
fn the_first_problem_in_the_text_is_reported() {
    // A syntax error before a malformed literal wins over it...
    assert_eq!(
        detail(r"SELECT Id FORM Case WHERE Subject = 'bad \q escape'"),
        "unexpected token: FORM"
    );
    assert_eq!(
        detail("SELECT Id FROM A B WHERE D = 2026-02-30"),
        "unexpected token: B"
    );
    // ...and a malformed literal wherever the parser meets it is reported as itself.
    for text in [
        r"SELECT Id FROM A WHERE Subject = 'bad \q escape'",
        r"SELECT Id FROM A WHERE Subject LIKE 'bad \q escape'",
        r"SELECT Id FROM A WHERE Subject IN ('ok', 'bad \q escape')",
        r"SELECT Id FROM A WHERE D = LAST_N_DAYS:'bad \q escape'",
        r"SELECT Id FROM A WHERE D = LAST_N_DAYS 'bad \q escape'",
        r"SELECT Id, 'bad \q escape' FROM A",
        r"SELECT Id FROM A LIMIT 'bad \q escape'",
    ] {
        assert_eq!(
            detail(text),
            r"Invalid string literal 'bad \q escape'. Illegal escape sequence \q in string literal",
            "{text}"
        );
    }
    assert!(detail("SELECT Id FROM A WHERE D > 2026-02-30").starts_with("invalid date"));
    assert!(detail("SELECT Id FROM A WHERE D IN (2026-02-30)").starts_with("invalid date"));
}
