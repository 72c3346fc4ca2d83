//! A physical sysroot for test boots: what `ostree admin init-fs`, `os-init`, a pull and
//! `ostree admin deploy` make, done in-process with libostree. A sysroot kept between boots
//! gains one deployment per new commit, the previous one staying as the rollback.

use super::{gerr, Repo, NO_CANCEL};
use anyhow::{anyhow, Context, Result};
use std::path::{Path, PathBuf};

/// What the boot loader entry of the default deployment says.
#[derive(Debug, Clone)]
pub struct BootEntry {
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    /// The kernel command line (`options`), with `ostree=` naming the deployment.
    pub options: String,
    /// Deployments in the sysroot, the new default first.
    pub deployments: Vec<String>,
}

/// Deploy `commit` from the repository `source` as the default deployment of `os` in the
/// sysroot at `dir` (created if needed), with `kargs`. A deployment of the same commit that
/// is already the default is kept as it is.
pub fn deploy(
    dir: &Path,
    os: &str,
    source: &Path,
    commit: &str,
    kargs: &[String],
) -> Result<BootEntry> {
    // The directories `ostree admin init-fs` makes in the physical root.
    for d in ["boot", "dev", "home", "proc", "run", "sys", "tmp", "root"] {
        std::fs::create_dir_all(dir.join(d))
            .with_context(|| format!("cannot create {}", dir.join(d).display()))?;
    }
    let sysroot = ostree::Sysroot::new(Some(&gio::File::for_path(dir)));
    sysroot.ensure_initialized(NO_CANCEL).map_err(gerr)?;
    sysroot.load(NO_CANCEL).map_err(gerr)?;
    if !dir.join("ostree/deploy").join(os).is_dir() {
        sysroot.init_osname(os, NO_CANCEL).map_err(gerr)?;
    }
    let repo = Repo::open_existing(&dir.join("ostree/repo"))?
        .ok_or_else(|| anyhow!("{} has no repository after init", dir.display()))?;
    repo.pull_commit_from(source, commit)?;
    let current = sysroot.merge_deployment(Some(os));
    if current.as_ref().map(|d| d.csum().to_string()).as_deref() != Some(commit) {
        let args: Vec<&str> = kargs.iter().map(String::as_str).collect();
        let deployment = sysroot
            .deploy_tree(Some(os), commit, None, current.as_ref(), &args, NO_CANCEL)
            .map_err(gerr)
            .with_context(|| format!("cannot deploy {commit} into {}", dir.display()))?;
        sysroot
            .simple_write_deployment(
                Some(os),
                &deployment,
                current.as_ref(),
                ostree::SysrootSimpleWriteDeploymentFlags::NONE,
                NO_CANCEL,
            )
            .map_err(gerr)?;
        sysroot.load(NO_CANCEL).map_err(gerr)?;
    }
    boot_entry(&sysroot, dir)
}

fn boot_entry(sysroot: &ostree::Sysroot, dir: &Path) -> Result<BootEntry> {
    let deployments = sysroot.deployments();
    let default = deployments
        .first()
        .ok_or_else(|| anyhow!("{} has no deployment", dir.display()))?;
    let config = default
        .bootconfig()
        .ok_or_else(|| anyhow!("the deployment in {} has no boot entry", dir.display()))?;
    let get = |key: &str| config.get(key).map(|v| v.to_string());
    let boot = dir.join("boot");
    let under_boot = |p: String| boot.join(p.trim_start_matches('/'));
    Ok(BootEntry {
        kernel: get("linux")
            .map(under_boot)
            .ok_or_else(|| anyhow!("the boot entry in {} names no kernel", dir.display()))?,
        initrd: get("initrd").map(under_boot),
        options: get("options").unwrap_or_default(),
        deployments: deployments.iter().map(|d| d.csum().to_string()).collect(),
    })
}
