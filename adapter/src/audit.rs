//! The audit log: one JSON object per line, appended and flushed as each event
//! happens, never rewritten. Every decision, guard verdict, proposal, approval and
//! target result goes here.

use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// An append-only JSON-lines file.
pub struct AuditLog {
    path: PathBuf,
    file: std::fs::File,
}

impl AuditLog {
    /// Opens (creating if needed) `path` for appending.
    pub fn open(path: &Path) -> std::io::Result<AuditLog> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(AuditLog {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Appends one event: `{"ts": unix seconds, "event": event, ...fields}`. Each line
    /// goes out in one write and is synced, so a crash loses no acknowledged event
    /// and leaves no half line before the last.
    pub fn append(&mut self, event: &str, fields: impl Serialize) -> std::io::Result<()> {
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let mut obj = serde_json::Map::new();
        obj.insert("ts".into(), serde_json::json!(ts));
        obj.insert("event".into(), serde_json::json!(event));
        match serde_json::to_value(fields).map_err(std::io::Error::other)? {
            serde_json::Value::Object(m) => obj.extend(m),
            serde_json::Value::Null => {}
            other => {
                obj.insert("value".into(), other);
            }
        }
        let mut line = serde_json::to_vec(&obj).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.sync_data()
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_appended_never_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit/log.jsonl");
        let mut log = AuditLog::open(&path).unwrap();
        log.append("decision", serde_json::json!({"action": "noop"}))
            .unwrap();
        drop(log);
        let mut log = AuditLog::open(&path).unwrap();
        log.append("blocked", serde_json::json!({"rule": "cooldown"}))
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["event"], "decision");
        assert_eq!(lines[1]["rule"], "cooldown");
        assert!(lines[1]["ts"].as_f64().unwrap() >= lines[0]["ts"].as_f64().unwrap());
    }
}
