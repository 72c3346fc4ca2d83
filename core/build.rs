//! Compiles the built-in distro templates into the library: every folder of the workspace's
//! `templates/` that holds a `template.toml` becomes one entry of `$OUT_DIR/templates.rs`,
//! each file an `include_bytes!` with its mode, each symlink its target (what the
//! `include_dir` crate would do, plus the modes and symlinks it drops).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut code = String::from("&[\n");
    for dir in sorted_entries(&root) {
        if !dir.join("template.toml").is_file() {
            continue;
        }
        let name = dir
            .file_name()
            .unwrap()
            .to_str()
            .expect("UTF-8 template name");
        writeln!(code, "    Embedded {{ name: {name:?}, files: &[").unwrap();
        let mut files = Vec::new();
        walk(&dir, &dir, &mut files);
        for f in files {
            writeln!(code, "        {f},").unwrap();
        }
        code.push_str("    ] },\n");
    }
    code.push_str("]\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("templates.rs");
    std::fs::write(out, code).unwrap();
}

/// The entries of `dir`, sorted by name, so the generated code is stable.
fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    entries
}

/// One `EmbeddedFile { .. }` expression per file and symlink below `dir`.
fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
    use std::os::unix::fs::PermissionsExt;
    for path in sorted_entries(dir) {
        let rel = path
            .strip_prefix(base)
            .unwrap()
            .to_str()
            .expect("UTF-8 path");
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path).unwrap();
            let target = target.to_str().expect("UTF-8 symlink target");
            out.push(format!(
                "EmbeddedFile {{ path: {rel:?}, mode: 0o777, link: Some({target:?}), data: b\"\" }}"
            ));
        } else if meta.is_dir() {
            walk(base, &path, out);
        } else if meta.is_file() {
            let mode = meta.permissions().mode() & 0o7777;
            let abs = path.canonicalize().unwrap();
            out.push(format!(
                "EmbeddedFile {{ path: {rel:?}, mode: {mode:#o}, link: None, data: include_bytes!({:?}) }}",
                abs.to_str().expect("UTF-8 path")
            ));
        }
    }
}
