//! Finding the toolkit's command-line programs (`ncu`, `cuobjdump`) without running them.

use std::path::{Path, PathBuf};

/// `name` from `override_var` (a full path), `$CUDA_HOME/bin`, `$CUDA_PATH/bin`,
/// `/usr/local/cuda/bin`, then `PATH`, in that order.
pub fn find(name: &str, override_var: Option<&str>) -> Option<PathBuf> {
    if let Some(path) = override_var.and_then(std::env::var_os).map(PathBuf::from) {
        return is_program(&path).then_some(path);
    }
    let toolkit = ["CUDA_HOME", "CUDA_PATH"]
        .iter()
        .filter_map(std::env::var_os)
        .map(|dir| PathBuf::from(dir).join("bin"))
        .chain([PathBuf::from("/usr/local/cuda/bin")]);
    let path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    toolkit
        .chain(path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_program(candidate))
}

fn is_program(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_override_must_exist_and_be_executable() {
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("ncu");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        std::env::set_var("GATEKEEPER_TEST_TOOL", &tool);
        assert_eq!(
            find("ncu", Some("GATEKEEPER_TEST_TOOL")),
            None,
            "not executable"
        );
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find("ncu", Some("GATEKEEPER_TEST_TOOL")), Some(tool));
        std::env::remove_var("GATEKEEPER_TEST_TOOL");
    }
}
