//! Queries over document models: the part of JMESPath that selects and filters.
//!
//! Supported: fields (`a.b`, `"quoted key"`), indices (`[0]`, `[-1]`), projections (`[*]`,
//! `.*`, `[]` which flattens one level), filters (`[?status=='Accepted']`) with `==`, `!=`,
//! `<`, `<=`, `>`, `>=`, `&&`, `||`, `!` and parentheses, `@`, pipes (`|`), raw strings
//! (`'text'`) and JSON literals (`` `22` ``), with JMESPath's meaning (projections drop null
//! results, comparisons of non-numbers by `<` are null, `&&`/`||` return an operand).
//!
//! Two extensions that no valid JMESPath expression uses: identifiers may contain `-`
//! (`package.rust-version`), and a bare number is a number literal (`[?port==22]`).
//!
//! Not supported, each refused with its column: functions (`length(@)`), slices
//! (`[0:2]`), multi-select lists and hashes (`[a, b]`, `{a: b}`) and expression
//! references (`&a`). Expressions are limited to 512 tokens, which bounds every recursion
//! in parsing and evaluation.
//!
//! Why not the `jmespath` crate: its latest release (0.5) builds, but its parser recurses
//! with no limit — compiling `((((…a…))))` with 100,000 parentheses aborts the process with a
//! stack overflow — and it needs a build script with further dependencies; a query typed by
//! a user must not be able to kill a daemon. The subset above is what `heroctl query`
//! documents.

use serde_json::{Number, Value};

/// The most tokens an expression may have.
pub const MAX_TOKENS: usize = 512;

/// Why an expression cannot be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// Not a valid expression.
    #[error("query, column {column}: {message}")]
    Syntax {
        /// 1-based column, in characters.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// Valid JMESPath this subset does not implement.
    #[error("query, column {column}: {feature} are not supported")]
    Unsupported {
        /// 1-based column, in characters.
        column: usize,
        /// What (plural).
        feature: &'static str,
    },
    /// More than [`MAX_TOKENS`] tokens.
    #[error("query: more than {limit} tokens")]
    TooLong {
        /// The limit.
        limit: usize,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Literal(Value),
    Dot,
    Star,
    At,
    LBracket,
    Filter,
    Flatten,
    RBracket,
    LParen,
    RParen,
    LBrace,
    RBrace,
    Comma,
    Colon,
    Pipe,
    Or,
    And,
    Not,
    Amp,
    Cmp(Cmp),
    Eof,
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Identity,
    Field(String),
    Index(i64),
    Literal(Value),
    Sub(Box<Node>, Box<Node>),
    Project(Box<Node>, Box<Node>),
    ProjectValues(Box<Node>, Box<Node>),
    Flatten(Box<Node>),
    Filter(Box<Node>, Box<Node>, Box<Node>),
    Compare(Cmp, Box<Node>, Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Not(Box<Node>),
    Pipe(Box<Node>, Box<Node>),
}

/// A parsed expression, to evaluate against many documents.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    root: Node,
}

/// Evaluates `expr` against `value`.
pub fn query(value: &Value, expr: &str) -> Result<Value, QueryError> {
    Ok(Query::parse(expr)?.eval(value))
}

impl Query {
    /// Parses an expression.
    pub fn parse(expr: &str) -> Result<Query, QueryError> {
        let tokens = lex(expr)?;
        let mut p = Parser { tokens, pos: 0 };
        let root = p.expr(0)?;
        match p.peek() {
            Tok::Eof => Ok(Query { root }),
            _ => Err(p.unexpected()),
        }
    }

    /// The result of the expression on `value` (null when nothing matches).
    pub fn eval(&self, value: &Value) -> Value {
        eval(&self.root, value)
    }
}

fn lex(expr: &str) -> Result<Vec<(Tok, usize)>, QueryError> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let syntax = |column: usize, message: &str| QueryError::Syntax {
        column: column + 1,
        message: message.to_string(),
    };
    while let Some(&c) = chars.get(i) {
        if out.len() > MAX_TOKENS {
            return Err(QueryError::TooLong { limit: MAX_TOKENS });
        }
        let start = i;
        let next = chars.get(i + 1).copied();
        let tok = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '.' => Tok::Dot,
            '*' => Tok::Star,
            '@' => Tok::At,
            ']' => Tok::RBracket,
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '{' => Tok::LBrace,
            '}' => Tok::RBrace,
            ',' => Tok::Comma,
            ':' => Tok::Colon,
            '[' => {
                let mut j = i + 1;
                while chars.get(j).is_some_and(|c| c.is_whitespace()) {
                    j += 1;
                }
                match chars.get(j) {
                    Some('?') => {
                        i = j;
                        Tok::Filter
                    }
                    Some(']') => {
                        i = j;
                        Tok::Flatten
                    }
                    _ => Tok::LBracket,
                }
            }
            '|' if next == Some('|') => {
                i += 1;
                Tok::Or
            }
            '|' => Tok::Pipe,
            '&' if next == Some('&') => {
                i += 1;
                Tok::And
            }
            '&' => Tok::Amp,
            '!' if next == Some('=') => {
                i += 1;
                Tok::Cmp(Cmp::Ne)
            }
            '!' => Tok::Not,
            '=' if next == Some('=') => {
                i += 1;
                Tok::Cmp(Cmp::Eq)
            }
            '=' => return Err(syntax(i, "`=` alone; compare with `==`")),
            '<' | '>' => {
                let eq = next == Some('=');
                if eq {
                    i += 1;
                }
                Tok::Cmp(match (c, eq) {
                    ('<', false) => Cmp::Lt,
                    ('<', true) => Cmp::Le,
                    ('>', false) => Cmp::Gt,
                    _ => Cmp::Ge,
                })
            }
            '\'' => {
                let mut s = String::new();
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => return Err(syntax(start, "the raw string is not closed by `'`")),
                        Some('\\') if chars.get(j + 1) == Some(&'\'') => {
                            s.push('\'');
                            j += 2;
                        }
                        Some('\'') => break,
                        Some(&c) => {
                            s.push(c);
                            j += 1;
                        }
                    }
                }
                i = j;
                Tok::Literal(Value::String(s))
            }
            '"' => {
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => return Err(syntax(start, "the quoted key is not closed by `\"`")),
                        Some('\\') => j += 2,
                        Some('"') => break,
                        Some(_) => j += 1,
                    }
                }
                let text: String = chars.get(i..=j).unwrap_or(&[]).iter().collect();
                let key: String = serde_json::from_str(&text)
                    .map_err(|e| syntax(start, &format!("invalid quoted key: {e}")))?;
                i = j;
                Tok::Ident(key)
            }
            '`' => {
                let mut s = String::new();
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => return Err(syntax(start, "the literal is not closed by '`'")),
                        Some('\\') if chars.get(j + 1) == Some(&'`') => {
                            s.push('`');
                            j += 2;
                        }
                        Some('`') => break,
                        Some(&c) => {
                            s.push(c);
                            j += 1;
                        }
                    }
                }
                let value: Value = serde_json::from_str(&s)
                    .map_err(|e| syntax(start, &format!("invalid JSON literal: {e}")))?;
                i = j;
                Tok::Literal(value)
            }
            c if c.is_ascii_digit() || (c == '-' && next.is_some_and(|n| n.is_ascii_digit())) => {
                let mut j = i + 1;
                while chars
                    .get(j)
                    .is_some_and(|c| c.is_ascii_digit() || *c == '.' || *c == 'e' || *c == 'E')
                {
                    j += 1;
                }
                let text: String = chars.get(i..j).unwrap_or(&[]).iter().collect();
                let number = text
                    .parse::<i64>()
                    .ok()
                    .map(Number::from)
                    .or_else(|| text.parse::<f64>().ok().and_then(Number::from_f64))
                    .ok_or_else(|| syntax(start, "invalid number"))?;
                i = j - 1;
                Tok::Literal(Value::Number(number))
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut j = i + 1;
                while chars
                    .get(j)
                    .is_some_and(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
                {
                    j += 1;
                }
                let name: String = chars.get(i..j).unwrap_or(&[]).iter().collect();
                i = j - 1;
                Tok::Ident(name)
            }
            other => return Err(syntax(i, &format!("unexpected `{other}`"))),
        };
        out.push((tok, start));
        i += 1;
    }
    if out.len() > MAX_TOKENS {
        return Err(QueryError::TooLong { limit: MAX_TOKENS });
    }
    out.push((Tok::Eof, chars.len()));
    Ok(out)
}

/// Binding powers, as in JMESPath's reference parser.
fn lbp(t: &Tok) -> u8 {
    match t {
        Tok::Pipe => 1,
        Tok::Or => 2,
        Tok::And => 3,
        Tok::Cmp(_) => 5,
        Tok::Flatten => 9,
        Tok::Star => 20,
        Tok::Filter => 21,
        Tok::Dot => 40,
        Tok::Not => 45,
        Tok::LBracket => 55,
        Tok::LParen => 60,
        _ => 0,
    }
}

struct Parser {
    tokens: Vec<(Tok, usize)>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        self.tokens.get(self.pos).map_or(&Tok::Eof, |(t, _)| t)
    }

    fn peek_at(&self, ahead: usize) -> &Tok {
        self.tokens
            .get(self.pos + ahead)
            .map_or(&Tok::Eof, |(t, _)| t)
    }

    fn column(&self) -> usize {
        self.tokens.get(self.pos).map_or(0, |(_, c)| *c) + 1
    }

    fn advance(&mut self) -> Tok {
        let t = self.peek().clone();
        self.pos += 1;
        t
    }

    fn unexpected(&self) -> QueryError {
        let message = match self.peek() {
            Tok::Eof => "unexpected end of the expression".to_string(),
            t => format!("unexpected {}", describe(t)),
        };
        QueryError::Syntax {
            column: self.column(),
            message,
        }
    }

    fn unsupported(&self, feature: &'static str) -> QueryError {
        QueryError::Unsupported {
            column: self.column(),
            feature,
        }
    }

    fn expect(&mut self, want: &Tok) -> Result<(), QueryError> {
        if self.peek() == want {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn expr(&mut self, rbp: u8) -> Result<Node, QueryError> {
        let mut left = self.nud()?;
        while rbp < lbp(self.peek()) {
            left = self.led(left)?;
        }
        Ok(left)
    }

    /// `[N]` or `[*]` after `[` (already consumed); other contents are unsupported.
    fn bracket(&mut self, left: Node) -> Result<Node, QueryError> {
        match (self.peek().clone(), self.peek_at(1).clone()) {
            (Tok::Literal(Value::Number(n)), Tok::RBracket) => match n.as_i64() {
                Some(i) => {
                    self.pos += 2;
                    Ok(sub(left, Node::Index(i)))
                }
                None => Err(self.unexpected()),
            },
            (Tok::Star, Tok::RBracket) => {
                self.pos += 2;
                let rhs = self.projection_rhs(lbp(&Tok::Star))?;
                Ok(Node::Project(Box::new(left), Box::new(rhs)))
            }
            (Tok::Colon, _) | (Tok::Literal(Value::Number(_)), Tok::Colon) => {
                Err(self.unsupported("slices"))
            }
            _ => Err(self.unsupported("multi-select lists")),
        }
    }

    fn nud(&mut self) -> Result<Node, QueryError> {
        if let Tok::Ident(_) = self.peek()
            && self.peek_at(1) == &Tok::LParen
        {
            return Err(self.unsupported("functions"));
        }
        let at = self.pos;
        match self.advance() {
            Tok::Ident(name) => Ok(Node::Field(name)),
            Tok::At => Ok(Node::Identity),
            Tok::Literal(v) => Ok(Node::Literal(v)),
            Tok::Star => {
                let rhs = self.projection_rhs(lbp(&Tok::Star))?;
                Ok(Node::ProjectValues(Box::new(Node::Identity), Box::new(rhs)))
            }
            Tok::LBracket => self.bracket(Node::Identity),
            Tok::Flatten => {
                let rhs = self.projection_rhs(lbp(&Tok::Flatten))?;
                Ok(Node::Project(
                    Box::new(Node::Flatten(Box::new(Node::Identity))),
                    Box::new(rhs),
                ))
            }
            Tok::Filter => self.filter(Node::Identity),
            Tok::Not => Ok(Node::Not(Box::new(self.expr(lbp(&Tok::Not))?))),
            Tok::LParen => {
                let inner = self.expr(0)?;
                self.expect(&Tok::RParen)?;
                Ok(inner)
            }
            Tok::LBrace => {
                self.pos = at;
                Err(self.unsupported("multi-select hashes"))
            }
            Tok::Amp => {
                self.pos = at;
                Err(self.unsupported("expression references"))
            }
            _ => {
                self.pos = at;
                Err(self.unexpected())
            }
        }
    }

    fn filter(&mut self, left: Node) -> Result<Node, QueryError> {
        let condition = self.expr(0)?;
        self.expect(&Tok::RBracket)?;
        let rhs = self.projection_rhs(lbp(&Tok::Filter))?;
        Ok(Node::Filter(
            Box::new(left),
            Box::new(condition),
            Box::new(rhs),
        ))
    }

    fn led(&mut self, left: Node) -> Result<Node, QueryError> {
        let at = self.pos;
        match self.advance() {
            Tok::Dot => {
                if self.peek() == &Tok::Star {
                    self.pos += 1;
                    let rhs = self.projection_rhs(lbp(&Tok::Star))?;
                    return Ok(Node::ProjectValues(Box::new(left), Box::new(rhs)));
                }
                let rhs = self.dot_rhs(lbp(&Tok::Dot))?;
                Ok(sub(left, rhs))
            }
            Tok::LBracket => self.bracket(left),
            Tok::Flatten => {
                let rhs = self.projection_rhs(lbp(&Tok::Flatten))?;
                Ok(Node::Project(
                    Box::new(Node::Flatten(Box::new(left))),
                    Box::new(rhs),
                ))
            }
            Tok::Filter => self.filter(left),
            Tok::Cmp(op) => {
                let right = self.expr(lbp(&Tok::Cmp(op)))?;
                Ok(Node::Compare(op, Box::new(left), Box::new(right)))
            }
            Tok::And => Ok(Node::And(Box::new(left), Box::new(self.expr(3)?))),
            Tok::Or => Ok(Node::Or(Box::new(left), Box::new(self.expr(2)?))),
            Tok::Pipe => Ok(Node::Pipe(Box::new(left), Box::new(self.expr(1)?))),
            Tok::LParen => {
                self.pos = at;
                Err(self.unsupported("functions"))
            }
            _ => {
                self.pos = at;
                Err(self.unexpected())
            }
        }
    }

    fn dot_rhs(&mut self, bp: u8) -> Result<Node, QueryError> {
        match self.peek() {
            Tok::Ident(_) | Tok::Star => self.expr(bp),
            Tok::LBracket => Err(self.unsupported("multi-select lists")),
            Tok::LBrace => Err(self.unsupported("multi-select hashes")),
            _ => Err(self.unexpected()),
        }
    }

    fn projection_rhs(&mut self, bp: u8) -> Result<Node, QueryError> {
        if lbp(self.peek()) < 10 {
            return Ok(Node::Identity);
        }
        match self.peek() {
            Tok::LBracket | Tok::Filter | Tok::Flatten => self.expr(bp),
            Tok::Dot => {
                self.pos += 1;
                self.dot_rhs(bp)
            }
            _ => Err(self.unexpected()),
        }
    }
}

fn sub(left: Node, right: Node) -> Node {
    match left {
        Node::Identity => right,
        left => Node::Sub(Box::new(left), Box::new(right)),
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("identifier `{s}`"),
        Tok::Literal(v) => format!("literal `{v}`"),
        Tok::Dot => "`.`".into(),
        Tok::Star => "`*`".into(),
        Tok::At => "`@`".into(),
        Tok::LBracket => "`[`".into(),
        Tok::Filter => "`[?`".into(),
        Tok::Flatten => "`[]`".into(),
        Tok::RBracket => "`]`".into(),
        Tok::LParen => "`(`".into(),
        Tok::RParen => "`)`".into(),
        Tok::LBrace => "`{`".into(),
        Tok::RBrace => "`}`".into(),
        Tok::Comma => "`,`".into(),
        Tok::Colon => "`:`".into(),
        Tok::Pipe => "`|`".into(),
        Tok::Or => "`||`".into(),
        Tok::And => "`&&`".into(),
        Tok::Not => "`!`".into(),
        Tok::Amp => "`&`".into(),
        Tok::Cmp(_) => "a comparison".into(),
        Tok::Eof => "end".into(),
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::Number(_) => true,
    }
}

fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| equal(v, w)))
        }
        _ => a == b,
    }
}

fn eval(node: &Node, v: &Value) -> Value {
    match node {
        Node::Identity => v.clone(),
        Node::Field(name) => v.get(name).cloned().unwrap_or(Value::Null),
        Node::Index(i) => match v {
            Value::Array(items) => {
                let len = i64::try_from(items.len()).unwrap_or(i64::MAX);
                let at = if *i < 0 { len.saturating_add(*i) } else { *i };
                usize::try_from(at)
                    .ok()
                    .and_then(|at| items.get(at))
                    .cloned()
                    .unwrap_or(Value::Null)
            }
            _ => Value::Null,
        },
        Node::Literal(value) => value.clone(),
        Node::Sub(l, r) => eval(r, &eval(l, v)),
        Node::Pipe(l, r) => eval(r, &eval(l, v)),
        Node::Project(l, r) => match eval(l, v) {
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|e| eval(r, e))
                    .filter(|x| !x.is_null())
                    .collect(),
            ),
            _ => Value::Null,
        },
        Node::ProjectValues(l, r) => match eval(l, v) {
            Value::Object(map) => Value::Array(
                map.values()
                    .map(|e| eval(r, e))
                    .filter(|x| !x.is_null())
                    .collect(),
            ),
            _ => Value::Null,
        },
        Node::Flatten(l) => match eval(l, v) {
            Value::Array(items) => {
                let mut out = Vec::new();
                for item in items {
                    match item {
                        Value::Array(inner) => out.extend(inner),
                        other => out.push(other),
                    }
                }
                Value::Array(out)
            }
            _ => Value::Null,
        },
        Node::Filter(l, c, r) => match eval(l, v) {
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .filter(|e| truthy(&eval(c, e)))
                    .map(|e| eval(r, e))
                    .filter(|x| !x.is_null())
                    .collect(),
            ),
            _ => Value::Null,
        },
        Node::Compare(op, a, b) => {
            let (a, b) = (eval(a, v), eval(b, v));
            match op {
                Cmp::Eq => Value::Bool(equal(&a, &b)),
                Cmp::Ne => Value::Bool(!equal(&a, &b)),
                _ => match (a.as_f64(), b.as_f64()) {
                    (Some(x), Some(y)) => Value::Bool(match op {
                        Cmp::Lt => x < y,
                        Cmp::Le => x <= y,
                        Cmp::Gt => x > y,
                        _ => x >= y,
                    }),
                    _ => Value::Null,
                },
            }
        }
        Node::And(a, b) => {
            let x = eval(a, v);
            if truthy(&x) { eval(b, v) } else { x }
        }
        Node::Or(a, b) => {
            let x = eval(a, v);
            if truthy(&x) { x } else { eval(b, v) }
        }
        Node::Not(a) => Value::Bool(!truthy(&eval(a, v))),
    }
}
