//! `new-backend` output: what was created (status lines, hidden by `-q`), then the
//! commands that build it and make `ostree-build backends` find it (the answer, always);
//! warnings on stderr.

use super::outln;
use ostree_build_core::ops::new_backend::NewBackend;

pub fn created(n: &NewBackend) {
    if !super::quiet() {
        outln!(
            "{:>9} {} backend `{}` in {}",
            "Created",
            n.kind,
            n.name,
            n.dir.display()
        );
        for file in &n.files {
            outln!("{:>9} {file}", "");
        }
        outln!("");
    }
    outln!(
        "Next (the built backend lands in {}):",
        n.plugin_dir.display()
    );
    for step in &n.steps {
        outln!("  {step}");
    }
    for w in &n.warnings {
        eprintln!("warning: {w}");
    }
}
