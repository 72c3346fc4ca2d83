//! `ostree-build <name> ARGS...`: a backend run ad hoc (`--branch B [--repo R] [--OPTION
//! VALUE]...`, its options parsed by a clap command built from what the backend declares),
//! or a plain `ostree-build-<name>` command run cargo-style. A name that is neither is "no
//! such command or backend", with a did-you-mean among both.

use crate::output::events::Printer;
use anyhow::{Context, Result};
use clap::{Arg, ArgAction, ArgMatches};
use ostree_build_core::backends::{run_external, Found, Registry, Resolved};
use ostree_build_core::manifest::Manifest;
use ostree_build_core::ops::adhoc::{self, AdHoc};
use std::ffi::OsString;
use std::path::PathBuf;

/// Flags every ad-hoc run has; a backend option of the same name cannot be given ad hoc.
const RESERVED: &[&str] = &[
    "branch",
    "repo",
    "subject",
    "message-format",
    "quiet",
    "help",
];

pub fn exec(args: &[OsString]) -> Result<()> {
    let name = args
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default();
    let registry = super::registry();
    if !registry.knows(&name) {
        return Err(unknown(&registry, &name, &[]));
    }
    let found = match registry.resolve(&name)? {
        Resolved::Backend(found) => found,
        Resolved::Command(command) => std::process::exit(run_external(&command, &args[1..])?),
    };
    let matches = adhoc_command(&found)
        .try_get_matches_from(args)
        .unwrap_or_else(|e| e.exit());
    if matches.get_flag("quiet") {
        crate::output::set_quiet(true);
    }
    let json = matches
        .get_one::<String>("message-format")
        .map(String::as_str)
        == Some("json");
    let adhoc = AdHoc {
        branch: matches
            .get_one::<String>("branch")
            .cloned()
            .unwrap_or_default(),
        repo: match matches.get_one::<PathBuf>("repo") {
            Some(r) => r.clone(),
            None => default_repo()?,
        },
        subject: matches.get_one::<String>("subject").cloned(),
        options: given_options(&found, &matches),
    };
    adhoc::run(&found, &adhoc, &mut Printer::one_component(json))?;
    Ok(())
}

/// The error for `name`, which is no command, no backend and none of `also` (other words the
/// caller accepts): did-you-mean among them all, and what the backend search ignored.
pub fn unknown(registry: &Registry, name: &str, also: &[&str]) -> anyhow::Error {
    let cli = <crate::Cli as clap::CommandFactory>::command();
    let commands = cli.get_subcommands().filter(|c| !c.is_hide_set());
    let words: Vec<String> = commands
        .map(|c| c.get_name().to_string())
        .chain(also.iter().map(|w| w.to_string()))
        .collect();
    registry.unknown(name, &words)
}

/// The project's build repository when run inside a project, else ./build-repo.
fn default_repo() -> Result<PathBuf> {
    let here = std::env::current_dir().context("cannot read the current directory")?;
    Ok(match Manifest::find(&here) {
        Ok(path) => Manifest::load(&path)?.build_repo_path(),
        Err(_) => PathBuf::from("build-repo"),
    })
}

/// The command line of `found` run ad hoc; its help is also `ostree-build help <backend>`.
pub fn adhoc_command(found: &Found) -> clap::Command {
    let info = &found.info;
    let mut cmd = clap::Command::new(info.name.clone())
        .bin_name(format!("ostree-build {}", info.name))
        .about(format!(
            "{} {}: {}\nfrom: {}",
            info.name, info.version, info.description, found.source
        ))
        .after_help(manifest_form(found))
        .arg(
            Arg::new("branch")
                .long("branch")
                .value_name("BRANCH")
                .required(true)
                .help("The branch to commit to, e.g. exampleos/x86_64/base"),
        )
        .arg(
            Arg::new("repo")
                .long("repo")
                .value_name("REPO")
                .value_parser(clap::value_parser!(PathBuf))
                .help("A bare-user repository, created if absent (default: the project's build repository, else ./build-repo)"),
        )
        .arg(Arg::new("subject").long("subject").value_name("TEXT").help("The commit subject"))
        .arg(
            Arg::new("quiet")
                .short('q')
                .long("quiet")
                .action(ArgAction::SetTrue)
                .help("No status lines; warnings and errors stay"),
        )
        .arg(
            Arg::new("message-format")
                .long("message-format")
                .value_name("FORMAT")
                .value_parser(["human", "json"])
                .default_value("human")
                .help("Output for people or JSON lines for CI"),
        );
    for o in backend_options(found) {
        let mut arg = Arg::new(o.name.clone())
            .long(o.name.clone())
            .value_name(o.kind.to_uppercase())
            .help(format!(
                "{}{}",
                o.help,
                if o.required { " (required)" } else { "" }
            ));
        if o.kind == "list" {
            arg = arg.action(ArgAction::Append).value_delimiter(',');
        }
        // `--input` is the common spelling of a backend's `path`.
        if o.name == "path" && !found.info.options.iter().any(|s| s.name == "input") {
            arg = arg.visible_alias("input");
        }
        cmd = cmd.arg(arg);
    }
    cmd
}

/// The backend's options that can be flags: not reserved, each name once.
fn backend_options(found: &Found) -> Vec<&ostree_build_core::sdk::OptionSpec> {
    let mut seen = std::collections::HashSet::new();
    found
        .info
        .options
        .iter()
        .filter(|o| !o.name.is_empty() && !RESERVED.contains(&o.name.as_str()))
        .filter(|o| seen.insert(o.name.as_str()))
        .collect()
}

/// The backend options given, as `(name, value)` in the backend's terms (lists joined).
fn given_options(found: &Found, matches: &ArgMatches) -> Vec<(String, String)> {
    backend_options(found)
        .into_iter()
        .filter_map(|o| {
            let values: Vec<&String> = matches.get_many::<String>(&o.name)?.collect();
            let joined = values
                .iter()
                .map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join(",");
            Some((o.name.clone(), joined))
        })
        .collect()
}

/// How the same backend is used in a manifest, for the end of its help.
fn manifest_form(found: &Found) -> String {
    let mut text = format!(
        "In a manifest:\n  [component.NAME]\n  backend = \"{}\"",
        found.info.name
    );
    for o in &found.info.options {
        let optional = if o.required { "" } else { "   # optional" };
        text.push_str(&format!("\n  {} = ...{optional}", o.name));
    }
    text
}
