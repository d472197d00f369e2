//! OData expressions in `$filter`, `$orderby` and `$apply=filter(...)`: every piece of data
//! they name.
//!
//! Pure. **Invariant (fail closed by construction): every token that can name data is
//! understood and accounted for in [`Refs`], or the expression is refused with an error naming
//! it.** The lexer (`lex`) yields a closed set of token kinds; the parser matches exhaustively
//! over them in each position, and its default arm refuses. Nothing is skipped:
//! - a word in operand position is a literal keyword (`true`, `false`, `null`), `not`, a
//!   function the gateway knows followed by `(`, or a member path. A member path is listed as
//!   segments from the request's table (`parentcustomerid_account/name` is
//!   `["parentcustomerid_account", "name"]`); whether a segment is a navigation property or a
//!   column is for the classifier to decide with the tenant's metadata;
//! - lambda variables are replaced by the path they range over, so
//!   `contact_customer_accounts/any(c: c/fullname eq 'x')` yields `["contact_customer_accounts"]`
//!   and `["contact_customer_accounts", "fullname"]`;
//! - a parameter alias is bound where it is used, as Dataverse binds it: its value is parsed in
//!   place of `@p`, so `contains(@p,'x')&@p=description` reads `description`, in `$filter`,
//!   `$orderby`, `$apply` and `$expand` alike. A value that is a record reference
//!   (`{"@odata.id":...}`) is left to the classifier; every alias used is listed;
//! - a Dataverse query function (`Microsoft.Dynamics.CRM.In(...)`) must be in the catalogue
//!   (`functions`), and each argument must be one it declares: `PropertyName` is a column
//!   (inline or through an alias; listed in [`Refs::columns`]), `PropertyValue(s)` literals;
//! - literals are recognised by their complete shape only (strings, numbers, dates, GUIDs).

mod alias;
mod functions;
mod lex;

pub use alias::literal_alias;
use lex::{Tok, Toks, describe};
use smallvec::{SmallVec, smallvec};

use super::{Pair, ParseError, is_identifier};

/// OData built-in functions: their arguments are ordinary expressions.
const FUNCTIONS: &[&str] = &[
    "contains",
    "startswith",
    "endswith",
    "length",
    "indexof",
    "substring",
    "tolower",
    "toupper",
    "trim",
    "concat",
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "second",
    "fractionalseconds",
    "date",
    "time",
    "now",
    "round",
    "floor",
    "ceiling",
    "totaloffsetminutes",
    "mindatetime",
    "maxdatetime",
];
/// Binary operators.
const OPERATORS: &[&str] = &[
    "eq", "ne", "gt", "ge", "lt", "le", "and", "or", "in", "add", "sub", "mul", "div", "mod",
];
/// Nesting (parentheses, functions, lambdas, aliases) beyond this is refused.
const MAX_DEPTH: usize = 64;
/// Alias expansions per expression beyond this are refused: an alias may use others, and
/// without a bound a short query could expand exponentially.
const MAX_EXPANSIONS: usize = 256;

/// A member path: its segments, from the request's table. Inline up to two segments (a column,
/// or a lookup and a column of its table), so the usual path costs no allocation.
pub type Path<'a> = SmallVec<[&'a str; 2]>;

/// What an expression reads, borrowing names from the expression and the aliases' values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refs<'a> {
    /// Member paths, from the request's table (inline up to two).
    pub paths: SmallVec<[Path<'a>; 2]>,
    /// Columns named by query functions' `PropertyName`, by logical name: a lookup may be named
    /// by its own name (`ownerid`) rather than its value property (`_ownerid_value`).
    pub columns: Vec<Path<'a>>,
    /// Parameter aliases used, each once, in order of first use.
    pub aliases: Vec<&'a str>,
    /// Some path ends in an `any`/`all` lambda: its last segment is a collection-valued
    /// navigation, which only the metadata can resolve.
    pub lambdas: bool,
    /// The lambdas' variables, in order of declaration (names of the request's choosing that
    /// stand for a path, never resolved on a table).
    pub variables: Vec<&'a str>,
}

fn not(msg: String) -> ParseError {
    ParseError::NotUnderstood(msg)
}

/// Whether an alias value is a record reference (`{"@odata.id":...}` or an array of them).
pub fn is_record_reference(value: &str) -> bool {
    let v = value.trim_start();
    v.starts_with('{')
        || v.strip_prefix('[')
            .is_some_and(|r| r.trim_start().starts_with('{'))
}

/// What `$filter` (or any boolean/common expression) reads; `aliases` are the request's
/// parameter aliases.
pub fn filter_refs<'a>(expr: &'a str, aliases: &'a [Pair<'a>]) -> Result<Refs<'a>, ParseError> {
    let mut ctx = Ctx::new(aliases);
    let mut p = Parser::new(expr, &mut ctx);
    p.tokenize()?;
    p.expr()?;
    p.end()?;
    Ok(ctx.refs)
}

/// What an `$orderby` list reads: `expr [asc|desc], ...`.
pub fn orderby_refs<'a>(expr: &'a str, aliases: &'a [Pair<'a>]) -> Result<Refs<'a>, ParseError> {
    let mut ctx = Ctx::new(aliases);
    let mut p = Parser::new(expr, &mut ctx);
    p.tokenize()?;
    loop {
        p.expr()?;
        if matches!(p.peek(), Some(Tok::Word(w)) if *w == "asc" || *w == "desc") {
            p.pos += 1;
        }
        match p.next() {
            None => break,
            Some(Tok::Comma) => continue,
            Some(t) => {
                return Err(not(format!(
                    "`$orderby={expr}`: unexpected {} after an item",
                    describe(&t)
                )));
            }
        }
    }
    Ok(ctx.refs)
}

/// What an operand is, where its kind matters (query-function arguments).
enum Operand<'a> {
    Text(std::borrow::Cow<'a, str>),
    Literal,
    Array,
    Record,
    Expression,
}

/// State shared by the parse of an expression and of the alias values it uses.
struct Ctx<'a> {
    aliases: &'a [Pair<'a>],
    refs: Refs<'a>,
    /// Lambda variables in scope and the path each ranges over.
    vars: Vec<(&'a str, Path<'a>)>,
    /// Aliases being expanded (a cycle is refused).
    expanding: Vec<&'a str>,
    expansions: usize,
    depth: usize,
}

impl<'a> Ctx<'a> {
    fn new(aliases: &'a [Pair<'a>]) -> Self {
        Ctx {
            aliases,
            refs: Refs::default(),
            vars: Vec::new(),
            expanding: Vec::new(),
            expansions: 0,
            depth: 0,
        }
    }
}

struct Parser<'c, 'a> {
    toks: Toks<'a>,
    pos: usize,
    text: &'a str,
    ctx: &'c mut Ctx<'a>,
}

impl<'c, 'a> Parser<'c, 'a> {
    /// An empty parser: [`Parser::tokenize`] fills it where it lies.
    fn new(text: &'a str, ctx: &'c mut Ctx<'a>) -> Self {
        Parser {
            toks: Toks::new(),
            pos: 0,
            text,
            ctx,
        }
    }

    fn tokenize(&mut self) -> Result<(), ParseError> {
        lex::tokenize_into(self.text, &mut self.toks)
    }

    fn peek(&self) -> Option<&Tok<'a>> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok<'a>> {
        let t = self.toks.get(self.pos).copied();
        self.pos += 1;
        t
    }

    fn expect(&mut self, want: Tok<'a>) -> Result<(), ParseError> {
        match self.next() {
            Some(t) if t == want => Ok(()),
            Some(t) => Err(ParseError::Malformed(format!(
                "`{}`: expected {} but found {}",
                self.text,
                describe(&want),
                describe(&t)
            ))),
            None => Err(ParseError::Malformed(format!(
                "`{}` ends before {}",
                self.text,
                describe(&want)
            ))),
        }
    }

    fn end(&self) -> Result<(), ParseError> {
        match self.peek() {
            None => Ok(()),
            Some(t) => Err(ParseError::Malformed(format!(
                "`{}`: unexpected {}",
                self.text,
                describe(t)
            ))),
        }
    }

    fn nested<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, ParseError>,
    ) -> Result<T, ParseError> {
        if self.ctx.depth >= MAX_DEPTH {
            return Err(not(format!("`{}` is nested too deeply", self.text)));
        }
        self.ctx.depth += 1;
        let r = f(self);
        self.ctx.depth -= 1;
        r
    }

    /// `operand (operator operand)*`.
    fn expr(&mut self) -> Result<Operand<'a>, ParseError> {
        let first = self.operand()?;
        let mut binary = false;
        while let Some(Tok::Word(w)) = self.peek() {
            if !OPERATORS.contains(w) {
                break;
            }
            self.pos += 1;
            self.operand()?;
            binary = true;
        }
        Ok(if binary { Operand::Expression } else { first })
    }

    fn operand(&mut self) -> Result<Operand<'a>, ParseError> {
        let Some(tok) = self.next() else {
            return Err(ParseError::Malformed(format!(
                "`{}` ends where a value is expected",
                self.text
            )));
        };
        match tok {
            Tok::Text(s) => Ok(Operand::Text(lex::text(s))),
            Tok::Literal => Ok(Operand::Literal),
            Tok::Minus => self.nested(|p| p.operand()).map(|_| Operand::Expression),
            Tok::LBracket => self.nested(|p| p.array()).map(|()| Operand::Array),
            Tok::Open => self.nested(|p| {
                p.expr()?;
                while p.peek() == Some(&Tok::Comma) {
                    p.pos += 1;
                    p.expr()?;
                }
                p.expect(Tok::Close)?;
                Ok(Operand::Expression)
            }),
            Tok::Alias(a) => self.nested(|p| p.alias(a)),
            Tok::Word(w) => self.word(w),
            Tok::Json
            | Tok::Close
            | Tok::Comma
            | Tok::Slash
            | Tok::Colon
            | Tok::Equals
            | Tok::RBracket => Err(ParseError::Malformed(format!(
                "`{}`: unexpected {}",
                self.text,
                describe(&tok)
            ))),
        }
    }

    fn word(&mut self, w: &'a str) -> Result<Operand<'a>, ParseError> {
        let call = self.peek() == Some(&Tok::Open);
        match w {
            "true" | "false" | "null" => Ok(Operand::Literal),
            "not" => self.nested(|p| p.operand()).map(|_| Operand::Expression),
            _ if call && FUNCTIONS.contains(&w) => {
                self.pos += 1;
                self.nested(|p| p.arguments())
            }
            _ if call && w.starts_with(super::path::NAMESPACE) => {
                self.pos += 1;
                let name = &w[super::path::NAMESPACE.len()..];
                self.nested(|p| p.query_function(name))
            }
            _ if call || !lex::plain_word(w) => Err(not(format!(
                "`{w}` in `{}` is not a function or member the gateway inspects",
                self.text
            ))),
            _ => self.path(w),
        }
    }

    /// The arguments of a built-in function after its `(`.
    fn arguments(&mut self) -> Result<Operand<'a>, ParseError> {
        if self.peek() == Some(&Tok::Close) {
            self.pos += 1;
            return Ok(Operand::Expression);
        }
        loop {
            self.expr()?;
            match self.next() {
                Some(Tok::Comma) => continue,
                Some(Tok::Close) => return Ok(Operand::Expression),
                other => {
                    return Err(ParseError::Malformed(format!(
                        "`{}`: a function's arguments end with `)`, not {}",
                        self.text,
                        other.as_ref().map_or("the end".into(), describe)
                    )));
                }
            }
        }
    }

    /// A member path starting with `first`, possibly ending in a lambda.
    fn path(&mut self, first: &'a str) -> Result<Operand<'a>, ParseError> {
        let mut segments = match self.ctx.vars.iter().rev().find(|(v, _)| *v == first) {
            Some((_, base)) => base.clone(),
            None => smallvec![first],
        };
        while self.peek() == Some(&Tok::Slash) {
            self.pos += 1;
            match self.next() {
                Some(Tok::Word(seg))
                    if (seg == "any" || seg == "all") && self.peek() == Some(&Tok::Open) =>
                {
                    self.pos += 1;
                    return self.nested(|p| p.lambda(segments));
                }
                Some(Tok::Word(seg)) if lex::plain_word(seg) => segments.push(seg),
                other => {
                    return Err(not(format!(
                        "`{}/{}` in `{}`: only plain member names are inspected after `/`",
                        segments.join("/"),
                        other.as_ref().map_or("".into(), describe),
                        self.text
                    )));
                }
            }
        }
        self.ctx.refs.paths.push(segments);
        Ok(Operand::Expression)
    }

    /// After `any(` / `all(`: `var: expr)` or `)`.
    fn lambda(&mut self, collection: Path<'a>) -> Result<Operand<'a>, ParseError> {
        self.ctx.refs.lambdas = true;
        self.ctx.refs.paths.push(collection.clone());
        if self.peek() == Some(&Tok::Close) {
            self.pos += 1;
            return Ok(Operand::Expression);
        }
        let var = match (self.next(), self.next()) {
            (Some(Tok::Word(var)), Some(Tok::Colon)) if is_identifier(var) => var,
            _ => {
                return Err(ParseError::Malformed(format!(
                    "`{}`: a lambda needs `variable: expression`",
                    self.text
                )));
            }
        };
        self.ctx.refs.variables.push(var);
        self.ctx.vars.push((var, collection));
        let result = self.expr().and_then(|_| self.expect(Tok::Close));
        self.ctx.vars.pop();
        result.map(|()| Operand::Expression)
    }

    /// After `[`: literals separated by commas, then `]`.
    fn array(&mut self) -> Result<(), ParseError> {
        if self.peek() == Some(&Tok::RBracket) {
            self.pos += 1;
            return Ok(());
        }
        loop {
            match self.next() {
                Some(Tok::Text(_) | Tok::Json | Tok::Literal) => {}
                Some(Tok::Minus) if self.peek() == Some(&Tok::Literal) => self.pos += 1,
                Some(Tok::Word("true" | "false" | "null")) => {}
                other => {
                    return Err(not(format!(
                        "`{}`: an array holds literals only, not {}",
                        self.text,
                        other.as_ref().map_or("the end".into(), describe)
                    )));
                }
            }
            match self.next() {
                Some(Tok::Comma) => continue,
                Some(Tok::RBracket) => return Ok(()),
                _ => {
                    return Err(ParseError::Malformed(format!(
                        "`{}`: unbalanced `[`",
                        self.text
                    )));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
