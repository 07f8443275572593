//! The module layers of `pinwheel`, checked on its sources: no two top-level modules import
//! each other, directly or around a circle, and `task/` (the bottom layer) names nothing above
//! it but the one re-export that makes `task::Builder` public. ARCHITECTURE.md draws the layers.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// The top-level modules each top-level module of `src/` names through `crate::`.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut dirs = vec![src.clone()];
    while let Some(d) = dirs.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    let modules: BTreeSet<String> = files
        .iter()
        .map(|f| top_module(&src, f))
        .filter(|m| m != "lib")
        .collect();
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let me = top_module(&src, f);
        let rel = f
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let text = fs::read_to_string(f).unwrap();
        let entry = g.entry(me.clone()).or_default();
        let mut code = String::new();
        for line in text.lines() {
            let line = line.split("//").next().unwrap_or("");
            // The public face of `task`: re-exports from above, so users find them there.
            if rel == "task/mod.rs" && line.trim_start().starts_with("pub use crate::") {
                continue;
            }
            code.push_str(line);
            code.push('\n');
        }
        for name in crate_names(&code) {
            if name != me && modules.contains(&name) {
                entry.insert(name);
            }
        }
    }
    g
}

fn top_module(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// The first path segment after each `crate::` (`crate::{a, b::{c, d}}` gives a and b).
fn crate_names(code: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        let Some(group) = rest.strip_prefix('{') else {
            out.push(ident(rest));
            continue;
        };
        // The top-level names of the group: those after its opening brace or a comma at
        // depth 0.
        let mut depth = 0;
        let mut start = true;
        for (j, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => start = true,
                c if start && !c.is_whitespace() => {
                    start = false;
                    let name = ident(&group[j..]);
                    if !name.is_empty() {
                        out.push(name);
                    }
                }
                _ => {}
            }
        }
    }
    out
}

#[test]
fn no_import_circle_among_modules() {
    let g = graph();
    // Depth-first search for a back edge; report the circle it closes.
    fn visit(
        g: &BTreeMap<String, BTreeSet<String>>,
        m: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if let Some(i) = path.iter().position(|p| p == m) {
            panic!(
                "import circle among pinwheel's modules: {} -> {m}; the lower module must not name the upper one (see ARCHITECTURE.md, Layers)",
                path[i..].join(" -> ")
            );
        }
        if done.contains(m) {
            return;
        }
        path.push(m.to_owned());
        for n in g.get(m).into_iter().flatten() {
            visit(g, n, path, done);
        }
        path.pop();
        done.insert(m.to_owned());
    }
    let mut done = BTreeSet::new();
    for m in g.keys() {
        visit(&g, m, &mut Vec::new(), &mut done);
    }
}

#[test]
fn task_is_the_bottom_layer() {
    let g = graph();
    let above: Vec<_> = g["task"].iter().filter(|m| *m != "loom").collect();
    assert!(
        above.is_empty(),
        "task/ names {above:?}: the task layer may use only `loom` (reach a scheduler through the `Schedule` trait)"
    );
}

#[test]
fn the_checker_sees_imports() {
    // The scan itself works: known edges are found.
    let g = graph();
    assert!(g["scheduler"].contains("task"));
    assert!(g["time"].contains("scheduler"));
    assert_eq!(
        crate_names("use crate::{\n    a,\n    b::{c, d},\n}; crate::e::f"),
        ["a", "b", "e"]
    );
}
