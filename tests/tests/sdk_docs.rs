//! docs/PLUGINS.md shows only Rust that CI compiles: every Rust block in it is one of the
//! sdk README's, which is the sdk's crate documentation and so runs as its doctests
//! (`cargo test --doc`, in scripts/test.sh).

use std::path::Path;

/// The Rust code blocks of a Markdown file: (info string, body).
fn rust_blocks(markdown: &str) -> Vec<(String, String)> {
    let mut blocks = vec![];
    let mut current: Option<(String, String)> = None;
    for line in markdown.lines() {
        match current.as_mut() {
            Some(_) if line.trim_end() == "```" => blocks.extend(current.take()),
            Some((_, body)) => {
                body.push_str(line);
                body.push('\n');
            }
            None if line.starts_with("```rust") => {
                current = Some((line.trim_start_matches('`').to_string(), String::new()))
            }
            None => {}
        }
    }
    blocks
}

fn read(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_rust_block_of_plugins_md_is_a_doctest_of_the_sdk() {
    let readme = rust_blocks(&read("sdk/README.md"));
    let plugins = rust_blocks(&read("docs/PLUGINS.md"));
    assert!(
        plugins
            .iter()
            .any(|(info, body)| info == "rust,no_run" && body.contains("impl Backend for")),
        "PLUGINS.md lost its complete example"
    );
    for (info, body) in &plugins {
        assert!(
            readme.iter().any(|(i, b)| i == info && b == body),
            "this ```{info} block of docs/PLUGINS.md is not one of sdk/README.md's (the doctests); copy it there or from there:\n{body}"
        );
    }
}
