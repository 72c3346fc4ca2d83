//! `ostree-build-{{name}}` speaks ostree-build's protocol: it answers the info probe, plans,
//! and fills an empty root, run the way ostree-build runs it (a reserved first argument,
//! the request on stdin, JSON lines on stdout).

use ostree_build_sdk::serde_json::{self, json, Value};
use ostree_build_sdk::PROTOCOL_VERSION;
use std::io::Write;
use std::process::{Command, Stdio};

const EXE: &str = env!("CARGO_BIN_EXE_ostree-build-{{name}}");

/// Run the backend with `arg` and `request` on stdin; every stdout line as JSON.
fn call(arg: &str, request: &Value) -> Vec<Value> {
    let mut child = Command::new(EXE)
        .arg(arg)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run the backend");
    // The info probe does not read stdin: a closed pipe is fine.
    let _ = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(request.to_string().as_bytes());
    let out = child.wait_with_output().expect("wait for the backend");
    assert!(out.status.success(), "{arg}: {}", out.status);
    String::from_utf8(out.stdout)
        .expect("UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// A request for a component of a project in a fresh directory, built into its `root`.
fn request(dir: &std::path::Path, options: Value) -> Value {
    json!({"protocol": PROTOCOL_VERSION, "component": "test", "arch": "x86_64",
           "project_dir": dir, "root": dir.join("root"), "options": options})
}

/// A fresh empty directory, removed first if a previous run left it.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("root")).expect("create the scratch root");
    dir
}

#[test]
fn answers_the_info_probe() {
    let info = call("ostree-build-plugin-info", &Value::Null);
    assert_eq!(info[0]["name"], "{{name}}");
    assert!(info[0]["protocols"]
        .as_array()
        .expect("protocols")
        .contains(&json!(PROTOCOL_VERSION)));
}

#[test]
fn plans_and_fills_an_empty_root() {
    let dir = scratch("ostree-build-test");
    let request = request(&dir, json!({"greeting": "hi"}));
    let plan = call("ostree-build-plugin-plan", &request);
    assert_eq!(plan[0]["type"], "hello");
    assert_eq!(plan.last().expect("an answer")["type"], "plan");
    let run = call("ostree-build-plugin-run", &request);
    let answer = run.last().expect("an answer");
    assert_eq!(answer["type"], "output", "{run:?}");
    assert_eq!(answer["output"]["kind"], "tree");
    let file = dir.join("root/usr/share/{{name}}/greeting");
    let written = std::fs::read_to_string(file).expect("the greeting");
    assert_eq!(written, "hi\n");
    std::fs::remove_dir_all(&dir).expect("clean up");
}
