//! A minimal writer for Metadata API XML. Element names are `&'static str` (our source);
//! every text value is escaped, and characters XML 1.0 cannot carry at all are refused
//! rather than silently dropped.

use super::spec::SpecError;

/// The namespace of every Metadata API document.
pub const METADATA_NS: &str = "http://soap.sforce.com/2006/04/metadata";

/// Escapes text content (`& < > " '`); refuses control characters other than tab, line
/// feed and carriage return, and U+FFFE/U+FFFF.
pub fn escape(field: &'static str, text: &str) -> Result<String, SpecError> {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // A carriage return would be normalised away by parsers; keep it.
            '\r' => out.push_str("&#13;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {
                return Err(SpecError::InvalidXmlText { field });
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Writes one document with four-space indentation.
pub struct XmlWriter {
    out: String,
    open: Vec<&'static str>,
}

impl XmlWriter {
    /// Starts a document whose root element is `root` in the metadata namespace.
    pub fn new(root: &'static str) -> Self {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        out.push_str(&format!("<{root} xmlns=\"{METADATA_NS}\">\n"));
        Self {
            out,
            open: vec![root],
        }
    }

    fn indent(&mut self) {
        for _ in 0..self.open.len() {
            self.out.push_str("    ");
        }
    }

    /// `<name>text</name>`, with `text` escaped; `field` names it in errors.
    pub fn text(
        &mut self,
        name: &'static str,
        field: &'static str,
        text: &str,
    ) -> Result<&mut Self, SpecError> {
        let escaped = escape(field, text)?;
        self.indent();
        self.out.push_str(&format!("<{name}>{escaped}</{name}>\n"));
        Ok(self)
    }

    /// `<name>true|false</name>`.
    pub fn flag(&mut self, name: &'static str, value: bool) -> &mut Self {
        self.indent();
        self.out.push_str(&format!("<{name}>{value}</{name}>\n"));
        self
    }

    /// `<name>CONST</name>` for values written in our source (enumerations).
    pub fn constant(&mut self, name: &'static str, value: &'static str) -> &mut Self {
        self.indent();
        self.out.push_str(&format!("<{name}>{value}</{name}>\n"));
        self
    }

    pub fn open(&mut self, name: &'static str) -> &mut Self {
        self.indent();
        self.out.push_str(&format!("<{name}>\n"));
        self.open.push(name);
        self
    }

    pub fn close(&mut self) -> &mut Self {
        if let Some(name) = self.open.pop() {
            self.indent();
            self.out.push_str(&format!("</{name}>\n"));
        }
        self
    }

    /// Closes every open element and returns the document.
    pub fn finish(mut self) -> String {
        while !self.open.is_empty() {
            self.close();
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape("f", r#"<a href="x">Tom & Jerry's</a>"#).unwrap(),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&apos;s&lt;/a&gt;"
        );
        assert_eq!(escape("f", "]]>").unwrap(), "]]&gt;");
        assert_eq!(escape("f", "a\tb\nc\rd").unwrap(), "a\tb\nc&#13;d");
        assert_eq!(escape("f", "日本 ✓").unwrap(), "日本 ✓");
    }

    #[test]
    fn refuses_characters_xml_cannot_carry() {
        for bad in ["\u{0}", "a\u{1}b", "\u{1b}[31m", "\u{FFFF}"] {
            assert_eq!(
                escape("label", bad),
                Err(SpecError::InvalidXmlText { field: "label" })
            );
        }
    }

    #[test]
    fn writes_a_well_formed_document() {
        let mut w = XmlWriter::new("Package");
        w.open("types");
        w.text("members", "member", "A<&>").unwrap();
        w.constant("name", "ExternalClientApplication");
        w.close();
        w.flag("flag", true);
        let doc = w.finish();
        let parsed = roxmltree::Document::parse(&doc).unwrap();
        let root = parsed.root_element();
        assert_eq!(root.tag_name().name(), "Package");
        assert_eq!(root.tag_name().namespace(), Some(METADATA_NS));
        let members = root
            .descendants()
            .find(|n| n.has_tag_name("members"))
            .unwrap();
        assert_eq!(members.text(), Some("A<&>"));
    }
}
