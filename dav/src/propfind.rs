//! PROPFIND of named properties: dav-server leaves out every property it has no value for,
//! where RFC 4918 (9.1) wants each one listed with a 404 status. The multistatus it produces is
//! completed here: every `<response>` gets a `404 Not Found` propstat naming the requested
//! properties it lacks.

use xmltree::Element;

const NS_DAV: &str = "DAV:";

/// A property name: namespace (`None`: no namespace) and local name.
pub(crate) type PropName = (Option<String>, String);

/// The properties a PROPFIND body asks for by name (`<D:prop>`); `None` for `allprop`,
/// `propname`, an empty body or one that does not parse (dav-server answers those).
pub(crate) fn requested(body: &[u8]) -> Option<Vec<PropName>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let root = Element::parse(body).ok()?;
    if root.name != "propfind" || root.namespace.as_deref() != Some(NS_DAV) {
        return None;
    }
    let prop = root
        .children
        .iter()
        .filter_map(|n| n.as_element())
        .find(|e| e.name == "prop" && e.namespace.as_deref() == Some(NS_DAV))?;
    let mut out: Vec<PropName> = Vec::new();
    for p in prop.children.iter().filter_map(|n| n.as_element()) {
        let name = (
            p.namespace.clone().filter(|n| !n.is_empty()),
            p.name.clone(),
        );
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Some(out)
}

/// One tag found by [`scan`]: its byte range and kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Start { start: usize, end: usize },
    Empty,
    End { start: usize, end: usize },
}

/// Finds the tags of a well-formed document in order (declarations, comments, CDATA and
/// processing instructions are skipped); `None` if one is not closed.
fn scan(xml: &[u8]) -> Option<Vec<Tag>> {
    let find = |from: usize, pat: &[u8]| -> Option<usize> {
        xml.get(from..)?
            .windows(pat.len())
            .position(|w| w == pat)
            .map(|p| from + p + pat.len())
    };
    let mut tags = Vec::new();
    let mut i = 0;
    while let Some(off) = xml.get(i..)?.iter().position(|&c| c == b'<') {
        let start = i + off;
        let rest = &xml[start..];
        i = if rest.starts_with(b"<?") {
            find(start, b"?>")?
        } else if rest.starts_with(b"<!--") {
            find(start, b"-->")?
        } else if rest.starts_with(b"<![CDATA[") {
            find(start, b"]]>")?
        } else if rest.starts_with(b"<!") {
            find(start, b">")?
        } else {
            let mut quote = None;
            let mut j = start + 1;
            loop {
                let c = *xml.get(j)?;
                match quote {
                    Some(q) if c == q => quote = None,
                    Some(_) => {}
                    None if c == b'"' || c == b'\'' => quote = Some(c),
                    None if c == b'>' => break,
                    None => {}
                }
                j += 1;
            }
            let end = j + 1;
            tags.push(if rest.starts_with(b"</") {
                Tag::End { start, end }
            } else if xml[j - 1] == b'/' {
                Tag::Empty
            } else {
                Tag::Start { start, end }
            });
            end
        };
    }
    Some(tags)
}

fn escape_attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Adds the 404 propstats to a multistatus; `None` if it is not one this understands (it is
/// then sent unchanged).
pub(crate) fn add_missing(xml: &[u8], wanted: &[PropName]) -> Option<Vec<u8>> {
    let tags = scan(xml)?;
    let mut depth = 0usize;
    let mut root: Option<(usize, usize)> = None;
    // (start of the child element, start of its end tag, end of its end tag)
    let mut children = Vec::new();
    let mut child_start = 0;
    for t in tags {
        match t {
            Tag::Start { start, end } => {
                if depth == 0 {
                    root = Some((start, end));
                } else if depth == 1 {
                    child_start = start;
                }
                depth += 1;
            }
            Tag::End { start, end } => {
                depth = depth.checked_sub(1)?;
                if depth == 1 {
                    children.push((child_start, start, end));
                }
            }
            Tag::Empty => {}
        }
    }
    let (rs, re) = root?;
    let root_tag = std::str::from_utf8(&xml[rs..re]).ok()?;
    let root_name: String = root_tag[1..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '>' && *c != '/')
        .collect();
    let mut out = Vec::with_capacity(xml.len() + children.len() * 128);
    let mut copied = 0;
    for (cs, close, ce) in children {
        // The child alone, under a copy of the root tag so its prefixes stay bound.
        let mut doc = Vec::with_capacity(ce - cs + root_tag.len() * 2);
        doc.extend_from_slice(root_tag.as_bytes());
        doc.extend_from_slice(&xml[cs..ce]);
        doc.extend_from_slice(format!("</{root_name}>").as_bytes());
        let parsed = Element::parse(doc.as_slice()).ok()?;
        let Some(resp) = parsed.children.iter().find_map(|n| n.as_element()) else {
            continue;
        };
        if resp.name != "response" || resp.namespace.as_deref() != Some(NS_DAV) {
            continue;
        }
        let mut present: Vec<PropName> = Vec::new();
        for ps in resp.children.iter().filter_map(|n| n.as_element()) {
            if ps.name != "propstat" {
                continue;
            }
            for pr in ps.children.iter().filter_map(|n| n.as_element()) {
                if pr.name != "prop" {
                    continue;
                }
                for p in pr.children.iter().filter_map(|n| n.as_element()) {
                    present.push((
                        p.namespace.clone().filter(|n| !n.is_empty()),
                        p.name.clone(),
                    ));
                }
            }
        }
        let missing: Vec<&PropName> = wanted.iter().filter(|w| !present.contains(w)).collect();
        if missing.is_empty() {
            continue;
        }
        let pfx = match &resp.prefix {
            Some(p) => format!("{p}:"),
            None => String::new(),
        };
        let mut add = format!("<{pfx}propstat><{pfx}prop>");
        for (ns, name) in missing {
            add.push_str(&format!(
                "<{name} xmlns=\"{}\"/>",
                escape_attr(ns.as_deref().unwrap_or(""))
            ));
        }
        add.push_str(&format!(
            "</{pfx}prop><{pfx}status>HTTP/1.1 404 Not Found</{pfx}status></{pfx}propstat>"
        ));
        out.extend_from_slice(&xml[copied..close]);
        out.extend_from_slice(add.as_bytes());
        copied = close;
    }
    out.extend_from_slice(&xml[copied..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_props_get_a_404() {
        let req = br#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:X="urn:x"><D:prop><X:a/><D:getetag/><b xmlns=""/></D:prop></D:propfind>"#;
        let wanted = requested(req).unwrap_or_default();
        assert_eq!(wanted.len(), 3);
        assert!(requested(b"").is_none());
        assert!(requested(br#"<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>"#).is_none());
        let res = br#"<?xml version="1.0" encoding="utf-8"?><D:multistatus xmlns:D="DAV:"><D:response><D:href>/a</D:href><D:propstat><D:prop><D:getetag>"x&gt;"</D:getetag><X:a xmlns:X="urn:x"><![CDATA[</D:response>]]></X:a></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response><D:response><D:href>/b</D:href></D:response></D:multistatus>"#;
        let out = add_missing(res, &wanted).unwrap_or_default();
        let text = String::from_utf8(out).unwrap_or_default();
        let doc = Element::parse(text.as_bytes());
        assert!(doc.is_ok(), "{text}");
        assert_eq!(text.matches("404 Not Found").count(), 2, "{text}");
        assert!(text.contains(r#"<b xmlns=""/></D:prop><D:status>HTTP/1.1 404"#));
        assert!(text.contains(r#"<a xmlns="urn:x"/><getetag xmlns="DAV:"/><b xmlns=""/>"#));
    }
}
