//! Recursive-descent parser over the lexer's tokens.

use std::collections::HashSet;

use crate::ast::{
    CompareOp, Condition, FieldPath, ForClause, Ident, OrderItem, Query, SelectItem, Span, Value,
    WithClause,
};
use crate::date_literal::{self, LiteralName};
use crate::error::SoqlError;
use crate::lexer::{Token, TokenKind, tokenize};

/// Parentheses and `NOT`s nested deeper than this are refused (the parser recurses on them).
pub const MAX_NESTING: usize = 100;
/// WHERE condition trees deeper than this are refused, so that walking, printing, comparing
/// and dropping a tree never exhausts a thread's stack (`a AND b AND c ...` nests one level per
/// operator).
pub const MAX_CONDITION_DEPTH: usize = 500;
/// Salesforce: "The maximum offset is 2,000 rows."
pub const MAX_OFFSET: u64 = 2000;

/// Salesforce's reserved words that can't name a field or an object. (`GROUP` is reserved too,
/// but `Group` is also a standard object and relationship name, so it only acts as a keyword
/// in `GROUP BY`.)
const RESERVED: &[&str] = &[
    "AND", "ASC", "DESC", "EXCLUDES", "FIRST", "FROM", "HAVING", "IN", "INCLUDES", "LAST", "LIKE",
    "LIMIT", "NOT", "NULL", "NULLS", "OR", "SELECT", "WHERE", "WITH",
];

const AGGREGATES: &[&str] = &["COUNT", "COUNT_DISTINCT", "SUM", "AVG", "MIN", "MAX"];

fn is_reserved(word: &str) -> bool {
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(word))
}

/// Parse a SOQL query. Never panics, whatever the input.
pub fn parse(query: &str) -> std::result::Result<Query, SoqlError> {
    let tokens = tokenize(query);
    let eof = tokens.last().cloned().unwrap_or(Token {
        kind: TokenKind::Eof,
        span: Span::default(),
    });
    let mut parser = Parser {
        src: query,
        tokens,
        pos: 0,
        eof,
    };
    parser.query()
}

struct Parser<'a> {
    src: &'a str,
    tokens: Vec<Token>,
    pos: usize,
    /// Returned by `peek` past the end (the token list always ends with it anyway).
    eof: Token,
}

type Result<T> = std::result::Result<T, SoqlError>;

fn unsupported(what: &str, span: Span) -> SoqlError {
    SoqlError::malformed(format!("the sandbox org does not support {what}"), span)
}

impl Parser<'_> {
    // --- token access -------------------------------------------------------------------------

    fn peek(&self) -> &Token {
        self.peek_at(0)
    }

    fn peek_at(&self, n: usize) -> &Token {
        self.tokens
            .get(self.pos.saturating_add(n))
            .unwrap_or(&self.eof)
    }

    fn advance(&mut self) -> Token {
        let token = self.peek().clone();
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        token
    }

    fn is_kw_at(&self, n: usize, keyword: &str) -> bool {
        matches!(&self.peek_at(n).kind, TokenKind::Word(w) if w.eq_ignore_ascii_case(keyword))
    }

    fn is_kw(&self, keyword: &str) -> bool {
        self.is_kw_at(0, keyword)
    }

    fn eat_kw(&mut self, keyword: &str) -> bool {
        let found = self.is_kw(keyword);
        if found {
            self.advance();
        }
        found
    }

    fn expect_kw(&mut self, keyword: &str) -> Result<Span> {
        if self.is_kw(keyword) {
            Ok(self.advance().span)
        } else {
            Err(self.unexpected())
        }
    }

    fn expect(&mut self, kind: &TokenKind) -> Result<Span> {
        if &self.peek().kind == kind {
            Ok(self.advance().span)
        } else {
            Err(self.unexpected())
        }
    }

    fn text(&self, token: &Token) -> &str {
        match token.kind {
            TokenKind::Eof => "<EOF>",
            _ => self.src.get(token.span.start..token.span.end).unwrap_or(""),
        }
    }

    /// Salesforce's `unexpected token: X` for the next token (or, if the next token is a
    /// malformed literal, the lexer's error for it).
    fn unexpected(&self) -> SoqlError {
        let token = self.peek();
        self.error_at_next(SoqlError::malformed(
            format!("unexpected token: {}", self.text(token)),
            token.span,
        ))
    }

    /// `error`, unless the next token is a malformed literal: its error comes first.
    fn error_at_next(&self, error: SoqlError) -> SoqlError {
        match &self.peek().kind {
            TokenKind::Error(lexer_error) => (**lexer_error).clone(),
            _ => error,
        }
    }

    // --- clauses ------------------------------------------------------------------------------

    /// Clauses in Salesforce's documented order: SELECT, FROM, [USING SCOPE], WHERE, WITH,
    /// [GROUP BY, HAVING], ORDER BY, LIMIT, OFFSET, FOR VIEW|REFERENCE, [UPDATE ...], FOR UPDATE.
    fn query(&mut self) -> Result<Query> {
        self.expect_kw("SELECT")?;
        let select = self.select_list()?;
        self.expect_kw("FROM")?;
        let from = self.object_name()?;
        if self.is_kw("USING") && self.is_kw_at(1, "SCOPE") {
            return Err(unsupported("USING SCOPE", self.peek().span));
        }
        let where_clause = if self.eat_kw("WHERE") {
            Some(self.condition(0)?.0)
        } else {
            None
        };
        let with = if self.eat_kw("WITH") {
            Some(self.with_clause()?)
        } else {
            None
        };
        if self.is_kw("GROUP") && self.is_kw_at(1, "BY") {
            return Err(unsupported("GROUP BY", self.peek().span));
        }
        if self.is_kw("HAVING") {
            return Err(unsupported("HAVING", self.peek().span));
        }
        let order_by = if self.is_kw("ORDER") && self.is_kw_at(1, "BY") {
            self.advance();
            self.advance();
            self.order_by()?
        } else {
            Vec::new()
        };
        let limit = if self.eat_kw("LIMIT") {
            Some(self.non_negative_integer("LIMIT")?.0)
        } else {
            None
        };
        let offset = if self.eat_kw("OFFSET") {
            let (offset, span) = self.non_negative_integer("OFFSET")?;
            if offset > MAX_OFFSET {
                return Err(SoqlError::malformed(
                    format!("maximum SOQL offset allowed is {MAX_OFFSET}"),
                    span,
                ));
            }
            Some(offset)
        } else {
            None
        };
        let for_clause = if self.eat_kw("FOR") {
            Some(self.for_clause()?)
        } else {
            None
        };
        if self.is_kw("UPDATE") && (self.is_kw_at(1, "TRACKING") || self.is_kw_at(1, "VIEWSTAT")) {
            let what = format!("UPDATE {}", self.text(self.peek_at(1)).to_ascii_uppercase());
            return Err(unsupported(&what, self.peek().span));
        }
        if self.peek().kind != TokenKind::Eof {
            return Err(self.unexpected());
        }
        Ok(Query {
            select,
            from,
            where_clause,
            order_by,
            limit,
            offset,
            with,
            for_clause,
        })
    }

    fn select_list(&mut self) -> Result<Vec<SelectItem>> {
        let mut items = vec![self.select_item()?];
        while self.peek().kind == TokenKind::Comma {
            self.advance();
            items.push(self.select_item()?);
        }

        // COUNT() stands alone.
        if items.len() > 1
            && let Some(count) = items
                .iter()
                .find(|i| matches!(i, SelectItem::Count { field: None, .. }))
        {
            return Err(SoqlError::malformed(
                "COUNT() must be the only element in the SELECT list",
                count.span(),
            ));
        }
        // Without GROUP BY, plain fields can't be mixed with aggregates.
        if items.iter().any(|i| matches!(i, SelectItem::Count { .. }))
            && let Some(SelectItem::Field(field)) =
                items.iter().find(|i| matches!(i, SelectItem::Field(_)))
        {
            return Err(SoqlError::malformed(
                format!("Field must be grouped or aggregated: {}", field.dotted()),
                field.span,
            ));
        }
        let mut seen = HashSet::new();
        for item in &items {
            if let SelectItem::Field(field) = item
                && !seen.insert(field.dotted().to_ascii_lowercase())
            {
                return Err(SoqlError::malformed(
                    format!("duplicate field selected: {}", field.dotted()),
                    field.span,
                ));
            }
        }
        Ok(items)
    }

    fn select_item(&mut self) -> Result<SelectItem> {
        let token = self.peek().clone();
        match &token.kind {
            TokenKind::LParen => Err(unsupported(
                "parent-to-child relationship subqueries ((SELECT ... FROM ...) in the SELECT list)",
                token.span,
            )),
            TokenKind::Word(word)
                if !is_reserved(word) && self.peek_at(1).kind == TokenKind::LParen =>
            {
                if word.eq_ignore_ascii_case("COUNT") {
                    self.count()
                } else {
                    Err(self.function_error(word, token.span, true))
                }
            }
            TokenKind::Word(word)
                if word.eq_ignore_ascii_case("TYPEOF")
                    && matches!(&self.peek_at(1).kind, TokenKind::Word(w) if !is_reserved(w)) =>
            {
                Err(unsupported("TYPEOF", token.span))
            }
            _ => Ok(SelectItem::Field(self.field_path()?)),
        }
    }

    /// `COUNT()` or `COUNT(field)`; the parser stands on `COUNT`.
    fn count(&mut self) -> Result<SelectItem> {
        let start = self.advance().span;
        self.expect(&TokenKind::LParen)?;
        let field = if self.peek().kind == TokenKind::RParen {
            None
        } else {
            Some(self.field_path()?)
        };
        let end = self.expect(&TokenKind::RParen)?;
        Ok(SelectItem::Count {
            field,
            span: start.to(end),
        })
    }

    fn function_error(&self, name: &str, span: Span, in_select: bool) -> SoqlError {
        let upper = name.to_ascii_uppercase();
        if upper == "FIELDS" {
            unsupported("FIELDS()", span)
        } else if upper == "COUNT" && !in_select {
            unsupported("COUNT() outside the SELECT list", span)
        } else if AGGREGATES.contains(&upper.as_str()) {
            unsupported(&format!("the aggregate function {name}()"), span)
        } else {
            unsupported(&format!("the function {name}()"), span)
        }
    }

    fn object_name(&mut self) -> Result<Ident> {
        let token = self.peek().clone();
        match &token.kind {
            TokenKind::Word(word) if !is_reserved(word) => {
                self.advance();
                Ok(Ident {
                    name: word.clone(),
                    span: token.span,
                })
            }
            _ => Err(self.unexpected()),
        }
    }

    /// One name in a field path.
    fn path_part(&mut self) -> Result<(String, Span)> {
        let token = self.peek().clone();
        match &token.kind {
            TokenKind::Word(word) if !is_reserved(word) => {
                if self.peek_at(1).kind == TokenKind::LParen {
                    return Err(self.function_error(word, token.span, false));
                }
                self.advance();
                Ok((word.clone(), token.span))
            }
            _ => Err(self.unexpected()),
        }
    }

    /// `Name`, `Owner.Profile.Name`.
    fn field_path(&mut self) -> Result<FieldPath> {
        let (first, span) = self.path_part()?;
        let mut parts = vec![first];
        let mut end = span;
        while self.peek().kind == TokenKind::Dot {
            self.advance();
            let (part, part_span) = self.path_part()?;
            parts.push(part);
            end = part_span;
        }
        Ok(FieldPath {
            parts,
            span: span.to(end),
        })
    }

    fn with_clause(&mut self) -> Result<WithClause> {
        let clause = if self.is_kw("SECURITY_ENFORCED") {
            WithClause::SecurityEnforced
        } else if self.is_kw("USER_MODE") {
            WithClause::UserMode
        } else if self.is_kw("SYSTEM_MODE") {
            WithClause::SystemMode
        } else if self.is_kw("DATA") && self.is_kw_at(1, "CATEGORY") {
            return Err(unsupported("WITH DATA CATEGORY", self.peek().span));
        } else {
            return Err(self.unexpected());
        };
        self.advance();
        Ok(clause)
    }

    fn for_clause(&mut self) -> Result<ForClause> {
        let clause = if self.is_kw("VIEW") {
            ForClause::View
        } else if self.is_kw("REFERENCE") {
            ForClause::Reference
        } else if self.is_kw("UPDATE") {
            ForClause::Update
        } else {
            return Err(self.unexpected());
        };
        self.advance();
        Ok(clause)
    }

    fn order_by(&mut self) -> Result<Vec<OrderItem>> {
        let mut items = Vec::new();
        loop {
            let field = self.field_path()?;
            let descending = if self.eat_kw("DESC") {
                true
            } else {
                self.eat_kw("ASC");
                false
            };
            let nulls_last = if self.eat_kw("NULLS") {
                if self.eat_kw("LAST") {
                    true
                } else {
                    self.expect_kw("FIRST")?;
                    false
                }
            } else {
                false
            };
            items.push(OrderItem {
                field,
                descending,
                nulls_last,
            });
            if self.peek().kind != TokenKind::Comma {
                return Ok(items);
            }
            self.advance();
        }
    }

    /// The integer after LIMIT or OFFSET, and its span.
    fn non_negative_integer(&mut self, clause: &str) -> Result<(u64, Span)> {
        let token = self.peek().clone();
        let TokenKind::Number(text) = &token.kind else {
            return Err(self.unexpected());
        };
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SoqlError::malformed(
                format!("{clause} must be a non-negative integer, found: {text}"),
                token.span,
            ));
        }
        let value = text.parse::<u64>().map_err(|_| {
            SoqlError::malformed(format!("{clause} value is too large: {text}"), token.span)
        })?;
        self.advance();
        Ok((value, token.span))
    }

    // --- conditions ---------------------------------------------------------------------------

    fn check_depth(&self, depth: usize, span: Span) -> Result<()> {
        if depth > MAX_CONDITION_DEPTH {
            return Err(unsupported(
                &format!("WHERE conditions nested more than {MAX_CONDITION_DEPTH} levels deep"),
                span,
            ));
        }
        Ok(())
    }

    /// A chain of conditions joined by AND, or by OR: SOQL refuses `a AND b OR c` without
    /// parentheses. Returns the tree and its depth.
    fn condition(&mut self, nesting: usize) -> Result<(Condition, usize)> {
        let (mut condition, mut depth) = self.unary(nesting)?;
        let mut chain: Option<bool> = None; // Some(true): AND chain, Some(false): OR chain
        loop {
            let is_and = if self.is_kw("AND") {
                true
            } else if self.is_kw("OR") {
                false
            } else {
                return Ok((condition, depth));
            };
            if chain.is_some_and(|c| c != is_and) {
                return Err(self.unexpected());
            }
            chain = Some(is_and);
            let op_span = self.advance().span;
            let (rhs, rhs_depth) = self.unary(nesting)?;
            depth = depth.max(rhs_depth) + 1;
            self.check_depth(depth, op_span)?;
            condition = if is_and {
                Condition::And(Box::new(condition), Box::new(rhs))
            } else {
                Condition::Or(Box::new(condition), Box::new(rhs))
            };
        }
    }

    /// `NOT x`, `( ... )` or a simple condition. NOT binds tighter than AND and OR.
    fn unary(&mut self, nesting: usize) -> Result<(Condition, usize)> {
        if nesting >= MAX_NESTING {
            return Err(unsupported(
                &format!("parentheses or NOTs nested more than {MAX_NESTING} levels deep"),
                self.peek().span,
            ));
        }
        if self.is_kw("NOT") {
            let span = self.advance().span;
            let (inner, depth) = self.unary(nesting + 1)?;
            self.check_depth(depth + 1, span)?;
            return Ok((Condition::Not(Box::new(inner)), depth + 1));
        }
        if self.peek().kind == TokenKind::LParen {
            self.advance();
            let inner = self.condition(nesting + 1)?;
            self.expect(&TokenKind::RParen)?;
            return Ok(inner);
        }
        Ok((self.simple_condition()?, 1))
    }

    fn simple_condition(&mut self) -> Result<Condition> {
        let field = self.field_path()?;
        let token = self.peek().clone();
        let op = match &token.kind {
            TokenKind::Eq => Some(CompareOp::Eq),
            TokenKind::Ne => Some(CompareOp::Ne),
            TokenKind::Lt => Some(CompareOp::Lt),
            TokenKind::Gt => Some(CompareOp::Gt),
            TokenKind::Le => Some(CompareOp::Le),
            TokenKind::Ge => Some(CompareOp::Ge),
            _ => None,
        };
        if let Some(op) = op {
            self.advance();
            let value = self.value()?;
            return Ok(Condition::Compare { field, op, value });
        }
        if self.eat_kw("LIKE") {
            let pattern = self.peek().clone();
            let TokenKind::Str(_) = pattern.kind else {
                return Err(self.error_at_next(SoqlError::malformed(
                    format!(
                        "LIKE requires a quoted string, found: {}",
                        self.text(&pattern)
                    ),
                    pattern.span,
                )));
            };
            let pattern = crate::lexer::like_pattern(self.text(&pattern));
            self.advance();
            return Ok(Condition::Like { field, pattern });
        }
        if self.is_kw("IN") {
            return self.in_list(field, false);
        }
        if self.is_kw("NOT") && self.is_kw_at(1, "IN") {
            self.advance();
            return self.in_list(field, true);
        }
        if self.is_kw("INCLUDES") || self.is_kw("EXCLUDES") {
            let what = format!(
                "{} (multi-select picklist filters)",
                self.text(&token).to_ascii_uppercase()
            );
            return Err(unsupported(&what, token.span));
        }
        Err(self.unexpected())
    }

    /// `IN (v, ...)`; the parser stands on `IN`.
    fn in_list(&mut self, field: FieldPath, negated: bool) -> Result<Condition> {
        self.advance();
        self.expect(&TokenKind::LParen)?;
        if self.is_kw("SELECT") {
            let what = if negated {
                "anti-join subqueries (NOT IN (SELECT ...))"
            } else {
                "semi-join subqueries (IN (SELECT ...))"
            };
            return Err(unsupported(what, self.peek().span));
        }
        let mut values = vec![self.value()?];
        while self.peek().kind == TokenKind::Comma {
            self.advance();
            values.push(self.value()?);
        }
        self.expect(&TokenKind::RParen)?;
        Ok(Condition::In {
            field,
            negated,
            values,
        })
    }

    fn value(&mut self) -> Result<Value> {
        let token = self.peek().clone();
        let value = match token.kind {
            TokenKind::Str(s) => Value::String(s),
            TokenKind::Number(n) => Value::Number(n),
            TokenKind::Date(d) => Value::Date(d),
            TokenKind::DateTime(dt) => Value::DateTime(dt),
            TokenKind::Word(word) => return self.word_value(&word, token.span),
            _ => return Err(self.unexpected()),
        };
        self.advance();
        Ok(value)
    }

    /// `true`, `false`, `null` or a date literal.
    fn word_value(&mut self, word: &str, span: Span) -> Result<Value> {
        let value = if word.eq_ignore_ascii_case("TRUE") {
            Value::Bool(true)
        } else if word.eq_ignore_ascii_case("FALSE") {
            Value::Bool(false)
        } else if word.eq_ignore_ascii_case("NULL") {
            Value::Null
        } else {
            match date_literal::lookup(word) {
                Some(LiteralName::Simple(literal)) => Value::DateLiteral(literal),
                Some(LiteralName::WithN(make)) => {
                    self.advance();
                    return Ok(Value::DateLiteral(make(self.date_literal_n(word)?)));
                }
                Some(LiteralName::Fiscal) => {
                    return Err(unsupported(
                        &format!("fiscal date literals such as {}", word.to_ascii_uppercase()),
                        span,
                    ));
                }
                None if self.peek_at(1).kind == TokenKind::Colon => {
                    return Err(SoqlError::malformed(
                        format!("unknown date literal: {word}"),
                        span,
                    ));
                }
                None => return Err(self.unexpected()),
            }
        };
        self.advance();
        Ok(value)
    }

    /// The `:n` of `LAST_N_DAYS:n`; the parser stands on the colon.
    fn date_literal_n(&mut self, name: &str) -> Result<u32> {
        let name = name.to_ascii_uppercase();
        if self.peek().kind != TokenKind::Colon {
            let token = self.peek();
            return Err(self.error_at_next(SoqlError::malformed(
                format!(
                    "date literal {name} needs a number ({name}:n), found: {}",
                    self.text(token)
                ),
                token.span,
            )));
        }
        self.advance();
        let token = self.peek().clone();
        let n = match &token.kind {
            TokenKind::Number(text) if text.bytes().all(|b| b.is_ascii_digit()) => {
                text.parse::<u32>().ok()
            }
            _ => None,
        };
        match n {
            Some(n) => {
                self.advance();
                Ok(n)
            }
            None => Err(self.error_at_next(SoqlError::malformed(
                format!(
                    "date literal {name}:n needs a non-negative integer n, found: {}",
                    self.text(&token)
                ),
                token.span,
            ))),
        }
    }
}
