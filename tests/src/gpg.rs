//! Throwaway GnuPG keys for the signing tests: each in its own home directory (or a second
//! one beside it), expired, revoked or public-only on demand; the agent stops on drop.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A GnuPG home directory with one key; its agent is stopped when dropped.
pub struct GpgKey {
    pub home: PathBuf,
    /// The primary key's fingerprint, as `[publish] gpg-sign` takes it.
    pub fpr: String,
}

impl GpgKey {
    pub fn new(dir: &Path, name: &str, extra: &[&str], expire: &str) -> GpgKey {
        let home = dir.join(name);
        std::fs::create_dir_all(&home).unwrap();
        std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        let uid = format!("{name} <{name}@example.org>");
        let mut args = vec!["--batch", "--passphrase", ""];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--quick-gen-key", &uid, "ed25519", "sign", expire]);
        gpg(&home, &args);
        let list = gpg(&home, &["--list-keys", "--with-colons"]);
        let fpr = list
            .lines()
            .find(|l| l.starts_with("fpr:"))
            .and_then(|l| l.split(':').nth(9))
            .expect("fingerprint")
            .to_string();
        GpgKey { home, fpr }
    }

    /// A second key in the same home directory.
    pub fn another(&self, name: &str) -> GpgKey {
        let primary = |home: &Path| -> Vec<String> {
            let list = gpg(home, &["--list-keys", "--with-colons"]);
            let lines: Vec<&str> = list.lines().collect();
            lines
                .windows(2)
                .filter(|w| w[0].starts_with("pub:") && w[1].starts_with("fpr:"))
                .filter_map(|w| w[1].split(':').nth(9).map(str::to_string))
                .collect()
        };
        let before = primary(&self.home);
        let uid = format!("{name} <{name}@example.org>");
        gpg(
            &self.home,
            &[
                "--passphrase",
                "",
                "--quick-gen-key",
                &uid,
                "ed25519",
                "sign",
                "1y",
            ],
        );
        let fpr = primary(&self.home)
            .into_iter()
            .find(|f| !before.contains(f))
            .expect("new key");
        GpgKey {
            home: self.home.clone(),
            fpr,
        }
    }

    /// A home directory holding only the public part of `self`.
    pub fn public_only(&self, dir: &Path, name: &str) -> GpgKey {
        let home = dir.join(name);
        std::fs::create_dir_all(&home).unwrap();
        std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        let public = dir.join(format!("{name}.pub"));
        let out = Command::new("gpg")
            .args(["--batch", "--homedir"])
            .arg(&self.home)
            .args(["--export", &self.fpr])
            .output()
            .unwrap();
        std::fs::write(&public, out.stdout).unwrap();
        gpg(&home, &["--import", public.to_str().unwrap()]);
        GpgKey {
            home,
            fpr: self.fpr.clone(),
        }
    }

    /// Revoke the key with the certificate gpg stored when generating it.
    pub fn revoke(&self) {
        let cert = self
            .home
            .join("openpgp-revocs.d")
            .join(format!("{}.rev", self.fpr));
        let text = std::fs::read_to_string(&cert).unwrap();
        // gpg stores it with a leading ':' so that it is not imported by mistake.
        std::fs::write(&cert, text.replace(":-----BEGIN", "-----BEGIN")).unwrap();
        gpg(&self.home, &["--import", cert.to_str().unwrap()]);
    }
}

impl Drop for GpgKey {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(&self.home)
            .args(["--kill", "gpg-agent"])
            .status();
    }
}

/// Run `gpg --homedir HOME --batch ARGS`; panics on failure.
pub fn gpg(home: &Path, args: &[&str]) -> String {
    let out = Command::new("gpg")
        .arg("--homedir")
        .arg(home)
        .arg("--batch")
        .args(args)
        .output()
        .expect("run gpg (install gnupg)");
    assert!(
        out.status.success(),
        "gpg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A `bare-user` client repository at `dir/client` whose remote `exampleos` (at `url`)
/// verifies commits and the summary with the keys publish exported into `export`.
pub fn verifying_client(dir: &Path, export: &Path, url: &str) -> PathBuf {
    let repo = dir.join("client");
    crate::ostree(&repo, &["init", "--mode=bare-user"]);
    let keyring = export.join("exampleos.gpg");
    crate::ostree(
        &repo,
        &[
            "remote",
            "add",
            "--set=gpg-verify=true",
            "--set=gpg-verify-summary=true",
            &format!("--gpg-import={}", keyring.display()),
            "exampleos",
            url,
        ],
    );
    repo
}

/// What `ostree show --gpg-verify-remote=exampleos` says of `exampleos:REF` in `client`,
/// after checking that it found a good signature.
pub fn good_signature(client: &Path, rev: &str) -> String {
    let show = crate::ostree(
        client,
        &[
            "show",
            "--gpg-verify-remote=exampleos",
            &format!("exampleos:{rev}"),
        ],
    );
    assert!(show.contains("Good signature"), "{show}");
    show
}
