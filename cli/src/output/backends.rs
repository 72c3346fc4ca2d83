//! `backends` output and the help text of the built-in triggers.

use super::outln;
use ostree_build_core::backends::{Listed, Registry};

/// One line (or JSON object) per backend and external command; warnings on stderr: broken
/// backends, shadowed names, and files ignored although they look meant as backends.
pub fn list(registry: &Registry, json: bool) {
    for item in registry.list() {
        match item {
            Listed::Backend(f) if json => outln!(
                "{}",
                serde_json::json!({"name": f.info.name, "version": f.info.version, "source": f.source, "description": f.info.description, "protocols": f.info.protocols})
            ),
            Listed::Backend(f) => outln!(
                "{:<14} {:<9} {:<40} {}",
                f.info.name,
                f.info.version,
                f.source.to_string(),
                f.info.description
            ),
            Listed::Command(c) if json => outln!(
                "{}",
                serde_json::json!({"name": c.name, "source": {"kind": "external-command", "path": c.path}})
            ),
            Listed::Command(c) => outln!(
                "{:<14} {:<9} {:<40} (external command, not a backend)",
                c.name,
                "-",
                c.path.display().to_string()
            ),
            Listed::Broken(c, why) => eprintln!("warning: {}: {why}", c.path.display()),
        }
    }
    for w in &registry.warnings {
        eprintln!("warning: {w}");
    }
    for i in &registry.ignored {
        eprintln!("warning: {i}");
    }
}

/// `help triggers`: how triggers are declared, and the built-in ones.
pub fn triggers_help() {
    use ostree_build_core::triggers::{builtin, BUILTIN_NAMES};
    outln!("Triggers run in order on an image's composed tree, in bubblewrap (no network; of the");
    outln!("host only /usr, /etc without secrets, /opt and the project, read-only; /proc/sys");
    outln!("read-only; a process limit; /tmp private) behind rofiles-fuse. In [image.NAME]:\n");
    outln!("  triggers = [");
    outln!("    {{ name = \"ldconfig\" }},                       # a built-in");
    outln!("    {{ name = \"index\", run = \"...\", inputs = [\"/usr/share/x\"] }},");
    outln!("    {{ name = \"own-tool\", run = \"...\", sandbox = \"image\" }},   # the image is /");
    outln!("  ]\n");
    outln!("A trigger with `inputs` re-runs only when one of those paths changed; otherwise its");
    outln!("previous output is applied. `run` gets $OSTREE_BUILD_ROOT (the tree) and");
    outln!("$OSTREE_BUILD_IMAGE.\n\nBuilt-in triggers:");
    for name in BUILTIN_NAMES {
        if let Some(b) = builtin(name) {
            let run = b.run.trim_end().replace('\n', "\n         ");
            let sandbox = match b.sandbox {
                ostree_build_core::triggers::SandboxKind::Host => "host",
                ostree_build_core::triggers::SandboxKind::Image => "image",
            };
            outln!(
                "  {name}\n    sandbox: {sandbox}\n    run: {run}\n    inputs: {}",
                b.inputs.join(", ")
            );
        }
    }
}
