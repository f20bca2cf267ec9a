//! Audience expressions written by people, in `attribute = value` terms:
//!
//! ```text
//! expr    := and ( "OR" and )*
//! and     := primary ( "AND" [ "NOT" ] primary )*
//! primary := TERM | "(" expr ")"
//! TERM    := name "=" value   (the words between operators and parentheses, trimmed)
//! ```
//!
//! `AND` binds tighter than `OR`; `NOT` is only allowed as `X AND NOT Y`, the one negation
//! `find_persons` takes. Operators are upper-case words. A value cannot hold a parenthesis or a
//! stand-alone `AND`, `OR` or `NOT`. Errors name the character (0-based, in characters) where
//! the expression goes wrong.

use crate::audience::Expr;
use crate::item::Item;

/// The longest expression accepted, in characters.
pub const MAX_EXPRESSION_CHARS: usize = 4_000;
/// The most terms one expression may hold.
pub const MAX_TERMS: usize = 64;
/// The deepest parenthesis nesting accepted.
const MAX_DEPTH: usize = 32;

/// Why an expression was refused, and at which character (0-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraitExpressionError {
    pub position: usize,
    pub message: String,
}

/// A parsed expression and each term with the character it starts at.
#[derive(Debug, Clone, PartialEq)]
pub struct TraitExpression {
    pub expr: Expr,
    pub terms: Vec<(Item, usize)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    And,
    Or,
    Not,
    Open,
    Close,
    Term(String),
    End,
}

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    pos: usize,
}

fn err<T>(position: usize, message: impl Into<String>) -> Result<T, TraitExpressionError> {
    Err(TraitExpressionError {
        position,
        message: message.into(),
    })
}

fn tokens(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut out: Vec<Token> = Vec::new();
    let mut i = 0;
    // The term being gathered: where it starts and its words so far.
    let mut term: Option<(usize, String)> = None;
    let flush = |term: &mut Option<(usize, String)>, out: &mut Vec<Token>| {
        if let Some((pos, words)) = term.take() {
            out.push(Token {
                kind: Kind::Term(words),
                pos,
            });
        }
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '(' || c == ')' {
            flush(&mut term, &mut out);
            out.push(Token {
                kind: if c == '(' { Kind::Open } else { Kind::Close },
                pos: i,
            });
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '(' && chars[i] != ')' {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        let keyword = match word.as_str() {
            "AND" => Some(Kind::And),
            "OR" => Some(Kind::Or),
            "NOT" => Some(Kind::Not),
            _ => None,
        };
        match keyword {
            Some(kind) => {
                flush(&mut term, &mut out);
                out.push(Token { kind, pos: start });
            }
            None => match &mut term {
                Some((_, words)) => {
                    words.push(' ');
                    words.push_str(&word);
                }
                None => term = Some((start, word)),
            },
        }
    }
    flush(&mut term, &mut out);
    out.push(Token {
        kind: Kind::End,
        pos: chars.len(),
    });
    out
}

struct Parser {
    tokens: Vec<Token>,
    next: usize,
    terms: Vec<(Item, usize)>,
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.tokens[self.next]
    }

    fn take(&mut self) -> Token {
        let t = self.tokens[self.next].clone();
        if t.kind != Kind::End {
            self.next += 1;
        }
        t
    }

    fn expr(&mut self, depth: usize) -> Result<Expr, TraitExpressionError> {
        let mut parts = vec![self.and(depth)?];
        while self.peek().kind == Kind::Or {
            self.take();
            parts.push(self.and(depth)?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::Or(parts)
        })
    }

    fn and(&mut self, depth: usize) -> Result<Expr, TraitExpressionError> {
        let mut all = vec![self.primary(depth)?];
        let mut not = Vec::new();
        while self.peek().kind == Kind::And {
            self.take();
            if self.peek().kind == Kind::Not {
                self.take();
                not.push(self.primary(depth)?);
            } else {
                all.push(self.primary(depth)?);
            }
        }
        let include = if all.len() == 1 {
            all.remove(0)
        } else {
            Expr::And(all)
        };
        Ok(not.iter().fold(include, |acc, n| acc.and_not(n)))
    }

    fn primary(&mut self, depth: usize) -> Result<Expr, TraitExpressionError> {
        let t = self.take();
        match t.kind {
            Kind::Open => {
                if depth >= MAX_DEPTH {
                    return err(t.pos, format!("nested deeper than {MAX_DEPTH} parentheses"));
                }
                let inner = self.expr(depth + 1)?;
                let close = self.take();
                if close.kind != Kind::Close {
                    return err(close.pos, "expected `)`");
                }
                Ok(inner)
            }
            Kind::Term(text) => {
                let Some((name, value)) = text.split_once('=') else {
                    return err(t.pos, "expected a term `attribute = value`");
                };
                let (name, value) = (name.trim(), value.trim());
                if name.is_empty() {
                    return err(t.pos, "the term has no attribute before `=`");
                }
                if value.is_empty() {
                    let at = t.pos + text.chars().take_while(|&c| c != '=').count();
                    return err(at, "the term has no value after `=`");
                }
                if self.terms.len() == MAX_TERMS {
                    return err(t.pos, format!("more than {MAX_TERMS} terms"));
                }
                let item = Item {
                    name: name.to_owned(),
                    value: value.to_owned(),
                };
                self.terms.push((item.clone(), t.pos));
                Ok(Expr::Item(item))
            }
            Kind::Not => err(t.pos, "NOT is only allowed after AND (`X AND NOT Y`)"),
            Kind::End => err(t.pos, "the expression ends where a term was expected"),
            Kind::Close => err(t.pos, "unexpected `)` where a term was expected"),
            Kind::And | Kind::Or => err(t.pos, "an operator where a term was expected"),
        }
    }
}

/// Parses an expression of `attribute = value` terms (see the module's grammar).
pub fn parse_trait_expression(text: &str) -> Result<TraitExpression, TraitExpressionError> {
    let count = text.chars().count();
    if count > MAX_EXPRESSION_CHARS {
        return err(
            MAX_EXPRESSION_CHARS,
            format!("longer than {MAX_EXPRESSION_CHARS} characters"),
        );
    }
    if text.contains('\0') {
        let at = text.chars().take_while(|&c| c != '\0').count();
        return err(at, "a NUL character");
    }
    let mut p = Parser {
        tokens: tokens(text),
        next: 0,
        terms: Vec::new(),
    };
    let expr = p.expr(0)?;
    let end = p.take();
    match end.kind {
        Kind::End => Ok(TraitExpression {
            expr,
            terms: p.terms,
        }),
        Kind::Close => err(end.pos, "unmatched `)`"),
        _ => err(end.pos, "expected AND, OR or the end"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(text: &str) -> String {
        let e = parse_trait_expression(text).expect("parses").expr;
        e.render(&|i| Some(format!("{}={}", i.name, i.value)))
            .unwrap()
    }

    fn at(text: &str) -> usize {
        parse_trait_expression(text).unwrap_err().position
    }

    #[test]
    fn terms_operators_and_parentheses() {
        assert_eq!(shown("a = b"), "a=b");
        assert_eq!(
            shown("state = New York AND (x=1 OR y = 2) AND NOT z = 3"),
            "((state=New York AND (x=1 OR y=2)) AND NOT z=3)"
        );
        assert_eq!(shown("a=1 OR b=2 AND c=3"), "(a=1 OR (b=2 AND c=3))");
        let parsed = parse_trait_expression("a = 1 AND  b=2").unwrap();
        assert_eq!(parsed.terms[1].1, 11);
    }

    #[test]
    fn errors_point_at_the_character() {
        assert_eq!(at("NOT a=1"), 0);
        assert_eq!(at("a=1 AND"), 7);
        assert_eq!(at("a=1 AND (b=2"), 12);
        assert_eq!(at("a=1)"), 3);
        assert_eq!(at("a=1 AND bogus"), 8);
        assert_eq!(at("a=1 AND b ="), 10);
        assert_eq!(at("a=1 OR = x"), 7);
        assert_eq!(at("é=1 AND x"), 8);
        assert_eq!(at(""), 0);
        assert_eq!(at(&"(".repeat(100)), MAX_DEPTH);
    }
}
