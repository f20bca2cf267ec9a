//! The `find_persons` expression language.
//!
//! ```text
//! expr    := and ( "OR" and )*
//! and     := primary ( "AND" [ "NOT" ] primary )*
//! primary := TERM | "(" expr ")"
//! TERM    := a cluster id (digits) or cluster hash (32 hex digits)
//! ```
//!
//! `AND` binds tighter than `OR`. `NOT` is only allowed as `X AND NOT Y`, so every expression has
//! a positive term. Operators are upper-case. Nesting is bounded so that hostile input (100,000
//! open parentheses) is refused with an error instead of exhausting the stack. Long flat chains
//! (`A OR B OR …`) become one n-ary node, so a megabyte of terms is no deeper than three.

use std::fmt;

/// Deepest parenthesis nesting accepted.
pub const MAX_DEPTH: usize = 128;

/// A parsed expression over cluster indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Term(u32),
    /// Everyone in all of `all` and in none of `not`. `all` is never empty.
    And {
        all: Vec<Expr>,
        not: Vec<Expr>,
    },
    /// Everyone in any of them (at least two).
    Or(Vec<Expr>),
}

/// Why an expression was refused: what, and where (byte offset into the expression).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at position {position} (token `{token}`)")]
pub struct ParseError {
    pub position: usize,
    pub token: String,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Word,
    And,
    Or,
    Not,
    Open,
    Close,
    End,
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Kind,
    text: &'a str,
    pos: usize,
}

fn shown(text: &str) -> String {
    const MAX: usize = 64;
    if text.len() <= MAX {
        text.to_owned()
    } else {
        let mut end = MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &text[..end])
    }
}

fn error(tok: &Token<'_>, message: impl Into<String>) -> ParseError {
    ParseError {
        position: tok.pos,
        token: if tok.kind == Kind::End {
            "end of input".to_owned()
        } else {
            shown(tok.text)
        },
        message: message.into(),
    }
}

fn lex(input: &str) -> Result<Vec<Token<'_>>, ParseError> {
    let bytes = input.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let kind = match b {
            b'(' => {
                i += 1;
                Kind::Open
            }
            b')' => {
                i += 1;
                Kind::Close
            }
            _ if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' => {
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'-')
                {
                    i += 1;
                }
                match &input[start..i] {
                    "AND" => Kind::And,
                    "OR" => Kind::Or,
                    "NOT" => Kind::Not,
                    w if ["AND", "OR", "NOT"]
                        .iter()
                        .any(|k| k.eq_ignore_ascii_case(w)) =>
                    {
                        return Err(ParseError {
                            position: start,
                            token: w.to_owned(),
                            message: format!(
                                "operators are upper-case: write `{}`",
                                w.to_ascii_uppercase()
                            ),
                        });
                    }
                    _ => Kind::Word,
                }
            }
            _ => {
                let ch = input[start..].chars().next().unwrap_or('?');
                return Err(ParseError {
                    position: start,
                    token: ch.to_string(),
                    message: "unexpected character".to_owned(),
                });
            }
        };
        out.push(Token {
            kind,
            text: &input[start..i],
            pos: start,
        });
    }
    out.push(Token {
        kind: Kind::End,
        text: "",
        pos: input.len(),
    });
    Ok(out)
}

struct Parser<'a, 'l> {
    tokens: Vec<Token<'a>>,
    at: usize,
    lookup: &'l dyn Fn(&str) -> Result<u32, String>,
}

impl<'a> Parser<'a, '_> {
    fn peek(&self) -> Token<'a> {
        self.tokens[self.at]
    }

    fn next(&mut self) -> Token<'a> {
        let t = self.tokens[self.at];
        if t.kind != Kind::End {
            self.at += 1;
        }
        t
    }

    fn or(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let first = self.and(depth)?;
        if self.peek().kind != Kind::Or {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.peek().kind == Kind::Or {
            self.next();
            items.push(self.and(depth)?);
        }
        Ok(Expr::Or(items))
    }

    fn and(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let first = self.primary(depth)?;
        if self.peek().kind != Kind::And {
            return Ok(first);
        }
        let mut all = vec![first];
        let mut not = Vec::new();
        while self.peek().kind == Kind::And {
            self.next();
            if self.peek().kind == Kind::Not {
                self.next();
                not.push(self.primary(depth)?);
            } else {
                all.push(self.primary(depth)?);
            }
        }
        Ok(Expr::And { all, not })
    }

    fn primary(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let tok = self.next();
        match tok.kind {
            Kind::Word => (self.lookup)(tok.text)
                .map(Expr::Term)
                .map_err(|m| error(&tok, m)),
            Kind::Open => {
                if depth >= MAX_DEPTH {
                    return Err(error(
                        &tok,
                        format!("parentheses nested deeper than {MAX_DEPTH}"),
                    ));
                }
                let inner = self.or(depth + 1)?;
                let close = self.next();
                if close.kind != Kind::Close {
                    return Err(error(
                        &close,
                        format!(
                            "unbalanced parenthesis: `(` at position {} is not closed",
                            tok.pos
                        ),
                    ));
                }
                Ok(inner)
            }
            Kind::Not => Err(error(
                &tok,
                "NOT is only allowed after AND (write `X AND NOT Y`)",
            )),
            Kind::And | Kind::Or => Err(error(
                &tok,
                "operator without a left operand; a cluster id, hash or `(` is expected",
            )),
            Kind::Close => Err(error(
                &tok,
                "unbalanced parenthesis or empty group; a cluster id, hash or `(` is expected",
            )),
            Kind::End => Err(error(
                &tok,
                "expression ends where a cluster id, hash or `(` is expected",
            )),
        }
    }
}

/// Parses `input`, naming each term with `lookup` (which says why a term is unknown).
pub fn parse(
    input: &str,
    lookup: &dyn Fn(&str) -> Result<u32, String>,
) -> Result<Expr, ParseError> {
    let tokens = lex(input)?;
    if tokens.len() == 1 {
        return Err(ParseError {
            position: 0,
            token: "end of input".to_owned(),
            message: "empty expression".to_owned(),
        });
    }
    let mut p = Parser {
        tokens,
        at: 0,
        lookup,
    };
    let expr = p.or(0)?;
    let rest = p.peek();
    match rest.kind {
        Kind::End => Ok(expr),
        Kind::Close => Err(error(&rest, "unbalanced parenthesis: `)` without `(`")),
        Kind::Not => Err(error(
            &rest,
            "NOT is only allowed after AND (write `X AND NOT Y`)",
        )),
        _ => Err(error(&rest, "missing operator (AND, OR) before this token")),
    }
}

impl Expr {
    /// Prints the expression with `name` for each term. Every compound operand is parenthesised,
    /// so the text means the same under any precedence and parses back to this expression.
    pub fn to_text(&self, name: &dyn Fn(u32) -> String) -> String {
        let mut out = String::new();
        self.write(&mut out, name);
        out
    }

    fn write_operand(&self, out: &mut String, name: &dyn Fn(u32) -> String) {
        match self {
            Expr::Term(_) => self.write(out, name),
            _ => {
                out.push('(');
                self.write(out, name);
                out.push(')');
            }
        }
    }

    fn write(&self, out: &mut String, name: &dyn Fn(u32) -> String) {
        match self {
            Expr::Term(t) => out.push_str(&name(*t)),
            Expr::And { all, not } => {
                for (i, e) in all.iter().enumerate() {
                    if i > 0 {
                        out.push_str(" AND ");
                    }
                    e.write_operand(out, name);
                }
                for e in not {
                    out.push_str(" AND NOT ");
                    e.write_operand(out, name);
                }
            }
            Expr::Or(items) => {
                for (i, e) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(" OR ");
                    }
                    e.write_operand(out, name);
                }
            }
        }
    }

    /// Every term, in order of appearance.
    pub fn terms(&self) -> Vec<u32> {
        let mut out = Vec::new();
        let mut stack = vec![self];
        while let Some(e) = stack.pop() {
            match e {
                Expr::Term(t) => out.push(*t),
                Expr::And { all, not } => stack.extend(all.iter().chain(not).rev()),
                Expr::Or(items) => stack.extend(items.iter().rev()),
            }
        }
        out
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text(&|t| format!("#{t}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain digits name themselves; anything else is an unknown cluster.
    fn digits(s: &str) -> Result<u32, String> {
        s.parse::<u32>().map_err(|_| "unknown cluster".to_owned())
    }

    fn p(s: &str) -> Result<Expr, ParseError> {
        parse(s, &digits)
    }

    #[test]
    fn precedence_and_grouping() {
        assert_eq!(p("1").unwrap(), Expr::Term(1));
        assert_eq!(
            p("1 OR 2 AND 3").unwrap(),
            Expr::Or(vec![
                Expr::Term(1),
                Expr::And {
                    all: vec![Expr::Term(2), Expr::Term(3)],
                    not: vec![]
                }
            ])
        );
        assert_eq!(
            p("(1 OR 2) AND NOT 3 AND 4").unwrap(),
            Expr::And {
                all: vec![Expr::Or(vec![Expr::Term(1), Expr::Term(2)]), Expr::Term(4)],
                not: vec![Expr::Term(3)]
            }
        );
        assert_eq!(p("((((7))))").unwrap(), Expr::Term(7));
    }

    #[test]
    fn printing_round_trips() {
        for s in [
            "1 AND 2 AND 3",
            "(1 AND 2) OR (1 AND 3)",
            "(1 AND 2) AND NOT 1000",
            "1 AND NOT (2 OR 3) AND NOT 4",
            "((1 OR 2) AND 3) OR 4",
        ] {
            let e = p(s).unwrap();
            let text = e.to_text(&|t| t.to_string());
            assert_eq!(p(&text).unwrap(), e, "{s} -> {text}");
        }
    }

    fn err(s: &str) -> ParseError {
        p(s).expect_err(s)
    }

    #[test]
    fn bad_input_names_position_and_token() {
        let e = err("");
        assert!(e.message.contains("empty"), "{e}");
        let e = err("   ");
        assert!(e.message.contains("empty"), "{e}");
        let e = err("1 and 2");
        assert_eq!((e.position, e.token.as_str()), (2, "and"));
        assert!(e.message.contains("upper-case"));
        let e = err("1 AND");
        assert_eq!(e.position, 5);
        assert_eq!(e.token, "end of input");
        let e = err("OR 1");
        assert_eq!((e.position, e.token.as_str()), (0, "OR"));
        let e = err("NOT 1");
        assert!(e.message.contains("X AND NOT Y"), "{e}");
        let e = err("1 OR NOT 2");
        assert_eq!((e.position, e.token.as_str()), (5, "NOT"));
        let e = err("(1 AND 2");
        assert!(e.message.contains("position 0"), "{e}");
        let e = err("1 AND 2)");
        assert_eq!((e.position, e.token.as_str()), (7, ")"));
        let e = err("1 2");
        assert_eq!((e.position, e.token.as_str()), (2, "2"));
        let e = err("1 AND ()");
        assert_eq!((e.position, e.token.as_str()), (7, ")"));
        let e = err("1 AND x9");
        assert_eq!((e.position, e.token.as_str()), (6, "x9"));
        assert!(e.message.contains("unknown cluster"));
        let e = err("1 & 2");
        assert_eq!((e.position, e.token.as_str()), (2, "&"));
        let e = err("1 AND NOT NOT 2");
        assert_eq!(e.position, 10);
        let e = err("1 AND é");
        assert_eq!((e.position, e.token.as_str()), (6, "é"));
    }

    #[test]
    fn hostile_nesting_is_an_error_not_a_stack_overflow() {
        let open = "(".repeat(100_000);
        let e = err(&open);
        assert!(e.message.contains("nested deeper"), "{e}");
        assert_eq!(e.position, MAX_DEPTH);
        let balanced = format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000));
        assert!(err(&balanced).message.contains("nested deeper"));
        let closes = ")".repeat(100_000);
        assert_eq!(err(&closes).position, 0);
        let fine = format!("{}1{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert_eq!(p(&fine).unwrap(), Expr::Term(1));
    }

    #[test]
    fn a_megabyte_expression_parses_flat() {
        let mut s = String::from("1");
        while s.len() < 1 << 20 {
            s.push_str(" OR 12345 AND NOT 7");
        }
        match p(&s).unwrap() {
            Expr::Or(items) => assert!(items.len() > 50_000),
            other => panic!("unexpected {other:?}"),
        }
        let mut bad = s.clone();
        bad.push_str(" OR 99x");
        let e = err(&bad);
        assert_eq!(e.position, bad.len() - 3);
        assert_eq!(e.token, "99x");
    }

    #[test]
    fn long_tokens_are_shortened_in_errors() {
        let long = "z".repeat(10_000);
        let e = err(&long);
        assert!(e.token.chars().count() <= 65);
        assert!(e.to_string().len() < 400);
    }
}
