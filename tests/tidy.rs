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
    ("db", 2),
    ("crypto", 3),
    ("types", 3),
    ("document", 4),
    ("block", 5),
    ("store", 6),
    ("connect", 6),
    ("source", 6),
    ("config", 7),
    ("provision", 7),
    ("wire", 7),
    ("audit", 7),
    ("auth", 7),
    ("remote", 8),
    ("registry", 9),
    ("server", 10),
    ("cli", 11),
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
