//! The examples in the crate's docs compile in a user's crate, not only as doc tests.
//!
//! A doc test sees every dependency of this crate, `http` among them; a user who copies
//! the example may not have it. So an example that names `http::` must take it from the
//! re-export (`use tower_jsonrpc_retry::http`, or `tower_jsonrpc_retry::{.., http}`), as
//! the crate docs tell users to.

use std::path::{Path, PathBuf};

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

/// Whether `line` names `http::` as a path of its own (not `hyper::http::`, nor
/// `tower_jsonrpc_retry::http::`, nor a word ending in `http`).
fn names_http(line: &str) -> bool {
    line.match_indices("http::").any(|(at, _)| {
        !line[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
    })
}

/// Whether a `use tower_jsonrpc_retry::…` line imports the `http` module itself (not
/// only something inside it, such as `http::StatusCode`), `http::{self, …}` included.
fn imports_module(code: &str) -> bool {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    code.ends_with("::http;")
        || code.contains("::http::{self,")
        || code.contains("::http::{self}")
        || ["{http,", "{http}", ",http,", ",http}"]
            .iter()
            .any(|form| code.contains(form))
}

/// Each doc example in `source` that names `http::` without importing the re-export:
/// the line where it starts.
fn unimported(source: &str) -> Vec<usize> {
    let mut found = Vec::new();
    // The example's first line, whether it names `http::`, whether it imports it.
    let mut open: Option<(usize, bool, bool)> = None;
    for (n, line) in source.lines().enumerate() {
        let Some(doc) = ["///", "//!"]
            .iter()
            .find_map(|p| line.trim_start().strip_prefix(p))
        else {
            open = None;
            continue;
        };
        let doc = doc.strip_prefix(' ').unwrap_or(doc);
        if let Some(lang) = doc.strip_prefix("```") {
            open = match open {
                Some((start, true, false)) => {
                    found.push(start + 1);
                    None
                }
                Some(_) => None,
                None if lang.contains("text") => Some((n, false, true)),
                None => Some((n, false, false)),
            };
            continue;
        }
        if let Some((_, names, imports)) = &mut open {
            let code = doc.trim_start_matches('#').trim_start();
            if code.starts_with("use tower_jsonrpc_retry::") && imports_module(code) {
                *imports = true;
            }
            *names |= if code.starts_with("use ") {
                code.starts_with("use http::")
            } else {
                names_http(code)
            };
        }
    }
    found
}

#[test]
fn doc_examples_take_http_from_the_re_export() {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    files.sort();
    let mut missing = Vec::new();
    for file in &files {
        let source = std::fs::read_to_string(file).unwrap();
        for line in unimported(&source) {
            missing.push(format!("{}:{line}", file.display()));
        }
    }
    assert!(
        missing.is_empty(),
        "doc examples naming `http::` without `use tower_jsonrpc_retry::http`: {missing:#?}"
    );
    assert!(files.len() > 20, "the sources were found");
}

#[test]
fn the_check_finds_an_example_without_the_import() {
    let without = "/// ```\n/// let s = http::StatusCode::OK;\n/// ```\n";
    assert_eq!(unimported(without), [1]);
    let with = "/// ```\n/// use tower_jsonrpc_retry::{Client, http};\n/// let s = http::StatusCode::OK;\n/// ```\n";
    assert!(unimported(with).is_empty());
    let other =
        "//! ```\n//! let s = hyper::http::StatusCode::OK;\n//! let u = \"http://x\";\n//! ```\n";
    assert!(unimported(other).is_empty());
    let inside = "/// ```\n/// use tower_jsonrpc_retry::http::StatusCode;\n/// let h = http::header::ACCEPT;\n/// ```\n";
    assert_eq!(
        unimported(inside),
        [1],
        "an item of the module is not the module"
    );
    let with_self = "/// ```\n/// use tower_jsonrpc_retry::http::{self, StatusCode};\n/// let r = http::Request::new(());\n/// ```\n";
    assert!(
        unimported(with_self).is_empty(),
        "`self` imports the module"
    );
    let bare = "    /// ```\n    /// use http::StatusCode;\n    /// ```\n";
    assert_eq!(unimported(bare), [1]);
    let text = "//! ```text\n//! http::Request\n//! ```\n";
    assert!(unimported(text).is_empty());
}
