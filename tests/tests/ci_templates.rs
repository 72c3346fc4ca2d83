//! The CI examples in `templates/ci/` (GitHub Actions, GitLab CI, a Kubernetes Indexed
//! Job): each parses as YAML and has the structure its README promises, and the jobs it
//! starts match the plan. For that, the plan steps and worker commands are taken out of the
//! template files themselves (never re-typed here) and run by `bash`/`sh` with the real
//! `jq` on three plans of a project with two `dir` components `base` and `app` and an image
//! `standard`: new (both components stale), after a build and a change to `base` (one
//! stale, one fresh), and after another build (everything fresh: no worker at all). A
//! stand-in `ostree-build` on PATH prints the plan and records every other call, so the
//! test sees which builds and pushes each worker would run.

use ostree_build_tests::*;
use serde::Deserialize;
use serde_json::Value as Json;
use serde_norway::Value as Yaml;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

// ---------------------------------------------------------------------------------------
// The plans.

/// `plan --format json` of the test project in its three states.
struct Plans {
    /// Nothing built: `base`, `app` and `standard` are jobs.
    new: String,
    /// Built, then `base` changed: `base` and `standard` are jobs, `app` is fresh.
    changed: String,
    /// Built again: no jobs.
    fresh: String,
}

impl Plans {
    fn all(&self) -> [(&'static str, &str); 3] {
        [
            ("new", &self.new),
            ("changed", &self.changed),
            ("fresh", &self.fresh),
        ]
    }
}

/// The plans, made once per test binary.
fn plans() -> &'static Plans {
    static PLANS: OnceLock<Plans> = OnceLock::new();
    PLANS.get_or_init(plans_of_a_project)
}

/// The plans of a real project: two `dir` components and an image, planned, built, changed,
/// planned, built and planned again. Each plan is asked for twice and must be the same.
fn plans_of_a_project() -> Plans {
    let p = Project::new(&dir_components_manifest(
        &[("base", "base"), ("app", "app")],
        "",
    ));
    p.file("base/usr/bin/hello", "#!/bin/sh\necho hello\n", 0o755);
    p.file("app/usr/share/app/data", "data\n", 0o644);
    let plan = || {
        let first = p.run(&["plan", "--format", "json"]).ok().stdout;
        let again = p.run(&["plan", "--format", "json"]).ok().stdout;
        assert_eq!(first, again, "the plan is not stable across runs");
        first
    };
    let new = plan();
    p.run(&["build"]).ok();
    p.file("base/usr/bin/hello", "#!/bin/sh\necho hello again\n", 0o755);
    let changed = plan();
    p.run(&["build"]).ok();
    let fresh = plan();
    Plans {
        new,
        changed,
        fresh,
    }
}

fn json(text: &str) -> Json {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

/// The jobs of `kind` in a plan, in its order.
fn jobs_of_kind(plan: &str, kind: &str) -> Vec<Json> {
    json(plan)["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter(|j| j["kind"] == kind)
        .cloned()
        .collect()
}

/// The names of the components a worker must build, in the plan's order.
fn stale_components(plan: &str) -> Vec<String> {
    jobs_of_kind(plan, "component")
        .iter()
        .map(|j| j["name"].as_str().expect("name").to_string())
        .collect()
}

/// The plan's `command` for component `name`, without the leading `ostree-build`.
fn command_of(plan: &str, name: &str) -> Vec<String> {
    let job = jobs_of_kind(plan, "component")
        .into_iter()
        .find(|j| j["name"] == name)
        .unwrap_or_else(|| panic!("no job for component {name}"));
    let command: Vec<String> = job["command"]
        .as_array()
        .expect("command")
        .iter()
        .map(|a| a.as_str().expect("string").to_string())
        .collect();
    assert_eq!(command[0], "ostree-build", "{command:?}");
    command[1..].to_vec()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// `jq -c FILTER` (extra args before the filter) on `input`, with extra environment.
fn jq(args: &[&str], filter: &str, input: &str, env: &[(&str, &str)]) -> String {
    use std::io::Write;
    let mut child = Command::new("jq")
        .args(args)
        .arg(filter)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run jq (scripts/setup.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "jq {args:?} {filter:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim_end()
        .to_string()
}

/// The plan keeps the documented shape: keys in order, one job per unit that needs a runner
/// with its command, dependencies only on other jobs, and nothing to do once all is built.
#[test]
fn the_plans_have_the_documented_shape() {
    let plans = plans();
    for (state, plan) in plans.all() {
        assert_eq!(
            jq(&["-c"], "keys_unsorted", plan, &[]),
            r#"["schema","os","cache","jobs","fresh","cached"]"#,
            "{state}"
        );
        let value = json(plan);
        assert_eq!(value["schema"], 1, "{state}");
        assert_eq!(value["os"], "exampleos", "{state}");
        assert!(value["cache"].is_null(), "{state}: no [cache] url");
        let ids: Vec<&str> = value["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["id"].as_str().unwrap())
            .collect();
        let keys = jq(&["-c"], "[.jobs[] | keys_unsorted] | unique", plan, &[]);
        if !ids.is_empty() {
            assert_eq!(
                keys,
                r#"[["id","kind","name","backend","input_hash","ref","state","reason","depends_on","command"]]"#,
                "{state}"
            );
        }
        for job in value["jobs"].as_array().unwrap() {
            let (kind, name) = (job["kind"].as_str().unwrap(), job["name"].as_str().unwrap());
            assert_eq!(job["id"], format!("{kind}/{name}"), "{state}");
            let hash = job["input_hash"].as_str().unwrap();
            assert!(
                hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
                "{state}: {hash}"
            );
            let (flag, reference) = match kind {
                "component" => ("--component", format!("exampleos/x86_64/components/{name}")),
                "image" => ("--image", format!("exampleos/x86_64/{name}")),
                other => panic!("{state}: kind {other}"),
            };
            assert_eq!(job["ref"], reference, "{state}");
            assert_eq!(
                job["command"],
                serde_json::json!(["ostree-build", "build", flag, name]),
                "{state}"
            );
            for dep in job["depends_on"].as_array().unwrap() {
                assert!(ids.contains(&dep.as_str().unwrap()), "{state}: {dep}");
                assert!(dep.as_str().unwrap().starts_with("component/"), "{state}");
            }
            if kind == "component" {
                assert_eq!(job["backend"], "dir", "{state}");
                assert_eq!(job["depends_on"], serde_json::json!([]), "{state}");
            }
        }
    }
    let ids = |plan: &str, key: &str| -> Vec<String> {
        sorted(
            json(plan)[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect(),
        )
    };
    let job_ids = |plan: &str| -> Vec<String> {
        sorted(
            json(plan)["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|j| j["id"].as_str().unwrap().to_string())
                .collect(),
        )
    };
    assert_eq!(
        job_ids(&plans.new),
        strings(&["component/app", "component/base", "image/standard"])
    );
    assert_eq!(
        job_ids(&plans.changed),
        strings(&["component/base", "image/standard"])
    );
    assert_eq!(ids(&plans.changed, "fresh"), strings(&["component/app"]));
    let image = &jobs_of_kind(&plans.changed, "image")[0];
    assert_eq!(image["depends_on"], serde_json::json!(["component/base"]));
    assert_eq!(job_ids(&plans.fresh), Vec::<String>::new());
    for state in [&plans.new, &plans.changed, &plans.fresh] {
        assert_eq!(ids(state, "cached"), Vec::<String>::new());
    }
}

// ---------------------------------------------------------------------------------------
// Reading the templates.

fn template_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates/ci")
}

/// The text of `templates/ci/NAME` and its YAML documents.
fn template(name: &str) -> (String, Vec<Yaml>) {
    let path = template_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (text.clone(), yaml_documents(&text, name))
}

fn yaml_documents(text: &str, what: &str) -> Vec<Yaml> {
    serde_norway::Deserializer::from_str(text)
        .map(|doc| Yaml::deserialize(doc).unwrap_or_else(|e| panic!("{what}: not YAML: {e}")))
        .collect()
}

fn s<'a>(v: &'a Yaml, what: &str) -> &'a str {
    v.as_str()
        .unwrap_or_else(|| panic!("{what}: not a string: {v:?}"))
}

/// A string or a list of strings, as a list (`needs: plan` and `needs: [plan]`).
fn one_or_many(v: &Yaml, what: &str) -> Vec<String> {
    match v {
        Yaml::String(one) => vec![one.clone()],
        Yaml::Sequence(many) => many.iter().map(|x| s(x, what).to_string()).collect(),
        other => panic!("{what}: {other:?}"),
    }
}

fn seq<'a>(v: &'a Yaml, what: &str) -> &'a Vec<Yaml> {
    v.as_sequence()
        .unwrap_or_else(|| panic!("{what}: not a list: {v:?}"))
}

fn keys(v: &Yaml, what: &str) -> Vec<String> {
    v.as_mapping()
        .unwrap_or_else(|| panic!("{what}: not a mapping: {v:?}"))
        .keys()
        .map(|k| s(k, what).to_string())
        .collect()
}

#[test]
fn every_ci_template_is_yaml_and_is_tested_here() {
    let mut names: Vec<String> = std::fs::read_dir(template_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yml") || n.ends_with(".yaml"))
        .collect();
    names.sort();
    // A new example needs its own test below.
    assert_eq!(
        names,
        strings(&["github-actions.yml", "gitlab-ci.yml", "kubernetes-job.yaml"])
    );
    for name in &names {
        let (_, docs) = template(name);
        assert!(!docs.is_empty(), "{name}");
    }
    let readme = std::fs::read_to_string(template_dir().join("README.md")).unwrap();
    for name in &names {
        assert!(
            readme.contains(name.as_str()),
            "README.md says nothing of {name}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Running the templates' shell: a folder with a stand-in `ostree-build` first on PATH.

/// Prints the plan for `plan --format json`; records any other call, one line each, the
/// arguments separated by tabs.
const FAKE_OSTREE_BUILD: &str = r#"#!/bin/sh
if [ "$#" -eq 3 ] && [ "$1" = plan ] && [ "$2" = --format ] && [ "$3" = json ]; then
  exec cat "$FAKE_PLAN"
fi
for a in "$@"; do printf '%s\t' "$a"; done >> "$FAKE_CALLS"
echo >> "$FAKE_CALLS"
"#;

struct Runner {
    dir: tempfile::TempDir,
}

impl Runner {
    fn new(plan: &str) -> Runner {
        let dir = tempfile::tempdir().unwrap();
        script(&dir.path().join("bin/ostree-build"), FAKE_OSTREE_BUILD);
        std::fs::write(dir.path().join("plan.json"), plan).unwrap();
        std::fs::create_dir_all(dir.path().join("work")).unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        Runner { dir }
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The folder the commands run in (a checkout of the project on a CI runner).
    fn work(&self) -> PathBuf {
        self.p("work")
    }

    /// Run `argv` in the work folder with `env`; its stdout, after checking it succeeded.
    fn run(&self, argv: &[String], env: &[(String, String)]) -> String {
        let out = self.command(argv, env).output().unwrap();
        assert!(
            out.status.success(),
            "{argv:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn command(&self, argv: &[String], env: &[(String, String)]) -> Command {
        let path = format!(
            "{}:{}",
            self.p("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .current_dir(self.work())
            .env("PATH", path)
            .env("HOME", self.p("home"))
            .env("FAKE_PLAN", self.p("plan.json"))
            .env("FAKE_CALLS", self.p("calls"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Run shell lines as a CI runner does: one bash, stopping at the first failure.
    fn bash(&self, lines: &[String], env: &[(String, String)]) -> String {
        let script = lines.join("\n");
        self.run(
            &strings(&[
                "bash",
                "--noprofile",
                "--norc",
                "-eo",
                "pipefail",
                "-c",
                &script,
            ]),
            env,
        )
    }

    /// The calls of the stand-in `ostree-build` since the last time, arguments only.
    fn take_calls(&self) -> Vec<Vec<String>> {
        let text = std::fs::read_to_string(self.p("calls")).unwrap_or_default();
        let _ = std::fs::remove_file(self.p("calls"));
        text.lines()
            .map(|l| {
                l.strip_suffix('\t')
                    .unwrap_or(l)
                    .split('\t')
                    .map(str::to_string)
                    .collect()
            })
            .collect()
    }
}

/// What a worker for `component` must run: the plan's command, then `cache push`.
fn worker_calls(plan: &str, component: &str) -> Vec<Vec<String>> {
    vec![command_of(plan, component), strings(&["cache", "push"])]
}

// ---------------------------------------------------------------------------------------
// GitHub Actions.

/// A step's `env`, with the `${{ }}` expressions the workflow uses filled in: the matrix's
/// component, and stand-ins for secrets and variables.
fn github_env(step: &Yaml, component: &str) -> Vec<(String, String)> {
    let mut env = vec![];
    if let Some(map) = step["env"].as_mapping() {
        for (k, v) in map {
            let v = s(v, "env value")
                .replace("${{ matrix.component }}", component)
                .replace("${{ secrets.", "${{ vars.");
            let v = match v.strip_prefix("${{ vars.") {
                Some(rest) => format!("test value of {}", rest.trim_end_matches(" }}")),
                None => v,
            };
            assert!(
                !v.contains("${{"),
                "an expression the test cannot fill in: {v}"
            );
            env.push((s(k, "env name").to_string(), v));
        }
    }
    env
}

#[test]
fn github_workflow_has_plan_workers_and_compose() {
    let (_, docs) = template("github-actions.yml");
    let jobs = &docs[0]["jobs"];
    assert_eq!(
        keys(jobs, "jobs"),
        strings(&["plan", "component", "compose"])
    );

    let plan = &jobs["plan"];
    assert_eq!(
        s(&plan["outputs"]["components"], "plan.outputs"),
        "${{ steps.plan.outputs.components }}"
    );
    let plan_step = seq(&plan["steps"], "plan.steps")
        .iter()
        .find(|st| st["id"] == "plan")
        .expect("a step with id plan");
    assert!(s(&plan_step["run"], "run").contains("ostree-build plan --format json"));

    let component = &jobs["component"];
    assert_eq!(
        one_or_many(&component["needs"], "needs"),
        strings(&["plan"])
    );
    assert_eq!(
        s(&component["if"], "component.if"),
        "needs.plan.outputs.components != '[]'"
    );
    assert_eq!(
        s(&component["strategy"]["matrix"]["component"], "matrix"),
        "${{ fromJSON(needs.plan.outputs.components) }}"
    );
    let runs: Vec<&str> = seq(&component["steps"], "component.steps")
        .iter()
        .filter_map(|st| st["run"].as_str())
        .collect();
    assert!(runs
        .iter()
        .any(|r| r.contains("ostree-build build --component")));
    assert!(runs.iter().any(|r| r.contains("ostree-build cache push")));

    let compose = &jobs["compose"];
    assert_eq!(
        sorted(one_or_many(&compose["needs"], "needs")),
        strings(&["component", "plan"])
    );
    let guard = s(&compose["if"], "compose.if");
    for part in [
        "!cancelled()",
        "needs.plan.result == 'success'",
        "needs.component.result == 'success'",
        "needs.component.result == 'skipped'",
    ] {
        assert!(guard.contains(part), "compose.if lacks {part}: {guard}");
    }
    assert!(!guard.contains("always()"), "{guard}");
    let runs: Vec<&str> = seq(&compose["steps"], "compose.steps")
        .iter()
        .filter_map(|st| st["run"].as_str())
        .collect();
    assert!(runs
        .iter()
        .any(|r| r.lines().any(|l| l.trim() == "ostree-build build")));
    assert!(runs.iter().any(|r| r.contains("build/repo/")));
}

/// The plan step's output is the list of stale components, `[]` when none (the string the
/// worker job's `if:` compares with); each worker's steps run the plan's command and push.
#[test]
fn github_matrix_is_the_stale_components_and_workers_run_their_command() {
    let (_, docs) = template("github-actions.yml");
    let jobs = &docs[0]["jobs"];
    let plan_step = seq(&jobs["plan"]["steps"], "plan.steps")
        .iter()
        .find(|st| st["id"] == "plan")
        .unwrap();
    // The filter is the step's COMPONENTS_FILTER (templates/ci/README.md).
    assert!(plan_step["env"]["COMPONENTS_FILTER"].is_string());
    for (state, plan) in plans().all() {
        let runner = Runner::new(plan);
        let output = runner.p("github-output");
        std::fs::write(&output, "").unwrap();
        let mut env = github_env(plan_step, "");
        env.push(("GITHUB_OUTPUT".into(), output.display().to_string()));
        runner.bash(&[s(&plan_step["run"], "run").to_string()], &env);
        let out = std::fs::read_to_string(&output).unwrap();
        let list = out
            .lines()
            .find_map(|l| l.strip_prefix("components="))
            .unwrap_or_else(|| panic!("{state}: no components= in $GITHUB_OUTPUT:\n{out}"));
        let names: Vec<String> = serde_json::from_str(list).unwrap();
        assert_eq!(names, stale_components(plan), "{state}");
        let expected: &[&str] = match state {
            "new" => &["app", "base"],
            "changed" => &["base"],
            _ => &[],
        };
        assert_eq!(sorted(names.clone()), strings(expected), "{state}");
        if names.is_empty() {
            assert_eq!(list, "[]", "the worker job's if: compares with '[]'");
        }
        assert!(
            runner.take_calls().is_empty(),
            "{state}: the plan step built"
        );

        for name in &names {
            for step in seq(&jobs["component"]["steps"], "steps") {
                if let Some(run) = step["run"].as_str() {
                    runner.bash(&[run.to_string()], &github_env(step, name));
                }
            }
            assert_eq!(runner.take_calls(), worker_calls(plan, name), "{state}");
            assert!(runner.p("home/.ssh/id_ed25519").is_file());
        }
    }
}

// ---------------------------------------------------------------------------------------
// GitLab CI.

/// GitLab's top-level keywords: every other top-level key of a pipeline is a job.
const GITLAB_KEYWORDS: &[&str] = &[
    "default",
    "include",
    "stages",
    "variables",
    "workflow",
    "image",
    "services",
    "cache",
    "before_script",
    "after_script",
];

fn gitlab_jobs(pipeline: &Yaml) -> Vec<String> {
    keys(pipeline, "pipeline")
        .into_iter()
        .filter(|k| !GITLAB_KEYWORDS.contains(&k.as_str()) && !k.starts_with('.'))
        .collect()
}

fn script_lines(v: &Yaml, what: &str) -> Vec<String> {
    one_or_many(v, what)
}

#[test]
fn gitlab_pipeline_triggers_the_plans_child_pipeline_then_composes() {
    let (_, docs) = template("gitlab-ci.yml");
    let ci = &docs[0];
    assert_eq!(gitlab_jobs(ci), strings(&["plan", "components", "compose"]));
    let stages = one_or_many(&ci["stages"], "stages");
    let stage = |job: &str| {
        let name = s(&ci[job]["stage"], "stage");
        stages
            .iter()
            .position(|st| st == name)
            .unwrap_or_else(|| panic!("{job}: stage {name} not in stages"))
    };
    assert!(stage("plan") < stage("components") && stage("components") < stage("compose"));

    let trigger = &ci["components"]["trigger"];
    let include = seq(&trigger["include"], "trigger.include");
    assert_eq!(include.len(), 1);
    assert_eq!(s(&include[0]["job"], "include.job"), "plan");
    let artifact = s(&include[0]["artifact"], "include.artifact");
    assert_eq!(s(&trigger["strategy"], "strategy"), "depend");
    assert!(
        one_or_many(&ci["plan"]["artifacts"]["paths"], "artifacts").contains(&artifact.into()),
        "plan does not keep {artifact}"
    );
    let plan_script = script_lines(&ci["plan"]["script"], "plan.script").join("\n");
    assert!(plan_script.contains("ostree-build plan --format json"));
    assert!(plan_script.contains(artifact));
    let filter = &ci["plan"]["variables"]["CHILD_PIPELINE_FILTER"];
    // GitLab would expand the $VARIABLES the child pipeline is meant to see.
    assert_eq!(filter["expand"], Yaml::Bool(false));
    assert!(filter["value"].is_string());

    let compose = script_lines(&ci["compose"]["script"], "compose.script");
    assert!(
        compose.iter().any(|l| l == "ostree-build build"),
        "{compose:?}"
    );
    assert!(
        compose.iter().any(|l| l.contains("build/repo/")),
        "{compose:?}"
    );
    // The SSH key for the publish host, from the shared anchor.
    assert_eq!(
        script_lines(&ci["compose"]["before_script"], "before_script").len(),
        3
    );
    // The image the child pipeline's jobs name is a variable the trigger passes on.
    assert!(ci["variables"]["OSTREE_BUILD_IMAGE"].is_string());
}

/// The plan job's script writes the artifact the trigger includes: one job per stale
/// component whose script runs that component's command and pushes, or one no-op job.
#[test]
fn gitlab_child_pipeline_has_one_job_per_stale_component() {
    let (_, docs) = template("gitlab-ci.yml");
    let ci = &docs[0];
    let artifact = s(
        &ci["components"]["trigger"]["include"][0]["artifact"],
        "artifact",
    );
    let filter = s(
        &ci["plan"]["variables"]["CHILD_PIPELINE_FILTER"]["value"],
        "filter",
    );
    for (state, plan) in plans().all() {
        let runner = Runner::new(plan);
        let key = runner.p("ssh-key");
        let known_hosts = runner.p("known-hosts");
        std::fs::write(&key, "key\n").unwrap();
        std::fs::write(&known_hosts, "host key\n").unwrap();
        let env = vec![
            ("CHILD_PIPELINE_FILTER".to_string(), filter.to_string()),
            // File-type variables: GitLab gives the path of a file holding the value.
            ("OSTREE_BUILD_SSH_KEY".into(), key.display().to_string()),
            (
                "OSTREE_BUILD_KNOWN_HOSTS".into(),
                known_hosts.display().to_string(),
            ),
        ];
        runner.bash(&script_lines(&ci["plan"]["script"], "plan.script"), &env);
        assert!(
            runner.take_calls().is_empty(),
            "{state}: the plan job built"
        );
        let text = std::fs::read_to_string(runner.work().join(artifact))
            .unwrap_or_else(|e| panic!("{state}: {artifact}: {e}"));
        let child = &yaml_documents(&text, artifact)[0];
        let jobs = gitlab_jobs(child);
        let stale = stale_components(plan);
        if stale.is_empty() {
            assert_eq!(jobs.len(), 1, "{state}: one no-op job:\n{text}");
            assert_eq!(keys(child, "child"), jobs, "{state}: only the no-op job");
            let job = &child[jobs[0].as_str()];
            runner.bash(&script_lines(&job["script"], "script"), &env);
            assert!(
                runner.take_calls().is_empty(),
                "{state}: the no-op job built"
            );
            continue;
        }
        assert_eq!(jobs.len(), stale.len(), "{state}:\n{text}");
        assert_eq!(
            s(&child["default"]["image"], "image"),
            "$OSTREE_BUILD_IMAGE"
        );
        let mut built = vec![];
        for name in &jobs {
            let job = &child[name.as_str()];
            // before_script (from default:) then script, in one shell, as the runner does.
            let mut lines = script_lines(&child["default"]["before_script"], "before_script");
            lines.extend(script_lines(&job["script"], "script"));
            runner.bash(&lines, &env);
            let calls = runner.take_calls();
            let component = calls
                .first()
                .and_then(|c| c.get(2))
                .unwrap_or_else(|| panic!("{state}: job {name} built nothing: {calls:?}"))
                .clone();
            assert_eq!(calls, worker_calls(plan, &component), "{state}: job {name}");
            assert_eq!(
                std::fs::read_to_string(runner.p("home/.ssh/id_ed25519")).unwrap(),
                "key\n"
            );
            built.push(component);
        }
        assert_eq!(sorted(built), sorted(stale), "{state}");
    }
}

// ---------------------------------------------------------------------------------------
// Kubernetes.

/// The manifests with the placeholders filled in as the file's one-liner does.
fn kubernetes_filled(text: &str, count: usize, revision: &str) -> Vec<Yaml> {
    let filled = text
        .replace("__COMPONENTS__", &count.to_string())
        .replace("__REVISION__", revision);
    yaml_documents(&filled, "kubernetes-job.yaml, filled in")
}

fn by_stage<'a>(docs: &'a [Yaml], kind: &str, stage: &str) -> &'a Yaml {
    let found: Vec<&Yaml> = docs
        .iter()
        .filter(|d| d["kind"] == kind && d["metadata"]["labels"]["ostree-build/stage"] == stage)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one {kind} labelled ostree-build/stage={stage}"
    );
    found[0]
}

fn container(job: &Yaml) -> &Yaml {
    let containers = seq(&job["spec"]["template"]["spec"]["containers"], "containers");
    assert_eq!(containers.len(), 1);
    &containers[0]
}

/// The container's environment, as name/value pairs.
fn container_env(c: &Yaml) -> Vec<(String, String)> {
    seq(&c["env"], "env")
        .iter()
        .map(|e| {
            (
                s(&e["name"], "env name").to_string(),
                s(&e["value"], "env value").to_string(),
            )
        })
        .collect()
}

#[test]
fn kubernetes_indexed_job_builds_components_then_a_job_composes() {
    let (text, docs) = template("kubernetes-job.yaml");
    let workers = by_stage(&docs, "Job", "components");
    let spec = &workers["spec"];
    assert_eq!(s(&spec["completionMode"], "completionMode"), "Indexed");
    assert_eq!(s(&spec["completions"], "completions"), "__COMPONENTS__");
    assert_eq!(s(&spec["parallelism"], "parallelism"), "__COMPONENTS__");
    let c = container(workers);
    let command = one_or_many(&c["command"], "command").join(" ");
    assert!(
        command.contains("ostree-build build --component"),
        "{command}"
    );
    assert!(command.contains("ostree-build cache push"), "{command}");
    // The count filter is documented in the one-liner at the top, word for word.
    let count = s(
        &workers["metadata"]["annotations"]["ostree-build/count-filter"],
        "count filter",
    );
    let one_liner = format!("jq '{count}' plan.json");
    assert!(
        text.lines()
            .take_while(|l| l.starts_with('#'))
            .any(|l| l.contains(&one_liner)),
        "the header does not run {one_liner}"
    );
    // The plan reaches the pods as the ConfigMap the one-liner creates.
    assert!(text.contains("kubectl create configmap ostree-build-plan-$rev --from-file=plan.json"));
    let volumes = seq(&spec["template"]["spec"]["volumes"], "volumes");
    assert!(volumes
        .iter()
        .any(|v| v["configMap"]["name"] == "ostree-build-plan-__REVISION__"));

    let compose = by_stage(&docs, "Job", "compose");
    let command = one_or_many(&container(compose)["command"], "command").join("\n");
    assert!(
        command.lines().any(|l| l.trim() == "ostree-build build"),
        "{command}"
    );
    assert!(command.contains("build/repo/"), "{command}");
    by_stage(&docs, "PersistentVolumeClaim", "compose");

    // Filled in, the counts are numbers and the names are valid (at most 63 characters).
    let filled = kubernetes_filled(&text, 3, "0123456789ab");
    let workers = by_stage(&filled, "Job", "components");
    assert_eq!(workers["spec"]["completions"].as_u64(), Some(3));
    assert_eq!(workers["spec"]["parallelism"].as_u64(), Some(3));
    for doc in &filled {
        let name = s(&doc["metadata"]["name"], "name");
        assert!(name.len() <= 63 && !name.contains("__"), "{name}");
    }
}

/// The count filter counts the stale components; the pod of index i runs component i's
/// command and pushes it; an index past the end fails without building.
#[test]
fn kubernetes_pod_i_builds_component_i() {
    let (text, docs) = template("kubernetes-job.yaml");
    let workers = by_stage(&docs, "Job", "components");
    let count_filter = s(
        &workers["metadata"]["annotations"]["ostree-build/count-filter"],
        "count filter",
    );
    let c = container(workers);
    let command = one_or_many(&c["command"], "command");
    let env = container_env(c);
    assert!(env.iter().any(|(k, _)| k == "COMPONENT_FILTER"), "{env:?}");
    for (state, plan) in plans().all() {
        let stale = stale_components(plan);
        let count: usize = jq(&[], count_filter, plan, &[]).parse().unwrap();
        assert_eq!(count, stale.len(), "{state}");
        if count > 0 {
            let filled = kubernetes_filled(&text, count, "0123456789ab");
            let spec = &by_stage(&filled, "Job", "components")["spec"];
            assert_eq!(spec["completions"].as_u64(), Some(count as u64));
        }
        let runner = Runner::new(plan);
        let pod_env = |index: usize| {
            let mut env = env.clone();
            for (k, v) in &mut env {
                if k == "PLAN_FILE" {
                    *v = runner.p("plan.json").display().to_string();
                }
            }
            env.push(("JOB_COMPLETION_INDEX".into(), index.to_string()));
            env
        };
        for (index, name) in stale.iter().enumerate() {
            runner.run(&command, &pod_env(index));
            assert_eq!(
                runner.take_calls(),
                worker_calls(plan, name),
                "{state}: index {index}"
            );
        }
        let out = runner.command(&command, &pod_env(count)).output().unwrap();
        assert!(!out.status.success(), "{state}: index {count} of {count}");
        assert!(runner.take_calls().is_empty(), "{state}");
    }
}
