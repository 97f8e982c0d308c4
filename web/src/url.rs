//! URLs: percent-encoding of repository paths (any bytes) and query strings.

/// Percent-encodes `bytes` for one query value or path segment: everything but unreserved
/// characters (RFC 3986) is escaped.
pub(crate) fn encode_component(bytes: &[u8]) -> String {
    encode(bytes, b"")
}

/// Percent-encodes a repository path for a URL path, keeping its slashes.
pub(crate) fn encode_path(bytes: &[u8]) -> String {
    encode(bytes, b"/")
}

fn encode(bytes: &[u8], keep: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes percent-escapes (and, in a query, `+` as a space); a malformed escape is kept as
/// written.
pub(crate) fn decode(s: &str, plus_is_space: bool) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    out
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The pairs of a query string, decoded (invalid UTF-8 replaced).
pub(crate) fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                String::from_utf8_lossy(&decode(k, true)).into_owned(),
                String::from_utf8_lossy(&decode(v, true)).into_owned(),
            )
        })
        .collect()
}

/// Whether a token can be a cookie value as it is.
pub(crate) fn cookie_safe(t: &str) -> bool {
    !t.is_empty()
        && t.bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b';' | b',' | b'"' | b'\\'))
}

/// A query string built from pairs, leaving out empty values.
pub(crate) fn query(pairs: &[(&str, &str)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", encode_component(v.as_bytes())))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_any_bytes() {
        let raw = b"a b/<script>&%zz\xff";
        assert_eq!(decode(&encode_path(raw), false), raw.to_vec());
        assert_eq!(decode("%", false), b"%".to_vec());
        assert_eq!(decode("%4", false), b"%4".to_vec());
        assert_eq!(decode("a+b%2", true), b"a b%2".to_vec());
    }
}
