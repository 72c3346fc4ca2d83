//! The shared component cache (issue 14): workers in separate copies of a project (as on
//! separate machines) build one component each and push it; a third copy composes from the
//! cache served over HTTP without running any backend (the `recorder` test backend writes
//! down every run), and its image has the tree of a single-machine build. Also: the plan as
//! JSON, concurrent pushes, ssh pushes (rsync and the far-side script through a stand-in
//! ssh), a cache that is down, a garbage summary, a corrupted object and signed commits.

use ostree_build_tests::gpg::GpgKey;
use ostree_build_tests::{free_port, ostree, script, wait_for_port, Background, HttpServer, Run};
use std::path::{Path, PathBuf};
use std::process::Command;

const COMPONENTS: [&str; 4] = ["a", "b", "c", "d"];
const IMAGE_REF: &str = "cacheos/x86_64/os";

/// The manifest: four `recorder` components and one image of them; `extra` is appended
/// (a `[cache]` or `[publish]` section).
fn manifest(extra: &str) -> String {
    let mut m = String::from("[os]\nname = \"cacheos\"\narch = \"x86_64\"\n\n");
    for c in COMPONENTS {
        m.push_str(&format!(
            "[component.{c}]\nbackend = \"recorder\"\npath = \"src/{c}\"\n\n"
        ));
    }
    m.push_str("[image.os]\ncomponents = [\"a\", \"b\", \"c\", \"d\"]\n\n");
    m.push_str(extra);
    m
}

/// One copy of the project, as on its own machine: its own build and export repositories,
/// state and backend run log.
struct Machine {
    dir: PathBuf,
    plugins: PathBuf,
    log: PathBuf,
}

impl Machine {
    /// A copy of the project source in `root/name` with `extra` in its manifest.
    fn new(root: &Path, name: &str, extra: &str) -> Machine {
        let dir = root.join(name);
        for c in COMPONENTS {
            let src = dir.join("src").join(c);
            std::fs::create_dir_all(src.join("sub")).unwrap();
            std::fs::write(src.join("data"), format!("component {c}\n")).unwrap();
            std::fs::write(src.join("sub/nested"), "nested\n").unwrap();
            std::os::unix::fs::symlink("../data", src.join("sub/link")).unwrap();
        }
        script(&dir.join("src/b/tool"), "#!/bin/sh\necho b\n");
        std::fs::write(dir.join("ostree-build.toml"), manifest(extra)).unwrap();
        let plugins = root.join("plugins");
        if !plugins.exists() {
            std::fs::create_dir_all(&plugins).unwrap();
            let recorder =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("backends/ostree-build-recorder");
            std::os::unix::fs::symlink(recorder, plugins.join("ostree-build-recorder")).unwrap();
        }
        let log = root.join(format!("{name}.runs"));
        Machine { dir, plugins, log }
    }

    fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(ostree_build_tests::binary());
        cmd.args(args)
            .current_dir(&self.dir)
            .env("OSTREE_BUILD_PLUGIN_PATH", &self.plugins)
            .env("RECORDER_LOG", &self.log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run ostree-build");
        Run {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    /// The components whose backend ran here, in order.
    fn runs(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn export(&self) -> PathBuf {
        self.dir.join("build/repo")
    }

    fn build_repo(&self) -> PathBuf {
        self.dir.join("build/cache-repo")
    }

    /// The published image's tree (`ContentChecksum`).
    fn image_tree(&self) -> String {
        tree_of(&self.export(), IMAGE_REF)
    }

    fn plan(&self) -> serde_json::Value {
        let run = self.run(&["plan", "--format", "json"]).ok();
        serde_json::from_str(&run.stdout).expect("plan JSON")
    }
}

fn tree_of(repo: &Path, rev: &str) -> String {
    let show = ostree(repo, &["show", rev]);
    show.lines()
        .find_map(|l| l.strip_prefix("ContentChecksum:"))
        .expect("ContentChecksum")
        .trim()
        .to_string()
}

fn cache_section(url: &str) -> String {
    format!("[cache]\nurl = \"{url}\"\n")
}

/// The tree a single machine builds, without any cache.
fn single_machine_tree(root: &Path) -> String {
    let single = Machine::new(root, "single", "");
    single.run(&["build"]).ok();
    assert_eq!(single.runs().len(), COMPONENTS.len());
    single.image_tree()
}

/// Ids of a plan's jobs.
fn job_ids(plan: &serde_json::Value) -> Vec<String> {
    plan["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn workers_push_to_one_cache_and_a_third_copy_composes_without_building() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    let server = HttpServer::start(&cache);
    let with_cache = cache_section(&server.url);
    let workers: Vec<Machine> = (0..4)
        .map(|i| Machine::new(tmp.path(), &format!("worker{i}"), &with_cache))
        .collect();
    let composer = Machine::new(tmp.path(), "composer", &with_cache);

    // The plan is the same on every copy and every run: one job per component, then the
    // image after all of them; input hashes do not depend on where the project is.
    let plan = workers[0].plan();
    assert_eq!(plan, workers[0].plan(), "the plan changed between two runs");
    assert_eq!(
        plan,
        workers[1].plan(),
        "two copies of the project plan differently"
    );
    assert_eq!(
        job_ids(&plan),
        [
            "component/a",
            "component/b",
            "component/c",
            "component/d",
            "image/os"
        ]
    );
    let image = &plan["jobs"][4];
    assert_eq!(image["depends_on"].as_array().unwrap().len(), 4);
    assert_eq!(
        image["command"],
        serde_json::json!(["ostree-build", "build", "--image", "os"])
    );
    assert_eq!(
        plan["jobs"][1]["command"],
        serde_json::json!(["ostree-build", "build", "--component", "b"])
    );
    assert_eq!(plan["jobs"][0]["input_hash"].as_str().unwrap().len(), 64);

    // Each worker builds its component only: no image, nothing published.
    for (i, w) in workers.iter().enumerate() {
        let run = w.run(&["build", "--component", COMPONENTS[i]]).ok();
        assert!(out(&run).contains(&format!("Built component {}", COMPONENTS[i])));
        assert_eq!(w.runs(), [COMPONENTS[i]]);
        assert!(
            !w.export().join("refs/heads/cacheos").exists(),
            "a worker published"
        );
    }
    // All four push into the one cache at once.
    let pushes: Vec<Run> = std::thread::scope(|s| {
        let handles: Vec<_> = workers
            .iter()
            .map(|w| s.spawn(|| w.run(&["cache", "push", cache.to_str().unwrap()])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, run) in pushes.into_iter().enumerate() {
        let run = run.ok();
        assert!(
            out(&run).contains(&format!("Pushed component {}", COMPONENTS[i])),
            "{}",
            out(&run)
        );
    }
    // Every ref survived the concurrent pushes, and the summary lists them all.
    let refs = ostree(&cache, &["refs"]);
    assert_eq!(refs.lines().count(), 4, "{refs}");
    let summary = ostree(&cache, &["summary", "--view"]);
    for job in &plan["jobs"].as_array().unwrap()[..4] {
        let key = job["input_hash"].as_str().unwrap();
        assert!(
            refs.contains(&format!("ostree-build/cache/{key}")),
            "{refs}"
        );
        assert!(
            summary.contains(&format!("ostree-build/cache/{key}")),
            "{summary}"
        );
    }
    ostree(&cache, &["fsck"]);
    // Pushing again sends nothing.
    let again = workers[0]
        .run(&["cache", "push", cache.to_str().unwrap()])
        .ok();
    assert!(
        out(&again).contains("0 pushed, 1 already there, 3 skipped"),
        "{}",
        out(&again)
    );

    let plan_b_key = plan["jobs"][1]["input_hash"].as_str().unwrap().to_string();
    // The composer's plan, status and dry run say the cache provides every component.
    let plan = composer.plan();
    assert_eq!(job_ids(&plan), ["image/os"]);
    assert_eq!(plan["cached"].as_array().unwrap().len(), 4);
    let status = composer.run(&["status"]);
    assert_eq!(
        status.stdout.matches(" cached ").count(),
        4,
        "{}",
        status.stdout
    );
    let dry = composer.run(&["build", "--dry-run"]).ok();
    assert_eq!(
        out(&dry).matches("pull component").count(),
        4,
        "{}",
        out(&dry)
    );

    // It composes with no backend run, and the image is the single-machine build's.
    let run = composer.run(&["build"]).ok();
    assert_eq!(
        composer.runs(),
        Vec::<String>::new(),
        "a backend ran on the composer"
    );
    assert_eq!(
        out(&run).matches("Pulled component").count(),
        4,
        "{}",
        out(&run)
    );
    assert!(
        out(&run).contains("4 pulled from the cache"),
        "{}",
        out(&run)
    );
    assert_eq!(composer.image_tree(), single_machine_tree(tmp.path()));
    ostree(&composer.build_repo(), &["fsck"]);
    ostree(&composer.export(), &["fsck"]);
    // What was pulled is fresh from then on, with this machine's own freshness record.
    let status = composer.run(&["status", "--check"]).ok();
    assert!(!status.stdout.contains("cached"), "{}", status.stdout);
    let from = ostree(
        &composer.build_repo(),
        &[
            "show",
            "--print-metadata-key=ostree-build.from-cache",
            "cacheos/x86_64/components/b",
        ],
    );
    let pushed = ostree(
        &cache,
        &["rev-parse", &format!("ostree-build/cache/{}", plan_b_key)],
    );
    assert_eq!(from.trim().trim_matches('\''), pushed.trim());
    assert!(server.log().contains("GET /summary"), "{}", server.log());
    // New times on unchanged sources (a fresh checkout): the cache key says nothing changed.
    let data = composer.dir.join("src/a/data");
    std::fs::File::options()
        .write(true)
        .open(&data)
        .unwrap()
        .set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    let run = composer.run(&["build"]).ok();
    assert!(out(&run).contains("nothing to do"), "{}", out(&run));
    std::fs::write(&data, "component a, changed\n").unwrap();
    let run = composer.run(&["build"]).ok();
    assert!(out(&run).contains("Built component a"), "{}", out(&run));
    assert_eq!(composer.runs(), ["a"]);
}

#[test]
fn a_cache_that_is_down_garbled_or_corrupt_means_building_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let expected = single_machine_tree(tmp.path());

    // Down: nothing listens on the port.
    let port = free_port();
    let down = Machine::new(
        tmp.path(),
        "down",
        &cache_section(&format!("http://127.0.0.1:{port}/cache")),
    );
    let run = down.run(&["build"]).ok();
    assert!(
        out(&run).contains(&format!(
            "warning: the component cache http://127.0.0.1:{port}/cache cannot be read"
        )),
        "{}",
        out(&run)
    );
    assert_eq!(down.runs().len(), 4);
    assert_eq!(down.image_tree(), expected);

    // A worker fills a cache; then one file object of component a is damaged.
    let cache = tmp.path().join("cache");
    let server = HttpServer::start(&{
        std::fs::create_dir_all(&cache).unwrap();
        cache.clone()
    });
    let worker = Machine::new(tmp.path(), "worker", &cache_section(&server.url));
    worker
        .run(&["build", "--component", "a", "--component", "b"])
        .ok();
    worker.run(&["cache", "push", cache.to_str().unwrap()]).ok();
    let fresh = worker.plan()["fresh"].clone();
    assert_eq!(fresh, serde_json::json!(["component/a", "component/b"]));
    let object = data_object(&cache, "a");
    let mut bytes = std::fs::read(&object).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&object, bytes).unwrap();

    let reader = Machine::new(tmp.path(), "reader", &cache_section(&server.url));
    let run = reader.run(&["build"]).ok();
    assert!(
        out(&run).contains("warning: component 'a' could not be taken from the cache"),
        "{}",
        out(&run)
    );
    assert!(out(&run).contains("Pulled component b"), "{}", out(&run));
    let mut runs = reader.runs();
    runs.sort();
    assert_eq!(
        runs,
        ["a", "c", "d"],
        "only what the cache could not give is built"
    );
    assert_eq!(reader.image_tree(), expected);
    // No partial commit is left behind by the failed pull.
    let fsck = ostree(&reader.build_repo(), &["fsck"]);
    assert!(!fsck.contains("partial"), "{fsck}");

    // The same cache read as a folder (file://), whose object of a's file now holds b's
    // (a well-formed object under the wrong name): libostree trusts a local remote's
    // objects unless told not to; it is caught all the same.
    std::fs::copy(data_object(&cache, "b"), &object).unwrap();
    let local = Machine::new(
        tmp.path(),
        "local",
        &cache_section(&format!("file://{}", cache.display())),
    );
    let run = local.run(&["build"]).ok();
    assert!(
        out(&run).contains("component 'a' could not be taken from the cache")
            && out(&run).contains("Corrupted file object"),
        "{}",
        out(&run)
    );
    assert_eq!(local.image_tree(), expected);
    ostree(&local.build_repo(), &["fsck"]);

    // Garbage where the summary should be.
    std::fs::write(cache.join("summary"), b"this is not a summary at all").unwrap();
    let garbled = Machine::new(tmp.path(), "garbled", &cache_section(&server.url));
    let run = garbled.run(&["build"]).ok();
    assert!(
        out(&run).contains("is not an OSTree summary"),
        "{}",
        out(&run)
    );
    assert_eq!(garbled.runs().len(), 4);
    assert_eq!(garbled.image_tree(), expected);
}

#[test]
fn signed_cache_commits_are_verified_and_unsigned_ones_refused() {
    if !ostree_build_tests::require("gpg", which("gpg"), "apt-get install gnupg") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let key = GpgKey::new(tmp.path(), "cachekey", &[], "never");
    let cache = tmp.path().join("cache");
    let url = format!("file://{}", cache.display());
    let signed = format!(
        "{}\n[publish]\ngpg-sign = [\"{}\"]\ngpg-homedir = \"{}\"\n",
        cache_section(&url),
        key.fpr,
        key.home.display()
    );
    let signer = Machine::new(tmp.path(), "signer", &signed);
    signer.run(&["build", "--component", "a"]).ok();
    signer.run(&["cache", "push", cache.to_str().unwrap()]).ok();
    let cache_ref = ostree(&cache, &["refs"]);
    let sigs = ostree(&cache, &["show", cache_ref.trim()]);
    assert!(sigs.contains("Found 1 signature"), "{sigs}");

    // A project without keys pushes components b and c unsigned into the same cache.
    let unsigned = Machine::new(tmp.path(), "unsigned", &cache_section(&url));
    unsigned
        .run(&["build", "--component", "b", "--component", "c"])
        .ok();
    unsigned
        .run(&["cache", "push", cache.to_str().unwrap()])
        .ok();
    // Someone with write access points b's ref at a's signed commit (a replay).
    let ref_of = |name: &str| {
        let refs = ostree(&cache, &["refs"]);
        refs.lines()
            .find(|r| {
                ostree(
                    &cache,
                    &["show", "--print-metadata-key=ostree-build.component", r],
                )
                .trim()
                    == format!("'{name}'")
            })
            .expect("ref")
            .to_string()
    };
    let (a_ref, b_ref) = (ref_of("a"), ref_of("b"));
    let a_commit = ostree(&cache, &["rev-parse", &a_ref]);
    std::fs::write(cache.join("refs/heads").join(&b_ref), a_commit).unwrap();
    ostree(&cache, &["summary", "-u"]);

    let reader = Machine::new(tmp.path(), "reader", &signed);
    let run = reader.run(&["build"]).ok();
    assert!(out(&run).contains("Pulled component a"), "{}", out(&run));
    assert!(
        out(&run).contains("component 'b' could not be taken from the cache")
            && out(&run).contains("records input hash"),
        "{}",
        out(&run)
    );
    assert!(
        out(&run).contains("component 'c' could not be taken from the cache")
            && out(&run).contains("no signatures found"),
        "{}",
        out(&run)
    );
    let mut runs = reader.runs();
    runs.sort();
    assert_eq!(runs, ["b", "c", "d"]);
}

#[test]
fn pushes_over_ssh_send_objects_then_refs_then_the_summary() {
    if !ostree_build_tests::require("rsync", which("rsync"), "apt-get install rsync") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // A stand-in for ssh that runs the remote command here: rsync's server side and the
    // far-side script go through it exactly as through ssh.
    let fake_ssh = tmp.path().join("fake-ssh");
    let calls = tmp.path().join("ssh-calls");
    script(
        &fake_ssh,
        &format!(
            "#!/bin/sh\necho \"$*\" >> {}\nwhile [ $# -gt 0 ]; do case \"$1\" in -p|-l|-o) shift 2;; -*) shift;; *) break;; esac; done\nshift\nexec sh -c \"$*\"\n",
            calls.display()
        ),
    );
    let remote = tmp.path().join("far away/cache");
    let dest = format!("ssh://builder@cachehost:2222{}", remote.display());
    let ssh_env = [("OSTREE_BUILD_SSH", fake_ssh.to_str().unwrap())];
    let w1 = Machine::new(tmp.path(), "w1", "");
    let w2 = Machine::new(tmp.path(), "w2", &format!("[cache]\npush = \"{dest}\"\n"));
    w1.run(&["build", "--component", "a", "--component", "c"])
        .ok();
    w2.run(&["build", "--component", "b", "--component", "d"])
        .ok();
    let run = w1.run_env(&["cache", "push", &dest], &ssh_env).ok();
    assert!(out(&run).contains("2 pushed"), "{}", out(&run));
    // The default destination is [cache] push.
    let run = w2.run_env(&["cache", "push"], &ssh_env).ok();
    assert!(out(&run).contains("2 pushed"), "{}", out(&run));
    let calls = std::fs::read_to_string(&calls).unwrap();
    assert!(calls.contains("-p 2222 builder@cachehost"), "{calls}");
    assert!(calls.contains("rsync --server"), "{calls}");
    ostree(&remote, &["fsck"]);
    assert_eq!(ostree(&remote, &["refs"]).lines().count(), 4);
    assert_eq!(
        ostree(&remote, &["summary", "--view"])
            .matches("ostree-build/cache/")
            .count(),
        4
    );

    // Served over HTTP, that cache gives a composer everything.
    let server = HttpServer::start(&remote);
    let composer = Machine::new(tmp.path(), "composer", &cache_section(&server.url));
    composer.run(&["build"]).ok();
    assert_eq!(composer.runs(), Vec::<String>::new());

    // A far-side directory that holds something else is refused before anything is sent.
    let busy = tmp.path().join("busy");
    std::fs::create_dir_all(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), "mine\n").unwrap();
    let run = w1
        .run_env(
            &[
                "cache",
                "push",
                &format!("ssh://cachehost{}", busy.display()),
            ],
            &ssh_env,
        )
        .fails();
    assert!(
        out(&run).contains("is a directory with other files"),
        "{}",
        out(&run)
    );
    assert_eq!(std::fs::read_dir(&busy).unwrap().count(), 1);

    // A far side that cannot be reached: one error line, nothing written.
    let unreachable = tmp.path().join("no-ssh");
    script(
        &unreachable,
        "#!/bin/sh\necho 'ssh: connect to host cachehost port 22: Connection refused' >&2\nexit 255\n",
    );
    let other = tmp.path().join("other-cache");
    let run = w1
        .run_env(
            &[
                "cache",
                "push",
                &format!("ssh://cachehost{}", other.display()),
            ],
            &[("OSTREE_BUILD_SSH", unreachable.to_str().unwrap())],
        )
        .fails();
    assert!(out(&run).contains("Connection refused"), "{}", out(&run));
    assert!(!other.exists());
}

#[test]
fn wrong_cache_input_gets_one_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let m = Machine::new(tmp.path(), "p", "");
    let run = m.run(&["build", "--component", "aa"]).fails();
    assert!(out(&run).contains("no component 'aa'"), "{}", out(&run));
    assert!(out(&run).contains("did you mean 'a'?"), "{}", out(&run));
    let run = m.run(&["cache", "push"]).fails();
    assert!(out(&run).contains("no cache to push to"), "{}", out(&run));
    let nowhere = tmp.path().join("nowhere");
    let run = m.run(&["cache", "push", nowhere.to_str().unwrap()]).fails();
    assert!(out(&run).contains("nothing to push"), "{}", out(&run));
    assert!(!nowhere.exists(), "a push of nothing created the cache");
    let run = m
        .run(&["cache", "push", "https://cache.example.org/x"])
        .fails();
    assert!(
        out(&run).contains("only local paths and ssh://"),
        "{}",
        out(&run)
    );

    let bad = Machine::new(
        tmp.path(),
        "bad",
        "[cache]\nurl = \"ftp://cache.example.org/x\"\n",
    );
    let run = bad.run(&["status"]).fails();
    assert!(
        out(&run).contains("ostree-build.toml")
            && out(&run).contains("cache.url 'ftp://cache.example.org/x' is not an http"),
        "{}",
        out(&run)
    );
    // Only an archive repository, or a missing or empty directory, takes a push.
    m.run(&["build", "--component", "b"]).ok();
    let run = m.run(&["cache", "push", "build/cache-repo"]).fails();
    assert!(
        out(&run).contains("is an OSTree repository, but not an archive one"),
        "{}",
        out(&run)
    );
    let busy = tmp.path().join("busy");
    std::fs::create_dir_all(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), "mine\n").unwrap();
    let run = m.run(&["cache", "push", busy.to_str().unwrap()]).fails();
    assert!(
        out(&run).contains("is a directory with other files"),
        "{}",
        out(&run)
    );
    assert_eq!(
        std::fs::read_dir(&busy).unwrap().count(),
        1,
        "files were added"
    );
    ostree(&m.build_repo(), &["fsck"]);
    // A stale component is not pushed: the cache would get a commit its key does not give.
    // With nothing else to send, that is an error; beside a fresh one, a line says so.
    m.run(&["build", "--component", "a"]).ok();
    std::fs::write(m.dir.join("src/a/data"), "changed\n").unwrap();
    let cache = tmp.path().join("cache");
    let run = m.run(&["cache", "push", cache.to_str().unwrap()]).ok();
    assert!(
        out(&run).contains("Skipped component a: stale here (input changed"),
        "{}",
        out(&run)
    );
    assert!(out(&run).contains("Pushed component b"), "{}", out(&run));
    assert_eq!(ostree(&cache, &["refs"]).lines().count(), 1);
    let lone = Machine::new(tmp.path(), "lone", "");
    lone.run(&["build", "--component", "c"]).ok();
    std::fs::write(lone.dir.join("src/c/data"), "changed\n").unwrap();
    let elsewhere = tmp.path().join("elsewhere");
    let run = lone
        .run(&["cache", "push", elsewhere.to_str().unwrap()])
        .fails();
    assert!(out(&run).contains("nothing to push"), "{}", out(&run));
    assert!(
        out(&run).contains("c: stale here (input changed"),
        "{}",
        out(&run)
    );
    assert!(!elsewhere.exists());
}

/// The object file in `cache` of component `name`'s `/usr/share/<name>/data`.
fn data_object(cache: &Path, name: &str) -> PathBuf {
    let meta = |r: &str| {
        ostree(
            cache,
            &["show", "--print-metadata-key=ostree-build.component", r],
        )
        .trim()
        .to_string()
    };
    let refs = ostree(cache, &["refs"]);
    let cache_ref = refs
        .lines()
        .find(|r| meta(r) == format!("'{name}'"))
        .expect("the component in the cache");
    let path = format!("/usr/share/{name}/data");
    let listing = ostree(cache, &["ls", "-C", cache_ref, &path]);
    let checksum = listing.split_whitespace().nth(4).expect("checksum");
    cache
        .join("objects")
        .join(&checksum[..2])
        .join(format!("{}.filez", &checksum[2..]))
}

/// Everything a run printed: status lines and warnings (stdout), errors (stderr).
fn out(run: &Run) -> String {
    format!("{}{}", run.stdout, run.stderr)
}

fn which(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A server on 127.0.0.1 that answers like a static file server from `dir`, except that
/// it never answers requests whose path contains `hang_on` ("" hangs every request).
struct SilentServer {
    _child: Background,
    url: String,
}

impl SilentServer {
    fn start(dir: &Path, hang_on: &str) -> SilentServer {
        let port = free_port();
        let code = format!(
            "import http.server, functools, time\n\
             class H(http.server.SimpleHTTPRequestHandler):\n\
             \x20   def do_GET(self):\n\
             \x20       if {hang_on:?} in self.path:\n\
             \x20           time.sleep(3600)\n\
             \x20       return super().do_GET()\n\
             \x20   def log_message(self, *a):\n\
             \x20       pass\n\
             h = functools.partial(H, directory={dir:?})\n\
             http.server.ThreadingHTTPServer(('127.0.0.1', {port}), h).serve_forever()\n",
            dir = dir.display().to_string(),
        );
        let child = Command::new("python3").args(["-c", &code]).spawn().unwrap();
        wait_for_port(port);
        SilentServer {
            _child: Background(child),
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

#[test]
fn a_silent_cache_is_given_up_on_after_its_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let worker = Machine::new(tmp.path(), "worker", "");
    worker.run(&["build", "--component", "a"]).ok();
    worker.run(&["cache", "push", cache.to_str().unwrap()]).ok();

    // The summary never comes.
    let silent = SilentServer::start(&cache, "");
    let section = format!("{}timeout = 2\n", cache_section(&silent.url));
    let reader = Machine::new(tmp.path(), "reader", &section);
    let start = std::time::Instant::now();
    let run = reader.run(&["build"]).ok();
    assert!(
        out(&run).contains("nothing arrived for 2s"),
        "{}",
        out(&run)
    );
    assert!(
        start.elapsed().as_secs() < 30,
        "waited {:?}",
        start.elapsed()
    );
    assert_eq!(reader.runs().len(), 4);

    // The summary comes, the objects never do: component a is built after the timeout.
    let stalls = SilentServer::start(&cache, "/objects/");
    let section = format!("{}timeout = 2\n", cache_section(&stalls.url));
    let reader = Machine::new(tmp.path(), "reader2", &section);
    let run = reader.run(&["build"]).ok();
    assert!(
        out(&run).contains("component 'a' could not be taken from the cache")
            && out(&run).contains("nothing arrived for 2s"),
        "{}",
        out(&run)
    );
    assert_eq!(reader.runs().len(), 4);
    assert_eq!(reader.image_tree(), worker_tree_after_build(&worker));
}

/// The image `worker` composes from its own components (built where missing).
fn worker_tree_after_build(worker: &Machine) -> String {
    worker.run(&["build"]).ok();
    worker.image_tree()
}

/// An OpenSSH server on 127.0.0.1 for root, with a throwaway host key and client key, in
/// the foreground so that it stops when dropped.
struct Sshd {
    _child: Background,
    port: u16,
    /// `OSTREE_BUILD_SSH` for reaching it.
    ssh_command: String,
}

impl Sshd {
    fn start(dir: &Path) -> Sshd {
        let keygen = |name: &str| {
            let status = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(dir.join(name))
                .status()
                .expect("ssh-keygen");
            assert!(status.success());
        };
        keygen("hostkey");
        keygen("userkey");
        std::fs::copy(dir.join("userkey.pub"), dir.join("authorized_keys")).unwrap();
        let port = free_port();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/hostkey\nAuthorizedKeysFile {d}/authorized_keys\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nStrictModes no\nUsePAM no\nPidFile {d}/sshd.pid\n",
                d = dir.display()
            ),
        )
        .unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-f"])
            .arg(&config)
            .arg("-E")
            .arg(dir.join("sshd.log"))
            .spawn()
            .expect("sshd");
        wait_for_port(port);
        let ssh_command = format!(
            "ssh -i {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR",
            dir.join("userkey").display()
        );
        Sshd {
            _child: Background(child),
            port,
            ssh_command,
        }
    }
}

#[test]
fn pushes_through_a_real_ssh_server() {
    if !ostree_build_tests::require_root()
        || !ostree_build_tests::require(
            "sshd",
            Path::new("/usr/sbin/sshd").exists() && which("rsync"),
            "apt-get install openssh-server rsync",
        )
    {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sshd_dir = tmp.path().join("sshd");
    std::fs::create_dir_all(&sshd_dir).unwrap();
    let sshd = Sshd::start(&sshd_dir);
    let remote = tmp.path().join("served/cache");
    let dest = format!("ssh://root@127.0.0.1:{}{}", sshd.port, remote.display());
    let env = [("OSTREE_BUILD_SSH", sshd.ssh_command.as_str())];
    let w1 = Machine::new(tmp.path(), "w1", "");
    let w2 = Machine::new(tmp.path(), "w2", "");
    w1.run(&["build", "--component", "a", "--component", "b"])
        .ok();
    w2.run(&["build", "--component", "c", "--component", "d"])
        .ok();
    // Both at once, through the real server.
    let runs: Vec<Run> = std::thread::scope(|s| {
        let h1 = s.spawn(|| w1.run_env(&["cache", "push", &dest], &env));
        let h2 = s.spawn(|| w2.run_env(&["cache", "push", &dest], &env));
        vec![h1.join().unwrap(), h2.join().unwrap()]
    });
    for run in runs {
        let run = run.ok();
        assert!(out(&run).contains("2 pushed"), "{}", out(&run));
    }
    ostree(&remote, &["fsck"]);
    assert_eq!(
        ostree(&remote, &["summary", "--view"])
            .matches("ostree-build/cache/")
            .count(),
        4
    );
    let composer = Machine::new(
        tmp.path(),
        "composer",
        &cache_section(&format!("file://{}", remote.display())),
    );
    composer.run(&["build"]).ok();
    assert_eq!(composer.runs(), Vec::<String>::new());
}
