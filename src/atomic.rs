//! How gatekeeper writes files: baselines, run records, reports.
//!
//! A regular file (or a new one) is replaced atomically, through a temporary file in the same
//! folder and a rename, so readers see the old content or the new, never a mix, even if the
//! process is killed. A symlink or a non-regular file (`/dev/stdout`, a FIFO) is written
//! through instead: renaming onto it would replace the link or the device node itself.

use std::fs::{File, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};

/// Temporary files are named `.gatekeeper-*.tmp`; one left by a killed process is swept once it
/// is this old, long after any live write would have renamed it.
const STALE_TEMP: Duration = Duration::from_secs(3600);

/// Writes `bytes` to `path`: atomically for a regular or new file (keeping an existing file's
/// mode; a new one follows the umask), through the link or device otherwise.
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(mut stream) = own_stream(path) {
        return match stream.write_all(bytes).and_then(|()| stream.flush()) {
            // The reader went away: as for everything else printed, not an error.
            Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            result => result.map_err(|err| Error::io(path, err)),
        };
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_file() => {
            let temp = staged(path, bytes, Some(meta.permissions()))?;
            temp.persist(path)
                .map_err(|err| Error::io(path, err.error))?;
            Ok(())
        }
        Ok(_) => write_through(path, bytes),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let temp = staged(path, bytes, None)?;
            temp.persist(path)
                .map_err(|err| Error::io(path, err.error))?;
            Ok(())
        }
        Err(err) => Err(Error::io(path, err)),
    }
}

/// Writes `bytes` to a new file at `path`, or beside it as `<stem>-2.<ext>`, `<stem>-3.<ext>`…
/// when that name is taken: never overwrites, so concurrent writers each keep their own file.
/// Returns the path written.
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<PathBuf> {
    let mut temp = staged(path, bytes, None)?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let extension = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    for n in 1..=10_000u32 {
        let candidate = if n == 1 {
            path.to_path_buf()
        } else {
            path.with_file_name(format!("{stem}-{n}{extension}"))
        };
        match temp.persist_noclobber(&candidate) {
            Ok(_) => return Ok(candidate),
            Err(err) if err.error.kind() == std::io::ErrorKind::AlreadyExists => temp = err.file,
            Err(err) => return Err(Error::io(&candidate, err.error)),
        }
    }
    Err(Error::io(
        path,
        std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "10,000 files of this name already exist",
        ),
    ))
}

/// A temporary file beside `path` holding `bytes`, synced, with `mode` (an existing file's) or
/// the umask's default. Renaming it into place is the caller's commit.
pub fn staged(
    path: &Path,
    bytes: &[u8],
    mode: Option<Permissions>,
) -> Result<tempfile::NamedTempFile> {
    let folder = folder_of(path);
    sweep_stale_temps(folder);
    let mut temp = tempfile::Builder::new()
        .prefix(".gatekeeper-")
        .suffix(".tmp")
        // 0666 minus the umask, as `open` would create the file; an existing file's mode is
        // set exactly below, since fchmod ignores the umask.
        .permissions(Permissions::from_mode(0o666))
        .tempfile_in(folder)
        .map_err(|err| Error::io(folder, err))?;
    if let Some(mode) = mode {
        temp.as_file()
            .set_permissions(Permissions::from_mode(mode.mode() & 0o7777))
            .map_err(|err| Error::io(temp.path(), err))?;
    }
    temp.write_all(bytes)
        .and_then(|()| temp.as_file().sync_all())
        .map_err(|err| Error::io(temp.path(), err))?;
    Ok(temp)
}

/// Checks, before any work is done, that `path` can be written the way [`write`] will write it:
/// a new file's folder must take a temporary file; a link or device must be writable.
pub fn check_writable(path: &Path) -> Result<()> {
    let is_folder = || {
        Error::Usage(format!(
            "{}: is a folder; name a file for the report",
            path.display()
        ))
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_dir() => Err(is_folder()),
        Ok(meta) if meta.file_type().is_file() => probe_folder(folder_of(path)),
        Ok(_) => match std::fs::metadata(path) {
            Ok(target) if target.is_dir() => Err(is_folder()),
            // access(2) rather than open(2): opening a FIFO for writing blocks until a reader
            // comes.
            Ok(_) => nix::unistd::access(path, nix::unistd::AccessFlags::W_OK)
                .map_err(|errno| Error::io(path, errno.into())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                // A dangling link: writing creates its target, so the target's folder must exist.
                let target = std::fs::read_link(path).map_err(|err| Error::io(path, err))?;
                let target = folder_of(path).join(target);
                let folder = folder_of(&target);
                if folder.is_dir() {
                    nix::unistd::access(folder, nix::unistd::AccessFlags::W_OK)
                        .map_err(|errno| Error::io(folder, errno.into()))
                } else {
                    Err(Error::io(path, err))
                }
            }
            Err(err) => Err(Error::io(path, err)),
        },
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let folder = folder_of(path);
            std::fs::create_dir_all(folder).map_err(|err| Error::io(folder, err))?;
            probe_folder(folder)
        }
        Err(err) => Err(Error::io(path, err)),
    }
}

/// Writes into whatever `path` leads to (a link's target, a device, a FIFO), as a shell's `>`
/// would. A device that refuses the bytes (`/dev/full`) is an error, not a quiet loss.
/// gatekeeper's own stdout or stderr when `path` is one of them: `/dev/stdout`, `/proc/self/fd/1`,
/// or the very file stdout is redirected to (`--json /dev/stdout > run.txt`). Opening the path
/// would start a second write position in that file, and the table printed next would overwrite
/// the report; writing to the stream keeps both, in order.
fn own_stream(path: &Path) -> Option<Box<dyn Write>> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let target = std::fs::metadata(path).ok()?;
    // `st_dev` and `st_ino` are u64 on Linux but other widths elsewhere.
    #[allow(clippy::unnecessary_cast)]
    let same = |fd: std::os::fd::BorrowedFd<'_>| {
        nix::sys::stat::fstat(fd).is_ok_and(|stat| {
            stat.st_dev as u64 == target.dev() && stat.st_ino as u64 == target.ino()
        })
    };
    if same(std::io::stdout().as_fd()) {
        Some(Box::new(std::io::stdout()))
    } else if same(std::io::stderr().as_fd()) {
        Some(Box::new(std::io::stderr()))
    } else {
        None
    }
}

fn write_through(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file: File = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|err| Error::io(path, err))?;
    file.write_all(bytes)
        .and_then(|()| file.flush())
        .map_err(|err| Error::io(path, err))?;
    let regular = file.metadata().map(|m| m.is_file()).unwrap_or(false);
    if regular {
        file.sync_all().map_err(|err| Error::io(path, err))?;
    }
    Ok(())
}

fn probe_folder(folder: &Path) -> Result<()> {
    tempfile::Builder::new()
        .prefix(".gatekeeper-")
        .suffix(".tmp")
        .tempfile_in(folder)
        .map(drop)
        .map_err(|err| Error::io(folder, err))
}

fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Removes temporary files a killed gatekeeper left in `folder`. Best effort: a file that cannot
/// be listed or removed is left for the next write.
fn sweep_stale_temps(folder: &Path) {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with(".gatekeeper-") && name.ends_with(".tmp")) {
            continue;
        }
        let stale = entry
            .metadata()
            .ok()
            .filter(|m| m.file_type().is_file())
            .and_then(|m| {
                m.modified()
                    .ok()
                    .and_then(|modified| now.duration_since(modified).ok())
            });
        if stale.is_some_and(|age| age >= STALE_TEMP) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.json");
        write(&path, b"old").unwrap();
        write(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.json");
        write(&path, b"old").unwrap();
        // A folder in the way makes the write fail.
        let blocked = dir.path().join("blocked");
        std::fs::create_dir_all(blocked.join("child")).unwrap();
        assert!(write(&blocked, b"new").is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        let leftovers = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .count();
        assert_eq!(leftovers, 0);
    }

    #[test]
    fn an_existing_file_keeps_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.json");
        write(&path, b"old").unwrap();
        std::fs::set_permissions(&path, Permissions::from_mode(0o640)).unwrap();
        write(&path, b"new").unwrap();
        assert_eq!(mode(&path), 0o640);
        std::fs::set_permissions(&path, Permissions::from_mode(0o604)).unwrap();
        write(&path, b"newer").unwrap();
        assert_eq!(mode(&path), 0o604);
    }

    #[test]
    fn a_symlink_is_written_through_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere.json");
        std::fs::write(&target, b"old").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write(&link, b"new").unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
    }

    #[test]
    fn write_new_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.json");
        let first = write_new(&path, b"1").unwrap();
        let second = write_new(&path, b"2").unwrap();
        let third = write_new(&path, b"3").unwrap();
        assert_eq!(first, path);
        assert_eq!(second, dir.path().join("run-2.json"));
        assert_eq!(third, dir.path().join("run-3.json"));
        assert_eq!(std::fs::read(&first).unwrap(), b"1");
        assert_eq!(std::fs::read(&third).unwrap(), b"3");
    }

    #[test]
    fn stale_temp_files_are_swept_and_fresh_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let stale = dir.path().join(".gatekeeper-dead.tmp");
        let fresh = dir.path().join(".gatekeeper-live.tmp");
        let other = dir.path().join("notes.tmp");
        for path in [&stale, &fresh, &other] {
            std::fs::write(path, b"").unwrap();
        }
        let long_ago = SystemTime::now() - Duration::from_secs(2 * 3600);
        for path in [&stale, &other] {
            File::options()
                .write(true)
                .open(path)
                .unwrap()
                .set_modified(long_ago)
                .unwrap();
        }
        write(&dir.path().join("k.json"), b"x").unwrap();
        assert!(!stale.exists());
        assert!(fresh.exists());
        assert!(other.exists());
    }
}
