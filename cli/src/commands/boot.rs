//! `ostree-build boot IMAGE`: deploy the published image into a throwaway disk and boot it
//! in QEMU; `--check` waits for multi-user.target and exits 0, or 1 on failure or timeout
//! (with `-q`, silently but for warnings and errors).

use super::ProjectArgs;
use crate::output::events::Printer;
use crate::output::outln;
use anyhow::Result;
use clap::ValueEnum;
use ostree_build_core::ops::boot::{boot, Accel, BootOptions};
use std::time::Duration;

#[derive(Clone, Copy, ValueEnum)]
enum AccelArg {
    /// Software emulation: works everywhere (a Debian guest boots in 1-3 minutes)
    Tcg,
    /// /dev/kvm (on some machines a KVM guest hangs at early boot: use tcg there)
    Kvm,
}

#[derive(clap::Args)]
pub struct BootArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// The image to boot (as published in the export repository)
    image: String,
    /// Wait for multi-user.target on the serial console instead of attaching the terminal;
    /// exit 0 once reached, 1 on failure or timeout
    #[arg(long)]
    check: bool,
    /// Seconds --check waits for multi-user.target
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Seconds --check keeps the guest running (and its console logged) after success
    #[arg(long, default_value_t = 20)]
    settle: u64,
    /// How QEMU runs the guest
    #[arg(long, value_enum, default_value = "tcg")]
    accel: AccelArg,
    /// Guest memory in MiB
    #[arg(long, default_value_t = 1024)]
    memory: u32,
    /// Start from an empty disk instead of deploying on top of the previous boot's
    /// deployments (which keeps the previous one as rollback)
    #[arg(long)]
    fresh: bool,
    /// With --check: print every console line, not only into the log
    #[arg(long)]
    show_console: bool,
}

pub fn exec(args: BootArgs) -> Result<()> {
    let manifest = args.project.manifest()?;
    let options = BootOptions {
        image: args.image,
        check: args.check,
        timeout: Duration::from_secs(args.timeout),
        settle: Duration::from_secs(args.settle),
        accel: match args.accel {
            AccelArg::Tcg => Accel::Tcg,
            AccelArg::Kvm => Accel::Kvm,
        },
        memory_mb: args.memory,
        fresh: args.fresh,
        show_console: args.show_console,
    };
    let mut printer = Printer::new(args.project.json(), false);
    let outcome = boot(&manifest, &options, &mut printer)?;
    if options.check {
        if args.project.json() {
            outln!(
                "{}",
                serde_json::json!({"event": "booted", "image": options.image, "commit": outcome.commit,
                    "deployments": outcome.deployments, "seconds": outcome.seconds,
                    "console-log": outcome.console_log})
            );
        } else if !crate::output::quiet() {
            outln!(
                "{:>9} image {} ({}) reached multi-user.target in {:.0}s; {} deployment(s); console log: {}",
                "Booted",
                options.image,
                crate::output::short(&outcome.commit),
                outcome.seconds,
                outcome.deployments.len(),
                outcome.console_log.display()
            );
        }
    }
    Ok(())
}
