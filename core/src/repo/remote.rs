//! A remote repository read over HTTP(S) or file: the shared component cache. The remote
//! is configured in the repository (libostree pulls only from named remotes), its summary
//! is fetched and read for refs, and commits are pulled by checksum, verified by libostree
//! (every object's checksum; with a keyring, each commit's GPG signature).

use super::{gerr, Repo, NO_CANCEL};
use anyhow::{bail, Context, Result};
use gio::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How to reach a remote.
pub struct RemoteSpec<'a> {
    pub url: &'a str,
    /// Public keys every commit must be signed by one of; `None`: no signature check.
    pub keyring: Option<&'a Path>,
}

/// Reading a remote: its name and how long it may send nothing before it is given up on
/// (libostree's fetcher itself waits for a silent server as long as TCP does).
pub struct RemoteRead<'a> {
    pub name: &'a str,
    pub stall: Duration,
}

impl Repo {
    /// Configure remote `name` as `spec` says, rewriting the configuration only when it
    /// differs (so concurrent readers of an unchanged setup never write).
    pub fn configure_remote(&self, name: &str, spec: &RemoteSpec) -> Result<()> {
        let wanted = remote_options(spec);
        if self.remote_matches(name, spec) {
            return Ok(());
        }
        let _ = self.repo.remote_delete(name, NO_CANCEL);
        self.repo
            .remote_add(name, Some(spec.url), Some(&wanted), NO_CANCEL)
            .map_err(gerr)
            .with_context(|| format!("cannot configure the remote {name} ({})", spec.url))
    }

    fn remote_matches(&self, name: &str, spec: &RemoteSpec) -> bool {
        let url = self.repo.remote_get_url(name).ok();
        let option = |key: &str| {
            self.repo
                .copy_config()
                .string(&format!("remote \"{name}\""), key)
                .ok()
                .map(|s| s.to_string())
        };
        url.as_deref() == Some(spec.url)
            && option("gpg-verify").as_deref() == Some(bool_text(spec.keyring.is_some()))
            && option("gpgkeypath") == spec.keyring.map(|k| k.display().to_string())
    }

    /// The refs the remote's summary lists, with their commits. Fails when the summary
    /// cannot be fetched (within `stall`) or is not a summary.
    pub fn remote_refs(&self, remote: &RemoteRead) -> Result<BTreeMap<String, String>> {
        let options = glib::VariantDict::new(None);
        options.insert_value("n-network-retries", &1u32.to_variant());
        let options = options.end();
        let (repo, name) = (self.handle(), remote.name.to_string());
        let summary = with_stall_limit(remote.stall, move |cancel, _| {
            repo.fetch_summary(&name, &options, cancel).map_err(gerr)
        })
        .context("cannot fetch its summary")?
        .ok_or_else(|| anyhow::anyhow!("it has no summary file"))?;
        parse_summary_refs(&summary)
    }

    /// `ostree_repo_remote_fetch_summary_with_options` without the signature: the
    /// binding's wrapper assumes both outputs are set and aborts when the remote has no
    /// `summary.sig`, which is the normal case for an unsigned cache.
    fn fetch_summary(
        &self,
        name: &str,
        options: &glib::Variant,
        cancel: &gio::Cancellable,
    ) -> Result<Option<glib::Bytes>, glib::Error> {
        use glib::translate::{from_glib_full, ToGlibPtr};
        let mut summary: *mut glib::ffi::GBytes = std::ptr::null_mut();
        let mut error: *mut glib::ffi::GError = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; out_signatures is optional
        // (nullable) in libostree, and the returned summary (full transfer) and error are
        // owned by the wrappers made from them.
        unsafe {
            let ok = ostree::ffi::ostree_repo_remote_fetch_summary_with_options(
                self.repo.to_glib_none().0,
                name.to_glib_none().0,
                options.to_glib_none().0,
                &mut summary,
                std::ptr::null_mut(),
                cancel.to_glib_none().0,
                &mut error,
            );
            if ok == glib::ffi::GFALSE {
                return Err(from_glib_full(error));
            }
            Ok((!summary.is_null()).then(|| from_glib_full(summary)))
        }
    }

    /// Fetch `commit` and every object it needs from remote `name`, no ref moved. libostree
    /// checks each object's checksum and, when the remote has a keyring, the commit's
    /// signature; a commit that fails either is not kept.
    pub fn pull_remote_commit(&self, remote: &RemoteRead, commit: &str) -> Result<()> {
        let options = glib::VariantDict::new(None);
        options.insert_value("refs", &vec![commit.to_string()].to_variant());
        options.insert_value("depth", &0i32.to_variant());
        options.insert_value("n-network-retries", &1u32.to_variant());
        // libostree trusts a file:// remote and would copy its objects unchecked: a cache on
        // a shared disk is as untrusted as one over HTTP.
        options.insert_value(
            "flags",
            &(ostree::RepoPullFlags::UNTRUSTED.bits() as i32).to_variant(),
        );
        let options = options.end();
        let (repo, name) = (self.own_handle()?, remote.name.to_string());
        let pulled = with_stall_limit(remote.stall, move |cancel, progress| {
            repo.pull_with_options(&name, &options, Some(progress), Some(cancel))
                .map_err(gerr)
        })
        .with_context(|| format!("cannot pull commit {commit}"));
        let complete = pulled.and_then(|_| match self.has_complete_commit(commit) {
            true => Ok(()),
            false => Err(anyhow::anyhow!(
                "commit {commit} is incomplete after the pull"
            )),
        });
        if complete.is_err() {
            self.forget_partial(commit);
        }
        complete
    }

    /// A handle of its own on this repository (reading the configuration on disk, remotes
    /// included): a pull that is given up on and left running (`with_stall_limit`) keeps
    /// its transaction there, not on the handle the build goes on with.
    fn own_handle(&self) -> Result<ostree::Repo> {
        let repo = ostree::Repo::new_for_path(&self.path);
        repo.open(NO_CANCEL)
            .map_err(gerr)
            .with_context(|| format!("cannot open OSTree repository {}", self.path.display()))?;
        Ok(repo)
    }

    /// Drop what a failed pull left of `commit`: the commit object and libostree's
    /// `commitpartial` mark (the objects it did fetch are whole and verified; they stay
    /// until a prune), so `fsck` finds no partial commit and nothing refers to it.
    fn forget_partial(&self, commit: &str) {
        if self.has_complete_commit(commit) {
            return;
        }
        let _ = self
            .repo
            .delete_object(ostree::ObjectType::Commit, commit, NO_CANCEL);
        let _ = std::fs::remove_file(
            self.path
                .join("state")
                .join(format!("{commit}.commitpartial")),
        );
    }
}

/// Run `work` (a fetch from a remote) on a thread with a main context of its own, and give
/// up on it once no byte has arrived for `stall`. libostree's curl fetcher does not stop
/// a request when its cancellable fires, so the thread is then left behind (cancelled,
/// for whatever part of libostree checks): it ends when the server or TCP gives up, or
/// with the process. What it may still write are whole, checked objects.
fn with_stall_limit<T: Send + 'static>(
    stall: Duration,
    work: impl FnOnce(&gio::Cancellable, &ostree::AsyncProgress) -> Result<T> + Send + 'static,
) -> Result<T> {
    let cancel = gio::Cancellable::new();
    let bytes = Arc::new(AtomicU64::new(0));
    let (work_cancel, counter) = (cancel.clone(), bytes.clone());
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let context = glib::MainContext::new();
        let outcome = context
            .with_thread_default(|| {
                let progress = ostree::AsyncProgress::new();
                progress.connect_changed(move |p| {
                    counter.store(p.uint64("bytes-transferred"), Ordering::Relaxed)
                });
                work(&work_cancel, &progress)
            })
            .map_err(|e| anyhow::anyhow!("cannot use a main context: {e}"))
            .and_then(|r| r);
        let _ = done.send(outcome);
    });
    let (mut seen, mut since) = (0, Instant::now());
    loop {
        match result.recv_timeout(crate::ticker::INTERVAL) {
            Ok(outcome) => return outcome,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                bail!("the fetch ended without a result")
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
        let now = bytes.load(Ordering::Relaxed);
        if now != seen {
            (seen, since) = (now, Instant::now());
        } else if since.elapsed() > stall {
            cancel.cancel();
            bail!("nothing arrived for {}s; gave up", stall.as_secs());
        }
    }
}

fn bool_text(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

fn remote_options(spec: &RemoteSpec) -> glib::Variant {
    let options = glib::VariantDict::new(None);
    options.insert_value("gpg-verify", &spec.keyring.is_some().to_variant());
    options.insert_value("gpg-verify-summary", &false.to_variant());
    if let Some(keyring) = spec.keyring {
        options.insert_value("gpgkeypath", &keyring.display().to_string().to_variant());
    }
    options.end()
}

/// The refs of a summary file (`(a(s(taya{sv}))a{sv})`) and their commits.
fn parse_summary_refs(bytes: &glib::Bytes) -> Result<BTreeMap<String, String>> {
    let ty = glib::VariantTy::new("(a(s(taya{sv}))a{sv})").map_err(|e| anyhow::anyhow!("{e}"))?;
    let summary = glib::Variant::from_bytes_with_type(bytes, ty);
    if !summary.is_normal_form() {
        bail!(
            "its summary is not an OSTree summary ({} bytes)",
            bytes.len()
        );
    }
    let mut refs = BTreeMap::new();
    for entry in summary.child_value(0).iter() {
        let name = entry.child_value(0).str().unwrap_or_default().to_string();
        let checksum = entry.child_value(1).child_value(1);
        if checksum.n_children() != 32 {
            bail!("its summary lists ref {name} with a malformed checksum");
        }
        refs.insert(name, ostree::checksum_from_bytes_v(&checksum).to_string());
    }
    Ok(refs)
}

impl Repo {
    /// The files, relative to the repository, that hold `commit` and everything it reaches
    /// in this `archive` repository, its detached metadata (signatures) included: what a
    /// file copy (rsync) must send for another archive repository to have the commit.
    pub fn commit_files(&self, commit: &str) -> Result<Vec<String>> {
        let mut files = Vec::new();
        for object in &self.objects(commit)?.0 {
            let ext = match object.object_type() {
                ostree::ObjectType::File => "filez",
                ostree::ObjectType::DirTree => "dirtree",
                ostree::ObjectType::DirMeta => "dirmeta",
                ostree::ObjectType::Commit => "commit",
                other => bail!("commit {commit} reaches an object of unexpected type {other:?}"),
            };
            files.push(loose_file(object.checksum(), ext));
        }
        let meta = loose_file(commit, "commitmeta");
        if self.path.join(&meta).exists() {
            files.push(meta);
        }
        files.sort();
        Ok(files)
    }
}

fn loose_file(checksum: &str, ext: &str) -> String {
    format!("objects/{}/{}.{ext}", &checksum[..2], &checksum[2..])
}
