//! The HeroScript parser: hand-written, one pass over the characters, no recursion.
//!
//! The grammar it follows is written down in `docs/heroscript.md`; the comments here name
//! its rules.

use std::collections::BTreeMap;

use super::model::{ARGS_KEY, Action, Param, ParamValue, Script};
use crate::error::{HeroScriptError, ParseError};
use crate::span::Span;

pub(super) fn parse(text: &str) -> Result<Script, ParseError> {
    let mut chars: Vec<char> = Vec::with_capacity(text.len());
    let mut it = text.chars().peekable();
    while let Some(c) = it.next() {
        // `\r\n` (Windows) and a lone `\r` (old Macs) are line breaks like `\n`, so no
        // value ever holds a carriage return and printing cannot create one.
        if c == '\r' {
            if it.peek() != Some(&'\n') {
                chars.push('\n');
            }
            continue;
        }
        chars.push(c);
    }
    let mut p = Parser {
        chars,
        pos: 0,
        line: 1,
        column: 1,
    };
    p.script()
}

/// Blanks between tokens: space and tab.
fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Characters of actor and action names.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Characters of parameter names.
pub(crate) fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/')
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    column: usize,
}

/// An action being read, with the indentation of its `!!` line and where each key was given.
struct Open {
    action: Action,
    indent: usize,
    keys: BTreeMap<String, Span>,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos.saturating_add(ahead)).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn span(&self) -> Span {
        Span::new(self.line, self.column)
    }

    fn error(&self, at: Span, kind: HeroScriptError) -> ParseError {
        ParseError::HeroScript { at, kind }
    }

    fn at_comment(&self) -> bool {
        self.peek() == Some('/') && self.peek_at(1) == Some('/')
    }

    /// Skips spaces and tabs; returns how many.
    fn skip_blanks(&mut self) -> usize {
        let mut n = 0;
        while self.peek().is_some_and(is_blank) {
            self.bump();
            n += 1;
        }
        n
    }

    /// Skips everything up to and including the next line break.
    fn skip_line(&mut self) {
        while let Some(c) = self.bump() {
            if c == '\n' {
                break;
            }
        }
    }

    /// `script = { line }`: actions, their parameter lines, comments and free text.
    fn script(&mut self) -> Result<Script, ParseError> {
        let mut actions = Vec::new();
        let mut open: Option<Open> = None;
        while self.peek().is_some() {
            let mut indent = 0;
            while matches!(self.peek(), Some(' ' | '\t')) {
                self.bump();
                indent += 1;
            }
            match self.peek() {
                None => break,
                // A blank line does not end an action.
                Some('\n') if self.line_is_blank() => {
                    self.skip_line();
                    continue;
                }
                _ => {}
            }
            if self.at_comment() {
                self.skip_line();
                continue;
            }
            if self.peek() == Some('!') && self.peek_at(1) == Some('!') {
                if let Some(done) = open.take() {
                    actions.push(done.action);
                }
                let mut new = self.header(indent)?;
                self.params(&mut new)?;
                open = Some(new);
                continue;
            }
            match open.as_mut() {
                Some(current) if indent > current.indent => {
                    // `#` opening a parameter line is a comment, as `//` is.
                    if self.peek() == Some('#') {
                        self.skip_line();
                    } else {
                        self.params(current)?;
                    }
                }
                _ => {
                    // Free text (Markdown, fences, prose) ends the action.
                    if let Some(done) = open.take() {
                        actions.push(done.action);
                    }
                    self.skip_line();
                }
            }
        }
        if let Some(done) = open.take() {
            actions.push(done.action);
        }
        Ok(Script { actions })
    }

    fn line_is_blank(&self) -> bool {
        let mut i = self.pos;
        while let Some(&c) = self.chars.get(i) {
            if c == '\n' {
                return true;
            }
            if !is_blank(c) {
                return false;
            }
            i += 1;
        }
        true
    }

    /// `header = "!!" name "." name`, lowercased.
    fn header(&mut self, indent: usize) -> Result<Open, ParseError> {
        let at = self.span();
        self.bump();
        self.bump();
        if self.peek() == Some('!') {
            return Err(self.error(at, HeroScriptError::TooManyBangs));
        }
        let actor = self.name()?;
        if actor.is_empty() {
            return Err(self.error(self.span(), HeroScriptError::MissingActor));
        }
        if self.peek() != Some('.') {
            return Err(self.error(self.span(), HeroScriptError::MissingAction { actor }));
        }
        self.bump();
        let name = self.name()?;
        if name.is_empty() {
            return Err(self.error(self.span(), HeroScriptError::MissingAction { actor }));
        }
        match self.peek() {
            None | Some('\n') => {}
            Some(c) if is_blank(c) => {}
            Some(found) => {
                return Err(self.error(self.span(), HeroScriptError::BadNameChar { found }));
            }
        }
        Ok(Open {
            action: Action {
                actor,
                name,
                args: Vec::new(),
                params: Vec::new(),
                span: at,
            },
            indent,
            keys: BTreeMap::new(),
        })
    }

    fn name(&mut self) -> Result<String, ParseError> {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if is_name_char(c) {
                name.push(c.to_ascii_lowercase());
                self.bump();
            } else if c == '.' || is_blank(c) || c == '\n' {
                break;
            } else {
                return Err(self.error(self.span(), HeroScriptError::BadNameChar { found: c }));
            }
        }
        Ok(name)
    }

    /// The rest of a line: `{ blank+ item } [ blank+ comment ] newline`, where an item may
    /// run over several lines (quoted values, `[` lists).
    fn params(&mut self, open: &mut Open) -> Result<(), ParseError> {
        loop {
            self.skip_blanks();
            match self.peek() {
                None => return Ok(()),
                Some('\n') => {
                    self.bump();
                    return Ok(());
                }
                _ => {}
            }
            if self.at_comment() {
                self.skip_line();
                return Ok(());
            }
            // Items are separated by blanks: every value checks what follows it
            // (`value_end`) and the header checks what follows the action's name.
            self.item(open)?;
        }
    }

    /// `item = quoted-arg | key ":" value | word`.
    fn item(&mut self, open: &mut Open) -> Result<(), ParseError> {
        let at = self.span();
        if let Some(q @ ('\'' | '"')) = self.peek() {
            let arg = self.quoted(q)?;
            self.value_end()?;
            open.action.args.push(arg);
            return Ok(());
        }
        let mut key = String::new();
        while let Some(c) = self.peek().filter(|&c| is_key_char(c)) {
            key.push(c);
            self.bump();
        }
        match self.peek() {
            Some(':') if key.is_empty() => Err(self.error(at, HeroScriptError::EmptyKey)),
            Some(':') => {
                self.bump();
                let key = key.to_ascii_lowercase();
                if key == ARGS_KEY {
                    return Err(self.error(at, HeroScriptError::ReservedKey));
                }
                let value = self.value()?;
                if let Some(first) = open.keys.get(&key) {
                    return Err(
                        self.error(at, HeroScriptError::DuplicateKey { key, first: *first })
                    );
                }
                open.keys.insert(key.clone(), at);
                open.action.params.push(Param {
                    key,
                    value,
                    span: at,
                });
                Ok(())
            }
            None | Some('\n') => {
                open.action.args.push(key);
                Ok(())
            }
            Some(c) if is_blank(c) => {
                open.action.args.push(key);
                Ok(())
            }
            Some(_) => {
                // A positional word with other characters; a `:` in it would make it a
                // parameter with a name that is not one.
                let mut word = key;
                let mut bad: Option<(char, Span)> = None;
                while let Some(c) = self.peek().filter(|&c| !is_blank(c) && c != '\n') {
                    if bad.is_none() && !is_key_char(c) {
                        bad = Some((c, self.span()));
                    }
                    if c == ':'
                        && let Some((found, where_)) = bad
                    {
                        return Err(self.error(where_, HeroScriptError::BadKeyChar { found }));
                    }
                    word.push(c);
                    self.bump();
                }
                open.action.args.push(word);
                Ok(())
            }
        }
    }

    /// After a value: a blank, the end of the line or of the text.
    fn value_end(&self) -> Result<(), ParseError> {
        match self.peek() {
            None | Some('\n') => Ok(()),
            Some(c) if is_blank(c) => Ok(()),
            Some(found) => Err(self.error(self.span(), HeroScriptError::AfterValue { found })),
        }
    }

    /// `value = [ blanks ] ( "[" list "]" | item { "," [ blanks ] item } [ "," ] | nothing )`.
    fn value(&mut self) -> Result<ParamValue, ParseError> {
        let blanks = self.skip_blanks();
        match self.peek() {
            None | Some('\n') => return Ok(ParamValue::Text(String::new())),
            Some('/') if blanks > 0 && self.at_comment() => {
                return Ok(ParamValue::Text(String::new()));
            }
            Some('[') => {
                let list = self.bracket_list()?;
                self.value_end()?;
                return Ok(ParamValue::List(list));
            }
            _ => {}
        }
        let first = self.list_item(false)?;
        if self.peek() != Some(',') {
            return Ok(ParamValue::Text(first));
        }
        let mut items = vec![first];
        while self.peek() == Some(',') {
            self.bump();
            let blanks = self.skip_blanks();
            match self.peek() {
                // A comma at the end of the value ends the list.
                None | Some('\n') => break,
                Some(c) if is_blank(c) => break,
                Some('/') if blanks > 0 && self.at_comment() => break,
                _ => items.push(self.list_item(false)?),
            }
        }
        Ok(ParamValue::List(items))
    }

    /// One item: quoted, or unquoted up to a blank, `,` (and `]` inside brackets).
    fn list_item(&mut self, in_brackets: bool) -> Result<String, ParseError> {
        if let Some(q @ ('\'' | '"')) = self.peek() {
            let item = self.quoted(q)?;
            match self.peek() {
                Some(',') => {}
                Some(']') if in_brackets => {}
                _ if in_brackets => {
                    // Blanks and line breaks are allowed before `,` and `]`.
                    if let Some(found) = self.peek().filter(|c| !c.is_whitespace()) {
                        return Err(self.error(self.span(), HeroScriptError::InList { found }));
                    }
                }
                _ => self.value_end()?,
            }
            return Ok(item);
        }
        let mut item = String::new();
        while let Some(c) = self.peek() {
            if is_blank(c) || c == '\n' || c == ',' || (in_brackets && c == ']') {
                break;
            }
            item.push(c);
            self.bump();
        }
        Ok(item)
    }

    /// `"[" { ws } [ item { ws } { "," { ws } item { ws } } [ "," ] ] { ws } "]"`: line
    /// breaks are allowed anywhere between items.
    fn bracket_list(&mut self) -> Result<Vec<String>, ParseError> {
        let opened = self.span();
        self.bump();
        let mut items = Vec::new();
        loop {
            self.skip_whitespace();
            match self.peek() {
                None => return Err(self.error(opened, HeroScriptError::UnclosedList { opened })),
                Some(']') => {
                    self.bump();
                    return Ok(items);
                }
                _ => {}
            }
            items.push(self.list_item(true)?);
            self.skip_whitespace();
            match self.peek() {
                Some(',') => {
                    self.bump();
                }
                Some(']') => {
                    self.bump();
                    return Ok(items);
                }
                None => return Err(self.error(opened, HeroScriptError::UnclosedList { opened })),
                Some(found) => {
                    return Err(self.error(self.span(), HeroScriptError::InList { found }));
                }
            }
        }
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(|c| is_blank(c) || c == '\n') {
            self.bump();
        }
    }

    /// A quoted value: `\\` and `\q` are escapes, every other backslash is itself; line
    /// breaks are kept and the text is dedented (`dedent`).
    fn quoted(&mut self, q: char) -> Result<String, ParseError> {
        let opened = self.span();
        self.bump();
        let mut raw = String::new();
        loop {
            match self.bump() {
                None => {
                    return Err(
                        self.error(opened, HeroScriptError::UnclosedQuote { quote: q, opened })
                    );
                }
                Some('\\') => match self.peek() {
                    Some(c) if c == q || c == '\\' => {
                        raw.push('\\');
                        raw.push(c);
                        self.bump();
                    }
                    _ => raw.push('\\'),
                },
                Some(c) if c == q => break,
                Some(c) => raw.push(c),
            }
        }
        Ok(unescape(&dedent(&raw), q))
    }
}

fn unescape(raw: &str, q: char) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut it = raw.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\\'
            && let Some(&next) = it.peek()
            && (next == q || next == '\\')
        {
            out.push(next);
            it.next();
            continue;
        }
        out.push(c);
    }
    out
}

fn is_blank_line(line: &str) -> bool {
    line.chars().all(|c| c == ' ' || c == '\t')
}

fn indentation(line: &str) -> usize {
    line.chars().take_while(|&c| c == ' ' || c == '\t').count()
}

fn strip_indent(line: &str, n: usize) -> &str {
    let cut = line
        .char_indices()
        .take(n)
        .take_while(|&(_, c)| c == ' ' || c == '\t')
        .map(|(i, c)| i + c.len_utf8())
        .last()
        .unwrap_or(0);
    line.get(cut..).unwrap_or(line)
}

/// Multi-line quoted values (the rule of `docs/heroscript.md`, "Multi-line values"):
/// - a first line with nothing after the opening quote is dropped;
/// - a last line of only blanks is the closing quote's line: dropped, and its width bounds
///   the indentation removed;
/// - every other line loses the indentation common to its non-blank lines (at most the
///   closing line's width); a first line with text after the quote is kept as it is.
pub(crate) fn dedent(raw: &str) -> String {
    if !raw.contains('\n') {
        return raw.to_string();
    }
    let lines: Vec<&str> = raw.split('\n').collect();
    let Some((first, rest)) = lines.split_first() else {
        return raw.to_string();
    };
    let keep_first = !is_blank_line(first);
    let (body, closing) = match rest.split_last() {
        Some((last, init)) if is_blank_line(last) => (init, Some(last.chars().count())),
        _ => (rest, None),
    };
    let common = body
        .iter()
        .filter(|l| !is_blank_line(l))
        .map(|l| indentation(l))
        .min();
    let strip = match (closing, common) {
        (Some(c), Some(m)) => c.min(m),
        (Some(c), None) => c,
        (None, Some(m)) => m,
        (None, None) => 0,
    };
    let mut out: Vec<&str> = Vec::with_capacity(lines.len());
    if keep_first {
        out.push(first);
    }
    out.extend(body.iter().map(|l| strip_indent(l, strip)));
    out.join("\n")
}
