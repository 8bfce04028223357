//! The git repository around gates.yaml, through libgit2: provenance for baselines, and reading
//! baselines from another ref's tree without a checkout or a `git` subprocess.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub struct Repo {
    inner: git2::Repository,
    workdir: PathBuf,
}

/// The commit the working tree is on, and whether it has changes on top.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadState {
    pub commit: Option<String>,
    pub dirty: bool,
}

/// A ref the user named, and what it resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedRef {
    /// As given on the command line.
    pub requested: String,
    /// The name that matched (`main` or `origin/main`).
    pub matched: String,
    pub commit: git2::Oid,
}

impl Repo {
    /// Finds the repository containing `path`; `None` when there is none.
    pub fn discover(path: &Path) -> Result<Option<Repo>> {
        let inner = match git2::Repository::discover(path) {
            Ok(repo) => repo,
            Err(err) if err.code() == git2::ErrorCode::NotFound => return Ok(None),
            Err(err) if err.code() == git2::ErrorCode::Owner => {
                return Err(Error::Git(format!(
                    "{}: the git repository is owned by another user ({}).\nhint: if you trust it, run `git config --global --add safe.directory '*'` (or name the folder)",
                    path.display(),
                    err.message()
                )))
            }
            Err(err) => {
                return Err(Error::Git(format!(
                    "{}: cannot open the git repository: {}",
                    path.display(),
                    err.message()
                )))
            }
        };
        let Some(workdir) = inner.workdir() else {
            return Err(Error::Git(format!(
                "{}: the repository is bare; gatekeeper needs a working tree",
                path.display()
            )));
        };
        let workdir = canonical(workdir)?;
        Ok(Some(Repo { inner, workdir }))
    }

    /// HEAD's commit (none in a repository without commits) and whether tracked or untracked
    /// (not ignored) files differ from it.
    pub fn head_state(&self) -> Result<HeadState> {
        let commit = match self.inner.head() {
            Ok(head) => head.peel_to_commit().ok().map(|c| c.id().to_string()),
            Err(_) => None,
        };
        let mut options = git2::StatusOptions::new();
        options
            .include_untracked(true)
            .recurse_untracked_dirs(true)
            .include_ignored(false);
        let statuses = self
            .inner
            .statuses(Some(&mut options))
            .map_err(|err| Error::Git(format!("cannot read git status: {}", err.message())))?;
        Ok(HeadState {
            commit,
            dirty: !statuses.is_empty(),
        })
    }

    /// Resolves `name` as given, then as `origin/<name>`: a CI checkout often has only the
    /// remote-tracking ref.
    pub fn resolve(&self, name: &str) -> Result<ResolvedRef> {
        let mut why = String::new();
        for candidate in [name.to_string(), format!("origin/{name}")] {
            match self.inner.revparse_single(&candidate) {
                Ok(object) => match object.peel_to_commit() {
                    Ok(commit) => {
                        return Ok(ResolvedRef {
                            requested: name.to_string(),
                            matched: candidate,
                            commit: commit.id(),
                        })
                    }
                    Err(err) if why.is_empty() => why = err.message().to_string(),
                    Err(_) => {}
                },
                Err(err) if why.is_empty() => why = err.message().to_string(),
                Err(_) => {}
            }
        }
        // A revision expression (HEAD~5, a tag^{tree}) is not a branch a fetch would bring.
        if name.contains(['~', '^', ':', '@']) {
            return Err(Error::Git(format!(
                "--against {name}: cannot resolve it to a commit in {} ({why})",
                self.workdir.display()
            )));
        }
        Err(Error::Git(format!(
            "--against {name}: no such ref in {} (tried `{name}` and `origin/{name}`).\n\
             hint: a shallow CI checkout has only the commit under test; fetch the ref first, e.g. \
             `git fetch --no-tags --depth=1 origin {name}`, or check out with `fetch-depth: 0`",
            self.workdir.display()
        )))
    }

    /// `path` relative to the working tree, if it lies inside it.
    pub fn relative(&self, path: &Path) -> Result<PathBuf> {
        let path = canonical(path)?;
        path.strip_prefix(&self.workdir)
            .map(Path::to_path_buf)
            .map_err(|_| {
                Error::Git(format!(
                    "{} is outside the git working tree {}",
                    path.display(),
                    self.workdir.display()
                ))
            })
    }

    /// The bytes of `path` (relative to the repository root) in `commit`'s tree, or `None`.
    pub fn read_file(&self, commit: git2::Oid, path: &Path) -> Result<Option<Vec<u8>>> {
        let tree = self.tree(commit)?;
        let entry = match tree.get_path(path) {
            Ok(entry) => entry,
            Err(err) if err.code() == git2::ErrorCode::NotFound => return Ok(None),
            Err(err) => return Err(self.read_error(commit, path, err)),
        };
        let object = entry
            .to_object(&self.inner)
            .map_err(|err| self.read_error(commit, path, err))?;
        Ok(object.as_blob().map(|blob| blob.content().to_vec()))
    }

    /// Names of the sub-folders of `path` in `commit`'s tree (empty when it does not exist).
    pub fn list_dirs(&self, commit: git2::Oid, path: &Path) -> Result<Vec<String>> {
        let tree = self.tree(commit)?;
        let sub = match tree.get_path(path) {
            Ok(entry) => entry,
            Err(err) if err.code() == git2::ErrorCode::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(self.read_error(commit, path, err)),
        };
        let Some(sub) = sub
            .to_object(&self.inner)
            .ok()
            .and_then(|object| object.into_tree().ok())
        else {
            return Ok(Vec::new());
        };
        Ok(sub
            .iter()
            .filter(|entry| entry.kind() == Some(git2::ObjectType::Tree))
            .filter_map(|entry| entry.name().ok().map(str::to_string))
            .collect())
    }

    fn tree(&self, commit: git2::Oid) -> Result<git2::Tree<'_>> {
        self.inner
            .find_commit(commit)
            .and_then(|commit| commit.tree())
            .map_err(|err| Error::Git(format!("cannot read commit {commit}: {}", err.message())))
    }

    fn read_error(&self, commit: git2::Oid, path: &Path, err: git2::Error) -> Error {
        Error::Git(format!(
            "cannot read {} at {commit}: {}",
            path.display(),
            err.message()
        ))
    }
}

fn canonical(path: &Path) -> Result<PathBuf> {
    path.canonicalize().map_err(|err| Error::io(path, err))
}
