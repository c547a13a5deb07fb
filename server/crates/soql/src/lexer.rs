//! Turns query text into tokens. Words are not classified here: SOQL's keywords are
//! context-dependent (`Order` is an object, `ORDER BY` a clause), so the parser decides.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime};

use crate::ast::Span;
use crate::error::SoqlError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokenKind {
    /// `[A-Za-z][A-Za-z0-9_]*`
    Word(String),
    /// A quoted string, unescaped (`\%` and `\_` keep their backslash).
    Str(String),
    /// `[+-]?[0-9]+(\.[0-9]+)?`, as written.
    Number(String),
    Date(NaiveDate),
    DateTime(DateTime<FixedOffset>),
    Comma,
    Dot,
    LParen,
    RParen,
    Colon,
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    /// A character that starts no token.
    Unknown,
    /// A malformed literal; the parser reports this error when it reaches the token.
    Error(Box<SoqlError>),
    Eof,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub kind: TokenKind,
    pub span: Span,
}

/// Whitespace between tokens: SOQL queries are often written over several lines.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\u{0C}')
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Lex the whole query. The last token is always `Eof`, placed just after the last token (so
/// that "unexpected token: <EOF>" points at the end of the query text rather than at trailing
/// whitespace).
///
/// A malformed literal (bad escape, unterminated string, impossible date) ends the token list
/// with an `Error` token rather than failing at once, so that the parser reports whichever
/// problem comes first in the text, as Salesforce does.
pub(crate) fn tokenize(src: &str) -> Vec<Token> {
    let mut lexer = Lexer { src, pos: 0 };
    let mut tokens = Vec::new();
    loop {
        lexer.skip_space();
        let Some(c) = lexer.peek() else { break };
        match lexer.token(c) {
            Ok(token) => tokens.push(token),
            Err(error) => {
                let span = error.span;
                tokens.push(Token {
                    kind: TokenKind::Error(Box::new(error)),
                    span,
                });
                break;
            }
        }
    }
    let end = tokens.last().map_or(0, |t| t.span.end);
    tokens.push(Token {
        kind: TokenKind::Eof,
        span: Span::new(end, end),
    });
    tokens
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl Lexer<'_> {
    fn rest(&self) -> &str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek_nth(&self, n: usize) -> Option<char> {
        self.rest().chars().nth(n)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(is_space) {
            self.bump();
        }
    }

    fn slice(&self, start: usize) -> &str {
        self.src.get(start..self.pos).unwrap_or("")
    }

    fn token(&mut self, c: char) -> Result<Token, SoqlError> {
        let start = self.pos;
        let kind = match c {
            '\'' => return self.string(),
            c if c.is_ascii_alphabetic() => {
                while self.peek().is_some_and(is_word_char) {
                    self.bump();
                }
                TokenKind::Word(self.slice(start).to_owned())
            }
            c if c.is_ascii_digit() => return self.number_or_date(),
            '+' | '-' if self.peek_nth(1).is_some_and(|d| d.is_ascii_digit()) => {
                return self.number_or_date();
            }
            _ => {
                self.bump();
                match c {
                    ',' => TokenKind::Comma,
                    '.' => TokenKind::Dot,
                    '(' => TokenKind::LParen,
                    ')' => TokenKind::RParen,
                    ':' => TokenKind::Colon,
                    '=' => TokenKind::Eq,
                    '!' if self.peek() == Some('=') => {
                        self.bump();
                        TokenKind::Ne
                    }
                    '<' => match self.peek() {
                        Some('=') => {
                            self.bump();
                            TokenKind::Le
                        }
                        Some('>') => {
                            self.bump();
                            TokenKind::Ne
                        }
                        _ => TokenKind::Lt,
                    },
                    '>' if self.peek() == Some('=') => {
                        self.bump();
                        TokenKind::Ge
                    }
                    '>' => TokenKind::Gt,
                    _ => TokenKind::Unknown,
                }
            }
        };
        Ok(Token {
            kind,
            span: Span::new(start, self.pos),
        })
    }

    /// A quoted string. Escapes per Salesforce's "Quoted String Escape Sequences": `\n \N \r \R
    /// \t \T \b \B \f \F \" \' \\ \uXXXX`; `\%` and `\_` are kept with their backslash for LIKE;
    /// any other backslash is an error.
    fn string(&mut self) -> Result<Token, SoqlError> {
        let start = self.pos;
        self.bump(); // opening quote
        let mut value = String::new();
        loop {
            let at = self.pos;
            match self.bump() {
                None => {
                    return Err(SoqlError::malformed(
                        format!(
                            "Invalid string literal {}. Missing closing quote",
                            self.slice(start)
                        ),
                        Span::new(start, self.pos),
                    ));
                }
                Some('\'') => break,
                Some('\\') => {
                    let escaped = match self.bump() {
                        Some('u') => match self.unicode_escape() {
                            Some(c) => c,
                            None => return Err(self.illegal_escape(start, at)),
                        },
                        Some(c @ ('%' | '_')) => {
                            value.push('\\');
                            c
                        }
                        Some(c) => match simple_escape(c) {
                            Some(c) => c,
                            None => return Err(self.illegal_escape(start, at)),
                        },
                        None => return Err(self.illegal_escape(start, at)),
                    };
                    value.push(escaped);
                }
                Some(c) => value.push(c),
            }
        }
        Ok(Token {
            kind: TokenKind::Str(value),
            span: Span::new(start, self.pos),
        })
    }

    /// The `XXXX` of `\uXXXX` (four hex digits naming a Unicode scalar value).
    fn unicode_escape(&mut self) -> Option<char> {
        let hex = self.rest().get(..4)?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let c = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
        self.pos += 4;
        Some(c)
    }

    fn illegal_escape(&mut self, start: usize, escape_at: usize) -> SoqlError {
        let sequence = self.slice(escape_at).to_owned();
        // Show the literal up to its closing quote (or the end of the query).
        let mut end = self.src.len();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                '\'' => {
                    end = self.pos + i + 1;
                    break;
                }
                _ => {}
            }
        }
        let literal = self.src.get(start..end).unwrap_or("");
        SoqlError::malformed(
            format!(
                "Invalid string literal {literal}. Illegal escape sequence {sequence} in string literal"
            ),
            Span::new(escape_at, self.pos),
        )
    }

    /// A number (`-12.50`), a date (`2026-11-22`) or a dateTime (`2026-11-22T10:00:00Z`).
    fn number_or_date(&mut self) -> Result<Token, SoqlError> {
        let start = self.pos;
        let rest = self.rest().as_bytes();
        let looks_like_date = rest.len() > 5
            && rest.iter().take(4).all(u8::is_ascii_digit)
            && rest.get(4) == Some(&b'-')
            && rest.get(5).is_some_and(u8::is_ascii_digit);
        if looks_like_date {
            // Take the whole date-ish word, then validate it as one piece.
            while self
                .peek()
                .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | ':' | '.'))
            {
                self.bump();
            }
            let text = self.slice(start);
            let span = Span::new(start, self.pos);
            let kind = match parse_date_or_datetime(text) {
                Some(DateOrDateTime::Date(d)) => TokenKind::Date(d),
                Some(DateOrDateTime::DateTime(dt)) => TokenKind::DateTime(dt),
                None => {
                    return Err(SoqlError::malformed(
                        format!(
                            "invalid date or dateTime literal: {text} (expected YYYY-MM-DD or \
                             YYYY-MM-DDThh:mm:ss[.SSS] followed by Z, +hh:mm or -hh:mm)"
                        ),
                        span,
                    ));
                }
            };
            return Ok(Token { kind, span });
        }
        if matches!(self.peek(), Some('+' | '-')) {
            self.bump();
        }
        self.digits();
        if self.peek() == Some('.') && self.peek_nth(1).is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
            self.digits();
        }
        Ok(Token {
            kind: TokenKind::Number(self.slice(start).to_owned()),
            span: Span::new(start, self.pos),
        })
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
    }
}

enum DateOrDateTime {
    Date(NaiveDate),
    DateTime(DateTime<FixedOffset>),
}

/// Reads exactly `n` ASCII digits from the front of `s`.
fn take_digits(s: &str, n: usize) -> Option<(u32, &str)> {
    let head = s.get(..n)?;
    if !head.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((head.parse().ok()?, s.get(n..)?))
}

fn take_char<'a>(s: &'a str, expected: &[char]) -> Option<(char, &'a str)> {
    let c = s.chars().next()?;
    if expected.contains(&c) {
        Some((c, s.get(c.len_utf8()..)?))
    } else {
        None
    }
}

/// `YYYY-MM-DD` or `YYYY-MM-DDThh:mm:ss[.f{1,9}](Z|+hh:mm|-hh:mm)`, validated.
fn parse_date_or_datetime(text: &str) -> Option<DateOrDateTime> {
    let (year, s) = take_digits(text, 4)?;
    let (_, s) = take_char(s, &['-'])?;
    let (month, s) = take_digits(s, 2)?;
    let (_, s) = take_char(s, &['-'])?;
    let (day, s) = take_digits(s, 2)?;
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    if s.is_empty() {
        return Some(DateOrDateTime::Date(date));
    }
    let (_, s) = take_char(s, &['T', 't'])?;
    let (hour, s) = take_digits(s, 2)?;
    let (_, s) = take_char(s, &[':'])?;
    let (minute, s) = take_digits(s, 2)?;
    let (_, s) = take_char(s, &[':'])?;
    let (second, mut s) = take_digits(s, 2)?;
    let mut nanos = 0;
    if let Some((_, after_dot)) = take_char(s, &['.']) {
        let len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
        if !(1..=9).contains(&len) {
            return None;
        }
        let (fraction, after) = take_digits(after_dot, len)?;
        nanos = fraction * 10u32.pow(9 - u32::try_from(len).ok()?);
        s = after;
    }
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?;
    let offset_seconds = match take_char(s, &['Z', 'z', '+', '-'])? {
        ('Z' | 'z', "") => 0,
        (sign @ ('+' | '-'), s) => {
            let (oh, s) = take_digits(s, 2)?;
            let (_, s) = take_char(s, &[':'])?;
            let (om, s) = take_digits(s, 2)?;
            if !s.is_empty() || oh > 23 || om > 59 {
                return None;
            }
            let seconds = i32::try_from(oh * 3600 + om * 60).ok()?;
            if sign == '-' { -seconds } else { seconds }
        }
        _ => return None,
    };
    let offset = FixedOffset::east_opt(offset_seconds)?;
    let dt = NaiveDateTime::new(date, time)
        .and_local_timezone(offset)
        .single()?;
    Some(DateOrDateTime::DateTime(dt))
}

/// What the escape `\c` stands for, for the escapes of one character (`\u` has four more).
fn simple_escape(c: char) -> Option<char> {
    Some(match c {
        'n' | 'N' => '\n',
        'r' | 'R' => '\r',
        't' | 'T' => '\t',
        'b' | 'B' => '\u{08}',
        'f' | 'F' => '\u{0C}',
        '"' | '\'' | '\\' => c,
        _ => return None,
    })
}

/// A LIKE pattern from its string literal as written (quotes included, already checked by
/// the lexer): escapes decoded as in any string, except that `\%`, `\_` and `\\` stay
/// escaped, so that [`crate::like_matches`] can tell a literal `%`, `_` or backslash from a
/// wildcard (`'a\\%'` is a backslash then any text; `'a\%'` a literal percent).
pub(crate) fn like_pattern(literal: &str) -> String {
    let inner = literal
        .strip_prefix('\'')
        .and_then(|l| l.strip_suffix('\''))
        .unwrap_or(literal);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(e @ ('%' | '_' | '\\')) => {
                out.push('\\');
                out.push(e);
            }
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                if let Some(c) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    out.push(c);
                }
            }
            Some(e) => out.extend(simple_escape(e)),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<TokenKind> {
        tokenize(src).into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn punctuation_and_operators() {
        use TokenKind::*;
        assert_eq!(
            kinds("a.b,(=!=<><=>=< >):"),
            vec![
                Word("a".into()),
                Dot,
                Word("b".into()),
                Comma,
                LParen,
                Eq,
                Ne,
                Ne,
                Le,
                Ge,
                Lt,
                Gt,
                RParen,
                Colon,
                Eof
            ]
        );
        assert_eq!(kinds("! ?"), vec![Unknown, Unknown, Eof]);
    }

    #[test]
    fn numbers() {
        use TokenKind::*;
        assert_eq!(
            kinds("1 -12.50 +3 4. 5.x"),
            vec![
                Number("1".into()),
                Number("-12.50".into()),
                Number("+3".into()),
                Number("4".into()),
                Dot,
                Number("5".into()),
                Dot,
                Word("x".into()),
                Eof
            ]
        );
    }

    #[test]
    fn eof_sits_after_the_last_token() {
        let tokens = tokenize("SELECT  \n ");
        assert_eq!(tokens.last().unwrap().span, Span::new(6, 6));
        assert_eq!(tokenize("")[0].span, Span::new(0, 0));
    }

    #[test]
    fn dates() {
        let TokenKind::DateTime(dt) = &kinds("2026-11-22T10:00:00.123+01:30")[0] else {
            panic!()
        };
        assert_eq!(dt.to_rfc3339(), "2026-11-22T10:00:00.123+01:30");
        assert!(matches!(kinds("2024-02-29")[0], TokenKind::Date(_)));
        for bad in [
            "2026-02-30",
            "2025-02-29",
            "2026-1-01",
            "2026-01-01T",
            "2026-01-01T10:00:00",
            "2026-01-01T24:00:00Z",
            "2026-01-01T10:00:60Z",
            "2026-01-01T10:00:00+1:00",
            "2026-01-01T10:00:00+24:00",
            "2026-01-01T10:00:00.Z",
            "2026-01-01T10:00:00.1234567890Z",
            "2026-01-01T10:00:00Zx",
            "2026-01-01x",
        ] {
            assert!(matches!(kinds(bad)[0], TokenKind::Error(_)), "{bad}");
        }
    }
}
