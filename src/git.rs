//! The git repository around gates.yaml, through libgit2: provenance for baselines, and reading
//! baselines from another ref's tree without a checkout or a `git` subprocess.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The first 12 characters of a commit id, as reports and file names show it. A record is a file
/// anyone can edit, so the id may hold any text: it is cut at a character, never inside one.
pub fn short_commit(commit: &str) -> &str {
    match commit.char_indices().nth(12) {
        Some((end, _)) => &commit[..end],
        None => commit,
    }
}

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

/// What a path in a git tree is. Only folders and regular files hold baselines: a link is not
/// followed inside a tree, and a submodule's commit is not in this repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Folder,
    File,
    Symlink,
    Submodule,
}

impl EntryKind {
    fn of(entry: &git2::TreeEntry<'_>) -> EntryKind {
        match (entry.kind(), entry.filemode()) {
            (Some(git2::ObjectType::Tree), _) => EntryKind::Folder,
            (Some(git2::ObjectType::Commit), _) => EntryKind::Submodule,
            (_, mode) if mode == i32::from(git2::FileMode::Link) => EntryKind::Symlink,
            (_, mode) if mode == i32::from(git2::FileMode::Commit) => EntryKind::Submodule,
            _ => EntryKind::File,
        }
    }

    /// As a sentence reads it: "is a symbolic link".
    pub fn describe(self) -> &'static str {
        match self {
            EntryKind::Folder => "a folder",
            EntryKind::File => "a file",
            EntryKind::Symlink => "a symbolic link",
            EntryKind::Submodule => "a submodule",
        }
    }
}

/// A ref the user named, and what it resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedRef {
    /// As given on the command line.
    pub requested: String,
    /// The name that matched (`main` or `origin/main`).
    pub matched: String,
    /// The commit whose tree is read: the ref's tip, or its merge-base with HEAD.
    pub commit: git2::Oid,
    /// The ref's own commit.
    pub tip: git2::Oid,
}

impl ResolvedRef {
    /// Whether the commit read is an ancestor of the tip rather than the tip itself.
    pub fn is_merge_base(&self) -> bool {
        self.commit != self.tip
    }

    /// The ref as a report names it: `main (0123456789ab)`, or, when the merge-base is read,
    /// `main's merge-base with HEAD (0123456789ab; main is at fedcba987654)`.
    pub fn describe(&self) -> String {
        let short = |oid: git2::Oid| short_commit(&oid.to_string()).to_string();
        if self.is_merge_base() {
            format!(
                "{}'s merge-base with HEAD ({}; {} is at {})",
                self.matched,
                short(self.commit),
                self.matched,
                short(self.tip)
            )
        } else {
            format!("{} ({})", self.matched, short(self.commit))
        }
    }
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
                            tip: commit.id(),
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
             hint: a shallow CI checkout has only the commit under test; check out with \
             `fetch-depth: 0` (the merge-base with HEAD is read), or fetch the ref with \
             `git fetch --no-tags --depth=1 origin {name}` and pass `--against-tip`",
            self.workdir.display()
        )))
    }

    /// `resolved` moved back to where HEAD forked from it: a change is judged against what it
    /// started from, not against whatever merged into the ref after it forked. A repository
    /// without commits reads the tip.
    pub fn at_merge_base(&self, mut resolved: ResolvedRef) -> Result<ResolvedRef> {
        let Ok(head) = self.inner.head().and_then(|head| head.peel_to_commit()) else {
            return Ok(resolved);
        };
        match self.inner.merge_base(head.id(), resolved.tip) {
            Ok(base) => {
                resolved.commit = base;
                Ok(resolved)
            }
            Err(err) => Err(Error::Git(format!(
                "--against {}: HEAD and {} have no common ancestor ({}).\n\
                 hint: in a shallow checkout fetch more history (`fetch-depth: 0`), or compare with \
                 the ref's tip: `--against-tip`",
                resolved.requested,
                resolved.matched,
                err.message()
            ))),
        }
    }

    /// HEAD's first-parent history, oldest first, each commit with its summary line; from
    /// `since` (a revision; itself excluded) when given. Empty in a repository without commits.
    pub fn first_parent_history(&self, since: Option<&str>) -> Result<Vec<(git2::Oid, String)>> {
        let fail = |err: git2::Error| Error::Git(format!("walking the history: {}", err.message()));
        let Ok(head) = self.inner.head().and_then(|head| head.peel_to_commit()) else {
            return Ok(Vec::new());
        };
        let mut walk = self.inner.revwalk().map_err(fail)?;
        walk.push(head.id()).map_err(fail)?;
        walk.simplify_first_parent().map_err(fail)?;
        if let Some(since) = since {
            let object = self.inner.revparse_single(since).map_err(|err| {
                Error::Git(format!(
                    "--since {since}: not a revision ({})",
                    err.message()
                ))
            })?;
            let commit = object
                .peel_to_commit()
                .map_err(|err| Error::Git(format!("--since {since}: {}", err.message())))?;
            walk.hide(commit.id()).map_err(fail)?;
        }
        let mut commits = Vec::new();
        for oid in walk {
            let oid = oid.map_err(fail)?;
            let summary = self
                .inner
                .find_commit(oid)
                .ok()
                .and_then(|c| c.summary().ok().flatten().map(str::to_string))
                .unwrap_or_default();
            commits.push((oid, summary));
        }
        commits.reverse();
        Ok(commits)
    }

    /// The object id of `path` (relative to the repository root) in `commit`, if it exists:
    /// equal ids mean equal contents, so an unchanged file or folder need not be read again.
    pub fn entry_id(&self, commit: git2::Oid, path: &Path) -> Option<git2::Oid> {
        let tree = self.tree(commit).ok()?;
        tree.get_path(path).ok().map(|entry| entry.id())
    }

    /// The contents of a blob.
    pub fn blob(&self, id: git2::Oid) -> Result<Vec<u8>> {
        self.inner
            .find_blob(id)
            .map(|blob| blob.content().to_vec())
            .map_err(|err| Error::Git(format!("cannot read blob {id}: {}", err.message())))
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

    /// What `path` (relative to the repository root) is in `commit`'s tree, or `None`.
    pub fn kind(&self, commit: git2::Oid, path: &Path) -> Result<Option<EntryKind>> {
        let tree = self.tree(commit)?;
        match tree.get_path(path) {
            Ok(entry) => Ok(Some(EntryKind::of(&entry))),
            Err(err) if err.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(err) => Err(self.read_error(commit, path, err)),
        }
    }

    /// The bytes of the regular file `path` in `commit`'s tree. Call [`Repo::kind`] first: a
    /// path that is not a file is an error.
    pub fn read_file(&self, commit: git2::Oid, path: &Path) -> Result<Vec<u8>> {
        let tree = self.tree(commit)?;
        let object = tree
            .get_path(path)
            .and_then(|entry| entry.to_object(&self.inner))
            .map_err(|err| self.read_error(commit, path, err))?;
        match object.as_blob() {
            Some(blob) => Ok(blob.content().to_vec()),
            None => Err(Error::Git(format!(
                "cannot read {} at {commit}: not a file",
                path.display()
            ))),
        }
    }

    /// The entries of the folder `path` in `commit`'s tree, with what each is. Call
    /// [`Repo::kind`] first: a path that is not a folder is an error.
    pub fn list(&self, commit: git2::Oid, path: &Path) -> Result<Vec<(String, EntryKind)>> {
        let tree = self.tree(commit)?;
        let object = tree
            .get_path(path)
            .and_then(|entry| entry.to_object(&self.inner))
            .map_err(|err| self.read_error(commit, path, err))?;
        let Some(sub) = object.as_tree() else {
            return Err(Error::Git(format!(
                "cannot read {} at {commit}: not a folder",
                path.display()
            )));
        };
        Ok(sub
            .iter()
            .filter_map(|entry| {
                let name = entry.name().ok()?.to_string();
                Some((name, EntryKind::of(&entry)))
            })
            .collect())
    }

    /// Writes `path` (a file or folder, relative to the repository root) as it is in `commit`'s
    /// tree under `dest`, at the same relative path: the base of an A/B comparison, built
    /// without touching the working tree, the index or HEAD. Executable bits and symbolic links
    /// are kept; a submodule is left out (its commit is not in this repository). A path the
    /// tree lacks writes nothing and returns `false`.
    pub fn export(&self, commit: git2::Oid, path: &Path, dest: &Path) -> Result<bool> {
        let tree = self.tree(commit)?;
        let entry = if path.as_os_str().is_empty() {
            None
        } else {
            match tree.get_path(path) {
                Ok(entry) => Some(entry),
                Err(err) if err.code() == git2::ErrorCode::NotFound => return Ok(false),
                Err(err) => return Err(self.read_error(commit, path, err)),
            }
        };
        let write = |relative: &Path, entry: &git2::TreeEntry<'_>| -> Result<()> {
            let target = dest.join(relative);
            let fail = |err: std::io::Error| Error::io(&target, err);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(fail)?;
            }
            let object = entry
                .to_object(&self.inner)
                .map_err(|err| self.read_error(commit, relative, err))?;
            match (EntryKind::of(entry), object.as_blob()) {
                (EntryKind::Folder, _) => std::fs::create_dir_all(&target).map_err(fail),
                (EntryKind::Symlink, Some(blob)) => {
                    let link = PathBuf::from(String::from_utf8_lossy(blob.content()).as_ref());
                    // Written by an earlier export of a folder around it.
                    if target.symlink_metadata().is_ok() {
                        std::fs::remove_file(&target).map_err(fail)?;
                    }
                    std::os::unix::fs::symlink(link, &target).map_err(fail)
                }
                (EntryKind::File, Some(blob)) => {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::write(&target, blob.content()).map_err(fail)?;
                    if entry.filemode() == i32::from(git2::FileMode::BlobExecutable) {
                        let executable = std::fs::Permissions::from_mode(0o755);
                        std::fs::set_permissions(&target, executable).map_err(fail)?;
                    }
                    Ok(())
                }
                _ => Ok(()),
            }
        };
        let subtree = match &entry {
            None => tree.clone(),
            Some(entry) if EntryKind::of(entry) == EntryKind::Folder => entry
                .to_object(&self.inner)
                .and_then(|object| object.peel_to_tree())
                .map_err(|err| self.read_error(commit, path, err))?,
            Some(entry) => {
                write(path, entry)?;
                return Ok(true);
            }
        };
        std::fs::create_dir_all(dest.join(path)).map_err(|err| Error::io(dest, err))?;
        let mut failed = None;
        subtree
            .walk(git2::TreeWalkMode::PreOrder, |folder, entry| {
                let Ok(name) = entry.name() else {
                    return git2::TreeWalkResult::Skip;
                };
                let relative = path.join(folder).join(name);
                match write(&relative, entry) {
                    Ok(()) => git2::TreeWalkResult::Ok,
                    Err(err) => {
                        failed = Some(err);
                        git2::TreeWalkResult::Abort
                    }
                }
            })
            .map_err(|err| match failed.take() {
                Some(failed) => failed,
                None => self.read_error(commit, path, err),
            })?;
        if let Some(failed) = failed {
            return Err(failed);
        }
        Ok(true)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_commit_cuts_at_a_character() {
        assert_eq!(short_commit("0123456789abcdef"), "0123456789ab");
        assert_eq!(short_commit("aéééééééééééééé"), "aééééééééééé");
        assert_eq!(short_commit("€"), "€");
        assert_eq!(short_commit(""), "");
    }

    /// Commits every file of `git`'s working tree.
    fn commit_all(git: &git2::Repository) -> git2::Oid {
        let mut index = git.index().unwrap();
        index
            .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .unwrap();
        let tree = git.find_tree(index.write_tree().unwrap()).unwrap();
        let me = git2::Signature::now("t", "t@example.com").unwrap();
        git.commit(Some("HEAD"), &me, &me, "one", &tree, &[])
            .unwrap()
    }

    #[test]
    fn exporting_a_folder_again_rewrites_its_links() {
        let dir = tempfile::tempdir().unwrap();
        let git = git2::Repository::init(dir.path()).unwrap();
        std::fs::create_dir_all(dir.path().join("kernels")).unwrap();
        std::fs::write(dir.path().join("kernels/a.cu"), "// a\n").unwrap();
        std::os::unix::fs::symlink("a.cu", dir.path().join("kernels/link.cu")).unwrap();
        let commit = commit_all(&git);
        let repo = Repo::discover(dir.path()).unwrap().unwrap();
        let out = tempfile::tempdir().unwrap();
        // A folder, then the tree around it: the link is written twice.
        for path in ["kernels", ""] {
            assert!(repo.export(commit, Path::new(path), out.path()).unwrap());
        }
        assert_eq!(
            std::fs::read_link(out.path().join("kernels/link.cu")).unwrap(),
            Path::new("a.cu")
        );
    }

    #[test]
    fn export_writes_a_commits_files_with_their_modes_and_links() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let git = git2::Repository::init(dir.path()).unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write("gates.yaml", "version: 1\n");
        write("kernels/a.cu", "// a\n");
        write("kernels/inc/b.cuh", "// b\n");
        write("run.sh", "#!/bin/sh\n");
        std::fs::set_permissions(
            dir.path().join("run.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::os::unix::fs::symlink("a.cu", dir.path().join("kernels/link.cu")).unwrap();
        let commit = commit_all(&git);
        // Later edits in the working tree are not what the commit holds.
        write("kernels/a.cu", "// edited\n");

        let repo = Repo::discover(dir.path()).unwrap().unwrap();
        let out = tempfile::tempdir().unwrap();
        assert!(repo
            .export(commit, Path::new("kernels"), out.path())
            .unwrap());
        assert!(repo
            .export(commit, Path::new("gates.yaml"), out.path())
            .unwrap());
        assert!(!repo
            .export(commit, Path::new("missing"), out.path())
            .unwrap());
        let read = |name: &str| std::fs::read_to_string(out.path().join(name)).unwrap();
        assert_eq!(read("kernels/a.cu"), "// a\n");
        assert_eq!(read("kernels/inc/b.cuh"), "// b\n");
        assert_eq!(read("gates.yaml"), "version: 1\n");
        assert_eq!(
            std::fs::read_link(out.path().join("kernels/link.cu")).unwrap(),
            Path::new("a.cu")
        );
        assert!(!out.path().join("run.sh").exists());
        // The whole tree, with the executable bit kept.
        let all = tempfile::tempdir().unwrap();
        assert!(repo.export(commit, Path::new(""), all.path()).unwrap());
        let mode = std::fs::metadata(all.path().join("run.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111);
        assert_eq!(
            std::fs::read_to_string(all.path().join("kernels/inc/b.cuh")).unwrap(),
            "// b\n"
        );
    }
}
