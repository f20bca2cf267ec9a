//! The files of each crate depend on each other one way: no import cycles.
//!
//! A file depends on another when it names an item of it through `crate::` or `super::` (in a
//! `use` or inline). An item a parent module only re-exports is followed to the file that
//! defines it, so a facade (`lib.rs`, a `mod.rs` of `mod` and `pub use` lines) is no cycle with
//! its children; a file's own `pub use` and `mod` lines are declarations, not dependencies.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One source file: its module path (`worker::find`; the root is empty) and text.
struct SourceFile {
    module: Vec<String>,
    path: PathBuf,
    text: String,
}

/// Every `.rs` file under a crate's `src/`, with its module path.
fn crate_files(src: &Path) -> Vec<SourceFile> {
    let mut files = Vec::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap();
            let mut module: Vec<String> = rel
                .iter()
                .map(|c| c.to_string_lossy().trim_end_matches(".rs").to_owned())
                .collect();
            if matches!(
                module.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                module.pop();
            }
            let text = strip_comments_and_strings(&std::fs::read_to_string(&path).unwrap());
            files.push(SourceFile { module, path, text });
        }
    }
    files
}

/// The text with comments and the contents of string and char literals blanked, so a path in
/// a doc comment or a message is not read as a dependency.
fn strip_comments_and_strings(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let end = text[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
            i = end;
        } else if b[i] == b'r' && (b[i..].starts_with(b"r\"") || b[i..].starts_with(b"r#")) {
            let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
            if b.get(i + 1 + hashes) != Some(&b'"') {
                out.push('r');
                i += 1;
                continue;
            }
            let close = format!("\"{}", "#".repeat(hashes));
            let start = i + 2 + hashes;
            i = text[start..]
                .find(&close)
                .map_or(b.len(), |e| start + e + close.len());
            out.push_str("\"\"");
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && is_char_literal(&text[i..]) {
            i += 1;
            while i < b.len() && b[i] != b'\'' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("' '");
        } else {
            let c = text[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// Whether the `'` that `rest` starts with opens a char literal (`'a'`, `'\n'`) rather than a
/// lifetime (`'a`).
fn is_char_literal(rest: &str) -> bool {
    let mut chars = rest.chars().skip(1);
    match chars.next() {
        Some('\\') => true,
        Some(_) => chars.next() == Some('\''),
        None => false,
    }
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Expands a `use` tree such as `a::{b::C, d}` into its paths (`a::b::C`, `a::d`).
fn expand_use_tree(tree: &str) -> Vec<String> {
    let tree: String = tree.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(open) = tree.find('{') else {
        return vec![tree.split(" as ").next().unwrap_or(&tree).to_owned()];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .flat_map(expand_use_tree)
        .map(|p| {
            if p == "self" {
                prefix.trim_end_matches("::").to_owned()
            } else {
                format!("{prefix}{p}")
            }
        })
        .collect()
}

/// The `crate::…` and `super::…` paths a file names, made absolute (module segments then the
/// item), skipping `pub use` re-exports. `super` is taken relative to the inline module it is
/// written in (a `mod tests { use super::* }` names its own file).
fn named_paths(file: &SourceFile) -> Vec<Vec<String>> {
    let text = &file.text;
    let b = text.as_bytes();
    let mut paths = Vec::new();
    // Inline modules open at these brace depths.
    let mut inline: Vec<(usize, String)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        let at_word = i == 0 || !is_ident(b[i - 1]);
        match b[i] {
            b'{' => depth += 1,
            b'}' => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(d, _)| *d == depth) {
                    inline.pop();
                }
            }
            _ => {}
        }
        if at_word && text[i..].starts_with("mod ") {
            let rest = &text[i + 4..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let after = rest[name.len()..].trim_start();
            if after.starts_with('{') {
                inline.push((depth, name));
            }
        }
        let module: Vec<String> = file
            .module
            .iter()
            .cloned()
            .chain(inline.iter().map(|(_, n)| n.clone()))
            .collect();
        if at_word && text[i..].starts_with("pub use ") {
            // A re-export: skip to the end of the statement.
            i += text[i..].find(';').unwrap_or(text.len() - i);
            continue;
        }
        if at_word && text[i..].starts_with("use ") {
            let end = i + text[i..].find(';').unwrap_or(text.len() - i);
            for path in expand_use_tree(&text[i + 4..end]) {
                if let Some(abs) = absolute(&module, &path) {
                    paths.push(abs);
                }
            }
            i = end;
            continue;
        }
        if at_word && (text[i..].starts_with("crate::") || text[i..].starts_with("super::")) {
            let len = text[i..]
                .bytes()
                .take_while(|&c| is_ident(c) || c == b':')
                .count();
            if let Some(abs) = absolute(&module, text[i..i + len].trim_end_matches(':')) {
                paths.push(abs);
            }
            i += len;
            continue;
        }
        i += 1;
    }
    paths
}

/// `crate::a::B` or `super::super::a::B` written in `module` → `[a, B]`. A path with none of
/// `crate`, `super`, `self` is taken as relative to `module` (`use child::X`); `dependencies`
/// drops it when `module` has no such child (it names another crate).
fn absolute(module: &[String], path: &str) -> Option<Vec<String>> {
    let mut segments = path.split("::").filter(|s| !s.is_empty()).peekable();
    let mut base: Vec<String> = match segments.peek().copied() {
        Some("crate") => {
            segments.next();
            Vec::new()
        }
        Some("super") => module.to_vec(),
        Some("self") => {
            segments.next();
            module.to_vec()
        }
        Some(_) => module.to_vec(),
        None => return None,
    };
    while segments.peek() == Some(&"super") {
        segments.next();
        base.pop();
    }
    base.extend(segments.map(str::to_owned));
    Some(base)
}

/// Names a file defines at its top level (`pub struct X`, `fn y`, `mod z` …).
fn defined_names(file: &SourceFile) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in file.text.lines() {
        let mut words = line.split_whitespace().peekable();
        while let Some(&w) = words.peek() {
            if w.starts_with("pub") || matches!(w, "async" | "unsafe" | "const" | "default") {
                if w == "const" {
                    break;
                }
                words.next();
            } else {
                break;
            }
        }
        let kind = words.next();
        if matches!(
            kind,
            Some(
                "struct"
                    | "enum"
                    | "fn"
                    | "const"
                    | "static"
                    | "type"
                    | "trait"
                    | "union"
                    | "macro_rules!"
            )
        ) && let Some(name) = words.next()
        {
            let name: String = name
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            names.insert(name);
        }
    }
    names
}

/// The file-to-file dependencies of one crate.
fn dependencies(files: &[SourceFile]) -> BTreeMap<usize, BTreeSet<usize>> {
    let by_module: BTreeMap<&[String], usize> = files
        .iter()
        .enumerate()
        .map(|(i, f)| (f.module.as_slice(), i))
        .collect();
    let defines: Vec<BTreeSet<String>> = files.iter().map(defined_names).collect();
    let mut edges: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    for (from, file) in files.iter().enumerate() {
        for path in named_paths(file) {
            // The deepest file whose module the path runs through.
            let Some((depth, &target)) = (0..=path.len())
                .rev()
                .find_map(|n| by_module.get(&path[..n]).map(|t| (n, t)))
            else {
                continue;
            };
            let item = path.get(depth).map(String::as_str);
            let target = match item {
                // An item the module's file does not define itself: a re-export of a file
                // below it (or a glob), followed to the file that defines it.
                Some(item) if item != "*" && !defines[target].contains(item) => files
                    .iter()
                    .enumerate()
                    .find(|(i, f)| {
                        f.module.starts_with(&files[target].module)
                            && f.module.len() > files[target].module.len()
                            && defines[*i].contains(item)
                    })
                    .map_or(target, |(i, _)| i),
                _ => target,
            };
            if target != from && !file.module.starts_with(&files[target].module) {
                edges.entry(from).or_default().insert(target);
            } else if target != from && item.is_some_and(|i| i != "*") {
                // An item of an ancestor's own file (not a re-export): a real dependency.
                edges.entry(from).or_default().insert(target);
            }
        }
    }
    edges
}

/// A cycle among the files, as their paths, if there is one.
fn find_cycle(
    files: &[SourceFile],
    edges: &BTreeMap<usize, BTreeSet<usize>>,
) -> Option<Vec<String>> {
    fn visit(
        node: usize,
        edges: &BTreeMap<usize, BTreeSet<usize>>,
        state: &mut [u8],
        stack: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        state[node] = 1;
        stack.push(node);
        for &next in edges.get(&node).into_iter().flatten() {
            if state[next] == 1 {
                let start = stack.iter().position(|&n| n == next).unwrap();
                let mut cycle = stack[start..].to_vec();
                cycle.push(next);
                return Some(cycle);
            }
            if state[next] == 0
                && let Some(cycle) = visit(next, edges, state, stack)
            {
                return Some(cycle);
            }
        }
        stack.pop();
        state[node] = 2;
        None
    }
    let mut state = vec![0u8; files.len()];
    for start in 0..files.len() {
        if state[start] == 0
            && let Some(cycle) = visit(start, edges, &mut state, &mut Vec::new())
        {
            return Some(
                cycle
                    .iter()
                    .map(|&i| files[i].path.display().to_string())
                    .collect(),
            );
        }
    }
    None
}

#[test]
fn no_crate_has_an_import_cycle_between_its_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut srcs = vec![root.join("src")];
    for entry in std::fs::read_dir(root.join("crates")).unwrap() {
        srcs.push(entry.unwrap().path().join("src"));
    }
    srcs.sort();
    let mut cycles = Vec::new();
    for src in &srcs {
        let files = crate_files(src);
        assert!(!files.is_empty(), "no sources under {}", src.display());
        if let Some(cycle) = find_cycle(&files, &dependencies(&files)) {
            let prefix = format!("{}/", root.display());
            cycles.push(cycle.join(" -> ").replace(&prefix, ""));
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_checker_sees_a_cycle_and_follows_re_exports() {
    let file = |module: &str, text: &str| SourceFile {
        module: module
            .split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        path: PathBuf::from(if module.is_empty() { "lib.rs" } else { module }),
        text: strip_comments_and_strings(text),
    };
    let lib = "mod a; mod b; pub use a::A; pub use b::B;";
    // a -> b through the root's re-export, b -> a through super: a cycle.
    let cyclic = [
        file("", lib),
        file("a", "use crate::B; pub struct A;"),
        file("b", "pub struct B; fn f() -> super::a::A { todo!() }"),
    ];
    assert!(find_cycle(&cyclic, &dependencies(&cyclic)).is_some());
    // Only one way, and paths in comments, strings and tests' `super::*` do not count.
    let acyclic = [
        file("", lib),
        file(
            "a",
            "use crate::{B, b::{self}}; pub struct A; mod tests { use super::*; }",
        ),
        file(
            "b",
            "pub struct B; // crate::a::A\nconst S: &str = \"crate::a::A\";",
        ),
    ];
    assert_eq!(find_cycle(&acyclic, &dependencies(&acyclic)), None);
}
