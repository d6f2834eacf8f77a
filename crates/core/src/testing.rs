//! For the tests that read the workspace's own code (types that must not derive `Debug`, the
//! crates' table ownership).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

/// Appends every `.rs` file under `dir` to `out`.
pub fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}
