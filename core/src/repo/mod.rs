//! The repository layer: every libostree call of the project lives here.
//!
//! `Repo` wraps one opened repository (the `bare-user` build cache or the `archive` export
//! repository) and offers the operations the pipeline needs: importing a directory or a
//! tarball as a commit, reading commit metadata, refs, pulling between repositories,
//! static deltas and the summary. Submodules add the in-memory union of component trees
//! (`union`), worktrees for triggers (`worktree`), read access to committed trees (`tree`),
//! tree diffs for trigger reuse (`changes`) and for `diff` (`treediff`), sizes and
//! signatures of published commits (`history`), new commits over existing trees
//! (`recommit`), remotes read over HTTP (`remote`), the bootable layout and its lint (`layout`), GPG signing (`sign`), the
//! summary with its signature replaced together (`summary`), incremental directory imports
//! with their stat cache (`dirimport`, `statcache`) and copies pruned against an earlier
//! commit (`copy`). It takes plain types: nothing here knows
//! the manifest.

mod archive;
mod changes;
mod copy;
mod delta;
mod delta_bsdiff;
mod delta_install;
mod delta_objects;
mod delta_part;
mod delta_writer;
mod delta_xz;
mod dirimport;
mod history;
mod layout;
mod loose;
mod progress;
mod prune;
mod recommit;
mod remote;
pub mod sign;
mod statcache;
mod summary;
pub mod sysroot;
mod tree;
mod treediff;
mod union;
mod worktree;

pub use changes::Change;
pub use delta::DeltaSize;
pub use history::{Objects, Signature};
pub use layout::{LayoutOptions, LayoutReport, LintErrors, LintLevel, VarFiles, LINT_RULES};
pub use prune::{Delta, PruneCount, Reachable};
pub use recommit::Recommit;
pub use remote::{RemoteRead, RemoteSpec};
pub use sign::GpgKeys;
pub use statcache::StatCache;
pub use treediff::{Modified, TreeDiff};
pub use union::{ComposeConflict, Conflict};
pub use worktree::{MetaFrom, Snapshot, SyncStats, Touched};

use anyhow::{anyhow, bail, Context, Result};
use gio::prelude::*;
use ostree::{
    MutableTree, ObjectType, RepoCommitFilterResult, RepoCommitModifier, RepoCommitModifierFlags,
    RepoFile, RepoMode,
};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

const NO_CANCEL: Option<&gio::Cancellable> = gio::Cancellable::NONE;

/// See `Repo::in_transaction`.
static TRANSACTION_EDGES: Mutex<()> = Mutex::new(());

/// A cancellation flag for long repository operations, shareable between threads.
#[derive(Clone, Default)]
pub struct Cancel(gio::Cancellable);

impl Cancel {
    pub fn cancel(&self) {
        self.0.cancel();
    }
}

/// Which kind of repository to create when it does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoKind {
    /// The build cache: `bare-user`, fsync off (it can always be rebuilt).
    Build,
    /// What clients pull: `archive`, fsync on.
    Export,
}

/// One opened repository.
pub struct Repo {
    repo: ostree::Repo,
    path: PathBuf,
}

/// Commit facts the pipeline needs.
#[derive(Debug, Clone, Default)]
pub struct CommitInfo {
    pub checksum: String,
    pub parent: Option<String>,
    pub timestamp: u64,
    /// The subject line (empty when it has none).
    pub subject: String,
    /// The root tree (contents and metadata checksums): equal trees, equal content.
    pub tree: String,
    /// String-valued metadata (other types are rendered as text).
    pub metadata: BTreeMap<String, String>,
    /// String-list metadata (`as`), such as the package list.
    pub lists: BTreeMap<String, Vec<String>>,
}

/// What one write transaction did.
#[derive(Debug, Clone, Default)]
pub struct WriteStats {
    pub content_objects_written: usize,
    pub content_bytes_written: u64,
    pub devino_cache_hits: usize,
}

/// Metadata for a new commit: string values, or a typed variant for TOML scalars.
#[derive(Debug, Clone)]
pub enum MetaValue {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    StrList(Vec<String>),
}

impl MetaValue {
    fn to_variant(&self) -> glib::Variant {
        match self {
            MetaValue::Str(s) => s.to_variant(),
            MetaValue::Int(i) => i.to_variant(),
            MetaValue::Float(f) => f.to_variant(),
            MetaValue::Bool(b) => b.to_variant(),
            MetaValue::StrList(v) => v.to_variant(),
        }
    }
}

/// A new commit's subject and metadata.
pub struct NewCommit<'a> {
    pub parent: Option<&'a str>,
    pub subject: &'a str,
    pub metadata: &'a [(String, MetaValue)],
    pub timestamp: u64,
}

/// Problems found in input while importing (device nodes, escaping links); the import
/// fails listing them instead of committing them.
#[derive(Default, Clone)]
pub struct InputProblems(Arc<Mutex<Vec<String>>>);

impl InputProblems {
    fn push(&self, p: String) {
        if let Ok(mut v) = self.0.lock() {
            v.push(p);
        }
    }
    fn take(&self) -> Vec<String> {
        self.0
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

/// Whether libostree accepts `name` as a ref.
pub fn check_ref(name: &str) -> Result<(), String> {
    ostree::validate_rev(name).map_err(|e| e.message().to_string())
}

fn gerr(e: glib::Error) -> anyhow::Error {
    anyhow!("{}", e.message())
}

impl Repo {
    /// Open the repository at `path`, creating it with the mode `kind` asks for if absent.
    pub fn open_or_create(path: &Path, kind: RepoKind) -> Result<Repo> {
        let exists = path.join("config").is_file();
        if !exists {
            std::fs::create_dir_all(path).with_context(|| {
                format!("cannot create repository directory {}", path.display())
            })?;
        }
        let repo = ostree::Repo::new_for_path(path);
        if exists {
            repo.open(NO_CANCEL)
                .map_err(gerr)
                .with_context(|| format!("cannot open OSTree repository {}", path.display()))?;
        } else {
            let mode = match kind {
                RepoKind::Build => RepoMode::BareUser,
                RepoKind::Export => RepoMode::Archive,
            };
            repo.create(mode, NO_CANCEL)
                .map_err(gerr)
                .with_context(|| format!("cannot create OSTree repository {}", path.display()))?;
            if kind == RepoKind::Build {
                let config = repo.copy_config();
                config.set_boolean("core", "fsync", false);
                repo.write_config(&config).map_err(gerr)?;
                repo.reload_config(NO_CANCEL).map_err(gerr)?;
            }
        }
        let expected = match kind {
            RepoKind::Build => RepoMode::BareUser,
            RepoKind::Export => RepoMode::Archive,
        };
        if repo.mode() != expected {
            bail!(
                "{} is a {:?} repository, but the {} repository must be {:?}\n  help: point repos.{} at another directory",
                path.display(),
                repo.mode(),
                if kind == RepoKind::Build { "build" } else { "export" },
                expected,
                if kind == RepoKind::Build { "build" } else { "export" },
            );
        }
        if kind == RepoKind::Build {
            repo.set_disable_fsync(true);
        }
        Ok(Repo {
            repo,
            path: path.to_path_buf(),
        })
    }

    /// Open an existing repository, if there is one.
    pub fn open_existing(path: &Path) -> Result<Option<Repo>> {
        if !path.join("config").is_file() {
            return Ok(None);
        }
        let repo = ostree::Repo::new_for_path(path);
        repo.open(NO_CANCEL)
            .map_err(gerr)
            .with_context(|| format!("cannot open OSTree repository {}", path.display()))?;
        Ok(Some(Repo {
            repo,
            path: path.to_path_buf(),
        }))
    }

    /// Whether this is an `archive` repository (the kind served over HTTP).
    pub fn is_archive(&self) -> bool {
        self.repo.mode() == RepoMode::Archive
    }

    /// Stop syncing this handle's transactions to disk. For work whose durability a later
    /// synced transaction on the same filesystem provides (libostree's `syncfs` flushes all
    /// of it before that transaction writes its refs).
    pub fn skip_fsync(&self) {
        self.repo.set_disable_fsync(true);
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Set `archive.zlib-level` when it differs from what the config says.
    pub fn ensure_zlib_level(&self, level: Option<u8>) -> Result<()> {
        let config = self.repo.copy_config();
        let current = config.integer("archive", "zlib-level").ok();
        let wanted = level.map(i32::from);
        if current == wanted {
            return Ok(());
        }
        match wanted {
            Some(l) => config.set_integer("archive", "zlib-level", l),
            None => {
                let _ = config.remove_key("archive", "zlib-level");
            }
        }
        self.repo.write_config(&config).map_err(gerr)?;
        self.repo.reload_config(NO_CANCEL).map_err(gerr)
    }

    /// The commit a ref points at, if the ref exists.
    pub fn resolve(&self, refspec: &str) -> Result<Option<String>> {
        Ok(self
            .repo
            .resolve_rev(refspec, true)
            .map_err(gerr)
            .with_context(|| format!("cannot resolve ref {refspec}"))?
            .map(|s| s.to_string()))
    }

    pub fn has_commit(&self, checksum: &str) -> Result<bool> {
        self.repo
            .has_object(ObjectType::Commit, checksum, NO_CANCEL)
            .map_err(gerr)
    }

    pub fn commit_info(&self, checksum: &str) -> Result<CommitInfo> {
        let (commit, _) = self
            .repo
            .load_commit(checksum)
            .map_err(gerr)
            .with_context(|| format!("cannot load commit {checksum}"))?;
        let mut metadata = BTreeMap::new();
        let mut lists = BTreeMap::new();
        for entry in commit.child_value(0).iter() {
            let key: String = entry.child_value(0).get().unwrap_or_default();
            let value = entry
                .child_value(1)
                .as_variant()
                .unwrap_or(entry.child_value(1));
            if let Some(list) = value.get::<Vec<String>>() {
                lists.insert(key.clone(), list);
            }
            let text = value
                .str()
                .map(str::to_string)
                .unwrap_or_else(|| value.print(false).to_string());
            metadata.insert(key, text);
        }
        Ok(CommitInfo {
            checksum: checksum.to_string(),
            parent: ostree::commit_get_parent(&commit).map(|s| s.to_string()),
            timestamp: ostree::commit_get_timestamp(&commit),
            subject: commit.child_value(3).get::<String>().unwrap_or_default(),
            tree: format!(
                "{}:{}",
                ostree::checksum_from_bytes_v(&commit.child_value(6)),
                ostree::checksum_from_bytes_v(&commit.child_value(7))
            ),
            metadata,
            lists,
        })
    }

    /// Commit an existing directory tree as it is on disk.
    pub fn import_dir(&self, dir: &Path, commit: &NewCommit) -> Result<(String, WriteStats)> {
        self.import_dir_with(dir, commit, &mut |_| {})
    }

    /// [`Repo::import_dir`], telling `progress` how many files and directories were read
    /// so far, about every [`crate::ticker::INTERVAL`]. libostree walks the directory on
    /// a thread of its own meanwhile (same transaction).
    pub fn import_dir_with(
        &self,
        dir: &Path,
        commit: &NewCommit,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(String, WriteStats)> {
        let (checksum, stats, _) = self.import_dir_filtered(dir, commit, None, progress)?;
        Ok((checksum, stats))
    }

    /// A directory import; with `reuse`, the files it shows unchanged are skipped and
    /// grafted back with their known checksums, and every file's checksum is returned.
    fn import_dir_filtered(
        &self,
        dir: &Path,
        commit: &NewCommit,
        reuse: Option<dirimport::Reuse>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(String, WriteStats, HashMap<String, String>)> {
        let problems = InputProblems::default();
        let seen = Arc::new(AtomicU64::new(0));
        self.in_transaction(|repo| {
            let (repo, counter, reuse) = (repo.clone(), seen.clone(), reuse.clone());
            let work = move || {
                let modifier = input_checking_modifier(&problems, counter, reuse.clone());
                let mtree = MutableTree::new();
                let res = repo.write_dfd_to_mtree(
                    libc::AT_FDCWD,
                    &dir.to_string_lossy(),
                    &mtree,
                    Some(&modifier),
                    NO_CANCEL,
                );
                check_problems(&problems, dir)?;
                res.map_err(gerr)
                    .with_context(|| format!("cannot commit directory {}", dir.display()))?;
                if let Some(reuse) = &reuse {
                    dirimport::graft_reused(&repo, &mtree, reuse)?;
                }
                let (checksum, stats) = write_commit_from_mtree(&repo, &mtree, commit)?;
                let sums = match &reuse {
                    Some(reuse) => dirimport::written_checksums(&mtree, reuse),
                    None => HashMap::new(),
                };
                Ok(((checksum, sums), stats))
            };
            let mut tick = || progress(seen.load(Ordering::Relaxed));
            crate::ticker::ticking(crate::ticker::INTERVAL, work, &mut tick)
        })
        .map(|((checksum, sums), stats)| (checksum, stats, sums))
    }

    /// Another handle on the same opened repository, for a call made on another thread
    /// while this one reports (`ostree::Repo` is `Send`, not `Sync`).
    pub fn handle(&self) -> Repo {
        Repo {
            repo: self.repo.clone(),
            path: self.path.clone(),
        }
    }

    /// A file object: its content stream (none for a symlink), info and xattrs.
    pub(super) fn load_file_object(
        &self,
        checksum: &str,
    ) -> Result<(Option<gio::InputStream>, gio::FileInfo, glib::Variant)> {
        self.repo
            .load_file(checksum, NO_CANCEL)
            .map_err(gerr)
            .with_context(|| format!("cannot read file object {checksum}"))
    }

    /// Path of a content object in a bare repository.
    pub fn object_path(&self, checksum: &str) -> PathBuf {
        self.path
            .join("objects")
            .join(&checksum[..2])
            .join(format!("{}.file", &checksum[2..]))
    }

    /// Copy `commit` (and the objects it needs) from `source`, like `ostree pull-local`,
    /// without touching any ref.
    pub fn pull_commit_from(&self, source: &Path, commit: &str) -> Result<()> {
        self.pull_commit_cancellable(source, commit, &Cancel::default())
    }

    /// [`Repo::pull_commit_from`] that stops early when `cancel` is triggered.
    pub fn pull_commit_cancellable(
        &self,
        source: &Path,
        commit: &str,
        cancel: &Cancel,
    ) -> Result<()> {
        self.pull_commit_with(source, commit, cancel, &mut |_, _| {})
    }

    /// [`Repo::pull_commit_cancellable`], telling `progress` how many objects were copied
    /// so far and, once libostree has walked the commit's trees, how many there are in
    /// all (see `progress`), about every [`crate::ticker::INTERVAL`].
    pub fn pull_commit_with(
        &self,
        source: &Path,
        commit: &str,
        cancel: &Cancel,
        progress: &mut dyn FnMut(u64, Option<u64>),
    ) -> Result<()> {
        let counts = progress::Counts::default();
        let (repo, shared) = (self.repo.clone(), counts.clone());
        let work = move || {
            progress::in_own_context(&shared, |p| {
                Self::pull_commit(&repo, source, commit, cancel, p)
            })
        };
        let mut tick = || {
            if let Some((done, total)) = counts.get() {
                progress(done, total)
            }
        };
        let result = crate::ticker::ticking(crate::ticker::INTERVAL, work, &mut tick);
        tick();
        result
    }

    fn pull_commit(
        repo: &ostree::Repo,
        source: &Path,
        commit: &str,
        cancel: &Cancel,
        progress: &ostree::AsyncProgress,
    ) -> Result<()> {
        let source = source
            .canonicalize()
            .with_context(|| format!("cannot find repository {}", source.display()))?;
        let url = format!("file://{}", source.display());
        let options = glib::VariantDict::new(None);
        options.insert_value("refs", &vec![commit.to_string()].to_variant());
        options.insert_value("depth", &0i32.to_variant());
        // Every object is checksummed as it is copied (libostree otherwise trusts a local
        // source), so an object that does not match its name, whatever put it in the
        // build repository, fails the copy instead of landing where clients pull from.
        options.insert_value(
            "flags",
            &(ostree::RepoPullFlags::UNTRUSTED.bits() as i32).to_variant(),
        );
        options.insert_value(
            "update-frequency",
            &(crate::ticker::INTERVAL.as_millis() as u32).to_variant(),
        );
        repo.pull_with_options(&url, &options.end(), Some(progress), Some(&cancel.0))
            .map_err(gerr)
            .with_context(|| format!("cannot copy commit {commit} from {}", source.display()))
    }

    /// Move several refs in one transaction, once everything they point at is written
    /// (and, with fsync on, synced). libostree writes the ref files one by one at the very
    /// end, so only a kill in that instant can move some and not others; nothing points at
    /// a missing object, and the next run finishes the job.
    pub fn set_refs(&self, refs: &[(String, String)]) -> Result<()> {
        if refs.is_empty() {
            return Ok(());
        }
        self.in_transaction(|repo| {
            for (name, checksum) in refs {
                repo.transaction_set_ref(None, name, Some(checksum));
            }
            Ok(((), WriteStats::default()))
        })
        .map(|_| ())
    }

    /// Whether the summary is missing or older than one of the refs (a run stopped between
    /// moving a ref and regenerating the summary).
    pub fn summary_is_stale(&self) -> Result<bool> {
        let refs = self.repo.list_refs(None, NO_CANCEL).map_err(gerr)?;
        if refs.is_empty() {
            return Ok(false);
        }
        let mtime = |p: PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let Some(summary) = mtime(self.path.join("summary")) else {
            return Ok(true);
        };
        Ok(refs.keys().any(|r| {
            mtime(self.path.join("refs/heads").join(r.as_str())).is_some_and(|t| t > summary)
        }))
    }

    pub fn regenerate_summary(&self) -> Result<()> {
        self.repo
            .regenerate_summary(None, NO_CANCEL)
            .map_err(gerr)
            .context("cannot regenerate the summary")
    }

    fn in_transaction<T>(
        &self,
        body: impl FnOnce(&ostree::Repo) -> Result<(T, WriteStats)>,
    ) -> Result<(T, WriteStats)> {
        // Starting and ending transactions is serialised within the process: libostree
        // scans, reuses and removes staging directories there, and two handles doing it at
        // once (parallel component imports) can see each other's directory vanish. The
        // writes in between stay parallel.
        {
            let _turn = TRANSACTION_EDGES.lock().unwrap_or_else(|e| e.into_inner());
            self.repo
                .prepare_transaction(NO_CANCEL)
                .map_err(gerr)
                .with_context(|| {
                    format!("cannot start a transaction in {}", self.path.display())
                })?;
        }
        match body(&self.repo) {
            Ok((value, _)) => {
                let _turn = TRANSACTION_EDGES.lock().unwrap_or_else(|e| e.into_inner());
                let stats = self.repo.commit_transaction(NO_CANCEL).map_err(gerr)?;
                Ok((
                    value,
                    WriteStats {
                        content_objects_written: stats.get_content_objects_written(),
                        content_bytes_written: stats.get_content_bytes_written(),
                        devino_cache_hits: stats.get_devino_cache_hits(),
                    },
                ))
            }
            Err(e) => {
                let _turn = TRANSACTION_EDGES.lock().unwrap_or_else(|e| e.into_inner());
                let _ = self.repo.abort_transaction(NO_CANCEL);
                Err(e)
            }
        }
    }
}

fn write_commit_from_mtree(
    repo: &ostree::Repo,
    mtree: &MutableTree,
    commit: &NewCommit,
) -> Result<(String, WriteStats)> {
    let root = repo.write_mtree(mtree, NO_CANCEL).map_err(gerr)?;
    let root = root
        .downcast::<RepoFile>()
        .map_err(|_| anyhow!("libostree returned a root that is not a repository file"))?;
    Ok((
        write_commit_from_root(repo, &root, commit)?,
        WriteStats::default(),
    ))
}

/// Write a commit of the tree `root` (written already).
fn write_commit_from_root(
    repo: &ostree::Repo,
    root: &RepoFile,
    commit: &NewCommit,
) -> Result<String> {
    let dict = glib::VariantDict::new(None);
    for (key, value) in commit.metadata {
        dict.insert_value(key, &value.to_variant());
    }
    let checksum = repo
        .write_commit_with_time(
            commit.parent,
            Some(commit.subject),
            None,
            Some(&dict.end()),
            root,
            commit.timestamp,
            NO_CANCEL,
        )
        .map_err(gerr)?;
    Ok(checksum.to_string())
}

/// A commit modifier that records device nodes and symlinks escaping the root instead of
/// committing them.
/// With `reuse`, files and symlinks the stat cache shows unchanged are skipped too (see
/// `dirimport`), after the checks.
fn input_checking_modifier(
    problems: &InputProblems,
    seen: Arc<AtomicU64>,
    reuse: Option<dirimport::Reuse>,
) -> RepoCommitModifier {
    let problems = problems.clone();
    RepoCommitModifier::new(
        RepoCommitModifierFlags::NONE,
        Some(Box::new(move |_repo, path, info| {
            seen.fetch_add(1, Ordering::Relaxed);
            match info.file_type() {
                gio::FileType::Special => {
                    problems.push(format!("{path}: device node, fifo or socket"));
                    return RepoCommitFilterResult::Skip;
                }
                gio::FileType::SymbolicLink => {
                    if let Some(target) = info.symlink_target() {
                        if let Some(problem) =
                            crate::links::unsafe_link(path, &target.to_string_lossy())
                        {
                            problems.push(problem);
                            return RepoCommitFilterResult::Skip;
                        }
                    }
                }
                _ => {}
            }
            match &reuse {
                Some(reuse) if reuse.unchanged(path, info) => RepoCommitFilterResult::Skip,
                _ => RepoCommitFilterResult::Allow,
            }
        })),
    )
}

fn check_problems(problems: &InputProblems, input: &Path) -> Result<()> {
    let found = problems.take();
    if found.is_empty() {
        return Ok(());
    }
    let mut msg = format!(
        "{}: refusing {} unsafe entr{}: {}",
        input.display(),
        found.len(),
        if found.len() == 1 { "y" } else { "ies" },
        found.iter().take(3).cloned().collect::<Vec<_>>().join("; ")
    );
    if found.len() > 3 {
        msg.push_str(&format!("; ... and {} more", found.len() - 3));
    }
    if found.iter().any(|p| p.contains("device node")) {
        msg.push_str(
            "\n  help: device nodes are created at boot (devtmpfs); drop them from the input",
        );
    }
    if found.iter().any(|p| p.contains("points outside the root")) {
        msg.push_str(
            "\n  help: make such links absolute, or relative without climbing above the root",
        );
    }
    Err(anyhow!(msg))
}
