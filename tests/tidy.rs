//! The README's invariant "data flows one way", enforced: reads every `crate::...` path
//! in `src/` and fails when a module uses one on its own floor or above it (in the
//! spirit of rust-analyzer's tidy tests). Floors, lowest first, are the table below;
//! a new module must be given one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Each top-level module's floor. A module may use only modules on lower floors.
const FLOORS: &[(&str, u8)] = &[
    ("error", 1),
    ("name", 2),
    ("files", 2),
    ("process", 1),
    ("time", 2),
    ("dsn", 2),
    ("metrics", 2),
    ("db", 2),
    ("crypto", 3),
    ("types", 3),
    ("document", 4),
    ("template", 2),
    ("mask", 5),
    ("supervise", 6),
    ("block", 5),
    ("store", 6),
    ("connect", 6),
    ("source", 6),
    ("config", 7),
    ("provision", 7),
    ("audit", 7),
    ("auth", 7),
    ("wire", 8),
    ("remote", 9),
    ("registry", 10),
    ("server", 11),
    ("cli", 12),
];

/// Interfaces reach the store only through the registry; no file in `cli/` or
/// `server/` may name it.
const INTERFACES_USING_THE_STORE: &[&str] = &[];

fn floor(module: &str) -> Option<u8> {
    FLOORS.iter().find(|(m, _)| *m == module).map(|(_, f)| *f)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`src/connect/pool.rs` → `connect`).
fn module_of(root: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(root.join("src")).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// Every `crate::NAME` in the file's code (comments and doc comments left out).
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
            rest = after;
        }
    }
    found
}

#[test]
fn data_flows_one_way() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files.sort();
    let mut wrong = Vec::new();
    for file in &files {
        let module = module_of(root, file);
        if module == "main" || module == "lib" {
            continue;
        }
        let own = floor(&module)
            .unwrap_or_else(|| panic!("module {module} has no floor in tests/tidy.rs"));
        let text = std::fs::read_to_string(file).unwrap();
        for used in crate_paths(&text) {
            if used == module {
                continue;
            }
            // Re-exports at the crate root (`crate::Error`) are the error module's.
            let Some(theirs) = floor(&used).or_else(|| (used == "Error").then_some(1)) else {
                continue;
            };
            if theirs >= own {
                wrong.push(format!(
                    "{} ({module}, floor {own}) uses crate::{used} (floor {theirs})",
                    file.strip_prefix(root).unwrap().display()
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that do not flow down:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn interfaces_reach_the_store_only_where_listed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src/cli"), &mut files);
    rust_files(&root.join("src/server"), &mut files);
    let mut using: Vec<String> = files
        .iter()
        .filter(|f| crate_paths(&std::fs::read_to_string(f).unwrap()).contains("store"))
        .map(|f| f.strip_prefix(root).unwrap().display().to_string())
        .collect();
    using.sort();
    assert_eq!(
        using, INTERFACES_USING_THE_STORE,
        "an interface file uses the store directly; add a registry method instead"
    );
}

#[test]
fn the_checker_sees_an_upward_import() {
    let text = "use crate::registry::Registry; // fine\n/// crate::cli in a doc\n";
    let paths = crate_paths(text);
    assert!(paths.contains("registry"));
    assert!(!paths.contains("cli"));
    assert!(floor("registry") > floor("store"));
}

#[test]
fn frameworks_stay_at_the_edges() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut wrong = Vec::new();
    for file in &files {
        let module = module_of(root, file);
        for (framework, home) in [("rocket::", "server"), ("clap::", "cli")] {
            if module == home || module == "main" {
                continue;
            }
            let text = std::fs::read_to_string(file).unwrap();
            let code = text
                .lines()
                .map(|l| l.split("//").next().unwrap_or_default());
            if code.clone().any(|l| l.contains(framework)) {
                wrong.push(format!(
                    "{} uses {framework}",
                    file.strip_prefix(root).unwrap().display()
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "framework types outside their edge:\n{}",
        wrong.join("\n")
    );
}

/// Floors inside a folder: (folder under `src/`, each file's floor, the names its
/// `mod.rs` holds that the files below may use). A file may use only siblings on lower
/// floors; `mod.rs` mounts them all and is above every one. A subfolder counts as one
/// file of its parent (`server/ui/*.rs` are `ui` to `server/`).
/// A folder, its files' floors, and the names its `mod.rs` lends to them.
type Floors = (
    &'static str,
    &'static [(&'static str, u8)],
    &'static [&'static str],
);

const INNER_FLOORS: &[Floors] = &[
    (
        "server",
        &[
            ("response", 1),
            ("prefect_shapes", 1),
            ("prefect_cors", 1),
            ("cache", 2),
            ("sessions", 1),
            ("slots", 1),
            ("limits", 1),
            ("metrics", 1),
            ("state", 3),
            ("guard", 4),
            ("policy", 5),
            ("http", 5),
            ("reads", 6),
            ("tasks", 6),
            ("changes", 6),
            ("blocks", 7),
            ("types", 7),
            ("audit", 7),
            ("tokens", 7),
            ("databases", 7),
            ("leases", 7),
            ("transfer", 7),
            ("prefect", 8),
            ("prefect_types", 7),
            ("prefect_saves", 9),
            ("service", 7),
            ("upstream_ws", 5),
            ("upstream", 7),
            ("ui", 9),
        ],
        &[],
    ),
    (
        "server/ui",
        &[
            ("pages", 1),
            ("form", 1),
            ("assets", 1),
            ("filled", 2),
            ("block_page", 3),
            ("form_page", 3),
            ("viewing", 4),
            ("login", 5),
            ("browse", 6),
            ("admin", 6),
            ("undo", 6),
            ("edit", 7),
        ],
        &[],
    ),
    (
        "registry",
        &[
            ("crash", 1),
            ("keys", 2),
            ("local", 3),
            ("handle", 4),
            ("rotation", 5),
            ("leases", 5),
            ("leased_pool", 6),
            ("connections", 6),
            ("references", 5),
            ("fleet", 5),
            ("apply", 5),
            ("admin", 6),
            ("backup", 6),
            ("databases", 6),
            ("transfer", 6),
        ],
        &[],
    ),
    (
        "cli",
        &[
            ("terminal", 0),
            ("suggest", 1),
            ("output", 1),
            ("input", 1),
            ("flags", 1),
            ("connect", 2),
            ("db", 2),
            ("leases", 2),
            ("login", 2),
            ("admin", 2),
            ("backup", 2),
            ("server", 2),
            ("transfer", 2),
            ("blocks", 3),
            ("docs", 3),
            ("run", 3),
            ("inject", 4),
        ],
        &[],
    ),
];

/// Every `PREFIX NAME` in the file's code (comments left out).
fn paths_after(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(i) = rest.find(prefix) {
            let after = &rest[i + prefix.len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            // `use super::{a, b}`: each name in the braces.
            if let Some(braced) = after.strip_prefix('{') {
                let inside = braced.split('}').next().unwrap_or_default();
                for part in inside.split(',') {
                    let part = part.trim().split("::").next().unwrap_or_default().trim();
                    if !part.is_empty() && part != "self" {
                        found.insert(part.to_owned());
                    }
                }
            } else if !name.is_empty() {
                found.insert(name);
            }
            rest = after;
        }
    }
    found
}

/// The sibling a file is, inside `folder` (`src/server/ui/edit.rs` is `ui` in `server`).
fn sibling_of(root: &Path, folder: &str, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(root.join("src").join(folder)).ok()?;
    let first = rel.components().next()?.as_os_str().to_string_lossy();
    Some(first.trim_end_matches(".rs").to_owned())
}

fn inner_upward_imports(root: &Path) -> Vec<String> {
    let mut wrong = Vec::new();
    for (folder, floors, front) in INNER_FLOORS {
        let floor_of = |m: &str| floors.iter().find(|(n, _)| *n == m).map(|(_, f)| *f);
        let mut files = Vec::new();
        rust_files(&root.join("src").join(folder), &mut files);
        for file in &files {
            let Some(me) = sibling_of(root, folder, file) else {
                continue;
            };
            if me == "mod" {
                continue;
            }
            let own = floor_of(&me)
                .unwrap_or_else(|| panic!("{folder}/{me} has no floor in tests/tidy.rs"));
            let text = std::fs::read_to_string(file).unwrap();
            let direct = file.parent() == Some(&root.join("src").join(folder));
            let mut used = paths_after(&text, &format!("crate::{}::", folder.replace('/', "::")));
            if direct {
                used.extend(paths_after(&text, "super::"));
            }
            for name in used {
                if name == me || name == "super" || front.contains(&name.as_str()) {
                    continue;
                }
                match floor_of(&name) {
                    Some(theirs) if theirs < own => {}
                    Some(theirs) => wrong.push(format!(
                        "{} ({me}, floor {own}) uses {folder}::{name} (floor {theirs})",
                        file.strip_prefix(root).unwrap().display()
                    )),
                    None => wrong.push(format!(
                        "{} uses {folder}::{name}, which its mod.rs holds; give it a file",
                        file.strip_prefix(root).unwrap().display()
                    )),
                }
            }
        }
    }
    wrong
}

#[test]
fn inside_a_folder_imports_flow_down_too() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let wrong = inner_upward_imports(root);
    assert!(
        wrong.is_empty(),
        "imports inside a folder that do not flow down:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_inner_checker_reads_braced_imports() {
    let text = "use super::{policy::Access, state::{State, blocking}};\nuse super::guard::Ctx;";
    let paths = paths_after(text, "super::");
    assert!(paths.contains("policy") && paths.contains("state") && paths.contains("guard"));
}

/// Each function's length in lines, from its `fn` line to its closing brace.
fn long_functions(text: &str, limit: usize) -> Vec<(usize, String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut long = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let signature = trimmed
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("pub(super) ")
            .trim_start_matches("pub ")
            .trim_start_matches("const ")
            .trim_start_matches("async ");
        let Some(rest) = signature.strip_prefix("fn ") else {
            continue;
        };
        if line.trim_end().ends_with(';') {
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let close = format!("{indent}}}");
        if let Some(end) = lines[i + 1..].iter().position(|l| *l == close) {
            let length = end + 2;
            if length > limit {
                long.push((i + 1, name, length));
            }
        }
    }
    long
}

#[test]
fn no_function_is_over_60_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files.sort();
    let mut wrong = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (line, name, length) in long_functions(&text, 60) {
            wrong.push(format!(
                "{}:{line} fn {name} is {length} lines",
                file.strip_prefix(root).unwrap().display()
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "functions over 60 lines:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_file_in_the_server_is_over_400_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src/server"), &mut files);
    let mut wrong: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let lines = std::fs::read_to_string(f).unwrap().lines().count();
            (lines > 400).then(|| format!("{} has {lines} lines", f.display()))
        })
        .collect();
    wrong.sort();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_length_checker_counts_a_function() {
    let text = "fn a() {\n    1;\n    2;\n}\n    pub async fn b(x: u8) -> u8 {\n        x\n    }\n";
    assert_eq!(long_functions(text, 3), vec![(1, "a".to_owned(), 4)]);
}

/// The code map (docs/architecture.md) names every Rust file of the crate, its tests and its
/// benchmarks (by path, or by file name or stem inside its folder's row), so a new file
/// is placed on the map when it is made.
#[test]
fn the_code_map_names_every_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("docs/architecture.md")).unwrap();
    let start = readme
        .find("## Code map")
        .expect("docs/architecture.md has a code map");
    let end = start + readme[start..].find("## Invariants").unwrap();
    let map = &readme[start..end];
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches", "examples"] {
        rust_files(&root.join(dir), &mut files);
    }
    let missing: Vec<String> = files
        .iter()
        .map(|f| f.strip_prefix(root).unwrap().to_string_lossy().into_owned())
        .filter(|rel| !rel.contains("/snapshots/"))
        .filter(|rel| {
            let name = rel.rsplit('/').next().unwrap();
            let stem = name.trim_end_matches(".rs");
            ![rel.as_str(), &format!("`{name}`"), &format!("`{stem}`")]
                .iter()
                .any(|needle| map.contains(needle))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "not on the code map in docs/architecture.md: {missing:?}"
    );
}
