//! The top-level modules (the `mod`s of `src/lib.rs`) depend on each other without cycles, so
//! each layer can be read and tested with only the layers below it.
//!
//! A module depends on another when any of its files names it through `crate::`, through
//! `super::` that climbs to the crate root, or through one of its `#[macro_export]` macros.
//! Comments, strings and character literals are blanked first, so a doc link or a message that
//! mentions a module is not a dependency.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Where a dependency was seen: the file and the line, for the failure message.
type Edges = BTreeMap<(String, String), (PathBuf, usize)>;

#[test]
fn top_level_modules_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = module_graph(&src);
    // A scanner that finds nothing would pass vacuously: known dependencies must show.
    assert!(
        edges.contains_key(&("plan".to_string(), "config".to_string()))
            && edges.contains_key(&("measure".to_string(), "output".to_string())),
        "the scan missed plan -> config or measure -> output (errln!): {:?}",
        edges.keys().collect::<Vec<_>>()
    );
    if let Some(cycle) = find_cycle(&edges) {
        let steps: Vec<String> = cycle
            .windows(2)
            .map(|pair| {
                let (file, line) = &edges[&(pair[0].clone(), pair[1].clone())];
                format!("  {} -> {} ({}:{line})", pair[0], pair[1], file.display())
            })
            .collect();
        panic!(
            "top-level modules depend on each other in a cycle:\n{}\nmove what both sides need into a module below them",
            steps.join("\n")
        );
    }
}

#[test]
fn the_scan_sees_grouped_imports_super_and_macros_but_not_comments() {
    let modules: BTreeSet<String> = ["a", "b", "c", "d", "e"].map(String::from).into();
    let macros = BTreeMap::from([("say".to_string(), "e".to_string())]);
    let found = |file: &str, text: &str| -> BTreeSet<String> {
        references(
            file_module(Path::new(file)),
            &blank(text),
            &modules,
            &macros,
        )
        .into_iter()
        .map(|(target, _)| target)
        .collect()
    };
    let text =
        "use crate::{b::X, c};\n// crate::d\nlet s = \"crate::d\"; let c = '{';\ncrate::say!();\n";
    assert_eq!(
        found("a.rs", text),
        ["b", "c", "e"].map(String::from).into()
    );
    // `super` in a top-level file is the crate root; in a submodule or a test module, its parent.
    let own = ["a"].map(String::from).into();
    assert_eq!(
        found("a.rs", "use super::d;"),
        ["d"].map(String::from).into()
    );
    assert_eq!(found("a/x.rs", "use super::d;"), own);
    assert_eq!(found("a.rs", "mod tests { use super::d; }"), own);
    assert_eq!(
        found("a/x.rs", "mod tests { fn f() {} }\nuse super::super::d;"),
        ["d"].map(String::from).into()
    );

    let edges: Edges = [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]
        .into_iter()
        .map(|(from, to)| ((from.to_string(), to.to_string()), (PathBuf::new(), 1)))
        .collect();
    assert_eq!(
        find_cycle(&edges),
        Some(["a", "b", "c", "a"].map(String::from).to_vec())
    );
}

/// Every dependency between distinct top-level modules under `src`.
fn module_graph(src: &Path) -> Edges {
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("src/lib.rs is readable");
    let modules: BTreeSet<String> = blank(&lib)
        .lines()
        .filter_map(|line| {
            let rest = line
                .trim()
                .trim_start_matches("pub ")
                .strip_prefix("mod ")?;
            Some(rest.strip_suffix(';')?.trim().to_string())
        })
        .collect();
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let sources: Vec<(PathBuf, String)> = files
        .into_iter()
        .filter_map(|path| {
            let relative = path.strip_prefix(src).ok()?.to_path_buf();
            let top = relative
                .components()
                .next()?
                .as_os_str()
                .to_str()?
                .to_string();
            let top = top.trim_end_matches(".rs");
            // The crate root and the binary are wiring, not layers.
            if !modules.contains(top) {
                return None;
            }
            let text = std::fs::read_to_string(&path).ok()?;
            Some((relative, blank(&text)))
        })
        .collect();
    let macros = exported_macros(&sources);
    let mut edges = Edges::new();
    for (file, text) in &sources {
        let path = file_module(file);
        let from = path[0].clone();
        for (to, line) in references(path, text, &modules, &macros) {
            if to != from {
                edges
                    .entry((from.clone(), to))
                    .or_insert((Path::new("src").join(file), line));
            }
        }
    }
    edges
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file relative to `src`: `cuda/mod.rs` is `cuda`, `cuda/runner.rs` is
/// `cuda::runner`.
fn file_module(file: &Path) -> Vec<String> {
    let mut path: Vec<String> = file
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if path.len() > 1 && path.last().is_some_and(|last| last == "mod") {
        path.pop();
    }
    path
}

/// `#[macro_export]` macros live at the crate root; a caller depends on the module that
/// defines them.
fn exported_macros(sources: &[(PathBuf, String)]) -> BTreeMap<String, String> {
    let mut macros = BTreeMap::new();
    for (file, text) in sources {
        for (at, _) in text.match_indices("#[macro_export]") {
            let rest = &text[at..];
            if let Some(start) = rest.find("macro_rules!") {
                let name = identifier(rest[start + "macro_rules!".len()..].trim_start());
                macros.insert(name.to_string(), file_module(file)[0].clone());
            }
        }
    }
    macros
}

/// The top-level modules `text` names, with the line of each mention; `path` is the module
/// path of the file, for `super::`.
fn references(
    path: Vec<String>,
    text: &str,
    modules: &BTreeSet<String>,
    macros: &BTreeMap<String, String>,
) -> Vec<(String, usize)> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    // Inline modules (`mod tests { ... }`), with the brace depth each one opened at.
    let mut inline: Vec<usize> = Vec::new();
    let mut depth = 0;
    let mut line = 1;
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        let word_start = i == 0 || !is_ident_byte(bytes[i - 1]);
        match bytes[i] {
            b'\n' => line += 1,
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if inline.last() == Some(&depth) {
                    inline.pop();
                }
            }
            _ if word_start && rest.starts_with("mod ") => {
                let after = rest["mod ".len()..].trim_start();
                let name = identifier(after);
                if after[name.len()..].trim_start().starts_with('{') {
                    inline.push(depth);
                }
            }
            _ if word_start && (rest.starts_with("crate::") || rest.starts_with("super::")) => {
                let (mut at, resolved) = if rest.starts_with("crate::") {
                    ("crate::".len(), Vec::new())
                } else {
                    let mut module = path.clone();
                    module.extend(inline.iter().map(|_| String::from("<inline>")));
                    let mut at = 0;
                    while rest[at..].starts_with("super::") {
                        module.pop();
                        at += "super::".len();
                    }
                    (at, module)
                };
                at += rest[at..].len() - rest[at..].trim_start().len();
                let names: Vec<String> = if let Some(top) = resolved.first() {
                    vec![top.clone()]
                } else if rest[at..].starts_with('{') {
                    group_heads(&rest[at + 1..])
                } else {
                    vec![identifier(&rest[at..]).to_string()]
                };
                for name in names {
                    if modules.contains(&name) {
                        found.push((name, line));
                    } else if let Some(module) = macros.get(&name) {
                        found.push((module.clone(), line));
                    }
                }
                // Past the prefix, so `super::super::` is read once, as a whole.
                i += at;
                continue;
            }
            _ => {}
        }
        i += rest.chars().next().map_or(1, char::len_utf8);
    }
    found
}

/// The first name of each item of a `{a::b, c, d::{e, f}}` group, up to its closing brace.
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut expect_head = true;
    for (at, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => expect_head = true,
            c if expect_head && !c.is_whitespace() => {
                heads.push(identifier(&group[at..]).to_string());
                expect_head = false;
            }
            _ => {}
        }
    }
    heads
}

fn identifier(text: &str) -> &str {
    let end = text
        .bytes()
        .position(|b| !is_ident_byte(b))
        .unwrap_or(text.len());
    &text[..end]
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `text` with comments, string literals and character literals replaced by spaces (newlines
/// kept, so line numbers hold), leaving only code.
fn blank(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank_to = |out: &mut String, from: usize, to: usize| {
        for &c in &chars[from..to.min(chars.len())] {
            out.push(if c == '\n' { '\n' } else { ' ' });
        }
    };
    let starts = |at: usize, s: &str| {
        s.chars()
            .enumerate()
            .all(|(k, c)| chars.get(at + k) == Some(&c))
    };
    while i < chars.len() {
        let c = chars[i];
        let prev_ident = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        let end = if starts(i, "//") {
            (i..chars.len())
                .find(|&k| chars[k] == '\n')
                .unwrap_or(chars.len())
        } else if starts(i, "/*") {
            let mut nesting = 0;
            let mut k = i;
            loop {
                if k >= chars.len() {
                    break k;
                } else if starts(k, "/*") {
                    nesting += 1;
                    k += 2;
                } else if starts(k, "*/") {
                    nesting -= 1;
                    k += 2;
                    if nesting == 0 {
                        break k;
                    }
                } else {
                    k += 1;
                }
            }
        } else if !prev_ident && (c == 'r' || starts(i, "br")) && {
            let k = i + if c == 'r' { 1 } else { 2 };
            let hashes = (k..chars.len()).take_while(|&h| chars[h] == '#').count();
            chars.get(k + hashes) == Some(&'"')
        } {
            let k = i + if c == 'r' { 1 } else { 2 };
            let hashes = (k..chars.len()).take_while(|&h| chars[h] == '#').count();
            let close: String = std::iter::once('"')
                .chain("#".repeat(hashes).chars())
                .collect();
            let body = k + hashes + 1;
            (body..chars.len())
                .find(|&h| starts(h, &close))
                .map_or(chars.len(), |h| h + close.chars().count())
        } else if c == '"' {
            let mut k = i + 1;
            while k < chars.len() && chars[k] != '"' {
                k += if chars[k] == '\\' { 2 } else { 1 };
            }
            k + 1
        } else if c == '\'' && chars.get(i + 1) == Some(&'\\') {
            (i + 2..chars.len())
                .find(|&k| chars[k] == '\'')
                .map_or(chars.len(), |k| k + 1)
        } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
            i + 3
        } else {
            out.push(c);
            i += 1;
            continue;
        };
        blank_to(&mut out, i, end);
        i = end;
    }
    out
}

/// One cycle, as `[a, b, ..., a]`, or `None` when the graph has none.
fn find_cycle(edges: &Edges) -> Option<Vec<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in edges.keys() {
        next.entry(from).or_default().push(to);
    }
    // Depth-first search; a module met again while still on the path closes a cycle.
    fn visit<'a>(
        node: &'a str,
        next: &BTreeMap<&'a str, Vec<&'a str>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|&n| n == node) {
            let mut cycle: Vec<String> = path[start..].iter().map(|n| n.to_string()).collect();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if !done.insert(node) {
            return None;
        }
        path.push(node);
        for &to in next.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(to, next, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    let starts: Vec<&str> = next.keys().copied().collect();
    starts
        .into_iter()
        .find_map(|node| visit(node, &next, &mut Vec::new(), &mut done))
}
