//! The pipeline's events as lines for a person (cargo-style, a right-aligned verb) or as
//! JSON lines for CI. Under `-q` a person sees only warnings and, in a dry run, what would
//! change; JSON lines are never filtered. Progress events go to `progress` (live lines on
//! a terminal).

use super::progress::Progress;
use super::short;
use ostree_build_core::report::{Event, Kind, Reporter};

/// Renders core events.
pub struct Printer {
    json: bool,
    dry_run: bool,
    /// Components to build and built so far, for `[n/N]` progress.
    to_build: usize,
    built: usize,
    /// Units the plan would build, compose or publish.
    stale: usize,
    progress: Progress,
}

impl Printer {
    pub fn new(json: bool, dry_run: bool) -> Printer {
        Printer {
            json,
            dry_run,
            to_build: 0,
            built: 0,
            stale: 0,
            progress: Progress::new(!json && !super::quiet()),
        }
    }

    /// A printer for a run that builds exactly one component (ad hoc).
    pub fn one_component(json: bool) -> Printer {
        let mut printer = Printer::new(json, false);
        printer.to_build = 1;
        printer
    }

    /// How many units the plan said are not fresh (to build, compose or publish).
    pub fn stale(&self) -> usize {
        self.stale
    }

    /// Under `-q`: warnings, and in a dry run what would change (the run's answer).
    fn shown_when_quiet(&self, event: &Event) -> bool {
        match event {
            Event::Warning { .. } => true,
            Event::Plan { action, .. } => self.dry_run && action != "fresh",
            _ => false,
        }
    }

    /// The human line for `event`, if it shows one.
    fn human(&mut self, event: Event) -> Option<String> {
        match event {
            Event::Plan {
                kind,
                name,
                action,
                reason,
            } => {
                if kind == Kind::Component && action == "build" {
                    self.to_build += 1;
                }
                if self.dry_run {
                    Some(format!(
                        "{:>9} {} {name}: {reason}",
                        action,
                        kind_name(kind)
                    ))
                } else {
                    (action == "fresh")
                        .then(|| format!("{:>9} {} {name}", "Fresh", kind_name(kind)))
                }
            }
            Event::Started { kind, name } => Some(match kind {
                Kind::Component => format!("{:>9} component {name}", "Building"),
                Kind::Image => format!("{:>9} image {name}", "Composing"),
                Kind::Publish => format!("{:>9} image {name}", "Publishing"),
            }),
            Event::Finished {
                kind,
                name,
                commit,
                seconds,
                detail,
            } => Some(self.finished(kind, &name, &commit, seconds, &detail)),
            Event::Pulled {
                name,
                commit,
                seconds,
                detail,
            } => Some(format!(
                "{:>9} component {name} -> {} in {seconds:.2}s ({detail})",
                "Pulled",
                short(&commit)
            )),
            Event::Log { name, message } => Some(format!("{:>9} {name}: {message}", "")),
            // Shown by `progress`, never as a line of its own here.
            Event::Progress { .. } => None,
            Event::Warning { message } => Some(format!("warning: {message}")),
            // The error that follows shows them, and names the file that lists them all.
            Event::Conflicts { .. } => None,
            Event::Waiting { message } => Some(format!("{:>9} {message}", "Blocking")),
            Event::Summary {
                built,
                pulled,
                composed,
                published,
                fresh,
                seconds,
                phases,
            } => Some(if built + pulled + composed + published == 0 {
                format!(
                    "{:>9} nothing to do: everything is up to date ({seconds:.2}s)",
                    "Finished"
                )
            } else {
                let phases: Vec<String> =
                    phases.iter().map(|(n, s)| format!("{n} {s:.2}s")).collect();
                let pulled = match pulled {
                    0 => String::new(),
                    n => format!(", {n} pulled from the cache"),
                };
                format!(
                    "{:>9} {built} component(s) built{pulled}, {composed} image(s) composed, {published} published, {fresh} fresh in {seconds:.2}s ({})",
                    "Finished",
                    phases.join(", ")
                )
            }),
        }
    }

    fn finished(
        &mut self,
        kind: Kind,
        name: &str,
        commit: &str,
        seconds: f64,
        detail: &str,
    ) -> String {
        let progress = if kind == Kind::Component {
            self.built += 1;
            // A component the cache was to provide and could not is built after all.
            self.to_build = self.to_build.max(self.built);
            format!(" [{}/{}]", self.built, self.to_build)
        } else {
            String::new()
        };
        let verb = match kind {
            Kind::Component => "Built",
            Kind::Image => "Composed",
            Kind::Publish => "Published",
        };
        format!(
            "{verb:>9} {} {name}{progress} -> {} in {seconds:.2}s ({detail})",
            kind_name(kind),
            short(commit)
        )
    }
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Component => "component",
        Kind::Image | Kind::Publish => "image",
    }
}

impl Reporter for Printer {
    fn event(&mut self, event: Event) {
        if matches!(&event, Event::Plan { action, .. } if action != "fresh") {
            self.stale += 1;
        }
        if self.json {
            if let Ok(s) = serde_json::to_string(&event) {
                super::line(&s);
            }
            return;
        }
        let started = match &event {
            Event::Progress { .. } => return self.progress.show(&event),
            Event::Finished { kind, name, .. } => {
                self.progress.unit_finished(*kind, name);
                None
            }
            Event::Started { kind, name } => Some((*kind, name.clone())),
            _ => None,
        };
        let shown = !super::quiet() || self.shown_when_quiet(&event);
        if let Some(line) = self.human(event).filter(|_| shown) {
            self.progress.println(&line);
            if let Some((kind, name)) = started {
                self.progress.unit_started(kind, &name, &line);
            }
        }
    }
}

/// For commands whose stdout is their answer (`plan --format json`, `status`): warnings
/// go to stderr as `warning:` lines, other events are not shown.
pub struct WarningsOnly;

impl Reporter for WarningsOnly {
    fn event(&mut self, event: Event) {
        if let Event::Warning { message } = event {
            eprintln!("warning: {message}");
        }
    }
}
