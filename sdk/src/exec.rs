//! The executable side of the protocol: turn a [`Backend`] into an `ostree-build-<name>`
//! program in one line (`fn main() { ostree_build_sdk::exec::main(MyBackend) }`).
//!
//! The host runs the program with one reserved argument:
//! - `ostree-build-plugin-info`: print [`BackendInfo`](crate::BackendInfo) as one JSON
//!   object, exit 0;
//! - `ostree-build-plugin-plan` / `ostree-build-plugin-run`: read one [`Request`] as JSON on
//!   stdin, write JSON lines on stdout ([`Message`]: `hello` first, then `log`/`progress`,
//!   then `plan`/`output` or `error`), exit 0 on success, 1 when the operation failed (an
//!   `error` message was sent), 2 on a usage or protocol error. Stderr is free for people.

use crate::{Backend, Event, EventSink, Level, Output, Plan, Request, PROTOCOL_VERSION};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};

pub const INFO_ARG: &str = "ostree-build-plugin-info";
pub const PLAN_ARG: &str = "ostree-build-plugin-plan";
pub const RUN_ARG: &str = "ostree-build-plugin-run";

/// One line a backend writes on stdout.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Message {
    /// Always first: the protocol version the backend answers with.
    Hello {
        protocol: u32,
    },
    Log {
        level: Level,
        message: String,
    },
    Progress {
        done: u64,
        total: Option<u64>,
        unit: String,
    },
    /// The answer to `ostree-build-plugin-plan`.
    Plan {
        plan: Plan,
    },
    /// The answer to `ostree-build-plugin-run`.
    Output {
        output: Output,
    },
    /// The operation failed.
    Error {
        message: String,
        #[serde(default)]
        hint: String,
    },
}

impl From<Event> for Message {
    fn from(e: Event) -> Message {
        match e {
            Event::Log { level, message } => Message::Log { level, message },
            Event::Progress { done, total, unit } => Message::Progress { done, total, unit },
        }
    }
}

impl Message {
    /// The event this message carries, if it is one (`log`, `progress`).
    pub fn event(&self) -> Option<Event> {
        match self {
            Message::Log { level, message } => Some(Event::Log {
                level: *level,
                message: message.clone(),
            }),
            Message::Progress { done, total, unit } => Some(Event::Progress {
                done: *done,
                total: *total,
                unit: unit.clone(),
            }),
            _ => None,
        }
    }

    /// The answer to `plan`; `who` names the backend in the error. An `error` message
    /// becomes the error it reports.
    pub fn into_plan(self, who: &str) -> anyhow::Result<Plan> {
        match self.into_answer()? {
            Message::Plan { plan } => Ok(plan),
            _ => anyhow::bail!("backend '{who}' answered the plan with something else"),
        }
    }

    /// The answer to `run`; `who` names the backend in the error. An `error` message
    /// becomes the error it reports.
    pub fn into_output(self, who: &str) -> anyhow::Result<Output> {
        match self.into_answer()? {
            Message::Output { output } => Ok(output),
            _ => anyhow::bail!("backend '{who}' answered the run with something else"),
        }
    }

    /// An `error` message as the error it reports (with its hint as a `help:` line).
    fn into_answer(self) -> anyhow::Result<Message> {
        match self {
            Message::Error { message, hint } if hint.is_empty() => anyhow::bail!("{message}"),
            Message::Error { message, hint } => anyhow::bail!("{message}\n  help: {hint}"),
            other => Ok(other),
        }
    }
}

struct StdoutSink;

fn send(message: &Message) {
    if let Ok(line) = serde_json::to_string(message) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

impl EventSink for StdoutSink {
    fn event(&mut self, event: Event) {
        send(&Message::from(event));
    }
}

/// The `main` of an `ostree-build-<name>` executable.
pub fn main<B: Backend>(backend: B) -> ! {
    let arg = std::env::args().nth(1).unwrap_or_default();
    let code = match arg.as_str() {
        INFO_ARG => match serde_json::to_string(&backend.info()) {
            Ok(json) => {
                // A reader that went away is not this program's failure.
                let _ = writeln!(std::io::stdout(), "{json}");
                0
            }
            Err(_) => 2,
        },
        PLAN_ARG | RUN_ARG => serve(&backend, arg == RUN_ARG),
        _ => {
            let name = backend.info().name;
            eprintln!(
                "ostree-build-{name} is an ostree-build backend; run it through ostree-build:\n  ostree-build {name} --help\n  ostree-build {name} --branch BRANCH [--OPTION VALUE]..."
            );
            2
        }
    };
    std::process::exit(code)
}

fn serve<B: Backend>(backend: &B, run: bool) -> i32 {
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("cannot read the request: {e}");
        return 2;
    }
    let request: Request = match serde_json::from_str(&input) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("malformed request: {e}");
            return 2;
        }
    };
    send(&Message::Hello {
        protocol: PROTOCOL_VERSION,
    });
    if request.protocol != PROTOCOL_VERSION {
        send(&Message::Error {
            message: format!(
                "this backend speaks protocol {PROTOCOL_VERSION}, the request is protocol {}",
                request.protocol
            ),
            hint: "rebuild the backend against the ostree-build-sdk of this ostree-build".into(),
        });
        return 2;
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if run {
            backend
                .run(&request, &mut StdoutSink)
                .map(|output| Message::Output { output })
        } else {
            backend.plan(&request).map(|plan| Message::Plan { plan })
        }
    }));
    match result {
        Ok(Ok(message)) => {
            send(&message);
            0
        }
        Ok(Err(e)) => {
            send(&Message::Error {
                message: format!("{e:#}"),
                hint: String::new(),
            });
            1
        }
        Err(_) => {
            send(&Message::Error {
                message: "the backend panicked".into(),
                hint: "see its stderr above".into(),
            });
            1
        }
    }
}
