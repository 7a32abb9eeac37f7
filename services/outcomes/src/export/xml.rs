//! What the two XML exports (Define-XML and ODM) write the same way: the document with its
//! declaration, text elements, and ODM's `TranslatedText` wrappers.

use std::io;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

/// The writer both XML exports use.
pub(crate) type W = Writer<Vec<u8>>;

/// A UTF-8 XML document (declaration, then what `body` writes, then a final newline), indented by
/// one space per level.
pub(crate) fn document(body: impl FnOnce(&mut W) -> io::Result<()>) -> io::Result<Vec<u8>> {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 1);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    body(&mut w)?;
    let mut out = w.into_inner();
    out.push(b'\n');
    Ok(out)
}

/// `<name>value</name>`, the value escaped.
pub(crate) fn text(w: &mut W, name: &str, value: &str) -> io::Result<()> {
    w.create_element(name).write_text_content(BytesText::new(value))?;
    Ok(())
}

/// `<name><TranslatedText xml:lang="en">value</TranslatedText></name>` (a Description, a
/// Decode, a Symbol).
pub(crate) fn translated(w: &mut W, name: &str, value: &str) -> io::Result<()> {
    w.create_element(name).write_inner_content(|w| {
        w.create_element("TranslatedText")
            .with_attribute(("xml:lang", "en"))
            .write_text_content(BytesText::new(value))?;
        Ok(())
    })?;
    Ok(())
}
