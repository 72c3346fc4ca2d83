//! Our static delta writer against libostree 2022.7's reader: a delta between two trees
//! that differ in every way a file can (sizes around the fallback threshold, symlinks,
//! setuid and 0600 modes, owners, xattrs, new and removed directories, a changed file, a
//! binary with scattered changes sent as a bsdiff patch, hardlinked duplicates) brings a `bare-user` client pulling over HTTP to exactly the
//! server's commit: only the fallback travels as an object, `ostree fsck` is clean, and
//! `ostree ls -R -X` of the commit (modes, owners, xattrs, checksums) is the server's.

use ostree_build_tests::server::{pull, Server};
use ostree_build_tests::*;
use std::path::Path;

const REF: &str = "exampleos/x86_64/standard";

const MANIFEST: &str = r#"
[os]
name = "exampleos"
arch = "x86_64"

[component.tree]
backend = "tarball"
path = "tree.tar"

[image.standard]
components = ["tree"]

[publish]
delta = "always"
"#;

/// Files both trees share, the changed file's first version, and a directory the second
/// tree removes.
const BASE: &str = r#"
dir('usr'); dir('usr/bin'); dir('usr/lib'); dir('usr/share'); dir('opt'); dir('opt/old')
for i in range(30):
    reg('usr/share/doc%d' % i, (b'shared document %d\n' % i) * 200)
reg('usr/bin/su', b'su binary\n', 0o4755)
reg('opt/old/gone.txt', b'removed with its directory\n')
"#;

const FIRST: &str = r#"
reg('usr/lib/changed.conf', b'version = 1\n' * 50)
reg('usr/lib/libbig.so', noise(200_000, 11), 0o755)
"#;

/// What the second tree adds: the changed file and a new directory of every kind of entry.
/// The xattrs are repeated so that the part's xattr table is shared; random.bin does not
/// compress, so it goes into a part of its own, stored without compression.
const SECOND: &str = r#"
reg('usr/lib/changed.conf', b'version = 2\n' * 50)
reg('usr/lib/libbig.so', flipped(noise(200_000, 11)), 0o755)
dir('opt/new', 0o700); dir('opt/new/sub')
reg('opt/new/empty', b'')
reg('opt/new/secret', b'only root reads this\n', 0o600)
reg('opt/new/owned', b'service data\n', 0o640, 1234, 5678)
reg('opt/new/setuid', b'another setuid binary\n', 0o4755)
reg('opt/new/text', b'compressible line\n' * 12000)
reg('opt/new/sub/same-bytes', b'only root reads this\n', 0o644)
reg('opt/new/sub/random.bin', noise(300_000))
reg('opt/new/dup', b'hardlinked twice\n')
hard('opt/new/sub/dup-link', 'opt/new/dup')
sym('opt/new/link', '../../usr/bin/su')
sym('opt/new/dangling', 'nowhere')
for name in ['opt/new/cap1', 'opt/new/cap2']:
    ti = tarfile.TarInfo(name); ti.size = len(name); ti.mode = 0o755
    ti.pax_headers = {'SCHILY.xattr.security.capability': '\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00', 'SCHILY.xattr.user.origin': 'test'}
    t.addfile(ti, io.BytesIO(name.encode()))
"#;

/// A file above the fallback size.
const BIG: &str = r#"
reg('opt/new/sub/big.bin', noise(1_500_000))
"#;

/// Deterministic bytes no compressor shrinks, as a Python function.
const NOISE: &str = r#"
import random
def noise(n, seed=7):
    return random.Random(seed).randbytes(n)
def flipped(data):
    data = bytearray(data)
    for i in range(0, len(data), 2048):
        data[i] ^= 0x5a
    return bytes(data)
"#;

fn tar(p: &Project, parts: &[&str]) {
    let body = format!("{NOISE}{}", parts.concat());
    python_tar(&p.p("tree.tar"), &body);
}

/// How many lines the server has logged once no more arrive for a while (it logs a
/// request after answering it).
fn settled_lines(server: &Server) -> usize {
    let mut count = server.output().lines().count();
    loop {
        std::thread::sleep(std::time::Duration::from_millis(300));
        let now = server.output().lines().count();
        if now == count {
            return count;
        }
        count = now;
    }
}

/// A project built from FIRST, then from SECOND plus `extra`, with the delta between.
struct Published {
    p: Project,
    from: String,
    to: String,
}

fn publish_twice(extra: &str, before_second: impl FnOnce(&Project)) -> Published {
    let p = Project::new(MANIFEST);
    tar(&p, &[BASE, FIRST]);
    p.run(&["build"]).ok();
    before_second(&p);
    tar(&p, &[BASE, SECOND, extra]);
    let run = p.run(&["build"]).ok();
    assert!(run.stdout.contains("static delta from"), "{}", run.stdout);
    let to = ostree(&p.export_repo(), &["rev-parse", REF]);
    let from = ostree(&p.export_repo(), &["rev-parse", &format!("{}^", to.trim())]);
    Published {
        from: from.trim().to_string(),
        to: to.trim().to_string(),
        p,
    }
}

impl Published {
    fn show(&self) -> String {
        let name = format!("{}-{}", self.from, self.to);
        ostree(&self.p.export_repo(), &["static-delta", "show", &name])
    }

    /// The client has the new commit whole, as the server has it: modes, owners, xattrs
    /// and checksums of every path.
    fn assert_client_has_it(&self, client: &Path) {
        fsck(client);
        let listing = |repo: &Path| ostree(repo, &["ls", "-R", "-X", "-C", &self.to]);
        let server = listing(&self.p.export_repo());
        assert_eq!(listing(client), server);
        for expected in [
            "-04755 0 0",
            "-00600 0 0",
            "-00640 1234 5678",
            "security.capability",
        ] {
            assert!(server.contains(expected), "{expected}:\n{server}");
        }
    }
}

/// The bytes of every file under the repository's `deltas/`.
fn delta_bytes(repo: &Path) -> u64 {
    fn walk(dir: &Path) -> u64 {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                match e.file_type().unwrap().is_dir() {
                    true => walk(&e.path()),
                    false => e.metadata().unwrap().len(),
                }
            })
            .sum()
    }
    walk(&repo.join("deltas"))
}

fn bare_user_client(dir: &Path) -> std::path::PathBuf {
    let client = dir.join("client");
    ostree(&client, &["init", "--mode=bare-user"]);
    client
}

/// Without fallbacks the delta applies offline to a client holding only the old commit:
/// nothing but the delta can give it the new objects.
#[test]
fn every_new_object_comes_from_the_delta() {
    let published = publish_twice("", |_| {});
    let show = published.show();
    assert!(show.contains("Number of fallback entries: 0"), "{show}");
    assert!(show.contains("Number of parts: 2"), "{show}");
    // The 200 KB of random bytes of libbig.so, changed every 2 KiB, travel as a patch: the
    // delta holds random.bin's 300 KB and not much more.
    let size = delta_bytes(&published.p.export_repo());
    assert!(
        size < 360_000,
        "delta of {size} bytes: libbig.so went in whole?\n{show}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let client = bare_user_client(tmp.path());
    let export = published.p.export_repo();
    ostree(
        &client,
        &["pull-local", export.to_str().unwrap(), &published.from],
    );
    let deltas = export.join("deltas");
    let prefix = std::fs::read_dir(&deltas).unwrap().next().unwrap().unwrap();
    let delta = std::fs::read_dir(prefix.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    ostree(
        &client,
        &[
            "static-delta",
            "apply-offline",
            delta.path().to_str().unwrap(),
        ],
    );
    published.assert_client_has_it(&client);
}

/// Over HTTP, with a file above the fallback size, which travels as a plain object.
/// (libostree 2022.7's client also scans the new commit while it applies the parts and may
/// fetch a few objects the parts are writing: the same with its own deltas, so the log is
/// not checked for their absence here; the offline test above covers it.)
#[test]
fn a_client_pulls_through_the_delta_and_the_fallback() {
    let tmp = tempfile::tempdir().unwrap();
    let client = bare_user_client(tmp.path());
    let mut server = None;
    let published = publish_twice(BIG, |p| {
        let s = Server::start(p);
        let remote = ["remote", "add", "--no-gpg-verify", "exampleos", &s.url];
        ostree(&client, &remote);
        pull(&client, "exampleos", REF);
        server = Some(s);
    });
    let server = server.unwrap();
    let show = published.show();
    assert!(show.contains("Number of fallback entries: 1"), "{show}");
    let before = settled_lines(&server);
    pull(&client, "exampleos", REF);
    let log = server.output_with(" /deltas/");
    let requests: Vec<&str> = log.lines().skip(before).collect();
    let fetched = |what: &str| requests.iter().any(|r| r.contains(what));
    assert!(fetched("/superblock 200"), "{requests:#?}");
    assert!(fetched("/0 200"), "no delta part fetched: {requests:#?}");
    assert!(
        fetched(".filez 200 1500"),
        "no fallback fetched: {requests:#?}"
    );
    let got = ostree(&client, &["rev-parse", &format!("exampleos:{REF}")]);
    assert_eq!(got.trim(), published.to);
    published.assert_client_has_it(&client);
}
