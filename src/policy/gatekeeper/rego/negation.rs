//! OPA's evaluation of negated expressions, brought to regorus by rewriting the module's
//! text before it is compiled.
//!
//! OPA's compiler (`ast/compile.go`) rewrites every rule body before evaluation, and two of
//! its stages move terms out of an expression into generated equalities placed *before*
//! it, outside any `not`:
//!
//! - `RewriteExprTerms` (`rewriteExprTerms`, `expandExpr`, `expandExprTerm`, `expandExprRef`):
//!   a call nested in an argument (`not f(g(x))`, `not count(xs) > 0`, `not input.a[g(x)]`),
//!   and the non-variable subject of a reference (`[1, 2][i]`, `f(x)[0]`), becomes
//!   `__local0__ = g(x)`.
//! - `RewriteDynamicTerms` (`rewriteDynamics`, after `RewriteEquals` has turned `a == b`
//!   into the unification `a = b`): in a call expression (a builtin, a function of the
//!   template, an operator such as `!=`, `<`, `+`, `in`), each argument that is a reference
//!   (`params.ranges`, `x[i].y`, or a variable naming a rule or an import, which
//!   `ResolveRefs` made a reference) is evaluated first, `__local0__ = params.ranges`,
//!   and so is every reference inside an array, object or set argument
//!   (`rewriteDynamicsCallExpr`, `rewriteDynamicsOne`); in a unification (`rewriteDynamicsEqExpr`)
//!   and in a plain term (`rewriteDynamicsTermExpr`), `rewriteDynamicsInTerm` leaves a
//!   reference itself in place and hoists only the references among its indexes
//!   (`not input.a[b.c]` hoists `b.c`) and those inside arrays, objects and sets. The
//!   generated equalities carry the expression's `with` modifiers.
//!
//! The generated equalities are not negated (OPA issues #1877 and #7558): in OPA, `not
//! f(x.missing)` makes the whole body undefined, while `not x.missing` and `not x.missing ==
//! 1` are true. regorus has no such stage: it evaluates `f(undefined)` to undefined inside
//! the `not`, which is then true. Outside a negation both readings agree (a call with an
//! undefined argument, an operator, an `every` domain are undefined either way), so only
//! negated expressions are rewritten here, as source text: regorus's AST cannot be changed
//! and handed back to it, but its spans locate every term. The AST is read from
//! `regorus::unstable`'s parser (pinned by Cargo.lock): the `ast` feature's JSON costs ten
//! times the parse, and would double the load time of a template.
//!
//! For each `not EXPR [with ...]` whose hoistable terms are found as above (a comprehension
//! is always defined and stays in place), the statement becomes
//! `__gk_dyn_N__ := TERM [with ...]; ...; not EXPR'` where `EXPR'` names the locals, inserted
//! on the same line, so lines keep their numbers (columns after the insertion move right).
//! A body without braces (Rego v1 `p if not f(x.y)`) gets them. The rewrite is idempotent
//! (a second pass finds only locals) and done once per template at load. Constructs that a
//! text rewrite cannot reproduce safely (a term spanning lines with a comment or raw
//! string, a `_` in a hoisted term (OPA rejects it as unsafe), a negation nested inside a
//! hoisted term, a call in a `with` value) refuse the template at load, naming the line.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use regorus::unstable::{
    AssignOp, BoolOp, Expr, Literal, LiteralStmt, Module as Ast, Parser, Query, Rule, RuleHead,
};
use regorus::Source;

use super::modules::Module;
use super::Site;

/// The generated locals are `__gk_dyn_N__`.
const LOCAL_PREFIX: &str = "__gk_dyn_";

/// Why a module's text cannot be rewritten, at a 1-based line and column of that text.
#[derive(Debug)]
pub(in crate::policy::gatekeeper) struct Refusal {
    pub(in crate::policy::gatekeeper) line: usize,
    pub(in crate::policy::gatekeeper) col: usize,
    pub(in crate::policy::gatekeeper) msg: String,
}

/// `text` (the module's text as it will be compiled) with its negated expressions rewritten
/// as OPA's compiler does; refusals become load errors placed in the template's file.
pub(super) fn hoisted(
    site: &Site,
    modules: &[Module],
    module: &Module,
    text: String,
    v1: bool,
) -> Result<String, String> {
    // Rules of another lib in the same package are visible as plain names too.
    let mut names = BTreeSet::new();
    let siblings = modules.iter().filter(|m| {
        module.lib.is_some()
            && m.lib.is_some()
            && m.lib != module.lib
            && m.package == module.package
    });
    for sibling in siblings {
        if let Ok(ast) = parse(&sibling.text, v1) {
            names.extend(defined_names(&ast));
        }
    }
    match rewrite(&text, v1, &names) {
        Ok(Some(rewritten)) => Ok(rewritten),
        Ok(None) => Ok(text),
        Err(r) => Err(site.error_at(module.lib, Some((r.line, r.col)), &r.msg)),
    }
}

/// The rewritten text, or None when nothing needs hoisting. `names`: rules defined by other
/// modules of the same package (this module's rules and imports are found here).
pub(in crate::policy::gatekeeper) fn rewrite(
    text: &str,
    v1: bool,
    names: &BTreeSet<String>,
) -> Result<Option<String>, Refusal> {
    if !text.contains("not") {
        return Ok(None);
    }
    let ast = parse(text, v1).map_err(|e| Refusal {
        line: 1,
        col: 1,
        msg: format!(
            "regorus did not parse the module again, so its negated expressions cannot be \
             prepared as OPA's compiler prepares them: {e}"
        ),
    })?;
    let mut names = names.clone();
    names.extend(defined_names(&ast));
    let mut rewriter = Rewriter {
        text,
        names: &names,
        edits: Vec::new(),
        copied: Vec::new(),
        next: first_free_local(text),
    };
    for rule in &ast.policy {
        rewriter.rule(rule)?;
    }
    if rewriter.edits.is_empty() {
        return Ok(None);
    }
    rewriter.apply().map(Some)
}

/// regorus's syntax tree (its parser, without the JSON of the `ast` feature: cheaper).
fn parse(text: &str, v1: bool) -> Result<Ast, String> {
    let source =
        Source::from_contents("negation".into(), text.into()).map_err(|e| e.to_string())?;
    let mut parser = Parser::new(&source).map_err(|e| e.to_string())?;
    if v1 {
        parser.enable_rego_v1().map_err(|e| e.to_string())?;
    }
    parser.parse().map_err(|e| format!("{e:#}"))
}

/// The names OPA resolves to references in a body: the module's rules and functions, and
/// the names its `data` imports bind.
fn defined_names(ast: &Ast) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for rule in &ast.policy {
        let refr = match rule.as_ref() {
            Rule::Spec { head, .. } => match head {
                RuleHead::Compr { refr, .. }
                | RuleHead::Set { refr, .. }
                | RuleHead::Func { refr, .. } => refr,
            },
            Rule::Default { refr, .. } => refr,
        };
        if let Some(name) = ref_root(refr) {
            names.insert(name.to_string());
        }
    }
    for import in &ast.imports {
        if ref_root(&import.refr) != Some("data") {
            continue;
        }
        let last = match import.refr.as_ref() {
            Expr::RefDot { field, .. } => field.0.text().to_string(),
            Expr::RefBrack { index, .. } => match index.as_ref() {
                Expr::String { value, .. } => {
                    value.as_string().map(|s| s.to_string()).unwrap_or_default()
                }
                _ => String::new(),
            },
            _ => String::new(),
        };
        names.insert(import.r#as.as_ref().map_or(last, |a| a.text().to_string()));
    }
    names
}

/// The root variable of a reference (`a` of `a.b[c]`).
fn ref_root(mut node: &Expr) -> Option<&str> {
    loop {
        match node {
            Expr::RefDot { refr, .. } | Expr::RefBrack { refr, .. } => node = refr,
            Expr::Var { span, .. } => return Some(span.text()),
            _ => return None,
        }
    }
}

fn first_free_local(text: &str) -> usize {
    text.match_indices(LOCAL_PREFIX)
        .filter_map(|(at, _)| {
            let digits = &text[at + LOCAL_PREFIX.len()..];
            let len = digits.bytes().take_while(u8::is_ascii_digit).count();
            digits[..len].parse::<usize>().ok()
        })
        .max()
        .map_or(0, |n| n + 1)
}

/// The expressions OPA compiles to calls: a nested one is hoisted whole (`expandExprTerm`).
fn is_call(e: &Expr) -> bool {
    matches!(
        e,
        Expr::Call { .. }
            | Expr::BoolExpr { .. }
            | Expr::ArithExpr { .. }
            | Expr::BinExpr { .. }
            | Expr::Membership { .. }
            | Expr::UnaryExpr { .. }
            | Expr::AssignExpr { .. }
    )
}

fn is_ref(e: &Expr) -> bool {
    matches!(e, Expr::RefDot { .. } | Expr::RefBrack { .. })
}

/// A comprehension's body.
fn closure(e: &Expr) -> Option<&Query> {
    match e {
        Expr::ArrayCompr { query, .. }
        | Expr::SetCompr { query, .. }
        | Expr::ObjectCompr { query, .. } => Some(query),
        _ => None,
    }
}

/// The sub-expressions of `e` (a comprehension's term, key and value, not its body).
fn children(e: &Expr) -> Vec<&Expr> {
    let mut out: Vec<&Expr> = Vec::new();
    match e {
        Expr::Array { items, .. } | Expr::Set { items, .. } => {
            out.extend(items.iter().map(|i| i.as_ref()))
        }
        Expr::Object { fields, .. } => {
            for (_, k, v) in fields {
                out.extend([k.as_ref(), v.as_ref()]);
            }
        }
        Expr::ArrayCompr { term, .. } | Expr::SetCompr { term, .. } => out.push(term),
        Expr::ObjectCompr { key, value, .. } => out.extend([key.as_ref(), value.as_ref()]),
        Expr::Call { fcn, params, .. } => {
            out.push(fcn);
            out.extend(params.iter().map(|p| p.as_ref()));
        }
        Expr::UnaryExpr { expr, .. } => out.push(expr),
        Expr::RefDot { refr, .. } => out.push(refr),
        Expr::RefBrack { refr, index, .. } => out.extend([refr.as_ref(), index.as_ref()]),
        Expr::BinExpr { lhs, rhs, .. }
        | Expr::BoolExpr { lhs, rhs, .. }
        | Expr::ArithExpr { lhs, rhs, .. }
        | Expr::AssignExpr { lhs, rhs, .. } => out.extend([lhs.as_ref(), rhs.as_ref()]),
        Expr::Membership {
            key,
            value,
            collection,
            ..
        } => {
            out.extend(key.iter().map(|k| k.as_ref()));
            out.extend([value.as_ref(), collection.as_ref()]);
        }
        _ => {}
    }
    out
}

/// Whether `pred` holds for `e` or a sub-expression, outside comprehensions.
fn any_outside_closures(e: &Expr, pred: &dyn Fn(&Expr) -> bool) -> bool {
    pred(e)
        || closure(e).is_none()
            && children(e)
                .into_iter()
                .any(|c| any_outside_closures(c, pred))
}

fn is_wildcard(e: &Expr) -> bool {
    matches!(e, Expr::Var { span, .. } if span.text() == "_")
}

/// One change to the text: `start..end` replaced by `text` (an insertion when empty).
struct Edit {
    start: usize,
    end: usize,
    text: String,
}

struct Rewriter<'a> {
    text: &'a str,
    names: &'a BTreeSet<String>,
    edits: Vec<Edit>,
    /// Ranges copied into generated statements: no other edit may fall inside them.
    copied: Vec<(usize, usize)>,
    next: usize,
}

fn range(span: &regorus::unstable::Span) -> (usize, usize) {
    (span.start as usize, span.end as usize)
}

impl Rewriter<'_> {
    fn refuse<T>(&self, at: usize, why: &str) -> Result<T, Refusal> {
        let head = self.text.get(..at).unwrap_or(self.text);
        let line = head.matches('\n').count() + 1;
        let col = head.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Err(Refusal {
            line,
            col,
            msg: format!(
                "this negated expression cannot be prepared as OPA's compiler prepares it \
                 (OPA evaluates the references and calls among its arguments before the \
                 `not`): {why}; the template is refused rather than evaluated differently \
                 from Gatekeeper"
            ),
        })
    }

    /// Every query of a rule: its bodies, and comprehensions in its head.
    fn rule(&mut self, rule: &Rule) -> Result<(), Refusal> {
        let (head, bodies) = match rule {
            Rule::Spec { head, bodies, .. } => (head, bodies),
            Rule::Default { value, .. } => return self.expr(value),
        };
        let mut terms: Vec<&Expr> = Vec::new();
        match head {
            RuleHead::Compr { assign, .. } => terms.extend(assign.iter().map(|a| &*a.value)),
            RuleHead::Set { key, .. } => terms.extend(key.iter().map(|k| &**k)),
            RuleHead::Func { args, assign, .. } => {
                terms.extend(args.iter().map(|a| &**a));
                terms.extend(assign.iter().map(|a| &*a.value));
            }
        }
        terms.extend(
            bodies
                .iter()
                .filter_map(|b| b.assign.as_ref().map(|a| &*a.value)),
        );
        terms.into_iter().try_for_each(|t| self.expr(t))?;
        bodies.iter().try_for_each(|b| self.query(&b.query))
    }

    /// The queries inside an expression (comprehension bodies).
    fn expr(&mut self, e: &Expr) -> Result<(), Refusal> {
        if let Some(query) = closure(e) {
            self.query(query)?;
        }
        children(e).into_iter().try_for_each(|c| self.expr(c))
    }

    /// Every statement of a query (rule, `else`, comprehension and `every` bodies).
    fn query(&mut self, query: &Query) -> Result<(), Refusal> {
        for stmt in &query.stmts {
            self.statement(stmt)?;
            for w in &stmt.with_mods {
                self.expr(&w.refr)?;
                self.expr(&w.r#as)?;
            }
            match &stmt.literal {
                Literal::SomeVars { .. } => {}
                Literal::SomeIn {
                    key,
                    value,
                    collection,
                    ..
                } => {
                    for e in key.iter().chain([value, collection]) {
                        self.expr(e)?;
                    }
                }
                Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => self.expr(expr)?,
                Literal::Every { domain, query, .. } => {
                    self.expr(domain)?;
                    self.query(query)?;
                }
            }
        }
        Ok(())
    }

    /// Whether the statement at `at` is a body without braces (v1 `p if not f(x)`), which
    /// needs them to hold two statements.
    fn braceless(&self, at: usize) -> bool {
        let head = self.text.get(..at).unwrap_or_default().trim_end();
        head.strip_suffix("if").is_some_and(|rest| {
            !rest
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
    }

    fn statement(&mut self, stmt: &LiteralStmt) -> Result<(), Refusal> {
        let Literal::NotExpr { expr, .. } = &stmt.literal else {
            return Ok(());
        };
        let mut hoists = Vec::new();
        self.negated(expr, &mut hoists);
        if hoists.is_empty() {
            return Ok(());
        }
        let (start, end) = range(&stmt.span);
        let with = self.with_text(stmt, start)?;
        let braced = !self.braceless(start);
        let mut spans = Vec::new();
        for node in hoists {
            let span = range(node.span());
            if any_outside_closures(node, &is_wildcard) {
                return self.refuse(
                    span.0,
                    "a term to evaluate first holds `_`, which OPA rejects in a negated \
                     expression (var _ is unsafe)",
                );
            }
            let operator = is_call(node) && !matches!(node, Expr::Call { .. });
            spans.push((span, operator));
        }
        spans.sort_unstable();
        let mut prefix = String::from(if braced { "" } else { "{ " });
        for ((s, e), operator) in spans {
            let (copy, newlines) = self.copy(s, e)?;
            let name = format!("{LOCAL_PREFIX}{}__", self.next);
            self.next += 1;
            let copy = if operator { format!("({copy})") } else { copy };
            let _ = write!(prefix, "{name} := {copy}{with}; ");
            self.edits.push(Edit {
                start: s,
                end: e,
                text: name + &"\n".repeat(newlines),
            });
            self.copied.push((s, e));
        }
        self.edits.push(Edit {
            start,
            end: start,
            text: prefix,
        });
        if !braced {
            self.edits.push(Edit {
                start: end,
                end,
                text: " }".into(),
            });
        }
        Ok(())
    }

    /// ` with ...` of the statement, copied onto each generated statement, as OPA does.
    fn with_text(&mut self, stmt: &LiteralStmt, at: usize) -> Result<String, Refusal> {
        let (Some(first), Some(last)) = (stmt.with_mods.first(), stmt.with_mods.last()) else {
            return Ok(String::new());
        };
        if stmt
            .with_mods
            .iter()
            .any(|m| any_outside_closures(&m.r#as, &is_call))
        {
            return self.refuse(
                at,
                "a `with` value calls a function, which OPA also evaluates before the \
                 expression; bind the value to a variable first",
            );
        }
        let (s, e) = (range(&first.span).0, range(&last.span).1);
        let (copy, _) = self.copy(s, e)?;
        self.copied.push((s, e));
        Ok(format!(" {copy}"))
    }
    /// The text of `s..e` on one line, and how many line breaks it had.
    fn copy(&self, s: usize, e: usize) -> Result<(String, usize), Refusal> {
        let Some(text) = self.text.get(s..e) else {
            return self.refuse(
                s,
                "regorus's positions do not fall on characters of the text",
            );
        };
        let newlines = text.matches('\n').count();
        if newlines == 0 {
            return Ok((text.to_string(), 0));
        }
        if text.contains(['#', '`']) {
            return self.refuse(
                s,
                "a term to evaluate first spans several lines and holds a comment or a raw \
                 string, which cannot be moved onto one line; write it on one line",
            );
        }
        Ok((text.replace(['\n', '\r'], " "), newlines))
    }

    /// The terms of a negated expression that OPA evaluates before it.
    fn negated<'e>(&self, expr: &'e Expr, out: &mut Vec<&'e Expr>) {
        match expr {
            Expr::Call { params, .. } => params.iter().for_each(|p| self.one(p, out)),
            // `==` is rewritten to the unification `=` (rewriteEquals); `:=` cannot be negated.
            Expr::BoolExpr {
                op: BoolOp::Eq,
                lhs,
                rhs,
                ..
            }
            | Expr::AssignExpr {
                op: AssignOp::Eq,
                lhs,
                rhs,
                ..
            } => {
                self.in_term(lhs, out);
                self.in_term(rhs, out);
            }
            Expr::AssignExpr { .. } => {}
            Expr::BoolExpr { lhs, rhs, .. }
            | Expr::ArithExpr { lhs, rhs, .. }
            | Expr::BinExpr { lhs, rhs, .. } => {
                self.one(lhs, out);
                self.one(rhs, out);
            }
            Expr::Membership {
                key,
                value,
                collection,
                ..
            } => {
                for e in key.iter().chain([value, collection]) {
                    self.one(e, out);
                }
            }
            Expr::UnaryExpr { expr, .. } => self.one(expr, out),
            _ => self.in_term(expr, out),
        }
    }

    /// `rewriteDynamicsOne` (after `expandExprTerm`): a reference, a name resolved to one,
    /// or a call is hoisted; arrays, objects and sets are searched.
    fn one<'e>(&self, node: &'e Expr, out: &mut Vec<&'e Expr>) {
        match node {
            Expr::Var { span, .. } if self.names.contains(span.text()) => out.push(node),
            Expr::Array { .. } | Expr::Set { .. } | Expr::Object { .. } => {
                children(node).into_iter().for_each(|c| self.one(c, out));
            }
            e if is_ref(e) || is_call(e) => out.push(node),
            _ => {}
        }
    }

    /// `rewriteDynamicsInTerm` (after `expandExprTerm`): a reference stays, its indexes and a
    /// non-variable subject are searched; arrays, objects and sets as in [`Self::one`].
    fn in_term<'e>(&self, node: &'e Expr, out: &mut Vec<&'e Expr>) {
        let (mut subject, mut referenced) = (node, false);
        loop {
            match subject {
                Expr::RefDot { refr, .. } => subject = refr,
                Expr::RefBrack { refr, index, .. } => {
                    self.one(index, out);
                    subject = refr;
                }
                _ => break,
            }
            referenced = true;
        }
        match subject {
            Expr::Array { .. } | Expr::Set { .. } | Expr::Object { .. } if referenced => {
                out.push(subject);
            }
            Expr::Array { .. } | Expr::Set { .. } | Expr::Object { .. } => self.one(subject, out),
            e if is_call(e) => out.push(subject),
            _ => {}
        }
    }

    /// The edits applied, once none overlaps another or falls inside a copied range.
    fn apply(mut self) -> Result<String, Refusal> {
        self.edits.sort_by_key(|e| (e.start, e.end));
        for pair in self.edits.windows(2) {
            if pair[0].end > pair[1].start {
                return self.refuse(pair[1].start, "it holds another negated expression");
            }
        }
        for &(s, e) in &self.copied {
            let inside = |x: &Edit| match x.start == x.end {
                true => s < x.start && x.start < e,
                false => x.start < e && x.end > s && (x.start, x.end) != (s, e),
            };
            if let Some(x) = self.edits.iter().find(|x| inside(x)) {
                return self.refuse(
                    x.start,
                    "a term to evaluate first holds another negated expression to rewrite",
                );
            }
        }
        let mut out = String::with_capacity(self.text.len() + 64 * self.edits.len());
        let mut at = 0;
        for edit in &self.edits {
            out.push_str(&self.text[at..edit.start]);
            out.push_str(&edit.text);
            at = edit.end;
        }
        out.push_str(&self.text[at..]);
        Ok(out)
    }
}
