//! GPG signing through libostree: commits, a key probe run before anything is published,
//! and the public keys clients import. The summary and its signature live in `summary`.
//!
//! Failures of gpgme reach us as short libostree messages ("No gpg key found with ID ...",
//! "Failure signing commit file: Unusable secret key"); after a failed probe the `gpg` CLI
//! is asked which case it is (unknown key, no secret part, expired, revoked, bad homedir)
//! so the error can say what to do.

use super::{gerr, Repo, NO_CANCEL};
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The keys to sign with and the GnuPG home directory that holds them.
#[derive(Debug, Clone, Default)]
pub struct GpgKeys {
    pub keys: Vec<String>,
    /// None: gpg's default (`$GNUPGHOME` or `~/.gnupg`).
    pub homedir: Option<PathBuf>,
}

impl GpgKeys {
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn homedir_str(&self) -> Option<String> {
        self.homedir
            .as_ref()
            .map(|h| h.to_string_lossy().into_owned())
    }

    fn homedir_text(&self) -> String {
        match &self.homedir {
            Some(h) => h.display().to_string(),
            None => "gpg's default home directory".into(),
        }
    }

    /// The gpg command line a user types for this home directory, for help lines.
    fn gpg_text(&self) -> String {
        match &self.homedir {
            Some(h) => format!("gpg --homedir {}", h.display()),
            None => "gpg".into(),
        }
    }

    fn gpg(&self) -> Command {
        let mut cmd = Command::new("gpg");
        cmd.arg("--batch");
        if let Some(h) = &self.homedir {
            cmd.arg("--homedir").arg(h);
        }
        cmd
    }
}

/// Why libostree cannot sign with ed25519 here, or None when its engine works.
pub fn ed25519_unavailable() -> Option<String> {
    use ostree::prelude::SignExt;
    let sign = match ostree::Sign::by_name("ed25519") {
        Ok(s) => s,
        Err(e) => {
            return Some(format!(
                "ed25519 signing is not available in this libostree (Debian's 2022.7 is built without it): {}",
                e.message()
            ))
        }
    };
    // Without libsodium every ed25519 call fails before looking at the (unset) key.
    match sign.data(&glib::Bytes::from_static(b"probe"), NO_CANCEL) {
        Err(e) if !e.message().contains("key is not set") => Some(format!(
            "ed25519 signing is not available in this libostree ({}; Debian's 2022.7 is built without libsodium)",
            e.message()
        )),
        _ => None,
    }
}

impl Repo {
    /// Sign a small blob with every key, so a missing, expired, revoked or secret-less key
    /// fails before anything is copied or any ref moves.
    pub fn gpg_probe(&self, keys: &GpgKeys) -> Result<()> {
        if let Some(h) = &keys.homedir {
            if !h.is_dir() {
                bail!(
                    "gpg home directory {} does not exist (publish.gpg-homedir); nothing was published\n  help: fix publish.gpg-homedir in the manifest (it is relative to the manifest), or create the keys there with `gpg --homedir {} --quick-gen-key`",
                    h.display(),
                    h.display()
                );
            }
        }
        for key in &keys.keys {
            let data = glib::Bytes::from_static(b"ostree-build key probe");
            if let Err(e) = self.repo.gpg_sign_data(
                &data,
                None,
                &[key.as_str()],
                keys.homedir_str().as_deref(),
                NO_CANCEL,
            ) {
                return Err(diagnose(key, keys, e.message()));
            }
        }
        Ok(())
    }

    /// Sign `commit` with every key that has not signed it yet (a republish leaves existing
    /// signatures alone). `keyring` is the exported public keys, used to find them.
    /// Returns how many signatures were added.
    pub fn sign_commit(&self, commit: &str, keys: &GpgKeys, keyring: &Path) -> Result<usize> {
        let mut added = 0;
        for key in &keys.keys {
            if self.commit_signed_by(commit, key, keyring)? {
                continue;
            }
            match self
                .repo
                .sign_commit(commit, key, keys.homedir_str().as_deref(), NO_CANCEL)
            {
                Ok(()) => added += 1,
                Err(e) if e.matches(gio::IOErrorEnum::Exists) => {}
                Err(e) => {
                    return Err(diagnose(key, keys, e.message()))
                        .with_context(|| format!("cannot sign commit {commit}"))
                }
            }
        }
        Ok(added)
    }

    /// Regenerate every static delta leading to `commit`, so their superblocks carry the
    /// commit's current signatures (a client pulling through a delta takes them from
    /// there, not from the `.commitmeta` file). Returns how many were regenerated.
    pub fn regenerate_deltas_to(&self, commit: &str) -> Result<usize> {
        let names = self
            .repo
            .list_static_delta_names(NO_CANCEL)
            .map_err(gerr)
            .context("cannot list static deltas")?;
        let mut done = 0;
        for name in names {
            if let Some((from, to)) = name.split_once('-') {
                if to == commit {
                    self.generate_delta(from, commit)?;
                    done += 1;
                }
            }
        }
        Ok(done)
    }

    /// Whether `commit` carries a valid signature by `key` (checked against `keyring`).
    pub fn commit_signed_by(&self, commit: &str, key: &str, keyring: &Path) -> Result<bool> {
        if !self.has_signatures(commit)? {
            return Ok(false);
        }
        let keyring = gio::File::for_path(keyring);
        let result = self
            .repo
            .verify_commit_ext(commit, gio::File::NONE, Some(&keyring), NO_CANCEL)
            .map_err(gerr)
            .with_context(|| format!("cannot read the signatures of commit {commit}"))?;
        Ok(signature_valid(&result, key))
    }

    /// Write the public part of every key, binary like `gpg --export`, into `dest`
    /// (replaced atomically): clients import it with `ostree remote add --gpg-import`.
    pub fn export_public_keys(&self, keys: &GpgKeys, dest: &Path) -> Result<()> {
        let out = keys
            .gpg()
            .arg("--export")
            .args(&keys.keys)
            .output()
            .context("cannot run gpg (is gnupg installed?)")?;
        if !out.status.success() || out.stdout.is_empty() {
            bail!(
                "cannot export the public keys {} from {}: {}\n  help: check publish.gpg-sign and publish.gpg-homedir",
                keys.keys.join(", "),
                keys.homedir_text(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        if std::fs::read(dest).ok().as_deref() == Some(out.stdout.as_slice()) {
            return Ok(());
        }
        crate::fsutil::replace_file(dest, &out.stdout)
    }
}

/// Whether `result` holds a valid signature by `key`.
pub(super) fn signature_valid(result: &ostree::GpgVerifyResult, key: &str) -> bool {
    let Some(index) = result.lookup(key) else {
        return false;
    };
    // Attribute 0 of a signature's description is OSTREE_GPG_SIGNATURE_ATTR_VALID.
    result.all(index).child_value(0).get::<bool>() == Some(true)
}

/// Turn libostree's message about `key` into one that says which case it is.
fn diagnose(key: &str, keys: &GpgKeys, ostree_msg: &str) -> anyhow::Error {
    let (home, gpg) = (keys.homedir_text(), keys.gpg_text());
    let listed = |secret: bool| -> Option<String> {
        let out = keys
            .gpg()
            .arg(if secret {
                "--list-secret-keys"
            } else {
                "--list-keys"
            })
            .args(["--with-colons", key])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        out.status.success().then_some(text)
    };
    let help_gen = format!(
        "help: list the keys with `{gpg} --list-secret-keys --keyid-format long`, then fix publish.gpg-sign"
    );
    let Some(public) = listed(false) else {
        return anyhow!(
            "GPG key {key} not found in {home} (publish.gpg-sign); nothing was published\n  {help_gen}\n  help: libostree said: {ostree_msg}"
        );
    };
    if listed(true).is_none() {
        return anyhow!(
            "GPG key {key} in {home} has no secret part, so it cannot sign; nothing was published\n  help: import the secret key (`{gpg} --import SECRET.asc`) or sign with another key\n  help: libostree said: {ostree_msg}"
        );
    }
    // Field 2 of the primary key line is its validity: e = expired, r = revoked.
    let validity = public
        .lines()
        .find(|l| l.starts_with("pub:"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("");
    let extend =
        format!("extend it (`{gpg} --quick-set-expire FINGERPRINT 1y`) or sign with another key");
    let (case, help) = match validity {
        "e" => ("has expired", extend),
        "r" => (
            "is revoked",
            "sign with another key (a revoked key stays revoked)".into(),
        ),
        _ => (
            "cannot sign (no usable signing subkey: expired or revoked?)",
            extend,
        ),
    };
    anyhow!(
        "GPG key {key} in {home} {case}; nothing was published\n  help: {help}\n  help: libostree said: {ostree_msg}"
    )
}
