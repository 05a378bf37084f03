//! The shape of `src/` that the README's Architecture section describes: one folder per layer,
//! in pipeline order, each importing only the layers before it; a handful of files at the
//! top; no library file much longer than 600 lines; no `Result<_, String>` in library code.
//! Read from the source text (tests, after `#[cfg(test)]`, are left out).

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
};

use crate::support::repo_root;

/// The layers, in pipeline order.
const LAYERS: [&str; 9] = [
    "source", "input", "spec", "render", "ssh", "remote", "deploy", "drill", "cli",
];

/// About 600 lines: past this, a file is split along its seams.
const MAX_LINES: usize = 650;

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// A file's text up to its first `#[cfg(test)]` line: what the library is made of.
fn library_text(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .take_while(|l| !l.starts_with("#[cfg(test)]"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The top-level modules of the crate a text names: `crate::spec::X`, and the names at the
/// first level of `crate::{spec::X, source::{Y, Z}}`.
fn crate_modules(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut expecting = true;
            let mut word = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    break;
                }
                if depth == 1 && (c.is_alphanumeric() || c == '_') {
                    if expecting {
                        word.push(c);
                    }
                    continue;
                }
                if !word.is_empty() {
                    names.insert(std::mem::take(&mut word));
                }
                if depth == 1 && c == ',' {
                    expecting = true;
                } else if !c.is_whitespace() {
                    expecting = false;
                }
            }
        } else {
            let word: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            names.insert(word);
        }
    }
    names
}

#[test]
fn crate_modules_reads_paths_and_groups() {
    let text = "use crate::{\n    source::{Diagnostic, Node},\n    spec::HostSpec,\n};\n\
                fn f() { crate::render::go(); }\n";
    assert_eq!(
        crate_modules(text),
        ["render", "source", "spec"].map(String::from).into()
    );
}

#[test]
fn each_layer_imports_only_the_layers_before_it() {
    let src = repo_root().join("src");
    let mut wrong = Vec::new();
    for (rank, layer) in LAYERS.iter().enumerate() {
        for file in rust_files(&src.join(layer)) {
            for module in crate_modules(&library_text(&file)) {
                if let Some(other) = LAYERS.iter().position(|l| *l == module)
                    && other > rank
                {
                    wrong.push(format!(
                        "{} imports {module}/, a later layer",
                        file.strip_prefix(repo_root()).unwrap().display()
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn src_is_the_layer_folders_each_with_its_doc_and_a_handful_of_files() {
    let src = repo_root().join("src");
    let mut folders = BTreeSet::new();
    let mut files = BTreeSet::new();
    for entry in fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            folders.insert(name);
        } else if name.ends_with(".rs") {
            files.insert(name);
        }
    }
    assert_eq!(folders, LAYERS.map(String::from).into(), "src/'s folders");
    assert!(
        files.len() <= 6,
        "src/ holds {} .rs files at its top: {files:?}",
        files.len()
    );
    for layer in LAYERS {
        let doc = fs::read_to_string(src.join(layer).join("mod.rs")).unwrap();
        assert!(
            doc.starts_with("//! "),
            "src/{layer}/mod.rs starts without a doc comment saying what the layer takes and returns"
        );
    }
}

#[test]
fn no_library_file_is_much_longer_than_600_lines() {
    let long: Vec<String> = rust_files(&repo_root().join("src"))
        .into_iter()
        .filter_map(|file| {
            let lines = library_text(&file).lines().count();
            (lines > MAX_LINES).then(|| {
                format!(
                    "{}: {lines} lines before its tests",
                    file.strip_prefix(repo_root()).unwrap().display()
                )
            })
        })
        .collect();
    assert!(
        long.is_empty(),
        "split these along their seams:\n{}",
        long.join("\n")
    );
}

#[test]
fn library_errors_are_typed_not_strings() {
    let src = repo_root().join("src");
    let mut found = Vec::new();
    for file in rust_files(&src) {
        // clap's value parsers return `Result<_, String>`, as clap asks
        if file == src.join("main.rs") {
            continue;
        }
        for (i, line) in library_text(&file).lines().enumerate() {
            if line.contains("Result<") && line.contains(", String>") {
                found.push(format!(
                    "{}:{}: {}",
                    file.strip_prefix(repo_root()).unwrap().display(),
                    i + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}
