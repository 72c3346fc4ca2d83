//! cdylib backend plugins (`libostree_build_backend_<name>.so`), loaded through
//! abi_stable from plugin directories only. A library is loaded once per process and never
//! unloaded; everything crossing the boundary is the JSON of the executable protocol, and a
//! panic inside the plugin comes back as an error message (the sdk catches it).

use super::found::{check_info, Candidate, Found, Source};
use anyhow::{anyhow, Result};
use ostree_build_sdk::dylib::abi_stable::library::{
    lib_header_from_path, LibraryError, RootModule,
};
use ostree_build_sdk::dylib::abi_stable::std_types::{RStr, RString};
use ostree_build_sdk::dylib::{BackendPlugin_Ref, Emit, OP_PLAN, OP_RUN};
use ostree_build_sdk::exec::Message;
use ostree_build_sdk::{Backend, BackendInfo, EventSink, NoEvents, Output, Plan, Request};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};

/// Libraries loaded so far (never unloaded).
fn loaded() -> &'static Mutex<HashMap<PathBuf, BackendPlugin_Ref>> {
    static LOADED: OnceLock<Mutex<HashMap<PathBuf, BackendPlugin_Ref>>> = OnceLock::new();
    LOADED.get_or_init(Default::default)
}

/// Where each running call's events go, by call id.
fn routes() -> &'static Mutex<HashMap<u64, mpsc::Sender<Reply>>> {
    static ROUTES: OnceLock<Mutex<HashMap<u64, mpsc::Sender<Reply>>>> = OnceLock::new();
    ROUTES.get_or_init(Default::default)
}

enum Reply {
    Event(String),
    Done(String),
}

extern "C" fn emit(call_id: u64, message: RStr<'_>) {
    if let Some(tx) = routes().lock().ok().and_then(|r| r.get(&call_id).cloned()) {
        let _ = tx.send(Reply::Event(message.as_str().to_string()));
    }
}

pub struct DylibBackend {
    info: BackendInfo,
    module: BackendPlugin_Ref,
}

impl DylibBackend {
    pub fn load(c: &Candidate) -> Result<Found> {
        let module = load_module(&c.path)?;
        let json = (module.info_json())();
        let info: BackendInfo = serde_json::from_str(json.as_str())
            .map_err(|e| anyhow!("plugin {} sent malformed info: {e}", c.path.display()))?;
        check_info(c, &info)?;
        Ok(Found {
            backend: Arc::new(DylibBackend {
                info: info.clone(),
                module,
            }),
            info,
            source: Source::Plugin(c.path.clone()),
        })
    }

    fn call(
        &self,
        op: &'static str,
        request: &Request,
        events: &mut dyn EventSink,
    ) -> Result<Message> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = mpsc::channel();
        routes()
            .lock()
            .map_err(|_| anyhow!("plugin event routes poisoned"))?
            .insert(id, tx.clone());
        let request = serde_json::to_string(request)?;
        let call = self.module.call();
        // The call runs on its own thread so its events reach `events` as they happen.
        std::thread::spawn(move || {
            let answer: RString = call(
                id,
                RStr::from_str(op),
                RStr::from_str(&request),
                Emit { func: emit },
            );
            let _ = tx.send(Reply::Done(answer.into_string()));
        });
        let mut answer = None;
        for reply in &rx {
            match reply {
                Reply::Event(json) => forward(&json, events),
                Reply::Done(json) => {
                    answer = Some(json);
                    break;
                }
            }
        }
        if let Ok(mut r) = routes().lock() {
            r.remove(&id);
        }
        // Events sent just before the answer.
        while let Ok(Reply::Event(json)) = rx.try_recv() {
            forward(&json, events);
        }
        let name = &self.info.name;
        let answer = answer.ok_or_else(|| anyhow!("plugin '{name}' ended without an answer"))?;
        serde_json::from_str::<Message>(&answer)
            .map_err(|e| anyhow!("plugin '{name}' answered with malformed JSON: {e}"))
    }
}

/// An event a plugin emitted, passed on (anything else it emits is ignored).
fn forward(json: &str, events: &mut dyn EventSink) {
    if let Some(e) = serde_json::from_str::<Message>(json)
        .ok()
        .and_then(|m| m.event())
    {
        events.event(e);
    }
}

impl Backend for DylibBackend {
    fn info(&self) -> BackendInfo {
        self.info.clone()
    }

    fn plan(&self, request: &Request) -> Result<Plan> {
        self.call(OP_PLAN, request, &mut NoEvents)?
            .into_plan(&self.info.name)
    }

    fn run(&self, request: &Request, events: &mut dyn EventSink) -> Result<Output> {
        self.call(OP_RUN, request, events)?
            .into_output(&self.info.name)
    }
}

/// Load (once) the library at `path`, with one-line errors that say who must rebuild what.
fn load_module(path: &Path) -> Result<BackendPlugin_Ref> {
    let mut cache = loaded()
        .lock()
        .map_err(|_| anyhow!("plugin cache poisoned"))?;
    if let Some(m) = cache.get(path) {
        return Ok(*m);
    }
    let module = lib_header_from_path(path)
        .and_then(|h| h.init_root_module::<BackendPlugin_Ref>())
        .map_err(|e| explain(path, e))?;
    cache.insert(path.to_path_buf(), module);
    Ok(module)
}

fn explain(path: &Path, e: LibraryError) -> anyhow::Error {
    let ours = BackendPlugin_Ref::VERSION_STRINGS;
    let full = std::env::var_os("OSTREE_BUILD_PLUGIN_DEBUG").is_some();
    let detail = |e: &LibraryError| {
        if full {
            format!("\n{e}")
        } else {
            "\n  help: run with -vv (or OSTREE_BUILD_PLUGIN_DEBUG=1) for abi_stable's full report"
                .into()
        }
    };
    match &e {
        LibraryError::IncompatibleVersionNumber { actual_version, .. } => anyhow!(
            "plugin {} was built against ostree-build-sdk {actual_version}; this ostree-build uses sdk {}: rebuild the plugin against sdk {}",
            path.display(),
            ours.version,
            ours.version
        ),
        LibraryError::AbiInstability(_) => anyhow!(
            "plugin {} has an ABI that does not match this ostree-build (sdk {}): rebuild the plugin against it{}",
            path.display(),
            ours.version,
            detail(&e)
        ),
        LibraryError::InvalidAbiHeader(_) => anyhow!(
            "plugin {} was built with another abi_stable version: rebuild it against ostree-build-sdk {}",
            path.display(),
            ours.version
        ),
        LibraryError::OpenError { .. } | LibraryError::GetSymbolError { .. } => anyhow!(
            "cannot load plugin {}: {}\n  help: is it a cdylib built with ostree-build-sdk's export_backend!?",
            path.display(),
            e.to_string().lines().rfind(|l| !l.trim().is_empty()).unwrap_or_default().trim()
        ),
        _ => anyhow!("cannot load plugin {}: {}{}", path.display(), e.to_string().lines().next().unwrap_or_default(), detail(&e)),
    }
}
