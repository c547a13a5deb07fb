//! SOQL `LIKE` matching.

/// One element of a compiled pattern segment (the text between two `%`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Elem {
    /// `_`: any one character.
    Any,
    /// A character to compare, already case-folded.
    Char(char),
}

/// Whether `text` matches the SOQL LIKE `pattern`, as the parser leaves it (see
/// [`crate::Condition::Like`]):
///
/// - `%` matches any sequence of characters, including none;
/// - `_` matches exactly one character;
/// - `\%`, `\_` and `\\` match a literal `%`, `_` and backslash; any other backslash is a
///   literal backslash;
/// - the comparison is case-insensitive (Unicode simple lowercase, character by character).
///
/// Runs in O(pattern × text) time at worst and without backtracking over `%`s: the pattern is
/// split at its `%`s, and each piece is matched at its leftmost possible position, which is
/// correct because a later piece can always use any text a leftmost match leaves.
pub fn like_matches(pattern: &str, text: &str) -> bool {
    let segments = compile(pattern);
    let text: Vec<char> = text.chars().map(fold).collect();

    let Some((first, rest)) = segments.split_first() else {
        return text.is_empty(); // unreachable in practice: compile yields at least one segment
    };
    // No `%` at all: the whole text must match the single segment.
    let Some((last, middle)) = rest.split_last() else {
        return text.len() == first.len() && matches_at(first, &text, 0);
    };
    // The first segment is anchored at the start, the last at the end.
    if text.len() < first.len() + last.len() || !matches_at(first, &text, 0) {
        return false;
    }
    let tail_start = text.len() - last.len();
    if !matches_at(last, &text, tail_start) {
        return false;
    }
    // Middle segments float: find each at its leftmost position within [pos, tail_start).
    let mut pos = first.len();
    for segment in middle {
        match find(segment, &text, pos, tail_start) {
            Some(found) => pos = found + segment.len(),
            None => return false,
        }
    }
    true
}

fn fold(c: char) -> char {
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(l), None) => l,
        // A character whose lowercase is several characters (e.g. 'İ') is compared as is, so
        // that `_` still stands for one character of the original text.
        _ => c,
    }
}

/// Split the pattern at unescaped `%` into segments of elements.
fn compile(pattern: &str) -> Vec<Vec<Elem>> {
    let mut segments = vec![Vec::new()];
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        let elem = match c {
            '%' => {
                segments.push(Vec::new());
                continue;
            }
            '_' => Elem::Any,
            '\\' => match chars.peek() {
                Some(&next @ ('%' | '_' | '\\')) => {
                    chars.next();
                    Elem::Char(next)
                }
                _ => Elem::Char('\\'),
            },
            other => Elem::Char(fold(other)),
        };
        if let Some(segment) = segments.last_mut() {
            segment.push(elem);
        }
    }
    segments
}

fn matches_at(segment: &[Elem], text: &[char], at: usize) -> bool {
    let Some(window) = text.get(at..at.saturating_add(segment.len())) else {
        return false;
    };
    segment.iter().zip(window).all(|(e, c)| match e {
        Elem::Any => true,
        Elem::Char(p) => p == c,
    })
}

/// The leftmost position `p` in `[from, limit - segment.len()]` where `segment` matches.
fn find(segment: &[Elem], text: &[char], from: usize, limit: usize) -> Option<usize> {
    let last_start = limit.checked_sub(segment.len())?;
    (from..=last_start).find(|&p| matches_at(segment, text, p))
}

#[cfg(test)]
mod tests {
    use super::like_matches;

    #[test]
    fn wildcards() {
        assert!(like_matches("Ter%", "Terminal"));
        assert!(like_matches("Ter%", "Ter"));
        assert!(!like_matches("Ter%", "Te"));
        assert!(like_matches("%minal", "Terminal"));
        assert!(like_matches("%rmi%", "Terminal"));
        assert!(like_matches("%", ""));
        assert!(like_matches("%%", "x"));
        assert!(like_matches("", ""));
        assert!(!like_matches("", "x"));
        assert!(like_matches("T_r", "Tar"));
        assert!(!like_matches("T_r", "Tr"));
        assert!(!like_matches("T_r", "Taar"));
        assert!(like_matches("a%b%c", "abc"));
        assert!(like_matches("a%b%c", "aXbYc"));
        assert!(!like_matches("a%b%c", "aXcYb"));
        assert!(like_matches("%a_%", "xab"));
        assert!(!like_matches("ab%ba", "aba")); // anchors must not overlap
        assert!(like_matches("ab%ba", "abba"));
    }

    #[test]
    fn case_insensitive_and_unicode() {
        assert!(like_matches("acme%", "ACME Corp"));
        assert!(like_matches("%ÉCOLE%", "une école"));
        assert!(like_matches("_", "é"));
        assert!(like_matches("__", "日本"));
        assert!(!like_matches("_", "日本"));
        assert!(like_matches("İ%", "İstanbul"));
    }

    #[test]
    fn escapes() {
        assert!(like_matches(r"Ter\%", "Ter%"));
        assert!(!like_matches(r"Ter\%", "Terminal"));
        assert!(like_matches(r"Ter\%%", "Ter%minal"));
        assert!(like_matches(r"a\_b", "a_b"));
        assert!(!like_matches(r"a\_b", "axb"));
        assert!(like_matches(r"a\b", r"a\b"));
        assert!(like_matches(r"a\", r"a\"));
        // An escaped backslash before a wildcard: the wildcard stays one.
        assert!(like_matches(r"a\\%", r"a\bc"));
        assert!(!like_matches(r"a\\%", "abc"));
        assert!(like_matches(r"%\\", r"back\"));
    }

    #[test]
    fn pathological_pattern_is_fast() {
        let text = "a".repeat(20_000);
        let start = std::time::Instant::now();
        assert!(!like_matches("%a%a%a%a%a%a%b", &text));
        assert!(like_matches("%a%a%a%a%a%a%", &text));
        let pattern = format!("%{}b", "_".repeat(50));
        assert!(!like_matches(&pattern, &text));
        // Generous bound: a backtracking matcher takes hours here.
        assert!(start.elapsed().as_secs() < 5);
    }
}
