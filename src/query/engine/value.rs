//! The values of an evaluation ([`Val`]: scalars, strings, instant and range vectors) and what
//! the operators ([`super::aggregate`], [`super::functions`]) ask of the evaluator
//! ([`Operands`]): evaluating their arguments. The evaluator ([`super::eval`]) implements it, so
//! that the operators, which it calls, do not depend on it in turn.

use super::{EvalError, Labels};
use promql_parser::parser::ast::{AtModifier, Offset};
use promql_parser::parser::{Expr, SubqueryExpr, VectorSelector};
use std::time::Duration;

/// One sample of an instant vector: labels, the timestamp `timestamp()` reports (the sample's
/// own for a selector, else the evaluation time), the value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
}

/// One series' window of a range vector, borrowed from the fetched samples when it can be.
pub type Window<'a> = (Labels, std::borrow::Cow<'a, [(i64, f64)]>);

/// One series of a range vector.
#[derive(Clone, Debug, PartialEq)]
pub struct Range {
    pub labels: Labels,
    pub points: Vec<(i64, f64)>,
}

/// A value during evaluation.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    Scalar(f64),
    Str(String),
    Vector(Vec<Sample>),
    Matrix(Vec<Range>),
}

impl Val {
    pub fn type_name(&self) -> &'static str {
        match self {
            Val::Scalar(_) => "scalar",
            Val::Str(_) => "string",
            Val::Vector(_) => "instant vector",
            Val::Matrix(_) => "range vector",
        }
    }
}

/// Milliseconds of a `Duration`.
pub fn ms(d: Duration) -> i64 {
    d.as_millis() as i64
}

/// The signed offset in milliseconds.
pub fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        Some(Offset::Pos(d)) => ms(*d),
        Some(Offset::Neg(d)) => -ms(*d),
        None => 0,
    }
}

/// The operands of an operator, as the evaluator computes them.
pub trait Operands<'a> {
    /// `e` evaluated at `t`.
    fn eval(&self, e: &Expr, t: i64) -> Result<Val, EvalError>;
    /// The time a selector's `@` modifier fixes (else `t`).
    fn at_time(&self, at: &Option<AtModifier>, t: i64) -> i64;
    /// The windows `(from, to]` of a range selector's series.
    fn matrix_slices(&self, vs: &VectorSelector, from: i64, to: i64) -> Result<Vec<Window<'a>>, EvalError>;
    /// A subquery's inner results at `t`.
    fn subquery(&self, sq: &SubqueryExpr, t: i64) -> Result<Vec<Range>, EvalError>;
}
