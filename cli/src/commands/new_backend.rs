//! `ostree-build new-backend NAME --kind exec|cdylib|script [--path DIR]`: scaffold a
//! backend that builds, has a test and is found by `backends`. The names it may not take
//! (built-in backends, this binary's commands) are gathered here and handed to
//! `ops::new_backend`.

use anyhow::Result;
use clap::CommandFactory;
use ostree_build_core::backend_template::BackendKind;
use ostree_build_core::ops::new_backend::{new_backend, NewBackendOptions, SdkSource};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct NewBackendArgs {
    /// The backend's name: lowercase letters, digits and '-', starting with a letter
    name: String,
    /// exec (a Rust executable), cdylib (a Rust plugin library) or script (a Python script)
    #[arg(long, value_name = "KIND", default_value = "exec")]
    kind: String,
    /// The directory to create [default: ./ostree-build-backend-NAME]
    #[arg(long, value_name = "DIR")]
    path: Option<PathBuf>,
    /// The sdk/ of an ostree-build checkout for the crate to depend on [default: the one
    /// this ostree-build was built from, if it is still there]
    #[arg(long, value_name = "DIR")]
    sdk_path: Option<PathBuf>,
}

pub fn exec(args: NewBackendArgs) -> Result<()> {
    let kind: BackendKind = args.kind.parse()?;
    let sdk = match &args.sdk_path {
        Some(dir) => SdkSource::path(dir)?,
        None => SdkSource::of_this_build(),
    };
    let created = new_backend(&NewBackendOptions {
        name: args.name,
        kind,
        path: args.path,
        sdk,
        builtin_backends: crate::builtins::names(),
        commands: command_names(),
    })?;
    crate::output::new_backend::created(&created);
    Ok(())
}

/// This binary's commands and their aliases, `help` included.
fn command_names() -> Vec<String> {
    let cli = crate::Cli::command();
    let mut names = vec!["help".to_string()];
    for sub in cli.get_subcommands() {
        names.push(sub.get_name().to_string());
        names.extend(sub.get_all_aliases().map(String::from));
    }
    names
}
