//! The structural proof: the crate's layering, read off its source.
//!
//! Reads `src/**/*.rs` (std only: a small Rust tokenizer, no parser crate) and fails with
//! one `file:line: message` per violation of:
//!
//! 1. `config` is a leaf: nothing under `src/config` names another module of ours
//!    (`crate::X` with X != config, in `use` groups or in expressions, or a `super::` chain
//!    that climbs out of `src/config`).
//! 2. `core` and `policy` do not use a door: `proxy`, `hook`, `serve`, `cli`, `reload`.
//! 3. No two modules with the same parent use each other (top-level modules, and sibling
//!    submodules such as `policy::vap::check` and `policy::vap::load`).
//! 4. No non-test source file over 600 lines; no non-test function over 80 lines.
//!
//! Test code is left out of every rule: files named `*tests.rs` or `testing.rs`, files
//! under a `tests/` directory, modules declared `#[cfg(test)] mod x;`, and items marked
//! `#[cfg(test)]` or inside `mod tests { ... }`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The modules that speak a protocol (or reload the process state); the core and the
/// policies are asked by them and never ask them.
const DOORS: &[&str] = &["proxy", "hook", "serve", "cli", "reload"];
const MAX_FILE_LINES: usize = 600;
const MAX_FN_LINES: usize = 80;

// ----------------------------------------------------------------------------- tokens

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`
    PathSep,
    Punct(char),
    /// A string literal's contents (escapes left as written; only `#[path]` reads them).
    Str(String),
    /// Any other literal, and lifetimes.
    Lit,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
}

/// Splits Rust source into tokens, dropping comments (doc comments included) and keeping
/// string, raw string and char literals whole so that their braces and paths are not code.
fn lex(src: &str) -> Vec<Token> {
    let mut lexer = Lexer {
        chars: src.chars().collect(),
        pos: 0,
        line: 1,
        out: Vec::new(),
    };
    lexer.run();
    lexer.out
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    out: Vec<Token>,
}

impl Lexer {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek(0)?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn push(&mut self, tok: Tok, line: usize) {
        self.out.push(Token { tok, line });
    }

    fn run(&mut self) {
        while let Some(c) = self.peek(0) {
            let line = self.line;
            match c {
                c if c.is_whitespace() => {
                    self.bump();
                }
                '/' if self.peek(1) == Some('/') => self.line_comment(),
                '/' if self.peek(1) == Some('*') => self.block_comment(),
                '"' => {
                    self.bump();
                    let s = self.string_body();
                    self.push(Tok::Str(s), line);
                }
                '\'' => self.quote(line),
                c if c.is_ascii_digit() => self.number(line),
                c if c == '_' || c.is_alphabetic() => self.word(line),
                ':' if self.peek(1) == Some(':') => {
                    self.pos += 2;
                    self.push(Tok::PathSep, line);
                }
                c => {
                    self.bump();
                    self.push(Tok::Punct(c), line);
                }
            }
        }
    }

    fn line_comment(&mut self) {
        while let Some(c) = self.peek(0) {
            if c == '\n' {
                return;
            }
            self.bump();
        }
    }

    /// Block comments nest in Rust.
    fn block_comment(&mut self) {
        self.pos += 2;
        let mut depth = 1;
        while depth > 0 {
            match (self.peek(0), self.peek(1)) {
                (None, _) => return,
                (Some('/'), Some('*')) => {
                    self.pos += 2;
                    depth += 1;
                }
                (Some('*'), Some('/')) => {
                    self.pos += 2;
                    depth -= 1;
                }
                _ => {
                    self.bump();
                }
            }
        }
    }

    /// After the opening `"`: up to and past the closing one.
    fn string_body(&mut self) -> String {
        let mut s = String::new();
        while let Some(c) = self.bump() {
            match c {
                '"' => break,
                '\\' => {
                    s.push(c);
                    if let Some(e) = self.bump() {
                        s.push(e);
                    }
                }
                c => s.push(c),
            }
        }
        s
    }

    /// After `r`: `#`* `"` ... `"` `#`* (the caller saw that this is a raw string).
    fn raw_string_body(&mut self) -> String {
        let mut hashes = 0;
        while self.peek(0) == Some('#') {
            self.bump();
            hashes += 1;
        }
        self.bump(); // the opening quote
        let mut s = String::new();
        while let Some(c) = self.bump() {
            if c == '"' && (0..hashes).all(|k| self.peek(k) == Some('#')) {
                self.pos += hashes;
                break;
            }
            s.push(c);
        }
        s
    }

    /// A char literal (`'x'`, `'\n'`, `'{'`) or a lifetime (`'a`, `'static`).
    fn quote(&mut self, line: usize) {
        self.bump();
        if self.peek(0) == Some('\\') {
            self.bump();
            self.bump();
            while let Some(c) = self.bump() {
                if c == '\'' {
                    break;
                }
            }
        } else if self.peek(1) == Some('\'') {
            self.pos += 2;
        } else {
            while self
                .peek(0)
                .is_some_and(|c| c == '_' || c.is_alphanumeric())
            {
                self.bump();
            }
        }
        self.push(Tok::Lit, line);
    }

    fn number(&mut self, line: usize) {
        while let Some(c) = self.peek(0) {
            let fraction = c == '.' && self.peek(1).is_some_and(|d| d.is_ascii_digit());
            if c == '_' || c.is_alphanumeric() || fraction {
                self.bump();
            } else {
                break;
            }
        }
        self.push(Tok::Lit, line);
    }

    /// An identifier or keyword, or the prefix of a byte/raw/C string or a byte char.
    fn word(&mut self, line: usize) {
        let start = self.pos;
        while self
            .peek(0)
            .is_some_and(|c| c == '_' || c.is_alphanumeric())
        {
            self.pos += 1;
        }
        let word: String = self.chars[start..self.pos].iter().collect();
        let next = self.peek(0);
        let raw_prefix = matches!(word.as_str(), "r" | "br" | "cr");
        match (word.as_str(), next) {
            ("b" | "c", Some('"')) => {
                self.bump();
                let s = self.string_body();
                self.push(Tok::Str(s), line);
            }
            ("b", Some('\'')) => self.quote(line),
            (_, Some('"')) if raw_prefix => {
                let s = self.raw_string_body();
                self.push(Tok::Str(s), line);
            }
            (_, Some('#')) if raw_prefix && self.raw_string_ahead() => {
                let s = self.raw_string_body();
                self.push(Tok::Str(s), line);
            }
            ("r", Some('#')) => {
                // A raw identifier, `r#type`.
                self.bump();
                self.word(line);
            }
            _ => self.push(Tok::Ident(word), line),
        }
    }

    fn raw_string_ahead(&self) -> bool {
        let mut k = 0;
        while self.peek(k) == Some('#') {
            k += 1;
        }
        self.peek(k) == Some('"')
    }
}

// ----------------------------------------------------------------------------- paths

fn is(tokens: &[Token], i: usize, tok: &Tok) -> bool {
    tokens.get(i).is_some_and(|t| &t.tok == tok)
}

fn ident_at(tokens: &[Token], i: usize) -> Option<&str> {
    match tokens.get(i).map(|t| &t.tok) {
        Some(Tok::Ident(s)) => Some(s),
        _ => None,
    }
}

fn punct(tokens: &[Token], i: usize, c: char) -> bool {
    is(tokens, i, &Tok::Punct(c))
}

/// Parses the path (tree) that starts at `i`, just after a `crate::` or `super::` prefix,
/// into every full path it names: `{a, b::{c, d}}` gives `[a]`, `[b, c]`, `[b, d]`;
/// `self` in a group names the group's prefix; `*` and `::<` end a path. Returns the index
/// of the first token after the tree.
fn path_tree(
    tokens: &[Token],
    mut i: usize,
    mut prefix: Vec<String>,
    out: &mut Vec<Vec<String>>,
) -> usize {
    loop {
        match tokens.get(i).map(|t| &t.tok) {
            Some(Tok::Ident(name)) if name == "self" => {
                out.push(prefix);
                return i + 1;
            }
            Some(Tok::Ident(name)) => {
                prefix.push(name.clone());
                i += 1;
                if is(tokens, i, &Tok::PathSep) && !punct(tokens, i + 1, '<') {
                    i += 1;
                    continue;
                }
                out.push(prefix);
                return i;
            }
            Some(Tok::Punct('{')) => return group(tokens, i + 1, &prefix, out),
            Some(Tok::Punct('*')) => {
                out.push(prefix);
                return i + 1;
            }
            _ => {
                out.push(prefix);
                return i;
            }
        }
    }
}

/// The inside of a `{...}` group, after its `{`.
fn group(tokens: &[Token], mut i: usize, prefix: &[String], out: &mut Vec<Vec<String>>) -> usize {
    loop {
        if punct(tokens, i, '}') {
            return i + 1;
        }
        if i >= tokens.len() {
            return i;
        }
        let next = path_tree(tokens, i, prefix.to_vec(), out);
        // A token the tree did not take (and never will): step over it rather than loop.
        i = next.max(i + 1);
        if ident_at(tokens, i) == Some("as") {
            i += 2;
        }
        if punct(tokens, i, ',') {
            i += 1;
        }
    }
}

/// The paths of ours named in `tokens`, made absolute (segments after `crate`) from the
/// module the code is in. `super` chains that climb above the crate root give `None`.
fn paths_at(tokens: &[Token], i: usize, module: &[String]) -> Option<Vec<Option<Vec<String>>>> {
    let first = ident_at(tokens, i)?;
    if !is(tokens, i + 1, &Tok::PathSep) || i > 0 && is(tokens, i - 1, &Tok::PathSep) {
        return None;
    }
    // `pub(in crate::x)` is a visibility, not a use.
    if i > 0 && ident_at(tokens, i - 1) == Some("in") {
        return None;
    }
    let mut base: Option<Vec<String>> = match first {
        "crate" => Some(Vec::new()),
        "super" => Some(module.to_vec()),
        _ => return None,
    };
    let mut j = i;
    while ident_at(tokens, j) == Some("super") && is(tokens, j + 1, &Tok::PathSep) {
        base = base.and_then(|mut b| b.pop().map(|_| b));
        j += 2;
    }
    if first == "crate" {
        j = i + 2;
    }
    let mut found = Vec::new();
    path_tree(tokens, j, Vec::new(), &mut found);
    Some(
        found
            .into_iter()
            .map(|rest| {
                base.clone().map(|mut b| {
                    b.extend(rest);
                    b
                })
            })
            .collect(),
    )
}

// ----------------------------------------------------------------------------- items

/// One path of ours named in a file: the module the code is in and what it names.
#[derive(Debug, Clone)]
struct Use {
    line: usize,
    from: Vec<String>,
    /// Segments after `crate` (modules, then maybe an item); `None` if a `super` chain
    /// climbs above the crate root.
    target: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
struct FnSpan {
    name: String,
    line: usize,
    end_line: usize,
}

#[derive(Debug, Clone)]
struct ModDecl {
    name: String,
    /// Inline modules (`mod a { mod b; }`) the declaration sits in.
    inline: Vec<String>,
    path_attr: Option<String>,
    test: bool,
}

#[derive(Debug, Default)]
struct Scan {
    uses: Vec<Use>,
    fns: Vec<FnSpan>,
    mods: Vec<ModDecl>,
    /// Inline (non-test) modules, absolute.
    inline_modules: Vec<Vec<String>>,
    /// `#![cfg(test)]` at the top of the file.
    test_file: bool,
}

/// The index of the token that closes the bracket opened at `open` (or the end).
fn matching(tokens: &[Token], open: usize) -> usize {
    let mut depth = 0usize;
    for (k, t) in tokens.iter().enumerate().skip(open) {
        match t.tok {
            Tok::Punct('{' | '(' | '[') => depth += 1,
            Tok::Punct('}' | ')' | ']') => {
                depth -= 1;
                if depth == 0 {
                    return k;
                }
            }
            _ => {}
        }
    }
    tokens.len() - 1
}

/// From the start of an item, the first `{` or `;` outside parentheses and brackets.
fn body_or_semi(tokens: &[Token], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (k, t) in tokens.iter().enumerate().skip(start) {
        match t.tok {
            Tok::Punct('(' | '[') => depth += 1,
            Tok::Punct(')' | ']') => depth = depth.saturating_sub(1),
            Tok::Punct('{' | ';') if depth == 0 => return Some(k),
            _ => {}
        }
    }
    None
}

/// The last token of the item that starts at `start` (after its attributes).
fn item_end(tokens: &[Token], start: usize) -> usize {
    // `use`, `const`, `static`, `type`, `let` end at their `;`, braces or not.
    let mut k = start;
    while matches!(ident_at(tokens, k), Some("pub")) {
        k += 1;
        if punct(tokens, k, '(') {
            k = matching(tokens, k) + 1;
        }
    }
    let semi_item = matches!(ident_at(tokens, k), Some("use" | "static" | "type" | "let"))
        || ident_at(tokens, k) == Some("const") && ident_at(tokens, k + 1) != Some("fn");
    if semi_item {
        let mut j = k;
        while j < tokens.len() && !punct(tokens, j, ';') {
            j = if punct(tokens, j, '{') || punct(tokens, j, '(') || punct(tokens, j, '[') {
                matching(tokens, j) + 1
            } else {
                j + 1
            };
        }
        return j.min(tokens.len() - 1);
    }
    match body_or_semi(tokens, k) {
        Some(b) if punct(tokens, b, '{') => matching(tokens, b),
        Some(b) => b,
        None => tokens.len() - 1,
    }
}

/// The outer attributes starting at `i` (`#[...]`, any number): whether one is
/// `#[cfg(test)]`, a `#[path = "..."]` value, and the index after them.
fn attributes(tokens: &[Token], mut i: usize) -> (bool, Option<String>, usize) {
    let mut test = false;
    let mut path = None;
    while punct(tokens, i, '#') && punct(tokens, i + 1, '[') {
        let close = matching(tokens, i + 1);
        let inner: Vec<&Tok> = tokens[i + 2..close].iter().map(|t| &t.tok).collect();
        let cfg_test = [
            Tok::Ident("cfg".into()),
            Tok::Punct('('),
            Tok::Ident("test".into()),
            Tok::Punct(')'),
        ];
        if inner.len() == 4 && inner.iter().zip(cfg_test.iter()).all(|(a, b)| *a == b) {
            test = true;
        }
        if let [Tok::Ident(p), Tok::Punct('='), Tok::Str(value)] = inner.as_slice() {
            if p == "path" {
                path = Some(value.clone());
            }
        }
        i = close + 1;
    }
    (test, path, i)
}

/// Walks a file's tokens: the paths of ours it names, its functions, its `mod`
/// declarations, its inline modules; test items are skipped.
fn scan(tokens: &[Token], module: &[String]) -> Scan {
    let mut out = Scan::default();
    if punct(tokens, 0, '#') && punct(tokens, 1, '!') && punct(tokens, 2, '[') {
        let close = matching(tokens, 2);
        let inner: Vec<&Tok> = tokens[3..close].iter().map(|t| &t.tok).collect();
        out.test_file = inner
            == [
                &Tok::Ident("cfg".into()),
                &Tok::Punct('('),
                &Tok::Ident("test".into()),
                &Tok::Punct(')'),
            ];
    }
    // Inline modules open: (name, index of their closing brace).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        while inline.last().is_some_and(|(_, close)| *close < i) {
            inline.pop();
        }
        let here: Vec<String> = module
            .iter()
            .cloned()
            .chain(inline.iter().map(|(n, _)| n.clone()))
            .collect();
        if punct(tokens, i, '#') && punct(tokens, i + 1, '[') {
            let (test, path_attr, next) = attributes(tokens, i);
            if test {
                if let Some(decl) = mod_decl(tokens, next) {
                    out.mods.push(ModDecl {
                        inline: inline.iter().map(|(n, _)| n.clone()).collect(),
                        path_attr,
                        test: true,
                        ..decl
                    });
                }
                i = item_end(tokens, next) + 1;
                continue;
            }
            if let (Some(decl), Some(_)) = (mod_decl(tokens, next), &path_attr) {
                out.mods.push(ModDecl {
                    inline: inline.iter().map(|(n, _)| n.clone()).collect(),
                    path_attr,
                    ..decl
                });
                i = item_end(tokens, next) + 1;
                continue;
            }
            i = next;
            continue;
        }
        if ident_at(tokens, i) == Some("mod") && i + 2 < tokens.len() {
            if let Some(name) = ident_at(tokens, i + 1) {
                if punct(tokens, i + 2, ';') {
                    out.mods.push(ModDecl {
                        name: name.to_string(),
                        inline: inline.iter().map(|(n, _)| n.clone()).collect(),
                        path_attr: None,
                        test: false,
                    });
                } else if punct(tokens, i + 2, '{') {
                    let close = matching(tokens, i + 2);
                    if name == "tests" {
                        i = close + 1;
                        continue;
                    }
                    let mut path = here.clone();
                    path.push(name.to_string());
                    out.inline_modules.push(path);
                    inline.push((name.to_string(), close));
                    i += 3;
                    continue;
                }
            }
        }
        if ident_at(tokens, i) == Some("fn") {
            if let Some(name) = ident_at(tokens, i + 1) {
                if let Some(b) = body_or_semi(tokens, i + 2).filter(|&b| punct(tokens, b, '{')) {
                    out.fns.push(FnSpan {
                        name: name.to_string(),
                        line: tokens[i].line,
                        end_line: tokens[matching(tokens, b)].line,
                    });
                }
            }
        }
        if let Some(paths) = paths_at(tokens, i, &here) {
            for target in paths {
                out.uses.push(Use {
                    line: tokens[i].line,
                    from: here.clone(),
                    target,
                });
            }
        }
        i += 1;
    }
    out
}

/// `mod name;` or `pub(...) mod name;` at `i`: the declaration (without context).
fn mod_decl(tokens: &[Token], mut i: usize) -> Option<ModDecl> {
    while ident_at(tokens, i) == Some("pub") {
        i += 1;
        if punct(tokens, i, '(') {
            i = matching(tokens, i) + 1;
        }
    }
    if ident_at(tokens, i) != Some("mod") || !punct(tokens, i + 2, ';') {
        return None;
    }
    Some(ModDecl {
        name: ident_at(tokens, i + 1)?.to_string(),
        inline: Vec::new(),
        path_attr: None,
        test: false,
    })
}

// ----------------------------------------------------------------------------- the crate

struct SourceFile {
    /// Relative to the crate root, `/`-separated: `src/policy/vap/check.rs`.
    rel: String,
    /// `None` for the binary's `main.rs` (its `crate::` is another crate).
    module: Option<Vec<String>>,
    test: bool,
    lines: usize,
    scan: Scan,
}

struct Crate {
    files: Vec<SourceFile>,
    /// Every module of the library, absolute (`[]` is the crate root).
    modules: BTreeSet<Vec<String>>,
}

fn test_file_name(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    name.ends_with("tests.rs")
        || name == "testing.rs"
        || rel.split('/').rev().skip(1).any(|d| d == "tests")
}

fn is_mod_rs(path: &Path) -> bool {
    matches!(
        path.file_name().and_then(|n| n.to_str()),
        Some("mod.rs" | "lib.rs" | "main.rs")
    )
}

/// The file a `mod` declaration in `parent` loads.
fn child_file(parent: &Path, decl: &ModDecl) -> PathBuf {
    let dir = parent.parent().unwrap().to_path_buf();
    let mut base = if is_mod_rs(parent) {
        dir.clone()
    } else {
        dir.join(parent.file_stem().unwrap())
    };
    for name in &decl.inline {
        base = base.join(name);
    }
    if let Some(p) = &decl.path_attr {
        return if decl.inline.is_empty() {
            dir.join(p)
        } else {
            base.join(p)
        };
    }
    let flat = base.join(format!("{}.rs", decl.name));
    if flat.exists() {
        flat
    } else {
        base.join(&decl.name).join("mod.rs")
    }
}

fn all_rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            all_rs_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

fn read_file(root: &Path, path: &Path, module: Option<Vec<String>>, test: bool) -> SourceFile {
    let text =
        fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let rel = relative(root, path);
    let scan = scan(&lex(&text), module.as_deref().unwrap_or(&[]));
    SourceFile {
        test: test || scan.test_file || test_file_name(&rel),
        rel,
        module,
        lines: text.lines().count(),
        scan,
    }
}

/// Follows the `mod` declarations from `src/lib.rs`; files nothing declares (and
/// `src/main.rs`) are read too, for the size rules.
fn load_crate(root: &Path) -> Crate {
    let mut files = Vec::new();
    let mut modules = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut queue = vec![(root.join("src/lib.rs"), Vec::<String>::new(), false)];
    while let Some((path, module, test)) = queue.pop() {
        if !path.exists() || !seen.insert(path.clone()) {
            continue;
        }
        let file = read_file(root, &path, Some(module.clone()), test);
        modules.insert(module.clone());
        modules.extend(file.scan.inline_modules.iter().cloned());
        for decl in &file.scan.mods {
            let mut child = module.clone();
            child.extend(decl.inline.iter().cloned());
            child.push(decl.name.clone());
            queue.push((child_file(&path, decl), child, file.test || decl.test));
        }
        files.push(file);
    }
    let mut all = Vec::new();
    all_rs_files(&root.join("src"), &mut all);
    for path in all.into_iter().filter(|p| !seen.contains(p)) {
        files.push(read_file(root, &path, None, false));
    }
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    Crate { files, modules }
}

fn the_crate() -> Crate {
    load_crate(Path::new(env!("CARGO_MANIFEST_DIR")))
}

// ----------------------------------------------------------------------------- rules

fn show(path: &[String]) -> String {
    if path.is_empty() {
        "crate".to_string()
    } else {
        format!("crate::{}", path.join("::"))
    }
}

impl Crate {
    /// The uses in library files outside test code.
    fn uses(&self) -> impl Iterator<Item = (&SourceFile, &Use)> {
        self.files
            .iter()
            .filter(|f| !f.test && f.module.is_some())
            .flat_map(|f| f.scan.uses.iter().map(move |u| (f, u)))
    }

    /// The longest prefix of `path` that is one of our modules.
    fn module_of(&self, path: &[String]) -> Vec<String> {
        (0..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|p| self.modules.contains(p))
            .unwrap_or_default()
    }
}

fn config_is_a_leaf(krate: &Crate) -> Vec<String> {
    let mut out = Vec::new();
    for (file, u) in krate.uses() {
        if u.from.first().map(String::as_str) != Some("config") {
            continue;
        }
        match &u.target {
            Some(t) if t.first().map(String::as_str) == Some("config") => {}
            Some(t) => out.push(format!(
                "{}:{}: config uses {} (config is a leaf: it uses no other module of ours)",
                file.rel,
                u.line,
                show(t)
            )),
            None => out.push(format!(
                "{}:{}: a super:: chain climbs above the crate root",
                file.rel, u.line
            )),
        }
    }
    out
}

fn core_and_policy_use_no_door(krate: &Crate) -> Vec<String> {
    let mut out = Vec::new();
    for (file, u) in krate.uses() {
        let from = u.from.first().map(String::as_str);
        let Some(target) = &u.target else { continue };
        let to = target.first().map(String::as_str).unwrap_or("");
        if matches!(from, Some("core" | "policy")) && DOORS.contains(&to) {
            out.push(format!(
                "{}:{}: {} uses the door module {} ({} is door-side; the doors use {}, not the other way)",
                file.rel,
                u.line,
                from.unwrap(),
                show(target),
                to,
                from.unwrap()
            ));
        }
    }
    out
}

/// (parent, a, b): a child `a` of `parent` (or code under it) uses its sibling `b`.
type Edge = (Vec<String>, String, String);
/// The first place an [`Edge`] is seen (file, line), and how many uses it has.
type FirstUse = (String, usize, usize);

/// For every pair of sibling modules (same parent) that use each other: one line at the
/// first use each way.
fn no_mutual_imports(krate: &Crate) -> Vec<String> {
    let mut edges: BTreeMap<Edge, FirstUse> = BTreeMap::new();
    for (file, u) in krate.uses() {
        let Some(target) = &u.target else { continue };
        let to = krate.module_of(target);
        let common = u.from.iter().zip(&to).take_while(|(a, b)| a == b).count();
        if common < u.from.len() && common < to.len() {
            let key = (
                u.from[..common].to_vec(),
                u.from[common].clone(),
                to[common].clone(),
            );
            edges.entry(key).or_insert((file.rel.clone(), u.line, 0)).2 += 1;
        }
    }
    let mut out = Vec::new();
    for ((parent, a, b), (file, line, count)) in &edges {
        if a >= b {
            continue;
        }
        let back = edges.get(&(parent.clone(), b.clone(), a.clone()));
        if let Some((back_file, back_line, back_count)) = back {
            let name = |m: &String| {
                let mut p = parent.clone();
                p.push(m.clone());
                show(&p)
            };
            out.push(format!(
                "{file}:{line}: {} uses {} ({count} use(s), the first here), and {} uses it \
                 back ({back_count} use(s), the first at {back_file}:{back_line})",
                name(a),
                name(b),
                name(b)
            ));
        }
    }
    out
}

fn sizes(krate: &Crate) -> Vec<String> {
    let mut out = Vec::new();
    for file in krate.files.iter().filter(|f| !f.test) {
        if file.lines > MAX_FILE_LINES {
            out.push(format!(
                "{}:1: file has {} lines (limit {MAX_FILE_LINES})",
                file.rel, file.lines
            ));
        }
        for f in &file.scan.fns {
            let lines = f.end_line - f.line + 1;
            if lines > MAX_FN_LINES {
                out.push(format!(
                    "{}:{}: fn {} has {lines} lines (limit {MAX_FN_LINES})",
                    file.rel, f.line, f.name
                ));
            }
        }
    }
    out
}

fn verdict(rule: &str, violations: Vec<String>) {
    assert!(
        violations.is_empty(),
        "{rule}: {} violation(s)\n{}\n",
        violations.len(),
        violations.join("\n")
    );
}

#[test]
fn config_uses_no_other_module() {
    verdict("config is a leaf", config_is_a_leaf(&the_crate()));
}

#[test]
fn core_and_policy_use_no_door_module() {
    verdict(
        "core and policy use no door",
        core_and_policy_use_no_door(&the_crate()),
    );
}

#[test]
fn no_two_modules_use_each_other() {
    verdict("no mutual imports", no_mutual_imports(&the_crate()));
}

#[test]
fn no_long_files_or_functions() {
    verdict("size limits", sizes(&the_crate()));
}

/// The checker reads what it means to: the crate's modules are found, so an empty
/// result above is not an empty crate.
#[test]
fn the_module_tree_is_read() {
    let krate = the_crate();
    for m in [
        "config", "core", "policy", "proxy", "hook", "serve", "cli", "reload", "review",
    ] {
        assert!(
            krate.modules.contains(&vec![m.to_string()]),
            "module {m} not found"
        );
    }
    assert!(krate
        .files
        .iter()
        .any(|f| f.rel == "src/lib.rs" && f.module == Some(vec![])));
    let unreached: Vec<&str> = krate
        .files
        .iter()
        .filter(|f| f.module.is_none() && f.rel != "src/main.rs")
        .map(|f| f.rel.as_str())
        .collect();
    assert!(
        unreached.is_empty(),
        "files no `mod` declares: {unreached:?}"
    );
}

// ----------------------------------------------------------------------------- the checker's own tests

#[cfg(test)]
mod parser {
    use super::*;

    fn v(path: &str) -> Vec<String> {
        path.split("::")
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }

    /// The absolute targets named in `src`, read as the body of module `module`.
    fn targets(src: &str, module: &str) -> Vec<Option<Vec<String>>> {
        scan(&lex(src), &v(module))
            .uses
            .into_iter()
            .map(|u| u.target)
            .collect()
    }

    fn some(paths: &[&str]) -> Vec<Option<Vec<String>>> {
        paths.iter().map(|p| Some(v(p))).collect()
    }

    #[test]
    fn groups_nested_and_multi_line() {
        let src = "use crate::{\n    a,\n    b::{c, d::{e, f as g}},\n    h::self,\n    i::*,\n};";
        assert_eq!(
            targets(src, "x"),
            some(&["a", "b::c", "b::d::e", "b::d::f", "h", "i"])
        );
    }

    #[test]
    fn group_with_self_and_renames() {
        let src = "pub(crate) use crate::net::{self, peer::Peer as P};";
        assert_eq!(targets(src, "x"), some(&["net", "net::peer::Peer"]));
    }

    #[test]
    fn paths_in_expressions() {
        let src = "fn f() { let x = crate::net::foo(1); crate::review::Verdict::<u8>::Allow; }";
        assert_eq!(targets(src, "x"), some(&["net::foo", "review::Verdict"]));
    }

    #[test]
    fn multi_line_expression_path() {
        let src = "let x = crate::policy\n    ::vap\n    ::load(y);";
        assert_eq!(targets(src, "x"), some(&["policy::vap::load"]));
    }

    #[test]
    fn super_chains_resolve_from_the_module() {
        let src = "use super::load::Policy;\nuse super::super::images::{Rules, check};";
        assert_eq!(
            targets(src, "policy::vap::check"),
            some(&[
                "policy::vap::load::Policy",
                "policy::images::Rules",
                "policy::images::check"
            ])
        );
        assert_eq!(targets("use super::super::x;", "a"), vec![None]);
    }

    #[test]
    fn super_inside_an_inline_module() {
        let src = "mod inner { use super::sibling; }\nuse super::other;";
        assert_eq!(targets(src, "a::b"), some(&["a::b::sibling", "a::other"]));
    }

    #[test]
    fn not_paths_strings_comments_visibility() {
        let src = r###"
            // use crate::commented;
            /* crate::block /* nested crate::x */ still */
            /// [`crate::doc`]
            let s = "crate::string {";
            let r = r#"crate::raw " { "#;
            let b = br"crate::bytes";
            let c = '{';
            let q = '\'';
            fn f<'a>(x: &'a str) {}
            pub(in crate::scope) fn g() {}
            pub(super) fn h() {}
            let not_ours = core::matching::x; std::crate_name();
        "###;
        assert_eq!(targets(src, "x"), vec![]);
    }

    #[test]
    fn test_items_are_skipped() {
        let src = "#[cfg(test)]\nuse crate::a::{b, c};\n#[cfg(test)]\nfn t() { crate::d(); }\n\
                   mod tests { use crate::e; }\n#[cfg(test)]\nmod more { use crate::f; }\nuse crate::kept;";
        assert_eq!(targets(src, "x"), some(&["kept"]));
        let decls = scan(
            &lex("#[cfg(test)]\nmod t;\nmod u;\n#[path = \"w.rs\"]\nmod w;"),
            &[],
        )
        .mods;
        let seen: Vec<(&str, bool, Option<&str>)> = decls
            .iter()
            .map(|d| (d.name.as_str(), d.test, d.path_attr.as_deref()))
            .collect();
        assert_eq!(
            seen,
            [
                ("t", true, None),
                ("u", false, None),
                ("w", false, Some("w.rs"))
            ]
        );
    }

    #[test]
    fn function_lengths_ignore_braces_in_literals() {
        let src = "fn a() {\n    let s = \"}\";\n    let c = '}';\n    // }\n    let r = r#\"}\"#;\n}\nfn b();\nfn c(f: fn(u8) -> u8) -> u8 { f(1) }\n";
        let fns: Vec<(String, usize, usize)> = scan(&lex(src), &[])
            .fns
            .into_iter()
            .map(|f| (f.name, f.line, f.end_line))
            .collect();
        assert_eq!(fns, [("a".to_string(), 1, 6), ("c".to_string(), 8, 8)]);
    }

    #[test]
    fn test_file_names() {
        for name in [
            "src/a/tests.rs",
            "src/a/mutate_tests.rs",
            "src/core/testing.rs",
            "src/a/tests/x.rs",
        ] {
            assert!(test_file_name(name), "{name}");
        }
        for name in ["src/a/test_pki.rs", "src/a/contest.rs", "src/a/mod.rs"] {
            assert!(!test_file_name(name), "{name}");
        }
    }
}
