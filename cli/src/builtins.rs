//! The first-party backends this binary carries. The CLI hands them to the core's registry
//! (the core links no backend), the way cargo's binary wires its built-in commands.

use ostree_build_core::sdk::Backend;
use std::sync::Arc;

/// The built-in backends, in the order `backends` lists them.
/// `OSTREE_BUILD_BUILTIN_BACKENDS=none` leaves them to their plugin builds (to test those,
/// or where a distribution ships them as plugins).
pub fn backends() -> Vec<Arc<dyn Backend>> {
    if std::env::var("OSTREE_BUILD_BUILTIN_BACKENDS").as_deref() == Ok("none") {
        return vec![];
    }
    all()
}

/// The built-in backends' names, whether or not they are turned off: names a plugin
/// should not take.
pub fn names() -> Vec<String> {
    all().iter().map(|b| b.info().name).collect()
}

fn all() -> Vec<Arc<dyn Backend>> {
    vec![
        Arc::new(ostree_build_dir::DirBackend),
        Arc::new(ostree_build_tarball::TarballBackend),
        Arc::new(ostree_build_debootstrap::DebootstrapBackend),
        Arc::new(ostree_build_dnf::DnfBackend::DNF),
        Arc::new(ostree_build_dnf::DnfBackend::YUM),
    ]
}
