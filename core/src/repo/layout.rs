//! The bootable layout: turns a composed tree into what `ostree admin deploy` boots, in
//! memory (no checkout), then lints the result before it is committed.
//!
//! What moves where follows the OSTree conventions the field converges on (deb-ostree-builder,
//! meta-updater, rpm-ostree): `/etc` becomes `/usr/etc`; `/var` ships empty and its content
//! becomes tmpfiles.d lines (directories `d`, symlinks `L`, files per [`VarFiles`]);
//! `/home`, `/root`, `/opt`, `/srv`, `/mnt`, `/usr/local` and `/media` become symlinks into
//! `/var` (or `/run`); the kernel and initramfs move from `/boot` to
//! `/usr/lib/modules/<kver>/`; `/dev`, `/proc`, `/sys`, `/run` and `/tmp` ship empty.

use super::tree::{
    no_xattrs, read_dirmeta, read_dirtree, read_file, read_text_file, rewrite_file, write_dirmeta,
    DirMeta, DirTree, Editor, Entry, Resolved, TreeIndex,
};
use super::{gerr, NewCommit, Repo, NO_CANCEL};
use anyhow::{anyhow, bail, Result};
use gio::prelude::*;
use ostree::{MutableTree, RepoFile};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// The lint rules a manifest may set to "error", "warn" or "allow".
pub const LINT_RULES: &[&str] = &[
    "no-kernel",
    "no-os-release",
    "etc-shadow",
    "broken-symlink",
    "initramfs-ostree",
];

/// What the bootable layout does with regular files found in `/var` (and in the
/// directories that move there: /home, /root, /opt, /srv, /mnt, /usr/local).
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum VarFiles {
    /// Ship them under /usr/share/factory/var and copy them in at boot (tmpfiles `C`).
    #[default]
    Factory,
    /// A lint error naming them.
    Error,
    /// Drop them, with a warning.
    Drop,
}

/// How a lint finding is reported.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum LintLevel {
    Error,
    Warn,
    Allow,
}

fn default_level(rule: &str) -> LintLevel {
    match rule {
        "broken-symlink" => LintLevel::Warn,
        _ => LintLevel::Error,
    }
}

/// How one image is laid out and linted.
pub struct LayoutOptions<'a> {
    pub var_files: VarFiles,
    /// Lint levels that differ from the defaults, by rule.
    pub levels: &'a HashMap<String, LintLevel>,
}

/// One lint finding.
pub struct Finding {
    pub rule: &'static str,
    pub level: LintLevel,
    pub message: String,
}

/// What the layout did, for the build's one-line account and its warnings.
#[derive(Default)]
pub struct LayoutReport {
    pub kernel: Option<String>,
    pub tmpfiles_lines: usize,
    pub factory_files: usize,
    pub dropped_files: usize,
    pub warnings: Vec<String>,
}

/// Lint errors that stop an image from being committed.
#[derive(Debug)]
pub struct LintErrors(pub Vec<String>);

impl std::fmt::Display for LintErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.join("\n  "))
    }
}

impl std::error::Error for LintErrors {}

const TMPFILES_CONF: &str = "usr/lib/tmpfiles.d/ostree-build-var.conf";
const FACTORY: &str = "usr/share/factory";

/// Top-level directories that live in `/var` (or `/run`) on an OSTree system:
/// (path in the tree, where its content goes, the symlink left in its place).
const MOVED_DIRS: &[(&str, &str, &str)] = &[
    ("home", "var/home", "var/home"),
    ("root", "var/roothome", "var/roothome"),
    ("opt", "var/opt", "var/opt"),
    ("srv", "var/srv", "var/srv"),
    ("mnt", "var/mnt", "var/mnt"),
    ("usr/local", "var/usrlocal", "../var/usrlocal"),
    ("media", "run/media", "run/media"),
];

/// Directories that are mount points at boot: shipped empty.
const API_DIRS: &[(&str, u32)] = &[
    ("dev", 0o755),
    ("proc", 0o555),
    ("sys", 0o555),
    ("run", 0o755),
    ("tmp", 0o1777),
    ("sysroot", 0o755),
    ("boot", 0o755),
];

impl Repo {
    /// Lay out `base` for booting and lint it; write it as a commit unless a lint finding
    /// at level error remains (then [`LintErrors`], and nothing is referenced).
    pub fn bootable_commit(
        &self,
        base: &str,
        options: &LayoutOptions,
        commit: &NewCommit,
    ) -> Result<(String, LayoutReport)> {
        self.in_transaction(|repo| {
            let index = TreeIndex::new(repo, base)?;
            let (contents, meta) = index.root().clone();
            let root = MutableTree::new();
            root.fill_empty_from_dirtree(repo, &contents, &meta);
            let dir_meta = |mode: u32| {
                write_dirmeta(
                    repo,
                    &DirMeta {
                        uid: 0,
                        gid: 0,
                        mode: 0o040000 | mode,
                        xattrs: no_xattrs(),
                    },
                )
            };
            let mut layout = Layout {
                repo,
                index: &index,
                edit: Editor {
                    repo,
                    root: &root,
                    default_meta: dir_meta(0o755)?,
                },
                tmpfiles: Vec::new(),
                declared: Default::default(),
                findings: Vec::new(),
                report: LayoutReport::default(),
                options,
            };
            layout.kernel()?;
            layout.var_and_moved_dirs()?;
            if options.var_files == VarFiles::Error && layout.report.dropped_files > 5 {
                layout.findings.push(Finding {
                    rule: "var-content",
                    level: LintLevel::Error,
                    message: format!(
                        "... and {} more files in /var",
                        layout.report.dropped_files - 5
                    ),
                });
            }
            layout.etc()?;
            layout.retarget_tmpfiles()?;
            for (dir, mode) in API_DIRS {
                let meta = match index.lookup(dir)? {
                    Some(Entry::Dir { meta, .. }) => meta,
                    _ => dir_meta(*mode)?,
                };
                layout.edit.put_empty_dir(dir, &meta)?;
            }
            layout.edit.put_symlink("ostree", "sysroot/ostree")?;
            layout.write_tmpfiles()?;
            let written = repo.write_mtree(&root, NO_CANCEL).map_err(gerr)?;
            let written = written
                .downcast::<RepoFile>()
                .map_err(|_| anyhow!("libostree returned a root that is not a repository file"))?;
            let final_root = (
                written
                    .tree_get_contents_checksum()
                    .ok_or_else(|| anyhow!("written tree has no contents checksum"))?
                    .to_string(),
                written
                    .tree_get_metadata_checksum()
                    .ok_or_else(|| anyhow!("written tree has no metadata checksum"))?
                    .to_string(),
            );
            layout.lint(&TreeIndex::from_root(repo, final_root))?;
            let errors = layout.sort_findings();
            if !errors.is_empty() {
                return Err(LintErrors(errors).into());
            }
            let checksum = super::write_commit_from_root(repo, &written, commit)?;
            Ok((
                (checksum, std::mem::take(&mut layout.report)),
                super::WriteStats::default(),
            ))
        })
        .map(|(done, _)| done)
    }
}

struct Layout<'a> {
    repo: &'a ostree::Repo,
    index: &'a TreeIndex,
    edit: Editor<'a>,
    tmpfiles: Vec<String>,
    /// Paths the image's own tmpfiles.d files declare (after [`Layout::retarget_tmpfiles`]).
    declared: std::collections::HashSet<String>,
    findings: Vec<Finding>,
    report: LayoutReport,
    options: &'a LayoutOptions<'a>,
}

impl Layout<'_> {
    /// The findings at level error, as lines; warnings go to the report, allowed ones away.
    fn sort_findings(&mut self) -> Vec<String> {
        let mut errors = Vec::new();
        for f in std::mem::take(&mut self.findings) {
            let level = self.options.levels.get(f.rule).copied().unwrap_or(f.level);
            let line = format!("{} [{}]", f.message, f.rule);
            match level {
                LintLevel::Error => errors.push(line),
                LintLevel::Warn => self.report.warnings.push(line),
                LintLevel::Allow => {}
            }
        }
        errors
    }

    fn symlink_target(&self, checksum: &str) -> Result<Option<String>> {
        self.index.symlink_target(checksum)
    }

    fn dirtree_at(&self, path: &str) -> Result<Option<(DirTree, String, String)>> {
        match self.index.lookup(path)? {
            Some(Entry::Dir { contents, meta }) => {
                Ok(Some((read_dirtree(self.repo, &contents)?, contents, meta)))
            }
            _ => Ok(None),
        }
    }

    /// Move the kernel, initramfs and their companions from `/boot` into
    /// `/usr/lib/modules/<kver>/`, where libostree looks first.
    fn kernel(&mut self) -> Result<()> {
        let mut kernels: BTreeMap<String, String> = BTreeMap::new();
        let mut initramfs: BTreeMap<String, String> = BTreeMap::new();
        let mut companions: Vec<(String, String, String)> = Vec::new();
        if let Some((boot, _, _)) = self.dirtree_at("boot")? {
            for (name, checksum) in &boot.files {
                if self.symlink_target(checksum)?.is_some() {
                    continue;
                }
                let kernel = ["vmlinuz-", "vmlinux-", "bzImage-", "zImage-", "Image-"]
                    .iter()
                    .find_map(|p| name.strip_prefix(p));
                if let Some(kver) = kernel {
                    kernels.insert(kver.to_string(), checksum.clone());
                } else if let Some(kver) = name
                    .strip_prefix("initrd.img-")
                    .or_else(|| {
                        name.strip_prefix("initramfs-")
                            .map(|r| r.strip_suffix(".img").unwrap_or(r))
                    })
                    .or_else(|| name.strip_prefix("initrd-"))
                {
                    initramfs.insert(kver.to_string(), checksum.clone());
                } else if let Some(kver) = name.strip_prefix("config-") {
                    companions.push((kver.into(), "config".into(), checksum.clone()));
                } else if let Some(kver) = name.strip_prefix("System.map-") {
                    companions.push((kver.into(), "System.map".into(), checksum.clone()));
                }
            }
        }
        // A kernel package that already installs to /usr/lib/modules/<kver>/vmlinuz counts too.
        if let Some((modules, _, _)) = self.dirtree_at("usr/lib/modules")? {
            for kver in modules.dirs.keys() {
                if let Some(Entry::File(c)) = self
                    .index
                    .lookup(&format!("usr/lib/modules/{kver}/vmlinuz"))?
                {
                    kernels.entry(kver.clone()).or_insert(c);
                }
            }
        }
        if kernels.len() > 1 {
            bail!(
                "more than one kernel: {}\n  help: a bootable image carries one kernel (in /boot or /usr/lib/modules/<kver>/vmlinuz); drop the others from its components",
                kernels.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        }
        if let Some((kver, checksum)) = kernels.into_iter().next() {
            let dir = format!("usr/lib/modules/{kver}");
            self.edit.ensure_dir(&dir, &self.edit.default_meta)?;
            self.edit.put_file(&format!("{dir}/vmlinuz"), &checksum)?;
            if let Some(initrd) = initramfs.get(&kver) {
                self.edit
                    .put_file(&format!("{dir}/initramfs.img"), initrd)?;
            }
            for (k, name, checksum) in &companions {
                if *k == kver {
                    self.edit.put_file(&format!("{dir}/{name}"), checksum)?;
                }
            }
            // Device trees: /boot/dtbs/<kver>/ or /boot/dtbs/ go where libostree looks.
            if let Some((dtbs, contents, meta)) = self.dirtree_at("boot/dtbs")? {
                let (c, m) = dtbs.dirs.get(&kver).cloned().unwrap_or((contents, meta));
                self.edit.put_dir(&format!("{dir}/dtb"), &c, &m)?;
            }
            self.report.kernel = Some(kver);
        }
        if self.report.kernel.is_none() {
            self.findings.push(Finding {
                rule: "no-kernel",
                level: default_level("no-kernel"),
                message: "no kernel: neither /boot/vmlinuz-<kver> nor /usr/lib/modules/<kver>/vmlinuz; `ostree admin deploy` needs one (add a kernel component)".into(),
            });
        }
        // The symlinks Debian keeps at / and in /boot would dangle once /boot is empty.
        if let Some((root, _, _)) = self.dirtree_at("")? {
            for name in root.files.keys() {
                if name.starts_with("vmlinuz") || name.starts_with("initrd.img") {
                    self.edit.remove(name)?;
                }
            }
        }
        Ok(())
    }

    /// `/var` and the directories that move into it become tmpfiles.d lines; the tree
    /// ships them empty.
    fn var_and_moved_dirs(&mut self) -> Result<()> {
        let mut sources: Vec<(String, String)> = Vec::new();
        if let Some((_, contents, meta)) = self.dirtree_at("var")? {
            self.walk_var("var", &contents, &meta, true)?;
            self.edit.put_empty_dir("var", &meta)?;
            sources.push(("var".into(), contents));
        } else {
            self.edit
                .put_empty_dir("var", &self.edit.default_meta.clone())?;
        }
        for (from, to, link) in MOVED_DIRS {
            match self.index.lookup(from)? {
                Some(Entry::Dir { contents, meta }) => {
                    if to.starts_with("run/") {
                        let tree = read_dirtree(self.repo, &contents)?;
                        if !tree.files.is_empty() || !tree.dirs.is_empty() {
                            self.report.warnings.push(format!(
                                "/{from} has content, dropped: /{to} is a tmpfs at boot"
                            ));
                        }
                        let m = read_dirmeta(self.repo, &meta)?;
                        self.tmpfiles.push(format!(
                            "d /{to} {:04o} {} {} -",
                            m.mode & 0o7777,
                            m.uid,
                            m.gid
                        ));
                    } else {
                        self.walk_var(to, &contents, &meta, false)?;
                    }
                    self.edit.remove(from)?;
                    self.edit.put_symlink(from, link)?;
                }
                Some(Entry::File(checksum)) if self.symlink_target(&checksum)?.is_some() => {}
                Some(Entry::File(_)) => bail!(
                    "/{from} is a regular file; a bootable image needs it to be a directory or a symlink to /{to}"
                ),
                None => {
                    self.tmpfiles.push(format!("d /{to} 0755 0 0 -"));
                    self.edit.put_symlink(from, link)?;
                }
            }
        }
        Ok(())
    }

    /// tmpfiles.d lines for the directory `path` and everything below it.
    fn walk_var(&mut self, path: &str, contents: &str, meta: &str, is_var: bool) -> Result<()> {
        if !is_var {
            let m = read_dirmeta(self.repo, meta)?;
            self.tmpfiles.push(format!(
                "d {} {:04o} {} {} -",
                tmpfiles_path(&format!("/{path}"))?,
                m.mode & 0o7777,
                m.uid,
                m.gid
            ));
        }
        let tree = read_dirtree(self.repo, contents)?;
        for (name, checksum) in &tree.files {
            let child = format!("{path}/{name}");
            if let Some(target) = self.symlink_target(checksum)? {
                self.tmpfiles.push(format!(
                    "L {} - - - - {}",
                    tmpfiles_path(&format!("/{child}"))?,
                    tmpfiles_arg(&target)
                ));
                continue;
            }
            match self.options.var_files {
                VarFiles::Factory => {
                    let stored = format!("{FACTORY}/{child}");
                    self.edit.put_file(&stored, checksum)?;
                    self.tmpfiles.push(format!(
                        "C {} - - - - /{}",
                        tmpfiles_path(&format!("/{child}"))?,
                        tmpfiles_arg(&stored)
                    ));
                    self.report.factory_files += 1;
                }
                VarFiles::Drop => {
                    self.report.dropped_files += 1;
                    if self.report.dropped_files <= 5 {
                        self.report.warnings.push(format!(
                            "/{child}: file in /var dropped (var-files = \"drop\")"
                        ));
                    }
                }
                VarFiles::Error => {
                    self.report.dropped_files += 1;
                    if self.report.dropped_files <= 5 {
                        self.findings.push(Finding {
                            rule: "var-content",
                            level: LintLevel::Error,
                            message: format!("/{child}: a file in /var would be lost: OSTree ships /var empty (set var-files = \"factory\" to copy it in at boot, or move it under /usr)"),
                        });
                    }
                }
            }
        }
        for (name, (c, m)) in &tree.dirs {
            self.walk_var(&format!("{path}/{name}"), c, m, false)?;
        }
        Ok(())
    }

    /// `/etc` becomes `/usr/etc`; entries the tree already has in `/usr/etc` must agree.
    fn etc(&mut self) -> Result<()> {
        let Some((etc, contents, meta)) = self.dirtree_at("etc")? else {
            if self.dirtree_at("usr/etc")?.is_none() {
                self.edit
                    .put_empty_dir("usr/etc", &self.edit.default_meta.clone())?;
            }
            return Ok(());
        };
        self.edit.remove("etc")?;
        match self.dirtree_at("usr/etc")? {
            None => self.edit.put_dir("usr/etc", &contents, &meta),
            Some((usr_etc, _, _)) => self.merge_etc("", &etc, &usr_etc),
        }
    }

    fn merge_etc(&mut self, rel: &str, etc: &DirTree, usr_etc: &DirTree) -> Result<()> {
        let shadow = |path: &str, what: &str| Finding {
            rule: "etc-shadow",
            level: default_level("etc-shadow"),
            message: format!(
                "/etc{path} {what} /usr/etc{path}: the image keeps /usr/etc's and drops /etc's"
            ),
        };
        for (name, checksum) in &etc.files {
            let path = format!("{rel}/{name}");
            if usr_etc.dirs.contains_key(name) {
                let f = shadow(&path, "is a file where there is a directory");
                self.findings.push(f);
                continue;
            }
            match usr_etc.files.get(name) {
                Some(c) if c == checksum => {}
                Some(_) => {
                    let f = shadow(&path, "differs from");
                    self.findings.push(f);
                }
                None => self.edit.put_file(&format!("usr/etc{path}"), checksum)?,
            }
        }
        for (name, (c, m)) in &etc.dirs {
            let path = format!("{rel}/{name}");
            if usr_etc.files.contains_key(name) {
                let f = shadow(&path, "is a directory where there is a file");
                self.findings.push(f);
                continue;
            }
            match usr_etc.dirs.get(name) {
                Some((uc, _)) if uc == c => {}
                Some((uc, _)) => {
                    let (a, b) = (read_dirtree(self.repo, c)?, read_dirtree(self.repo, uc)?);
                    self.merge_etc(&path, &a, &b)?;
                }
                None => self.edit.put_dir(&format!("usr/etc{path}"), c, m)?,
            }
        }
        Ok(())
    }

    /// The image's own tmpfiles.d lines that name a directory the layout turned into a
    /// symlink (`/home`, `/srv`, `/root`, ...) name where it points instead (`/var/home`):
    /// systemd-tmpfiles will not treat a symlink as the directory and logs "already exists
    /// and is not a directory" at every boot. Read from the tree as composed (`/etc` not yet
    /// moved), written where the layout put each directory.
    fn retarget_tmpfiles(&mut self) -> Result<()> {
        let own = TMPFILES_CONF.rsplit('/').next().unwrap_or_default();
        for (from, to) in [
            ("usr/lib/tmpfiles.d", "usr/lib/tmpfiles.d"),
            ("etc/tmpfiles.d", "usr/etc/tmpfiles.d"),
        ] {
            let Some((dir, _, _)) = self.dirtree_at(from)? else {
                continue;
            };
            for (name, checksum) in dir.files.iter().filter(|(n, _)| n.ends_with(".conf")) {
                let Some(text) = read_text_file(self.repo, checksum)? else {
                    continue;
                };
                let rewritten = retargeted_tmpfiles(&text);
                if name != own {
                    self.declared.extend(
                        rewritten
                            .lines()
                            .filter_map(tmpfiles_line_path)
                            .map(|p| p.text.to_string()),
                    );
                }
                if rewritten != text {
                    let fixed = rewrite_file(self.repo, checksum, rewritten.as_bytes())?;
                    self.edit.put_file(&format!("{to}/{name}"), &fixed)?;
                }
            }
        }
        Ok(())
    }

    fn write_tmpfiles(&mut self) -> Result<()> {
        // What the image's own tmpfiles.d declares is left to it: a second line for one
        // path is a warning at every boot.
        let declared = std::mem::take(&mut self.declared);
        self.tmpfiles
            .retain(|l| !matches!(tmpfiles_line_path(l), Some(p) if declared.contains(p.text)));
        if self.tmpfiles.is_empty() {
            return Ok(());
        }
        let mut text = String::from(
            "# Written by ostree-build: what the image had in /var, /home, /root, /opt, /srv,\n# /mnt and /usr/local, recreated at boot (OSTree ships /var empty).\n",
        );
        for line in &self.tmpfiles {
            text.push_str(line);
            text.push('\n');
        }
        let checksum = self
            .repo
            .write_regfile_inline(
                None,
                0,
                0,
                0o100644,
                Some(&no_xattrs()),
                text.as_bytes(),
                NO_CANCEL,
            )
            .map_err(gerr)?;
        self.report.tmpfiles_lines = self.tmpfiles.len();
        self.edit.put_file(TMPFILES_CONF, &checksum)
    }

    /// Lints that need the final tree: os-release and symlinks into /usr that dangle.
    fn lint(&mut self, tree: &TreeIndex) -> Result<()> {
        if !matches!(
            tree.resolve("/usr/lib/os-release", &deployed, &runtime)?,
            Resolved::Found(_, Entry::File(_))
        ) {
            self.findings.push(Finding {
                rule: "no-os-release",
                level: default_level("no-os-release"),
                message: "no /usr/lib/os-release: the deployed system and `ostree admin deploy` read the OS name and version from it (Debian's base-files and Fedora's *-release packages ship it)".into(),
            });
        }
        self.lint_initramfs(tree)?;
        let mut broken = Vec::new();
        let (contents, _) = tree.root().clone();
        self.find_broken(tree, "", &contents, &mut broken)?;
        let total = broken.len();
        for (i, (path, target)) in broken.into_iter().enumerate() {
            if i == 5 {
                self.findings.push(Finding {
                    rule: "broken-symlink",
                    level: default_level("broken-symlink"),
                    message: format!("... and {} more broken symlinks into /usr", total - 5),
                });
                break;
            }
            self.findings.push(Finding {
                rule: "broken-symlink",
                level: default_level("broken-symlink"),
                message: format!("{path} -> {target}: the target does not exist in /usr"),
            });
        }
        Ok(())
    }

    /// The kernel's initramfs must be able to mount an OSTree deployment: it carries
    /// `ostree-prepare-root` (dracut's `ostree` module from ostree-boot puts it there).
    fn lint_initramfs(&mut self, tree: &TreeIndex) -> Result<()> {
        let Some(kver) = self.report.kernel.clone() else {
            return Ok(());
        };
        let path = format!("/usr/lib/modules/{kver}/initramfs.img");
        let fix = "add `{ name = \"initramfs\" }` to the image's triggers, with dracut-core and ostree-boot (Debian) or dracut and ostree (Fedora) in its packages";
        let problem = match tree.lookup(&path)? {
            Some(Entry::File(checksum)) => match read_file(self.repo, &checksum, u64::MAX)? {
                None => Some(format!("{path} is not a regular file")),
                Some(bytes) => match crate::initramfs::find(&bytes, &|p| {
                    p.rsplit('/').next() == Some("ostree-prepare-root")
                }) {
                    Ok(Some(_)) => None,
                    Ok(None) => Some(format!(
                        "{path} has no ostree-prepare-root: the system would stop in the initramfs, unable to mount its deployment"
                    )),
                    Err(e) => Some(format!("{path} cannot be read as an initramfs: {e}")),
                },
            },
            _ => Some(format!(
                "kernel {kver} has no initramfs ({path}): OSTree boots through one that mounts the deployment"
            )),
        };
        if let Some(problem) = problem {
            self.findings.push(Finding {
                rule: "initramfs-ostree",
                level: default_level("initramfs-ostree"),
                message: format!("{problem}; {fix}"),
            });
        }
        Ok(())
    }

    fn find_broken(
        &mut self,
        tree_index: &TreeIndex,
        dir: &str,
        contents: &str,
        out: &mut Vec<(String, String)>,
    ) -> Result<()> {
        let tree = read_dirtree(self.repo, contents)?;
        for (name, checksum) in &tree.files {
            let Some(target) = tree_index.symlink_target(checksum)? else {
                continue;
            };
            // Paths under /usr/etc are seen at /etc once deployed.
            let at = match dir.strip_prefix("/usr/etc") {
                Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("/etc{rest}"),
                _ => dir.to_string(),
            };
            let full = if target.starts_with('/') {
                target.clone()
            } else {
                format!("{at}/{target}")
            };
            let normal = normalize(&full);
            if !(normal == "/usr" || normal.starts_with("/usr/")) {
                continue;
            }
            if matches!(
                tree_index.resolve(&full, &deployed, &runtime)?,
                Resolved::Missing
            ) {
                out.push((format!("{at}/{name}"), target));
            }
        }
        for (name, (c, _)) in &tree.dirs {
            self.find_broken(tree_index, &format!("{dir}/{name}"), c, out)?;
        }
        Ok(())
    }
}

/// `text` (a tmpfiles.d file) with every line's path that is, or is below, a directory in
/// [`MOVED_DIRS`] moved to where that directory's symlink points.
fn retargeted_tmpfiles(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        out.push_str(&retargeted_tmpfiles_line(line).unwrap_or_else(|| line.to_string()));
    }
    out
}

fn retargeted_tmpfiles_line(line: &str) -> Option<String> {
    let path = tmpfiles_line_path(line)?;
    let (moved, target) = MOVED_DIRS.iter().find_map(|(dir, target, _)| {
        let dir = format!("/{dir}");
        (path.text == dir || path.text.starts_with(&format!("{dir}/"))).then_some((dir, target))
    })?;
    Some(format!(
        "{}/{target}{}{}",
        &line[..path.start],
        &path.text[moved.len()..],
        &line[path.start + path.text.len()..]
    ))
}

/// Where a tmpfiles.d line's path is; `None` for comments and blank lines.
struct LinePath<'a> {
    start: usize,
    text: &'a str,
}

/// The path field of a tmpfiles.d line (`Type Path Mode ...`).
fn tmpfiles_line_path(line: &str) -> Option<LinePath<'_>> {
    let trimmed = line.trim_start();
    if trimmed.starts_with('#') {
        return None;
    }
    let kind_end = line.len() - trimmed.len() + trimmed.find(char::is_whitespace)?;
    let start = kind_end + (line[kind_end..].len() - line[kind_end..].trim_start().len());
    let rest = &line[start..];
    let len = rest.find(char::is_whitespace).unwrap_or(rest.len());
    (len > 0).then(|| LinePath {
        start,
        text: &rest[..len],
    })
}

/// The path field of a tmpfiles.d line: double-quoted when needed, with `"` and `\\`
/// backslash-escaped and `%` doubled (specifiers are expanded). systemd-tmpfiles takes no
/// C escapes in this field, so a name with a control character cannot be written.
fn tmpfiles_path(path: &str) -> Result<String> {
    if path.chars().any(char::is_control) {
        bail!("{path:?} has a control character, which tmpfiles.d cannot express\n  help: rename it, or set var-files = \"drop\"");
    }
    let escaped = path.replace('%', "%%");
    if !escaped
        .chars()
        .any(|c| c.is_whitespace() || matches!(c, '\'' | '"' | '\\'))
    {
        return Ok(escaped);
    }
    Ok(format!(
        "\"{}\"",
        escaped.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

/// The argument field of a tmpfiles.d line (an `L` target, a `C` source): `%` doubled and
/// whitespace, quotes, backslashes and control characters as `\xNN` C escapes.
fn tmpfiles_arg(arg: &str) -> String {
    let mut out = String::new();
    for c in arg.chars() {
        match c {
            '%' => out.push_str("%%"),
            c if c.is_whitespace() || c.is_control() || matches!(c, '\'' | '"' | '\\') => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\x{b:02x}"));
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// `.` and `..` folded away lexically.
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Where a deployment finds `path`: `/etc` is the commit's `/usr/etc`.
fn deployed(path: &str) -> String {
    match path.strip_prefix("/etc") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("/usr/etc{rest}"),
        _ => path.to_string(),
    }
}

/// Paths that are mounts or per-machine state once deployed: the commit cannot say what
/// they hold.
fn runtime(path: &str) -> bool {
    [
        "/var", "/run", "/proc", "/sys", "/dev", "/tmp", "/sysroot", "/boot",
    ]
    .contains(&path)
}

#[cfg(test)]
mod tests {
    use super::{normalize, tmpfiles_arg, tmpfiles_path};

    #[test]
    fn tmpfiles_lines_follow_moved_directories() {
        let text = "# Q /home\nQ /home 0755 - - -\n  d- /root/.ssh :0700 root :root -\nd /homes 0755\nL+ /usr/local/bin - - - - /x\nd\t/media\n";
        assert_eq!(
            super::retargeted_tmpfiles(text),
            "# Q /home\nQ /var/home 0755 - - -\n  d- /var/roothome/.ssh :0700 root :root -\nd /homes 0755\nL+ /var/usrlocal/bin - - - - /x\nd\t/run/media\n"
        );
    }

    #[test]
    fn paths_normalize_and_escape() {
        assert_eq!(
            normalize("/usr/etc/../lib/./os-release"),
            "/usr/lib/os-release"
        );
        assert_eq!(normalize("/../x"), "/x");
        assert_eq!(tmpfiles_path("/var/a").unwrap(), "/var/a");
        assert_eq!(tmpfiles_path("/var/100%done").unwrap(), "/var/100%%done");
        assert_eq!(tmpfiles_path("/var/it's a").unwrap(), "\"/var/it's a\"");
        assert_eq!(
            tmpfiles_path("/var/q\"x\\y").unwrap(),
            "\"/var/q\\\"x\\\\y\""
        );
        assert!(tmpfiles_path("/var/a\nb").is_err());
        assert_eq!(tmpfiles_arg("../it's 100%"), "../it\\x27s\\x20100%%");
    }
}
