//! A small highlighter for TOML and HeroScript: keys, strings, numbers, headers and comments
//! by class (`k`, `s`, `n`, `h`, `c`), line by line. It only colours text: every byte of the
//! input comes out, escaped, whatever it holds (ADR 0026 says why not syntect).

use maud::{Markup, html};

/// A piece of text and its class (`None`: plain).
type Token = (Option<&'static str>, String);

/// The text highlighted as TOML.
pub(crate) fn toml(text: &str) -> Markup {
    let mut tokens = Vec::new();
    let mut in_multi: Option<&'static str> = None;
    for line in text.split_inclusive('\n') {
        if let Some(close) = in_multi {
            match line.find(close) {
                Some(at) => {
                    let end = at + close.len();
                    tokens.push((Some("s"), line[..end].to_owned()));
                    in_multi = None;
                    toml_value(&line[end..], &mut tokens, &mut in_multi);
                }
                None => tokens.push((Some("s"), line.to_owned())),
            }
            continue;
        }
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        tokens.push((None, indent.to_owned()));
        if trimmed.starts_with('#') {
            tokens.push((Some("c"), trimmed.to_owned()));
        } else if trimmed.starts_with('[') {
            let end = trimmed.find(']').map_or(trimmed.len(), |i| {
                if trimmed[i + 1..].starts_with(']') {
                    i + 2
                } else {
                    i + 1
                }
            });
            tokens.push((Some("h"), trimmed[..end].to_owned()));
            toml_value(&trimmed[end..], &mut tokens, &mut in_multi);
        } else if let Some(eq) = key_end(trimmed) {
            tokens.push((Some("k"), trimmed[..eq].to_owned()));
            toml_value(&trimmed[eq..], &mut tokens, &mut in_multi);
        } else {
            toml_value(trimmed, &mut tokens, &mut in_multi);
        }
    }
    render(tokens)
}

/// Where the key of `key = value` ends (at the `=` outside quotes).
fn key_end(s: &str) -> Option<usize> {
    let mut quote = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '=') => return Some(i),
            (None, '#') => return None,
            _ => {}
        }
    }
    None
}

/// Colours the value part of a TOML line: strings, numbers and booleans, a trailing comment.
fn toml_value(s: &str, tokens: &mut Vec<Token>, in_multi: &mut Option<&'static str>) {
    let mut rest = s;
    while !rest.is_empty() {
        let c = rest.chars().next().unwrap_or(' ');
        if rest.starts_with("\"\"\"") || rest.starts_with("'''") {
            let close = if rest.starts_with('"') {
                "\"\"\""
            } else {
                "'''"
            };
            match rest[3..].find(close) {
                Some(at) => {
                    let end = 3 + at + 3;
                    tokens.push((Some("s"), rest[..end].to_owned()));
                    rest = &rest[end..];
                }
                None => {
                    tokens.push((Some("s"), rest.to_owned()));
                    *in_multi = Some(close);
                    return;
                }
            }
        } else if c == '"' || c == '\'' {
            let end = string_end(rest, c);
            tokens.push((Some("s"), rest[..end].to_owned()));
            rest = &rest[end..];
        } else if c == '#' {
            tokens.push((Some("c"), rest.to_owned()));
            return;
        } else if c.is_ascii_digit() || c == '-' || c == '+' {
            let end = rest
                .find(|ch: char| !(ch.is_ascii_alphanumeric() || "-+._:".contains(ch)))
                .unwrap_or(rest.len());
            tokens.push((Some("n"), rest[..end].to_owned()));
            rest = &rest[end..];
        } else if rest.starts_with("true") || rest.starts_with("false") {
            let end = if rest.starts_with("true") { 4 } else { 5 };
            tokens.push((Some("n"), rest[..end].to_owned()));
            rest = &rest[end..];
        } else {
            let end = rest
                .find(|ch: char| "\"'#".contains(ch) || ch.is_ascii_digit())
                .filter(|&e| e > 0)
                .unwrap_or_else(|| rest.char_indices().nth(1).map_or(rest.len(), |(i, _)| i));
            tokens.push((None, rest[..end].to_owned()));
            rest = &rest[end..];
        }
    }
}

/// The end of a string starting at `s[0]` (quote `q`; `"` strings take backslash escapes),
/// or the end of `s` when it is not closed.
fn string_end(s: &str, q: char) -> usize {
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        if escaped {
            escaped = false;
        } else if c == '\\' && q == '"' {
            escaped = true;
        } else if c == q {
            return i + 1;
        }
    }
    s.len()
}

/// The text highlighted as HeroScript: `!!actor.action`, `key:`, quoted values, comments.
pub(crate) fn heroscript(text: &str) -> Markup {
    let mut tokens = Vec::new();
    let mut in_quote: Option<char> = None;
    for line in text.split_inclusive('\n') {
        let mut rest = line;
        if let Some(q) = in_quote {
            match rest.find(q) {
                Some(at) => {
                    tokens.push((Some("s"), rest[..=at].to_owned()));
                    rest = &rest[at + 1..];
                    in_quote = None;
                }
                None => {
                    tokens.push((Some("s"), rest.to_owned()));
                    continue;
                }
            }
        }
        let trimmed = rest.trim_start();
        if let Some(after) = trimmed.strip_prefix("!!") {
            tokens.push((None, rest[..rest.len() - trimmed.len()].to_owned()));
            let end = after
                .find(|c: char| c.is_whitespace())
                .map_or(trimmed.len(), |e| e + 2);
            tokens.push((Some("h"), trimmed[..end].to_owned()));
            rest = &trimmed[end..];
        }
        while !rest.is_empty() {
            if rest.starts_with("//") {
                tokens.push((Some("c"), rest.to_owned()));
                break;
            }
            let c = rest.chars().next().unwrap_or(' ');
            if c == '\'' || c == '"' {
                match rest[1..].find(c) {
                    Some(at) => {
                        tokens.push((Some("s"), rest[..at + 2].to_owned()));
                        rest = &rest[at + 2..];
                    }
                    None => {
                        tokens.push((Some("s"), rest.to_owned()));
                        in_quote = Some(c);
                        break;
                    }
                }
                continue;
            }
            let word_end = rest
                .find(|ch: char| ch.is_whitespace() || ch == '\'' || ch == '"')
                .unwrap_or(rest.len());
            let word_end = if word_end == 0 {
                rest.char_indices().nth(1).map_or(rest.len(), |(i, _)| i)
            } else {
                word_end
            };
            let word = &rest[..word_end];
            match word.find(':') {
                Some(colon) if colon > 0 => {
                    tokens.push((Some("k"), word[..=colon].to_owned()));
                    tokens.push((None, word[colon + 1..].to_owned()));
                }
                _ => tokens.push((None, word.to_owned())),
            }
            rest = &rest[word_end..];
        }
    }
    render(tokens)
}

fn render(tokens: Vec<Token>) -> Markup {
    html! {
        pre.code {
            @for (class, text) in tokens {
                @if let Some(c) = class { span class=(c) { (text) } } @else { (text) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_comes_out_escaped() {
        let src = "# <b>\n[a.\"<x>\"]\nk = \"<script>\" # c\nm = '''\n<i>\n'''\nn = 1_000\n";
        let out = toml(src).into_string();
        assert!(!out.contains("<script>") && !out.contains("<b>") && !out.contains("<i>"));
        assert!(out.contains("&lt;script&gt;"), "{out}");
        assert!(out.contains("<span class=\"n\">1_000</span>"), "{out}");
        let hs =
            heroscript("!!node.define name:'<x>' // <c>\n  ip:1 'open\n<y>\n'\n").into_string();
        assert!(
            hs.contains("<span class=\"h\">!!node.define</span>"),
            "{hs}"
        );
        assert!(!hs.contains("<x>") && !hs.contains("<y>") && !hs.contains("<c>"));
    }
}
