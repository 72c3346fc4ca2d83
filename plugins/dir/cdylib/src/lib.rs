//! The `dir` backend as a cdylib plugin. The ostree-build binary has it built in; this
//! build proves the first-party backend goes through the plugin ABI like any third-party
//! one (`OSTREE_BUILD_BUILTIN_BACKENDS=none` makes the registry use it).

ostree_build_sdk::export_backend!(ostree_build_dir::DirBackend);
