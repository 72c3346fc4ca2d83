//! `ostree-build new PATH [--template T] [--os-name ..] [--arch ..] [--ref-prefix ..]
//! [--version ..]`: a new project folder from a template; `new --list` lists the templates.

use anyhow::Result;
use ostree_build_core::ops::new::{new, NewOptions};
use ostree_build_core::template::vars::VarOptions;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct NewArgs {
    /// The folder to create (absent or empty); its name is the OS name unless --os-name is given
    #[arg(required_unless_present = "list", value_name = "PATH")]
    path: Option<PathBuf>,
    /// List the built-in templates, one line each
    #[arg(long, conflicts_with_all = ["path", "template", "os_name", "arch", "ref_prefix", "version"])]
    list: bool,
    #[command(flatten)]
    pub template: TemplateArgs,
}

/// The template and the variables it is filled in with (shared with `init`).
#[derive(clap::Args)]
pub struct TemplateArgs {
    /// A built-in template (minimal, debian, fedora, openembedded: see --list) or a path to a
    /// template folder (anything with a '/': ./my-template) [default: minimal]
    #[arg(long, short, value_name = "TEMPLATE")]
    template: Option<String>,
    /// The OS name: first part of every ref, os-release's ID, the hostname [default: the folder's name]
    #[arg(long, value_name = "NAME")]
    os_name: Option<String>,
    /// The target architecture [default: this machine's]
    #[arg(long, value_name = "ARCH")]
    arch: Option<String>,
    /// The prefix of every ref [default: OS-NAME/ARCH]
    #[arg(long, value_name = "PREFIX")]
    ref_prefix: Option<String>,
    /// The image's first version, also os-release's VERSION_ID [default: 1.0]
    #[arg(long, value_name = "VERSION")]
    version: Option<String>,
}

impl TemplateArgs {
    /// The typed options for `path`.
    pub fn options(self, path: PathBuf) -> NewOptions {
        NewOptions {
            path,
            template: self.template,
            vars: VarOptions {
                os_name: self.os_name,
                arch: self.arch,
                ref_prefix: self.ref_prefix,
                version: self.version,
            },
        }
    }
}

pub fn exec(args: NewArgs) -> Result<()> {
    // Without --list, clap requires PATH.
    let Some(path) = args.path else {
        crate::output::new::list(&ostree_build_core::template::list());
        return Ok(());
    };
    let created = new(&args.template.options(path))?;
    crate::output::new::created(&created, false);
    Ok(())
}
