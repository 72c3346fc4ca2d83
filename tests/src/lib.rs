//! Helpers for the integration tests: fixture projects in temporary directories, running
//! the built `ostree-build` binary, and independent checks with the `ostree` CLI.

pub mod gpg;
pub mod server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `ostree-build` binary next to the test executable (target/<profile>/ostree-build).
pub fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("OSTREE_BUILD_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target directory");
    let bin = dir.join("ostree-build");
    assert!(
        bin.is_file(),
        "{} not found: run `cargo build --workspace` before `cargo test`",
        bin.display()
    );
    bin
}

/// A project directory with an `ostree-build.toml`, removed when dropped.
pub struct Project {
    pub dir: tempfile::TempDir,
}

/// What one run printed.
pub struct Run {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Run {
        Run {
            status: o.status,
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    pub fn ok(self) -> Run {
        assert!(
            self.status.success(),
            "command failed: {}\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    pub fn fails(self) -> Run {
        assert!(
            !self.status.success(),
            "command unexpectedly succeeded\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// The error line, after checking that stderr is one error in the project's format and
    /// nothing else: one line `error: <what>`, then nothing but `  help: ...` lines.
    pub fn one_line_error(&self) -> &str {
        one_line_error(&self.stderr)
    }
}

/// See [`Run::one_line_error`].
pub fn one_line_error(stderr: &str) -> &str {
    let mut lines = stderr.lines();
    let error = lines.next().unwrap_or_default();
    assert!(
        error.starts_with("error: ") && error.len() > "error: ".len(),
        "stderr does not start with an `error: ` line:\n{stderr}"
    );
    for extra in lines {
        assert!(
            extra.starts_with("  help: "),
            "the error is not one line (plus `  help:` lines); this line follows it: {extra:?}\nstderr:\n{stderr}"
        );
    }
    error
}

/// The environment variable that lets the tests skip what this machine cannot run: a
/// comma-separated list of needs (`root`), or `all`.
pub const SKIP_VAR: &str = "OSTREE_BUILD_TESTS_SKIP";

/// Whether the calling test can go on. `available` says whether this machine has `need`
/// (e.g. "root"); `how` says how to get it. Without it the test fails, saying what it needs
/// and how to opt out, unless [`SKIP_VAR`] names `need` (or is `all`): then the test says
/// on the terminal that it skipped, and the caller returns.
pub fn require(need: &str, available: bool, how: &str) -> bool {
    if available {
        return true;
    }
    // libtest names each test's thread after the test.
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_string();
    let opted_out = std::env::var(SKIP_VAR)
        .is_ok_and(|v| v.split(',').map(str::trim).any(|n| n == need || n == "all"));
    assert!(
        opted_out,
        "{test} needs {need}: {how}, or set {SKIP_VAR}={need} to skip the tests that need it"
    );
    // libtest captures what `eprintln!` prints in a passing test, not what is written to
    // the stderr handle itself: the skip is seen. One write, so that it stays one line.
    use std::io::Write;
    let line = format!(
        "SKIPPED {test}: needs {need}; what needs it did not run ({SKIP_VAR} names {need})\n"
    );
    let _ = std::io::stderr().write_all(line.as_bytes());
    false
}

/// Whether this process runs as root (uid 0).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// [`require`] root.
pub fn require_root() -> bool {
    require("root", is_root(), "run the tests as root")
}

impl Project {
    pub fn new(manifest: &str) -> Project {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("ostree-build.toml"), manifest).expect("write manifest");
        Project { dir }
    }

    /// A project made by `ostree-build new DIR ARGS` in an empty temporary folder (the
    /// folder's name is no OS name: give `--os-name`).
    pub fn from_template(args: &[&str]) -> Project {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_str().expect("UTF-8 temporary path");
        let parent = dir.path().parent().expect("temp folder");
        run_in(parent, &[&["new", path], args].concat()).ok();
        Project { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Write a file (creating parents) with the given mode.
    pub fn file(&self, rel: &str, content: &str, mode: u32) -> &Self {
        use std::os::unix::fs::PermissionsExt;
        let p = self.p(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        self
    }

    pub fn symlink(&self, rel: &str, target: &str) -> &Self {
        let p = self.p(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, &p).unwrap();
        self
    }

    pub fn write_manifest(&self, manifest: &str) {
        std::fs::write(self.p("ostree-build.toml"), manifest).unwrap();
    }

    /// Run `ostree-build ARGS` in the project directory.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    /// Run `ostree-build ARGS` in the project directory with extra environment variables.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Run {
        let mut cmd = Command::new(binary());
        cmd.args(args).current_dir(self.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Run::from(cmd.output().expect("run ostree-build"))
    }

    pub fn build_repo(&self) -> PathBuf {
        self.p("build/cache-repo")
    }

    pub fn export_repo(&self) -> PathBuf {
        self.p("build/repo")
    }
}

/// Run `ostree-build ARGS` in `dir`.
pub fn run_in(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(binary())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run ostree-build");
    Run::from(out)
}

/// A manifest for os `exampleos` on x86_64 with one `dir` component per `(name, path)` and
/// one image `standard` of them all, with `image_extra` in the image's table.
pub fn dir_components_manifest(components: &[(&str, &str)], image_extra: &str) -> String {
    let mut m = String::from("[os]\nname = \"exampleos\"\narch = \"x86_64\"\n\n");
    for (name, path) in components {
        m.push_str(&format!(
            "[component.{name}]\nbackend = \"dir\"\npath = \"{path}\"\n\n"
        ));
    }
    let list: Vec<String> = components.iter().map(|(n, _)| format!("\"{n}\"")).collect();
    m.push_str(&format!(
        "[image.standard]\ncomponents = [{}]\n{image_extra}\n",
        list.join(", ")
    ));
    m
}

/// Run the `ostree` CLI against `repo`; panics on failure.
pub fn ostree(repo: &Path, args: &[&str]) -> String {
    let out = Command::new("ostree")
        .arg(format!("--repo={}", repo.display()))
        .args(args)
        .output()
        .expect("run ostree");
    assert!(
        out.status.success(),
        "ostree {:?} failed: {}",
        args,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every ref of a repository with its commit (empty if the repository does not exist).
pub fn refs(repo: &Path) -> Vec<(String, String)> {
    if !repo.join("config").exists() {
        return vec![];
    }
    let list = ostree(repo, &["refs"]);
    let mut out: Vec<(String, String)> = list
        .lines()
        .map(|r| {
            (
                r.to_string(),
                ostree(repo, &["rev-parse", r]).trim().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// A plugin directory for `$OSTREE_BUILD_PLUGIN_PATH` holding the example backends: the
/// Rust executable built from `tests/backends/hello`, the cdylib built from
/// `tests/backends/greet-dylib` and the Python script `tests/backends/ostree-build-pyfiles`.
pub fn example_backends(dir: &Path) -> PathBuf {
    let bin_dir = binary().parent().expect("target dir").to_path_buf();
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let hello = bin_dir.join("ostree-build-hello");
    assert!(
        hello.is_file(),
        "{} not built: run `cargo build --workspace`",
        hello.display()
    );
    std::os::unix::fs::symlink(&hello, plugins.join("ostree-build-hello")).unwrap();
    let greet = bin_dir.join("libostree_build_backend_greet.so");
    assert!(
        greet.is_file(),
        "{} not built: run `cargo build --workspace`",
        greet.display()
    );
    std::fs::copy(&greet, plugins.join("libostree_build_backend_greet.so")).unwrap();
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join("backends/ostree-build-pyfiles");
    std::os::unix::fs::symlink(&py, plugins.join("ostree-build-pyfiles")).unwrap();
    plugins
}

/// Write an executable script.
pub fn script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// `ostree fsck` must pass.
pub fn fsck(repo: &Path) {
    ostree(repo, &["fsck"]);
}

/// `ostree ls` of one path: (mode string, uid, gid, size, target-or-empty).
pub fn ls(repo: &Path, rev: &str, path: &str) -> String {
    ostree(repo, &["ls", rev, path]).trim().to_string()
}

/// `ostree cat`.
pub fn cat(repo: &Path, rev: &str, path: &str) -> String {
    ostree(repo, &["cat", rev, path])
}

/// Write a tar archive with Python's tarfile (each entry: path, kind, data/target, mode),
/// used to craft good and bad archives.
pub fn python_tar(dest: &Path, script_body: &str) {
    let script = format!(
        "import tarfile, io, sys\nout = sys.argv[1]\nmode = 'w:gz' if out.endswith('.gz') else 'w'\nt = tarfile.open(out, mode)\ndef reg(p, data=b'x', m=0o644, uid=0, gid=0):\n    ti = tarfile.TarInfo(p); ti.size = len(data); ti.mode = m; ti.uid = uid; ti.gid = gid\n    t.addfile(ti, io.BytesIO(data))\ndef sym(p, target):\n    ti = tarfile.TarInfo(p); ti.type = tarfile.SYMTYPE; ti.linkname = target; ti.mode = 0o777\n    t.addfile(ti)\ndef hard(p, target):\n    ti = tarfile.TarInfo(p); ti.type = tarfile.LNKTYPE; ti.linkname = target\n    t.addfile(ti)\ndef dir(p, m=0o755):\n    ti = tarfile.TarInfo(p); ti.type = tarfile.DIRTYPE; ti.mode = m\n    t.addfile(ti)\ndef dev(p):\n    ti = tarfile.TarInfo(p); ti.type = tarfile.CHRTYPE; ti.devmajor = 1; ti.devminor = 3\n    t.addfile(ti)\n{script_body}\nt.close()\n"
    );
    let status = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(dest)
        .status()
        .expect("python3");
    assert!(status.success(), "python tar script failed");
}

/// A child process (a test server) killed and reaped when dropped.
pub struct Background(pub std::process::Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on (as of now).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Wait (up to 5 s) until something accepts connections on 127.0.0.1:`port`.
pub fn wait_for_port(port: u16) {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A static HTTP server on 127.0.0.1 (Python's http.server) that logs requests.
pub struct HttpServer {
    child: std::process::Child,
    pub url: String,
    log: std::path::PathBuf,
}

impl HttpServer {
    pub fn start(dir: &std::path::Path) -> HttpServer {
        let port = free_port();
        let log = dir.parent().unwrap().join(format!("http-{port}.log"));
        let child = std::process::Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--directory",
            ])
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("python3 http.server");
        wait_for_port(port);
        HttpServer {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Build the local RPM repository of `tests/fixtures/rpm/*.spec` (exampleos-base, -lib,
/// -extra: noarch, no scriptlets) with rpmbuild and createrepo_c under `tmp`; returns it.
pub fn build_rpm_repo(tmp: &Path) -> PathBuf {
    {
        for tool in ["rpmbuild", "createrepo_c", "dnf", "rpm"] {
            assert!(
                std::process::Command::new("sh")
                    .args(["-c", &format!("command -v {tool}")])
                    .stdout(std::process::Stdio::null())
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(false),
                "{tool} not found: run `bash scripts/setup.sh`"
            );
        }
        let specs = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/rpm");
        let work = tmp.join(format!("dnf-rpms.tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        let top = work.join("rpmbuild");
        let repo = work.join("repo");
        std::fs::create_dir_all(&repo).unwrap();
        let mut spec_files: Vec<PathBuf> = std::fs::read_dir(&specs)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "spec"))
            .collect();
        spec_files.sort();
        assert!(!spec_files.is_empty(), "no spec in {}", specs.display());
        for spec in &spec_files {
            let out = std::process::Command::new("rpmbuild")
                .arg("--define")
                .arg(format!("_topdir {}", top.display()))
                .args(["--quiet", "-bb"])
                .arg(spec)
                .env("HOME", &work)
                .output()
                .expect("run rpmbuild");
            assert!(
                out.status.success(),
                "rpmbuild {} failed: {}",
                spec.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        for e in std::fs::read_dir(top.join("RPMS/noarch")).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, repo.join(p.file_name().unwrap())).unwrap();
        }
        command(
            "createrepo_c",
            &["--quiet", repo.to_str().expect("UTF-8 path")],
        );
        // One directory per binary run; the previous run's goes.
        let dest = tmp.join("rpms");
        let _ = std::fs::remove_dir_all(&dest);
        std::fs::rename(&repo, &dest).unwrap();
        let _ = std::fs::remove_dir_all(&work);
        dest
    }
}

/// Run a command that must succeed; its stdout.
pub fn command(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What a device does: `ostree admin init-fs` and `os-init` in `sysroot`, a remote at
/// `url`, pull `branch`, `ostree admin deploy`. Returns the one deployment's directory.
pub fn deploy(sysroot: &Path, url: &str, os: &str, branch: &str) -> PathBuf {
    let s = sysroot.to_str().expect("UTF-8 path");
    let repo = format!("--repo={s}/ostree/repo");
    std::fs::create_dir_all(sysroot).expect("create sysroot");
    command("ostree", &["admin", "init-fs", s]);
    command(
        "ostree",
        &["admin", "os-init", &format!("--sysroot={s}"), os],
    );
    command(
        "ostree",
        &[&repo, "remote", "add", "--no-gpg-verify", os, url],
    );
    command("ostree", &[&repo, "pull", os, branch]);
    command(
        "ostree",
        &[
            "admin",
            "deploy",
            &format!("--sysroot={s}"),
            &format!("--os={os}"),
            &format!("{os}:{branch}"),
        ],
    );
    let found: Vec<PathBuf> = std::fs::read_dir(sysroot.join(format!("ostree/deploy/{os}/deploy")))
        .expect("deployments")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].clone()
}

/// A stand-in initramfs that passes the bootable lint: an uncompressed newc archive holding
/// `usr/lib/ostree/ostree-prepare-root` (ASCII and NULs, so it travels as a `&str`).
pub fn stand_in_initramfs() -> String {
    let archive = ostree_build_core::initramfs::newc_archive(&[(
        "usr/lib/ostree/ostree-prepare-root",
        b"stand-in\n",
    )]);
    String::from_utf8(archive).expect("a newc archive of ASCII names is UTF-8")
}
