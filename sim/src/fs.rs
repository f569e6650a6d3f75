//! Writing files so that a reader (or a process killed halfway) never sees half of
//! one: write a temporary file beside the target, sync it, rename it over the
//! target. Every crate of hale that writes files writes them through here (hale-sim
//! is the one crate all of them depend on).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A temporary path beside `path`, unique to this process and call: `.NAME.tmpPID-N`.
fn temporary_beside(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".{name}.tmp{}-{n}", std::process::id()))
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, synced,
/// then renamed over `path`. On error the temporary file is removed and `path` is as
/// it was.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, |f| f.write_all(bytes))
}

/// As [`write_atomic`], with `write` filling the temporary file (for writers that
/// stream into a `File`, such as a parquet writer).
pub fn write_atomic_with<E>(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> Result<(), E>,
) -> std::io::Result<()>
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let tmp = temporary_beside(path);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        write(&mut f).map_err(std::io::Error::other)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Fills a new folder and then gives it its name: `fill` writes into a temporary
/// folder beside `path`, which is renamed to `path` only once `fill` succeeded. A
/// folder already at `path` is replaced. On error the temporary folder is removed.
pub fn create_dir_atomic<E>(path: &Path, fill: impl FnOnce(&Path) -> Result<(), E>) -> Result<(), E>
where
    E: From<std::io::Error>,
{
    let tmp = temporary_beside(path);
    let result = (|| {
        std::fs::create_dir_all(&tmp)?;
        fill(&tmp)?;
        if path.exists() {
            std::fs::remove_dir_all(path)?;
        }
        std::fs::rename(&tmp, path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = std::env::temp_dir().join(format!("hale-fs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.json");
        write_atomic(&path, b"old").unwrap();
        let failed = write_atomic_with(&path, |f| {
            f.write_all(b"half")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary left"
        );
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");

        let folder = dir.join("run");
        let failed: std::io::Result<()> = create_dir_atomic(&folder, |tmp| {
            std::fs::write(tmp.join("x"), b"1")?;
            Err(std::io::Error::other("stop"))
        });
        assert!(failed.is_err() && !folder.exists());
        create_dir_atomic(&folder, |tmp| std::fs::write(tmp.join("x"), b"1")).unwrap();
        assert_eq!(std::fs::read(folder.join("x")).unwrap(), b"1");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
