//! Files that hold secrets: the data directory is created 0700, the store, key and
//! backup files 0600 (a backup written whole or not at all),
//! and a key file others may read is refused, as ssh refuses such a key.

use std::path::Path;

use crate::error::{Error, Result};

/// Creates `dir` (and missing parents) readable by its owner only; an existing
/// directory is left as it is.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|err| Error::io(format!("creating {}", dir.display()), err))
}

/// Options that create a file readable and writable by its owner only.
pub fn private_file_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Creates an empty file at `path`, 0600, unless one exists (SQLite takes an empty
/// file as a new database, and gives its journal and WAL files the same mode).
pub fn touch_private(path: &Path) -> Result<()> {
    if path.exists() {
        return Ok(());
    }
    private_file_options()
        .append(true)
        .create(true)
        .open(path)
        .map(drop)
        .map_err(|err| Error::io(format!("creating {}", path.display()), err))
}

/// Refuses a key file that its group or others may read or write.
pub fn check_private(path: &Path) -> Result<()> {
    check_private_holding(path, "key file", "the master key")
}

/// Refuses a file holding `holds` (the master key, an API token) that its group or
/// others may read or write, as ssh refuses such a key.
pub fn check_private_holding(path: &Path, what: &str, holds: &str) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Ok(meta) = std::fs::metadata(path) else {
            return Ok(()); // reading it says what is wrong
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::InsecureKeyFile(format!(
                "{what} {} is accessible by others (mode {mode:o}); it holds {holds}, so it \
                 is not used. Fix it with: chmod 600 {}",
                path.display(),
                path.display()
            )));
        }
    }
    Ok(())
}

/// The most a file holding one secret may hold (a key, a password, a certificate).
pub const SECRET_FILE_LIMIT: u64 = 1024 * 1024;

/// Reads a file named in an apply file (`{from_file: PATH}`): a regular file (not a
/// device, a FIFO or a directory) of at most [`SECRET_FILE_LIMIT`] bytes.
pub fn read_secret_file(path: &Path) -> Result<String> {
    let context = || format!("reading {}", path.display());
    let meta = std::fs::metadata(path).map_err(|err| Error::io(context(), err))?;
    if !meta.is_file() {
        return Err(Error::InvalidInput(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    read_limited(path)
}

/// Reads a secret's file (a pipe such as `<(pass show db)` included), refusing one
/// larger than [`SECRET_FILE_LIMIT`] without reading past it.
pub fn read_limited(path: &Path) -> Result<String> {
    use std::io::Read;
    let context = || format!("reading {}", path.display());
    let file = std::fs::File::open(path).map_err(|err| Error::io(context(), err))?;
    let mut text = String::new();
    file.take(SECRET_FILE_LIMIT + 1)
        .read_to_string(&mut text)
        .map_err(|err| Error::io(context(), err))?;
    if text.len() as u64 > SECRET_FILE_LIMIT {
        return Err(Error::InvalidInput(format!(
            "{} holds more than {} KiB; a secret's file is at most that",
            path.display(),
            SECRET_FILE_LIMIT / 1024
        )));
    }
    Ok(text)
}

/// Writes `path` whole or not at all: into a new 0600 file beside it (created
/// exclusively under a random name, so never an existing file or a link planted
/// there), synced, then renamed over it (an interrupted write leaves no half file
/// under the name).
pub fn write_private_atomically(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<()> {
    let context = || format!("writing {}", path.display());
    if path.file_name().is_none() {
        return Err(Error::InvalidInput(format!(
            "{} is not a file name",
            path.display()
        )));
    }
    let mut partial = path.as_os_str().to_owned();
    partial.push(format!(".{}.partial", uuid::Uuid::new_v4().simple()));
    let partial = std::path::PathBuf::from(partial);
    let result = private_file_options()
        .write(true)
        .create_new(true)
        .open(&partial)
        .and_then(|mut file| {
            write(&mut file)?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&partial, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result.map_err(|err| Error::io(context(), err))
}
