//! The `ostree-build` command line: argument parsing and output only. Everything it does
//! goes through `ostree_build_core`.

/// `println!` that ends the process quietly when the reader has gone away
/// (`ostree-build status | head`), as Unix tools do, instead of panicking: SIGPIPE is
/// ignored in this process (by Rust, and again by GLib).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use ostree_build_core::manifest::Manifest;
use ostree_build_core::ops::build::{build, BuildOptions};
use ostree_build_core::report::{Event, Kind, Reporter};
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "ostree-build",
    version,
    about = "Build OS trees into OSTree repositories from one manifest",
    allow_external_subcommands = true,
    disable_help_subcommand = true,
    after_help = "Any backend also runs as a subcommand: ostree-build <backend> --branch BRANCH [--OPTION VALUE]...\nSee `ostree-build backends` and `ostree-build help <backend>`."
)]
struct Cli {
    /// More detail in errors (-vv: abi_stable's full report when a plugin does not load)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum MessageFormat {
    Human,
    Json,
}

#[derive(clap::Args)]
struct ProjectArgs {
    /// Path to ostree-build.toml (default: found in the current directory or a parent)
    #[arg(long, value_name = "PATH")]
    manifest_path: Option<PathBuf>,
    /// Output for people or JSON lines for CI
    #[arg(long, value_enum, default_value = "human")]
    message_format: MessageFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Build components, compose images and publish them, redoing only what changed
    Build {
        #[command(flatten)]
        project: ProjectArgs,
        /// Print what would be rebuilt and why; change nothing
        #[arg(long)]
        dry_run: bool,
        /// Rebuild every component and image
        #[arg(long)]
        force: bool,
        /// Parallel component builds (default: number of CPUs)
        #[arg(long, short)]
        jobs: Option<usize>,
    },
    /// Show every component and image: ref, commit, version, fresh or stale
    Status {
        #[command(flatten)]
        project: ProjectArgs,
        /// List the installed packages of each component and image
        #[arg(long)]
        packages: bool,
    },
    /// List every backend: name, version, where it came from; warn about shadowed names
    Backends {
        #[arg(long, value_enum, default_value = "human")]
        message_format: MessageFormat,
    },
    /// Help for a command or a backend (its options)
    Help { topic: Option<String> },
    /// `ostree-build <backend> --branch BRANCH [--repo REPO] [--OPTION VALUE]...`
    #[command(external_subcommand)]
    External(Vec<OsString>),
}

fn main() {
    let cli = Cli::parse();
    if cli.verbose >= 2 {
        // Read by the plugin loader in core.
        std::env::set_var("OSTREE_BUILD_PLUGIN_DEBUG", "1");
    }
    let json = match &cli.command {
        Command::Build { project, .. } | Command::Status { project, .. } => {
            project.message_format == MessageFormat::Json
        }
        Command::Backends { message_format } => *message_format == MessageFormat::Json,
        Command::Help { .. } | Command::External(_) => false,
    };
    if let Err(e) = run(cli) {
        if json {
            outln!(
                "{}",
                serde_json::json!({"event": "error", "message": format!("{e:#}")})
            );
        }
        eprintln!("error: {}", render_error(&e));
        std::process::exit(1);
    }
}

/// The error chain, outermost first; the innermost cause is what a user acts on, so it is
/// kept whole (with its help lines).
fn render_error(e: &anyhow::Error) -> String {
    let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
    match chain.len() {
        0 => String::new(),
        1 => chain[0].clone(),
        _ => {
            let (last, rest) = chain.split_last().unwrap_or((&chain[0], &[]));
            let mut lines: Vec<&str> = last.lines().collect();
            let first = lines.remove(0);
            let mut out = format!("{}: {}", rest.join(": "), first);
            for l in lines {
                out.push('\n');
                out.push_str(l);
            }
            out
        }
    }
}

fn load(project: &ProjectArgs) -> Result<Manifest> {
    let path = match &project.manifest_path {
        Some(p) => p.clone(),
        None => Manifest::find(&std::env::current_dir()?)?,
    };
    Manifest::load(&path)
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Build {
            project,
            dry_run,
            force,
            jobs,
        } => {
            let manifest = load(&project)?;
            on_interrupt_clean_up(manifest.state_dir());
            let mut rep = Printer {
                json: project.message_format == MessageFormat::Json,
                dry_run,
                to_build: 0,
                built: 0,
            };
            build(
                &manifest,
                &BuildOptions {
                    dry_run,
                    force,
                    jobs,
                },
                &mut rep,
            )?;
        }
        Command::Status { project, packages } => {
            let manifest = load(&project)?;
            let units = ostree_build_core::ops::status::status(&manifest)?;
            if project.message_format == MessageFormat::Json {
                for u in &units {
                    outln!("{}", serde_json::to_string(u)?);
                }
            } else {
                for u in &units {
                    let commit = u.commit.as_deref().map(short).unwrap_or("-");
                    let mut line = format!(
                        "{:<9} {:<20} {:<7} {:<12} {}",
                        u.kind, u.name, u.state, commit, u.ref_name
                    );
                    if let Some(v) = &u.version {
                        line.push_str(&format!("  version {v}"));
                    }
                    if let Some(b) = &u.backend {
                        line.push_str(&format!("  ({b})"));
                    }
                    if !u.packages.is_empty() {
                        line.push_str(&format!("  {} packages", u.packages.len()));
                    }
                    if let Some(r) = &u.reason {
                        line.push_str(&format!("  [{r}]"));
                    }
                    if u.kind == "image" {
                        line.push_str(&format!(
                            "  published: {}",
                            u.published.as_deref().map(short).unwrap_or("no")
                        ));
                    }
                    outln!("{line}");
                    if packages {
                        for p in &u.packages {
                            outln!("    {p}");
                        }
                    }
                }
            }
        }
        Command::Backends { message_format } => {
            list_backends(message_format == MessageFormat::Json)
        }
        Command::Help { topic } => help(topic.as_deref())?,
        Command::External(args) => external(&args)?,
    }
    Ok(())
}

fn list_backends(json: bool) {
    use ostree_build_core::backends::{Listed, Registry};
    let registry = Registry::discover();
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
}

fn help(topic: Option<&str>) -> Result<()> {
    use clap::CommandFactory;
    let Some(topic) = topic else {
        Cli::command().print_help()?;
        return Ok(());
    };
    if let Some(sub) = Cli::command().find_subcommand_mut(topic) {
        sub.print_help()?;
        return Ok(());
    }
    if topic == "triggers" {
        print_triggers_help();
        return Ok(());
    }
    let registry = ostree_build_core::backends::Registry::discover();
    match registry.resolve(topic)? {
        Ok(found) => print_backend_help(&found),
        Err(c) => {
            let code = ostree_build_core::backends::run_external(&c, &["--help".into()])?;
            std::process::exit(code);
        }
    }
    Ok(())
}

fn print_triggers_help() {
    use ostree_build_core::triggers::{builtin, BUILTIN_NAMES};
    outln!("Triggers run in order on an image's composed tree, in bubblewrap (no network, the");
    outln!("host read-only, /tmp private) behind rofiles-fuse. In [image.NAME]:\n");
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
            outln!(
                "  {name}\n    run: {}\n    inputs: {}",
                b.run,
                b.inputs.join(", ")
            );
        }
    }
}

fn print_backend_help(found: &ostree_build_core::backends::Found) {
    let info = &found.info;
    outln!("{} {}: {}", info.name, info.version, info.description);
    outln!("from: {}\n", found.source);
    outln!(
        "In a manifest:\n  [component.NAME]\n  backend = \"{}\"",
        info.name
    );
    for o in &info.options {
        outln!(
            "  {} = ...{}",
            o.name,
            if o.required { "" } else { "   # optional" }
        );
    }
    outln!(
        "\nAd hoc:\n  ostree-build {} --branch BRANCH [--repo REPO] [--subject TEXT] [--OPTION VALUE]...",
        info.name
    );
    outln!("\nOptions:");
    for o in &info.options {
        outln!(
            "  --{:<18} {:<8} {}{}",
            o.name,
            o.kind,
            o.help,
            if o.required { " (required)" } else { "" }
        );
    }
}

/// `ostree-build <name> ARGS...`: run a backend ad hoc, or an external command.
fn external(args: &[std::ffi::OsString]) -> Result<()> {
    use ostree_build_core::ops::adhoc::{self, AdHoc};
    let name = args
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default();
    let registry = ostree_build_core::backends::Registry::discover();
    let found = match registry.resolve(&name)? {
        Ok(found) => found,
        Err(command) => {
            let code = ostree_build_core::backends::run_external(&command, &args[1..])?;
            std::process::exit(code);
        }
    };
    let mut branch = None;
    let mut repo = None;
    let mut subject = None;
    let mut json = false;
    let mut options = Vec::new();
    let mut rest = args[1..].iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(arg) = rest.next() {
        if arg == "--help" || arg == "-h" {
            print_backend_help(&found);
            return Ok(());
        }
        let Some(flag) = arg.strip_prefix("--") else {
            anyhow::bail!(
                "unexpected argument '{arg}'\n  help: ostree-build {name} --branch BRANCH [--OPTION VALUE]..."
            );
        };
        let (key, value) = match flag.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => {
                let value = rest.next().ok_or_else(|| {
                    anyhow::anyhow!("--{flag} needs a value\n  help: ostree-build help {name}")
                })?;
                (flag.to_string(), value)
            }
        };
        match key.as_str() {
            "branch" => branch = Some(value),
            "repo" => repo = Some(PathBuf::from(value)),
            "subject" => subject = Some(value),
            "message-format" => json = value == "json",
            _ => options.push((key, value)),
        }
    }
    let branch = branch.ok_or_else(|| {
        anyhow::anyhow!(
            "ostree-build {name} needs --branch BRANCH\n  help: e.g. ostree-build {name} --branch exampleos/x86_64/base ..."
        )
    })?;
    // Default repository: the project's build repository, else ./build-repo.
    let repo = match repo {
        Some(r) => r,
        None => match Manifest::find(&std::env::current_dir()?) {
            Ok(path) => Manifest::load(&path)?.build_repo_path(),
            Err(_) => PathBuf::from("build-repo"),
        },
    };
    let mut rep = Printer {
        json,
        dry_run: false,
        to_build: 1,
        built: 0,
    };
    adhoc::run(
        &found,
        &AdHoc {
            branch,
            repo,
            subject,
            options,
        },
        &mut rep,
    )?;
    Ok(())
}

/// On SIGINT or SIGTERM: detach any trigger mount of this project, say what state things
/// are in, then die of the same signal (so callers see how the run ended). Refs only move
/// in atomic steps, so whatever was interrupted is redone by the next run.
fn on_interrupt_clean_up(state_dir: PathBuf) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        return;
    };
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            // Mounts under the state directory belong to whoever holds the project lock.
            if ostree_build_core::lock::held_by_this_process() {
                ostree_build_core::triggers::kill_running();
                ostree_build_core::lock::unmount_below(&state_dir);
            }
            eprintln!(
                "error: interrupted; refs that had not moved yet are unchanged and the next `ostree-build build` picks up from here"
            );
            let _ = signal_hook::low_level::emulate_default_handler(signal);
            std::process::exit(128 + signal);
        }
    });
}

fn short(c: &str) -> &str {
    &c[..12.min(c.len())]
}

/// Renders core events as lines for a person or JSON lines for CI.
struct Printer {
    json: bool,
    dry_run: bool,
    /// Components to build and built so far, for `[n/N]` progress.
    to_build: usize,
    built: usize,
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Component => "component",
        Kind::Image => "image",
        Kind::Publish => "image",
    }
}

impl Reporter for Printer {
    fn event(&mut self, event: Event) {
        if self.json {
            if let Ok(s) = serde_json::to_string(&event) {
                outln!("{s}");
            }
            return;
        }
        let mut out = std::io::stdout().lock();
        let _ = match event {
            Event::Plan {
                kind,
                name,
                action,
                reason,
            } => {
                if kind == Kind::Component && action == "build" {
                    self.to_build += 1;
                }
                if self.dry_run {
                    writeln!(out, "{:>9} {} {name}: {reason}", action, kind_name(kind))
                } else if action == "fresh" {
                    writeln!(out, "{:>9} {} {name}", "Fresh", kind_name(kind))
                } else {
                    Ok(())
                }
            }
            Event::Started { kind, name } => match kind {
                Kind::Component => writeln!(out, "{:>9} component {name}", "Building"),
                Kind::Image => writeln!(out, "{:>9} image {name}", "Composing"),
                Kind::Publish => writeln!(out, "{:>9} image {name}", "Publishing"),
            },
            Event::Finished {
                kind,
                name,
                commit,
                seconds,
                detail,
            } => {
                let progress = if kind == Kind::Component {
                    self.built += 1;
                    format!(" [{}/{}]", self.built, self.to_build)
                } else {
                    String::new()
                };
                writeln!(
                    out,
                    "{:>9} {} {name}{progress} -> {} in {seconds:.2}s ({detail})",
                    match kind {
                        Kind::Component => "Built",
                        Kind::Image => "Composed",
                        Kind::Publish => "Published",
                    },
                    kind_name(kind),
                    short(&commit)
                )
            }
            Event::Log { name, message } => writeln!(out, "{:>9} {name}: {message}", ""),
            Event::Warning { message } => writeln!(out, "warning: {message}"),
            Event::Waiting { message } => writeln!(out, "{:>9} {message}", "Blocking"),
            Event::Summary {
                built,
                composed,
                published,
                fresh,
                seconds,
                phases,
            } => {
                let phases: Vec<String> =
                    phases.iter().map(|(n, s)| format!("{n} {s:.2}s")).collect();
                if built + composed + published == 0 {
                    writeln!(
                        out,
                        "{:>9} nothing to do: everything is up to date ({seconds:.2}s)",
                        "Finished"
                    )
                } else {
                    writeln!(
                        out,
                        "{:>9} {built} component(s) built, {composed} image(s) composed, {published} published, {fresh} fresh in {seconds:.2}s ({})",
                        "Finished",
                        phases.join(", ")
                    )
                }
            }
        };
    }
}
