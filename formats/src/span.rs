//! Positions in source text: 1-based lines and columns counted in characters.

/// Where a value or an error is in its source: 1-based line and column.
///
/// Columns count Unicode scalar values (characters), not bytes, so an editor's column and
/// ours agree on non-ASCII text; a tab is one column. A UTF-8 byte order mark at the very
/// start is not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1, in characters.
    pub column: u32,
}

impl Span {
    /// The first character of a text.
    pub const START: Span = Span { line: 1, column: 1 };

    /// A span from 1-based numbers that may not fit in `u32` (they saturate).
    pub fn new(line: usize, column: usize) -> Span {
        Span {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
        }
    }

    /// The same position `lines` lines further down (for texts embedded in others, such as
    /// front matter). The column is kept.
    pub fn shifted(self, lines: u32) -> Span {
        Span {
            line: self.line.saturating_add(lines),
            column: self.column,
        }
    }
}

impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// Byte offsets to line and column for one text.
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    /// Byte offset where each line starts; the first is 0.
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex { text, starts }
    }

    /// The position of byte `offset` (clamped to the text, moved back to a character
    /// boundary).
    pub(crate) fn span(&self, offset: usize) -> Span {
        let mut offset = offset.min(self.text.len());
        while offset > 0 && !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        // The last line start at or before `offset`.
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts.get(line - 1).copied().unwrap_or(0);
        let column = self
            .text
            .get(start..offset)
            .map_or(0, |s| s.chars().count());
        Span::new(line, column + 1)
    }
}

/// The position just after the longest valid UTF-8 prefix of `bytes`, and that prefix.
pub(crate) fn utf8_prefix(bytes: &[u8], valid_up_to: usize) -> Span {
    let prefix = bytes.get(..valid_up_to).unwrap_or(&[]);
    match std::str::from_utf8(prefix) {
        Ok(text) => LineIndex::new(text).span(text.len()),
        Err(_) => Span::START,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_lines_and_character_columns() {
        let text = "ab\né=x\n\nlast";
        let index = LineIndex::new(text);
        assert_eq!(index.span(0), Span::new(1, 1));
        assert_eq!(index.span(2), Span::new(1, 3));
        assert_eq!(index.span(3), Span::new(2, 1));
        // `é` is two bytes, one column.
        assert_eq!(index.span(5), Span::new(2, 2));
        // Inside `é`: moved back to its start.
        assert_eq!(index.span(4), Span::new(2, 1));
        assert_eq!(index.span(8), Span::new(3, 1));
        assert_eq!(index.span(1000), Span::new(4, 5));
    }
}
