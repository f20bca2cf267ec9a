//! Expression evaluation on compressed bitmaps.

use std::borrow::Cow;

use roaring::RoaringBitmap;

use crate::columns::ClusterEntry;
use crate::expression::Expr;

/// A term's bitmap is borrowed; only compound results are built.
fn operand<'a>(e: &Expr, clusters: &'a [ClusterEntry]) -> Cow<'a, RoaringBitmap> {
    match e {
        Expr::Term(t) => Cow::Borrowed(&clusters[*t as usize].members),
        _ => Cow::Owned(evaluate(e, clusters)),
    }
}

/// Positive operands of an AND, smallest first, so intersections shrink as fast as they can.
fn sorted_operands<'a>(all: &[Expr], clusters: &'a [ClusterEntry]) -> Vec<Cow<'a, RoaringBitmap>> {
    let mut ops: Vec<_> = all.iter().map(|e| operand(e, clusters)).collect();
    ops.sort_by_key(|b| b.len());
    ops
}

fn intersect_all(ops: &[Cow<'_, RoaringBitmap>]) -> RoaringBitmap {
    let mut acc = ops[0].clone().into_owned();
    for b in &ops[1..] {
        if acc.is_empty() {
            break;
        }
        acc &= b.as_ref();
    }
    acc
}

/// Everyone the expression selects.
pub(crate) fn evaluate(e: &Expr, clusters: &[ClusterEntry]) -> RoaringBitmap {
    match e {
        Expr::Term(t) => clusters[*t as usize].members.clone(),
        Expr::And { all, not } => {
            let mut acc = intersect_all(&sorted_operands(all, clusters));
            for n in not {
                if acc.is_empty() {
                    break;
                }
                acc -= operand(n, clusters).as_ref();
            }
            acc
        }
        Expr::Or(items) => {
            let mut acc = RoaringBitmap::new();
            for i in items {
                acc |= operand(i, clusters).as_ref();
            }
            acc
        }
    }
}

/// Everyone the expression selects among `within`: every positive operand is cut down to
/// `within` first, so a small `within` (the people near a place) keeps all the work small.
pub(crate) fn evaluate_within(
    e: &Expr,
    clusters: &[ClusterEntry],
    within: &RoaringBitmap,
) -> RoaringBitmap {
    match e {
        Expr::Term(t) => within & &clusters[*t as usize].members,
        Expr::And { all, not } => {
            let mut acc = within.clone();
            let mut ops: Vec<&Expr> = all.iter().collect();
            // Terms first, smallest first; compound operands last, on what is left.
            ops.sort_by_key(|x| match x {
                Expr::Term(t) => clusters[*t as usize].members.len(),
                _ => u64::MAX,
            });
            for x in ops {
                if acc.is_empty() {
                    return acc;
                }
                match x {
                    Expr::Term(t) => acc &= &clusters[*t as usize].members,
                    _ => acc = evaluate_within(x, clusters, &acc),
                }
            }
            for n in not {
                if acc.is_empty() {
                    break;
                }
                let cut = evaluate_within(n, clusters, &acc);
                acc -= &cut;
            }
            acc
        }
        Expr::Or(items) => {
            let mut acc = RoaringBitmap::new();
            for i in items {
                acc |= evaluate_within(i, clusters, within);
            }
            acc
        }
    }
}

/// How many the expression selects, without building the final bitmap where the shape allows:
/// the last intersection, union or difference is only counted.
pub(crate) fn count(e: &Expr, clusters: &[ClusterEntry]) -> u64 {
    match e {
        Expr::Term(t) => clusters[*t as usize].members.len(),
        Expr::And { all, not } if not.is_empty() => {
            let ops = sorted_operands(all, clusters);
            if ops.len() == 1 {
                return ops[0].len();
            }
            let (last, rest) = ops.split_last().expect("an AND has operands");
            let acc = intersect_all(rest);
            acc.intersection_len(last)
        }
        Expr::And { all, not } if not.len() == 1 => {
            let acc = intersect_all(&sorted_operands(all, clusters));
            acc.len() - acc.intersection_len(&operand(&not[0], clusters))
        }
        Expr::Or(items) if items.len() == 2 => {
            operand(&items[0], clusters).union_len(&operand(&items[1], clusters))
        }
        _ => evaluate(e, clusters).len(),
    }
}

/// One person at a time, straight from the definition; the reference the bitmaps are tested
/// against.
pub(crate) fn matches(e: &Expr, has: &dyn Fn(u32) -> bool) -> bool {
    match e {
        Expr::Term(t) => has(*t),
        Expr::And { all, not } => {
            all.iter().all(|x| matches(x, has)) && !not.iter().any(|x| matches(x, has))
        }
        Expr::Or(items) => items.iter().any(|x| matches(x, has)),
    }
}
