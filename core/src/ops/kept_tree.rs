//! Component trees kept after a build for the next one to change in place (backends with
//! the `previous-tree` capability): handing the last build to the backend then costs two
//! renames where a checkout copies the whole tree, and the tree is not deleted either. A
//! kept tree lives at `<state>/trees/<component>/<commit>` and equals that commit; it is
//! taken out (renamed away) before a build uses it, so a build that fails or is killed
//! leaves none behind, and the next one checks the commit out again.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

pub struct KeptTrees {
    dir: PathBuf,
}

impl KeptTrees {
    pub fn new(state_dir: &Path) -> KeptTrees {
        KeptTrees {
            dir: state_dir.join("trees"),
        }
    }

    fn component_dir(&self, component: &str) -> PathBuf {
        self.dir.join(crate::manifest::escape_ref_part(component))
    }

    /// Move the tree kept for `component` at `commit` to `dest` (which must not exist);
    /// false when there is none.
    pub fn take(&self, component: &str, commit: &str, dest: &Path) -> bool {
        let kept = self.component_dir(component).join(commit);
        kept.is_dir() && std::fs::rename(&kept, dest).is_ok()
    }

    /// Remove the trees kept for components not in `components` (gone from the manifest).
    pub fn retain<'a>(&self, components: impl Iterator<Item = &'a String>) -> Result<()> {
        crate::fsutil::remove_entries_but(
            &self.dir,
            components.map(|c| crate::manifest::escape_ref_part(c)),
        )
    }

    /// Keep `tree`, which equals `commit`, for the next build of `component`, in place of
    /// an older one.
    pub fn keep(&self, component: &str, commit: &str, tree: &Path) -> Result<()> {
        let dir = self.component_dir(component);
        crate::fsutil::remove_tree(&dir)?;
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::rename(tree, dir.join(commit))
            .with_context(|| format!("cannot keep {} in {}", tree.display(), dir.display()))
    }
}
