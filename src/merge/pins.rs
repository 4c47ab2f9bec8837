//! Leader pins that survive a restart: `<data_dir>/pins.json`, `{"group": "replica", …}`,
//! rewritten (to a temporary file, fsynced, renamed) at every pin and unpin.
//!
//! A pin read at start is applied as soon as its group and replica exist (a discovered group or
//! replica may come later); it stays in the file until it is unpinned.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The pins the operator set, by group.
#[derive(Debug)]
pub struct PinFile {
    path: PathBuf,
    pub wanted: BTreeMap<String, String>,
}

/// Why the pins file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PinsError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a pins file ({{\"group\": \"replica\", …}}): {message}")]
    Format { path: PathBuf, message: String },
}

impl PinFile {
    /// The file in `data_dir` (created at the first pin); what it holds, if it exists.
    pub fn open(data_dir: &Path) -> Result<PinFile, PinsError> {
        let path = data_dir.join("pins.json");
        let wanted = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| PinsError::Format { path: path.clone(), message: e.to_string() })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => return Err(PinsError::Io { action: "read", path, source }),
        };
        Ok(PinFile { path, wanted })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records a pin (or its removal, `None`) and writes the file.
    pub fn set(&mut self, group: &str, replica: Option<&str>) -> Result<(), PinsError> {
        match replica {
            Some(r) => self.wanted.insert(group.to_owned(), r.to_owned()),
            None => self.wanted.remove(group),
        };
        self.write()
    }

    fn write(&self) -> Result<(), PinsError> {
        let io = |action, source| PinsError::Io { action, path: self.path.clone(), source };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io("create the directory of", e))?;
        }
        let tmp = self.path.with_extension("json.tmp");
        let mut f = std::fs::File::create(&tmp).map_err(|e| io("write", e))?;
        let text = serde_json::to_vec_pretty(&self.wanted).expect("a map of strings serializes");
        f.write_all(&text).and_then(|()| f.write_all(b"\n")).and_then(|()| f.sync_all()).map_err(|e| io("write", e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| io("rename a new", e))?;
        if let Some(dir) = self.path.parent()
            && let Ok(d) = std::fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_round_trip_and_a_broken_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = PinFile::open(dir.path()).unwrap();
        assert!(p.wanted.is_empty());
        p.set("eu", Some("b")).unwrap();
        p.set("us", Some("a")).unwrap();
        p.set("us", None).unwrap();
        let again = PinFile::open(dir.path()).unwrap();
        assert_eq!(again.wanted, BTreeMap::from([("eu".to_owned(), "b".to_owned())]));
        std::fs::write(dir.path().join("pins.json"), "[1").unwrap();
        let e = PinFile::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("pins.json is not a pins file"), "{e}");
    }
}
