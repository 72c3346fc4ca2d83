//! What `new` and `init` print: the templates, one line each, and what was created with
//! the next commands to run.

use super::outln;
use ostree_build_core::ops::new::Created;

pub fn list(templates: &[(String, String)]) {
    let width = templates.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    for (name, description) in templates {
        let default = if name == ostree_build_core::template::DEFAULT {
            " (default)"
        } else {
            ""
        };
        outln!("{name:<width$}  {description}{default}");
    }
}

pub fn created(c: &Created, here: bool) {
    let v = &c.vars;
    outln!(
        "{:>9} {} from the {} template: {} files, OS {} for {}, refs {}/..., version {}",
        "Created",
        if here {
            "a project here".to_string()
        } else {
            format!("`{}`", c.path.display())
        },
        c.template,
        c.files,
        v.os_name,
        v.arch,
        v.ref_prefix,
        v.version
    );
    let cd = if here {
        String::new()
    } else {
        format!("cd {} && ", c.path.display())
    };
    outln!(
        "{:>9} {cd}ostree-build build   (README.md says what is there)",
        "Next"
    );
}
