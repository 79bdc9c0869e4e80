//! Word documents (`.docx`): the zip crate opens the package, quick-xml
//! reads `word/document.xml`, and the body becomes markdown: paragraphs
//! styled `Heading1`..`Heading6` (or `Title`) become headings, so chunks
//! follow the document's structure; tables become markdown tables (their
//! first row the header), so a row is never split; runs, tabs and line
//! breaks keep their text. The title comes from the document's properties.
//!
//! Two well-kept crates rather than a DOCX crate: reading text needs only
//! the package and one XML part, and the DOCX crates bring image and
//! writer code we do not need into the binary.

use std::io::Read;

use quick_xml::events::{BytesStart, Event};

/// The markdown of a DOCX package and its title (empty when it has none);
/// `Err` says why it cannot be read. At most `max_bytes` of XML is read
/// from any part, so a zip bomb costs no more than that.
pub fn to_markdown(bytes: &[u8], max_bytes: u64) -> Result<(String, String), String> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("not a Word document (.docx): {e}"))?;
    let document = read_part(&mut zip, "word/document.xml", max_bytes)?
        .ok_or("not a Word document: it has no word/document.xml")?;
    let title = read_part(&mut zip, "docProps/core.xml", max_bytes)?
        .map(|core| core_title(&core))
        .unwrap_or_default();
    Ok((body(&document)?, title))
}

fn read_part(
    zip: &mut zip::ZipArchive<std::io::Cursor<&[u8]>>,
    name: &str,
    max_bytes: u64,
) -> Result<Option<Vec<u8>>, String> {
    let part = match zip.by_name(name) {
        Ok(part) => part,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(format!("the document is damaged: {e}")),
    };
    let mut out = Vec::new();
    part.take(max_bytes + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("the document is damaged: {e}"))?;
    if out.len() as u64 > max_bytes {
        return Err(format!("its text is larger than {max_bytes} bytes"));
    }
    Ok(Some(out))
}

/// `<dc:title>` of `docProps/core.xml`.
fn core_title(xml: &[u8]) -> String {
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut inside = false;
    let mut title = String::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => inside = e.local_name().as_ref() == b"title",
            Ok(Event::Text(t)) if inside => title.push_str(&t.decode().unwrap_or_default()),
            Ok(Event::End(_)) => inside = false,
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
        buf.clear();
    }
    title.trim().to_owned()
}

/// The heading level a paragraph style names: `Heading2` -> 2, `Title` -> 1.
fn heading_level(style: &str) -> Option<usize> {
    let lower = style.to_ascii_lowercase();
    if lower == "title" {
        return Some(1);
    }
    let n = lower.strip_prefix("heading")?.trim();
    n.parse::<usize>().ok().filter(|n| (1..=6).contains(n))
}

fn attr(e: &BytesStart<'_>, local: &[u8]) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == local)
        .map(|a| String::from_utf8_lossy(&a.value).into_owned())
}

/// The body as markdown.
fn body(xml: &[u8]) -> Result<String, String> {
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut out = String::new();
    // The paragraph being read, its heading level, and whether it is in a
    // table cell (cells' paragraphs join with a space).
    let mut para = String::new();
    let mut level: Option<usize> = None;
    let mut in_text = false;
    let mut table_depth = 0usize;
    let mut row: Vec<String> = Vec::new();
    let mut cell = String::new();
    let mut rows_in_table = 0usize;
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("the document's XML is damaged: {e}"))?;
        let empty = matches!(event, Event::Empty(_));
        match event {
            Event::Start(e) | Event::Empty(e) => match e.local_name().as_ref() {
                b"p" => {
                    para.clear();
                    level = None;
                }
                b"pStyle" => level = attr(&e, b"val").as_deref().and_then(heading_level),
                b"t" => in_text = !empty,
                b"tab" => para.push('\t'),
                b"br" | b"cr" => para.push(if table_depth > 0 { ' ' } else { '\n' }),
                b"tbl" => {
                    table_depth += 1;
                    if table_depth == 1 {
                        rows_in_table = 0;
                        if !out.is_empty() && !out.ends_with("\n\n") {
                            out.push('\n');
                        }
                    }
                }
                b"tr" if table_depth == 1 => row.clear(),
                b"tc" if table_depth == 1 => cell.clear(),
                _ => {}
            },
            Event::Text(t) if in_text => {
                para.push_str(&t.decode().map_err(|e| e.to_string())?);
            }
            Event::GeneralRef(r) if in_text => {
                if let Some(c) = super::xml_char(&r)? {
                    para.push(c);
                }
            }
            Event::End(e) => match e.local_name().as_ref() {
                b"t" => in_text = false,
                b"p" => {
                    let text = para.trim();
                    if table_depth > 0 {
                        if !text.is_empty() {
                            if !cell.is_empty() {
                                cell.push(' ');
                            }
                            cell.push_str(text);
                        }
                    } else if !text.is_empty() {
                        match level {
                            Some(n) => {
                                out.push_str(&"#".repeat(n));
                                out.push(' ');
                                out.push_str(&text.replace('\n', " "));
                            }
                            None => out.push_str(text),
                        }
                        out.push_str("\n\n");
                    }
                    para.clear();
                }
                b"tc" if table_depth == 1 => {
                    row.push(cell.replace('|', "\\|").replace('\n', " "));
                    cell.clear();
                }
                b"tr" if table_depth == 1 => {
                    out.push_str("| ");
                    out.push_str(&row.join(" | "));
                    out.push_str(" |\n");
                    if rows_in_table == 0 {
                        out.push('|');
                        out.push_str(&" --- |".repeat(row.len().max(1)));
                        out.push('\n');
                    }
                    rows_in_table += 1;
                }
                b"tbl" => {
                    table_depth = table_depth.saturating_sub(1);
                    if table_depth == 0 {
                        out.push('\n');
                    }
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok(out.trim().to_owned())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write;

    use super::*;

    /// A real .docx package: the parts Word writes for text, with the XML
    /// Word uses for headings, runs, breaks and a table.
    pub(crate) fn docx(document: &str, title: Option<&str>) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        let mut part = |name: &str, text: &str| {
            zip.start_file(name, options).unwrap();
            zip.write_all(text.as_bytes()).unwrap();
        };
        part(
            "[Content_Types].xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#,
        );
        part(
            "word/document.xml",
            &format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{document}</w:body></w:document>"#
            ),
        );
        if let Some(title) = title {
            part(
                "docProps/core.xml",
                &format!(
                    r#"<?xml version="1.0" encoding="UTF-8"?><cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>{title}</dc:title></cp:coreProperties>"#
                ),
            );
        }
        zip.finish().unwrap();
        out.into_inner()
    }

    pub(crate) const MANUAL: &str = r#"<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>Router manual</w:t></w:r></w:p>
<w:p><w:r><w:t xml:space="preserve">Unpack the router </w:t></w:r><w:r><w:rPr><w:b/></w:rPr><w:t>carefully</w:t></w:r><w:r><w:t> &amp; connect it.</w:t></w:r></w:p>
<w:p><w:pPr><w:pStyle w:val="Heading2"/></w:pPr><w:r><w:t>Factory reset</w:t></w:r></w:p>
<w:p><w:r><w:t>Hold the reset button for ten seconds.</w:t><w:br/><w:t>The light blinks amber.</w:t></w:r></w:p>
<w:tbl><w:tr><w:tc><w:p><w:r><w:t>Light</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>Meaning</w:t></w:r></w:p></w:tc></w:tr>
<w:tr><w:tc><w:p><w:r><w:t>Amber</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>Resetting | wait</w:t></w:r></w:p></w:tc></w:tr></w:tbl>"#;

    #[test]
    fn headings_runs_breaks_and_tables_become_markdown() {
        let (md, title) = to_markdown(&docx(MANUAL, Some("Acme Router")), 1 << 20).unwrap();
        assert_eq!(title, "Acme Router");
        assert_eq!(
            md,
            "# Router manual\n\nUnpack the router carefully & connect it.\n\n## Factory reset\n\n\
             Hold the reset button for ten seconds.\nThe light blinks amber.\n\n\
             | Light | Meaning |\n| --- | --- |\n| Amber | Resetting \\| wait |"
        );
    }

    #[test]
    fn not_a_package_no_document_and_a_bomb_are_clear_errors() {
        assert!(
            to_markdown(b"PK\x03\x04 not really", 1 << 20)
                .unwrap_err()
                .contains("not a Word document")
        );
        assert!(
            to_markdown(b"hello", 1 << 20)
                .unwrap_err()
                .contains("not a Word document")
        );
        let big = format!("<w:p><w:r><w:t>{}</w:t></w:r></w:p>", "a".repeat(100_000));
        let err = to_markdown(&docx(&big, None), 10_000).unwrap_err();
        assert!(err.contains("larger than 10000 bytes"), "{err}");
    }
}
