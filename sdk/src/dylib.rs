//! The cdylib side of the protocol (feature `dylib`): a deliberately tiny `abi_stable`
//! surface, so the ABI does not change when the protocol grows. Everything that can evolve
//! travels as the same JSON as the executable protocol ([`crate::exec::Message`]):
//! - `info_json()`: [`crate::BackendInfo`] as JSON;
//! - `call(call_id, op, request_json, emit)`: one operation (`plan` or `run`); events go to
//!   `emit(call_id, message_json)` as they happen; the return value is the final message
//!   (`plan`, `output` or `error`) as JSON.
//!
//! A backend exports itself with [`export_backend!`](crate::export_backend). Panics are
//! caught inside the plugin and returned as an `error` message, so they never cross the
//! FFI boundary (where abi_stable would end the host).

#![allow(non_local_definitions, non_camel_case_types)]

pub use abi_stable;
use abi_stable::library::RootModule;
use abi_stable::std_types::{RStr, RString};
use abi_stable::{package_version_strings, sabi_types::VersionStrings, StableAbi};

use crate::exec::Message;
use crate::{Backend, Event, EventSink, Request, PROTOCOL_VERSION};

/// The host's event callback, `emit(call_id, message_json)`.
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy)]
pub struct Emit {
    pub func: extern "C" fn(u64, RStr<'_>),
}

/// The root module every backend plugin exports.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = BackendPlugin_Ref)))]
#[sabi(missing_field(panic))]
pub struct BackendPlugin {
    /// [`crate::BackendInfo`] as JSON.
    pub info_json: extern "C" fn() -> RString,
    /// One operation; see the module documentation.
    #[sabi(last_prefix_field)]
    pub call:
        extern "C" fn(call_id: u64, op: RStr<'_>, request_json: RStr<'_>, emit: Emit) -> RString,
}

impl RootModule for BackendPlugin_Ref {
    abi_stable::declare_root_module_statics! {BackendPlugin_Ref}
    const BASE_NAME: &'static str = "ostree_build_backend";
    const NAME: &'static str = "ostree_build_backend";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// The symbol `export_backend!` exports must be the one abi_stable looks for.
const _: () = {
    let a = abi_stable::library::ROOT_MODULE_LOADER_NAME.as_bytes();
    let b = b"_1as_0lib_1header_0root_bmodule_bloader";
    assert!(a.len() == b.len());
    let mut i = 0;
    while i < a.len() {
        assert!(a[i] == b[i]);
        i += 1;
    }
};

/// Operation names for `call`.
pub const OP_PLAN: &str = "plan";
pub const OP_RUN: &str = "run";

struct EmitSink {
    call_id: u64,
    emit: Emit,
}

impl EventSink for EmitSink {
    fn event(&mut self, event: Event) {
        if let Ok(json) = serde_json::to_string(&Message::from(event)) {
            (self.emit.func)(self.call_id, RStr::from_str(&json));
        }
    }
}

fn to_json(message: &Message) -> RString {
    RString::from(serde_json::to_string(message).unwrap_or_else(|_| {
        r#"{"type":"error","message":"the backend could not serialise its answer"}"#.to_string()
    }))
}

/// The body of a plugin's `info_json` (used by [`export_backend!`](crate::export_backend)).
pub fn info_json<B: Backend>(backend: &B) -> RString {
    RString::from(serde_json::to_string(&backend.info()).unwrap_or_default())
}

/// The body of a plugin's `call` (used by [`export_backend!`](crate::export_backend)).
pub fn call<B: Backend>(
    backend: &B,
    call_id: u64,
    op: RStr<'_>,
    request_json: RStr<'_>,
    emit: Emit,
) -> RString {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let request: Request = match serde_json::from_str(request_json.as_str()) {
            Ok(r) => r,
            Err(e) => {
                return Message::Error {
                    message: format!("malformed request: {e}"),
                    hint: String::new(),
                }
            }
        };
        if request.protocol != PROTOCOL_VERSION {
            return Message::Error {
                message: format!(
                    "this backend speaks protocol {PROTOCOL_VERSION}, the request is protocol {}",
                    request.protocol
                ),
                hint: "rebuild the plugin against the ostree-build-sdk of this ostree-build".into(),
            };
        }
        let answer = match op.as_str() {
            OP_PLAN => backend.plan(&request).map(|plan| Message::Plan { plan }),
            OP_RUN => backend
                .run(&request, &mut EmitSink { call_id, emit })
                .map(|output| Message::Output { output }),
            other => Ok(Message::Error {
                message: format!("unknown operation '{other}'"),
                hint: "the host is newer than this plugin; rebuild it".into(),
            }),
        };
        answer.unwrap_or_else(|e| Message::Error {
            message: format!("{e:#}"),
            hint: String::new(),
        })
    }));
    to_json(&result.unwrap_or_else(|_| Message::Error {
        message: "the backend panicked".into(),
        hint: "see its stderr above".into(),
    }))
}

/// Export a [`Backend`] value as a cdylib plugin:
/// `ostree_build_sdk::export_backend!(MyBackend);` in a crate with
/// `crate-type = ["cdylib"]`, built with the sdk's `dylib` feature. Install the library
/// as `libostree_build_backend_<name>.so` in a plugin directory. Once per library: it
/// defines the module abi_stable loads.
///
/// ```
/// use ostree_build_sdk::{Backend, BackendInfo, EventSink, OptionSpec, Output, Plan, Request};
///
/// pub struct Motd;
///
/// impl Backend for Motd {
///     fn info(&self) -> BackendInfo {
///         BackendInfo::new("motd", "1.0.0")
///             .description("writes /etc/motd")
///             .option(OptionSpec::string("text").required().help("the message of the day"))
///     }
///
///     fn plan(&self, _request: &Request) -> anyhow::Result<Plan> {
///         Ok(Plan::default()) // the result depends on the options only
///     }
///
///     fn run(&self, request: &Request, events: &mut dyn EventSink) -> anyhow::Result<Output> {
///         let text = request.str_option("text")?.unwrap_or_default();
///         std::fs::create_dir_all(request.root.join("etc"))?;
///         std::fs::write(request.root.join("etc/motd"), format!("{text}\n"))?;
///         events.info("wrote /etc/motd");
///         Ok(Output::Tree { root: request.root.clone(), packages: vec![] })
///     }
/// }
///
/// ostree_build_sdk::export_backend!(Motd);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! export_backend {
    ($backend:expr) => {
        mod __ostree_build_backend_plugin {
            use super::*;
            use $crate::dylib::abi_stable::prefix_type::PrefixTypeTrait;
            use $crate::dylib::abi_stable::std_types::{RStr, RString};

            extern "C" fn info_json() -> RString {
                $crate::dylib::info_json(&$backend)
            }

            extern "C" fn call(
                call_id: u64,
                op: RStr<'_>,
                request_json: RStr<'_>,
                emit: $crate::dylib::Emit,
            ) -> RString {
                $crate::dylib::call(&$backend, call_id, op, request_json, emit)
            }

            fn get_library() -> $crate::dylib::BackendPlugin_Ref {
                $crate::dylib::BackendPlugin { info_json, call }.leak_into_prefix()
            }

            // What abi_stable's `#[export_root_module]` generates, spelled out so that a
            // plugin needs no direct dependency on abi_stable (the symbol name is checked
            // against abi_stable's at compile time in the sdk).
            extern "C" fn erased_module() -> $crate::dylib::abi_stable::library::RootModuleResult {
                $crate::dylib::abi_stable::library::__call_root_module_loader(get_library)
            }

            #[export_name = "_1as_0lib_1header_0root_bmodule_bloader"]
            pub static LIB_HEADER: $crate::dylib::abi_stable::library::LibHeader = unsafe {
                $crate::dylib::abi_stable::library::LibHeader::from_constructor::<
                    $crate::dylib::BackendPlugin_Ref,
                >(
                    erased_module,
                    $crate::dylib::abi_stable::library::CheckTypeLayout::Yes,
                )
            };
        }
    };
}
