//! One module per command, like cargo's `commands/`: each declares its arguments and calls
//! one `ops` function (or the registry), leaving the printing to `output`.

pub mod backends;
pub mod boot;
pub mod build;
pub mod cache;
pub mod clean;
pub mod completions;
pub mod diff;
pub mod external;
pub mod help;
pub mod init;
pub mod log;
pub mod man;
pub mod new;
pub mod new_backend;
pub mod plan;
pub mod promote;
pub mod prune;
pub mod publish;
pub mod serve;
pub mod status;

use anyhow::Result;
use clap::{Subcommand, ValueEnum};
use ostree_build_core::backends::Registry;
use ostree_build_core::manifest::Manifest;
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum Command {
    /// Build components, compose images and publish them, redoing only what changed
    Build(build::BuildArgs),
    /// Show every component and image: ref, commit, version, fresh or stale
    Status(status::StatusArgs),
    /// The build as jobs for a CI engine: components and images, input hashes, dependencies, commands
    Plan(plan::PlanArgs),
    /// The shared component cache: `cache push` sends what was built here
    Cache(cache::CacheArgs),
    /// History of an image (as published) or a component: versions, dates, sizes, signatures
    Log(log::LogArgs),
    /// Files and packages changed between two versions of an image, and the download size
    Diff(diff::DiffArgs),
    /// (Re)publish what is built: copy, deltas, signatures, refs, summary and its signature
    Publish(publish::PublishArgs),
    /// Serve the export repository over HTTP on 127.0.0.1 for testing clients
    Serve(serve::ServeArgs),
    /// List every backend: name, version, where it came from; warn about shadowed names
    Backends(backends::BackendsArgs),
    /// Apply the retention policy: old published commits, their deltas, unreferenced objects, old package-cache entries
    Prune(prune::PruneArgs),
    /// Remove scratch space, trigger worktrees, package caches and kept trees (the repositories stay)
    Clean(clean::CleanArgs),
    /// Deploy a published image into a throwaway disk and boot it in QEMU (serial console)
    Boot(boot::BootArgs),
    /// Promote a published image version to a release ref (same tree, new signed commit)
    Promote(promote::PromoteArgs),
    /// Create a project folder from a template (minimal, debian, fedora, openembedded, or a path)
    New(new::NewArgs),
    /// Create a project from a template in the current folder
    Init(init::InitArgs),
    /// Scaffold a backend (a Rust executable or plugin, or a script) that builds, has a test and is found
    NewBackend(new_backend::NewBackendArgs),
    /// Help for a command, a backend (its options) or `triggers`
    Help(help::HelpArgs),
    /// Print a shell completion script: bash, zsh or fish
    Completions(completions::CompletionsArgs),
    /// Print the man page (roff), or write one page per command into a folder
    Man(man::ManArgs),
    /// `ostree-build <backend> --branch BRANCH [--repo REPO] [--OPTION VALUE]...`
    #[command(external_subcommand)]
    External(Vec<OsString>),
}

impl Command {
    /// Whether the command was asked for JSON output (errors are then reported as JSON too).
    pub fn json(&self) -> bool {
        match self {
            Command::Build(a) => a.project.json(),
            Command::Status(a) => a.project.json(),
            Command::Plan(_) => false,
            Command::Cache(a) => a.json(),
            Command::Log(a) => a.project.json(),
            Command::Diff(a) => a.project.json(),
            Command::Publish(a) => a.project.json(),
            Command::Serve(a) => a.project.json(),
            Command::Boot(a) => a.project.json(),
            Command::Promote(a) => a.project.json(),
            Command::Prune(a) => a.project.json(),
            Command::Clean(a) => a.project.json(),
            Command::Backends(a) => a.message_format == MessageFormat::Json,
            Command::Help(_) | Command::New(_) | Command::Init(_) => false,
            Command::NewBackend(_) | Command::External(_) => false,
            Command::Completions(_) | Command::Man(_) => false,
        }
    }

    pub fn exec(self) -> Result<()> {
        match self {
            Command::Build(args) => build::exec(args),
            Command::Status(args) => status::exec(args),
            Command::Plan(args) => plan::exec(args),
            Command::Cache(args) => cache::exec(args),
            Command::Log(args) => log::exec(args),
            Command::Diff(args) => diff::exec(args),
            Command::Publish(args) => publish::exec(args),
            Command::Serve(args) => serve::exec(args),
            Command::Backends(args) => backends::exec(args),
            Command::Boot(args) => boot::exec(args),
            Command::Promote(args) => promote::exec(args),
            Command::Prune(args) => prune::exec(args),
            Command::Clean(args) => clean::exec(args),
            Command::New(args) => new::exec(args),
            Command::Init(args) => init::exec(args),
            Command::NewBackend(args) => new_backend::exec(args),
            Command::Help(args) => help::exec(args),
            Command::Completions(args) => completions::exec(args),
            Command::Man(args) => man::exec(args),
            Command::External(args) => external::exec(&args),
        }
    }
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum MessageFormat {
    Human,
    Json,
}

/// The arguments of every command that works on a project.
#[derive(clap::Args)]
pub struct ProjectArgs {
    /// Path to ostree-build.toml (default: found in the current directory or a parent)
    #[arg(long, value_name = "PATH")]
    manifest_path: Option<PathBuf>,
    /// Output for people or JSON lines for CI
    #[arg(long, value_enum, default_value = "human")]
    message_format: MessageFormat,
}

impl ProjectArgs {
    pub fn json(&self) -> bool {
        self.message_format == MessageFormat::Json
    }

    /// The project's manifest: the one named, else the nearest one up from here.
    pub fn manifest(&self) -> Result<Manifest> {
        let path = match &self.manifest_path {
            Some(p) => p.clone(),
            None => Manifest::find(&std::env::current_dir()?)?,
        };
        Manifest::load(&path)
    }
}

/// Every backend this process can use: the built-ins, then what the search finds.
pub fn registry() -> Registry {
    Registry::discover(crate::builtins::backends())
}
