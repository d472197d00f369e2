//! Parameter aliases: bound where they are used, as Dataverse binds them.
//!
//! Pure. The value of `@p` is parsed in place of `@p`, in the scope where it is used (lambda
//! variables included), so a path value reads that column. Every alias used is recorded; an
//! undefined one, a cycle, or more than a bounded number of expansions is refused, naming it.

use super::{Ctx, MAX_EXPANSIONS, Operand, Parser, Tok, is_record_reference, lex, not};
use crate::policy::odata::{Pair, ParseError};

/// The value of alias `@name` where only a literal can stand (an operation's parameter): a
/// string, number, date, GUID, `true`/`false`/`null` or an array of those.
pub fn literal_alias(name: &str, value: &str) -> Result<(), ParseError> {
    let toks = lex::tokenize(value).map_err(|e| in_alias(name, e))?;
    let ok = match toks.as_slice() {
        [Tok::Text(_) | Tok::Literal] | [Tok::Minus, Tok::Literal] => true,
        [Tok::Word(w)] => matches!(*w, "true" | "false" | "null"),
        [Tok::LBracket, ..] => {
            let mut ctx = Ctx::new(&[]);
            let mut p = Parser {
                toks: toks.clone(),
                pos: 1,
                text: value,
                ctx: &mut ctx,
            };
            p.array()
                .and_then(|()| p.end())
                .map_err(|e| in_alias(name, e))?;
            true
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(not(format!(
            "parameter alias `@{name}` = `{value}` is not a literal or a record reference"
        )))
    }
}

pub(super) fn in_alias(name: &str, e: ParseError) -> ParseError {
    match e {
        ParseError::Malformed(m) => {
            ParseError::Malformed(format!("parameter alias `@{name}`: {m}"))
        }
        ParseError::NotUnderstood(m) => {
            ParseError::NotUnderstood(format!("parameter alias `@{name}`: {m}"))
        }
    }
}

impl<'a> Parser<'_, 'a> {
    /// `@name`: its value parsed in place, in the current scope.
    pub(super) fn alias(&mut self, name: &'a str) -> Result<Operand<'a>, ParseError> {
        let aliases: &'a [Pair<'a>] = self.ctx.aliases;
        let Some((_, value)) = aliases.iter().find(|(n, _)| n == name) else {
            return Err(ParseError::Malformed(format!(
                "parameter alias `@{name}` is used but not defined"
            )));
        };
        if !self.ctx.refs.aliases.contains(&name) {
            self.ctx.refs.aliases.push(name);
        }
        if self.ctx.expanding.contains(&name) {
            return Err(ParseError::Malformed(format!(
                "parameter alias `@{name}` refers to itself"
            )));
        }
        if is_record_reference(value) {
            return Ok(Operand::Record);
        }
        self.ctx.expansions += 1;
        if self.ctx.expansions > MAX_EXPANSIONS {
            return Err(not(format!(
                "`{}` expands parameter aliases more than {MAX_EXPANSIONS} times",
                self.text
            )));
        }
        self.ctx.expanding.push(name);
        let mut p = Parser::new(value, self.ctx);
        let result = p.tokenize().and_then(|()| {
            let operand = p.expr()?;
            p.end()?;
            Ok(operand)
        });
        self.ctx.expanding.pop();
        result.map_err(|e| in_alias(name, e))
    }
}
