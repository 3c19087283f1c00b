//! A compact file of encoded tunes: how the Markov engine's long-term memory ships. The memory's
//! trie is a deterministic function of the tunes it learned, and the tunes take 2 bytes per event
//! where the trie takes 16 bytes per node (about 6 nodes per event), so the plugin embeds the
//! tunes and builds the memory once per process.
//!
//! # Format (all integers little-endian)
//! ```text
//! magic     8 bytes  "WJTUNES\0"
//! version   u32      1
//! vocab     u32      the vocabulary's length (every id must be below it)
//! tunes     u32      number of tunes
//! per tune: u32 event count n ≥ 1, then n × u16 event ids, the last one END
//! ```

use crate::music::encoding::Vocabulary;

const MAGIC: &[u8; 8] = b"WJTUNES\0";
/// The format version this build reads and writes.
pub const VERSION: u32 = 1;

/// Why a tunes file cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TunesError {
    /// Not a tunes file at all.
    NotATunesFile,
    /// Written by another version of the format.
    Version(u32),
    /// For another vocabulary.
    Vocabulary { file: u32, expected: usize },
    /// Ends in the middle of something.
    Truncated,
    /// Tune `tune` holds an id past the vocabulary or does not end with `END`.
    BadTune { tune: usize },
    /// Bytes left after the last tune.
    TrailingBytes,
}

impl std::fmt::Display for TunesError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TunesError::NotATunesFile => write!(f, "not a WaveJam tunes file"),
            TunesError::Version(v) => {
                write!(f, "tunes file version {v}, this build reads {VERSION}")
            }
            TunesError::Vocabulary { file, expected } => {
                write!(f, "tunes of a {file}-event vocabulary, expected {expected}")
            }
            TunesError::Truncated => write!(f, "tunes file is truncated"),
            TunesError::BadTune { tune } => {
                write!(f, "tune {tune} has an unknown event or does not end")
            }
            TunesError::TrailingBytes => write!(f, "bytes after the last tune"),
        }
    }
}

impl std::error::Error for TunesError {}

/// The bytes of a tunes file of `tunes` (event ids, each ending with `END`).
pub fn write_tunes(tunes: &[Vec<u16>], vocabulary: &Vocabulary) -> Vec<u8> {
    let events: usize = tunes.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(20 + 4 * tunes.len() + 2 * events);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(vocabulary.len() as u32).to_le_bytes());
    out.extend_from_slice(&(tunes.len() as u32).to_le_bytes());
    for tune in tunes {
        out.extend_from_slice(&(tune.len() as u32).to_le_bytes());
        for id in tune {
            out.extend_from_slice(&id.to_le_bytes());
        }
    }
    out
}

/// Reads a tunes file written for `vocabulary`, checking every id.
///
/// # Errors
/// See [`TunesError`].
pub fn read_tunes(bytes: &[u8], vocabulary: &Vocabulary) -> Result<Vec<Vec<u16>>, TunesError> {
    let mut reader = Reader { bytes };
    if reader.take(MAGIC.len()).ok() != Some(&MAGIC[..]) {
        return Err(TunesError::NotATunesFile);
    }
    let version = reader.u32()?;
    if version != VERSION {
        return Err(TunesError::Version(version));
    }
    let vocab = reader.u32()?;
    if vocab as usize != vocabulary.len() {
        return Err(TunesError::Vocabulary {
            file: vocab,
            expected: vocabulary.len(),
        });
    }
    let count = reader.u32()? as usize;
    let mut tunes = Vec::with_capacity(count.min(bytes.len() / 6));
    for tune in 0..count {
        let n = reader.u32()? as usize;
        let raw = reader.take(n.checked_mul(2).ok_or(TunesError::Truncated)?)?;
        let ids: Vec<u16> = raw
            .chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect();
        let valid = ids.last() == Some(&vocabulary.end_id())
            && ids.iter().all(|&id| usize::from(id) < vocabulary.len());
        if !valid {
            return Err(TunesError::BadTune { tune });
        }
        tunes.push(ids);
    }
    if !reader.bytes.is_empty() {
        return Err(TunesError::TrailingBytes);
    }
    Ok(tunes)
}

/// A cursor over the file's bytes.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], TunesError> {
        if self.bytes.len() < n {
            return Err(TunesError::Truncated);
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, TunesError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_kit::folk_tune;

    fn sample() -> Vec<Vec<u16>> {
        let v = Vocabulary::default();
        vec![
            v.encode_ids(&folk_tune(0)),
            v.encode_ids(&folk_tune(-3)),
            vec![v.end_id()],
        ]
    }

    #[test]
    fn round_trips() {
        let v = Vocabulary::default();
        let bytes = write_tunes(&sample(), &v);
        assert_eq!(read_tunes(&bytes, &v).unwrap(), sample());
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let v = Vocabulary::default();
        let good = write_tunes(&sample(), &v);
        assert_eq!(
            read_tunes(b"RIFF....WAVE", &v),
            Err(TunesError::NotATunesFile)
        );
        assert_eq!(read_tunes(&[], &v), Err(TunesError::NotATunesFile));
        for cut in [10, 21, good.len() - 1] {
            assert_eq!(
                read_tunes(&good[..cut], &v),
                Err(TunesError::Truncated),
                "cut {cut}"
            );
        }
        let mut version = good.clone();
        version[8] = 2;
        assert_eq!(read_tunes(&version, &v), Err(TunesError::Version(2)));
        assert!(matches!(
            read_tunes(&good, &Vocabulary::new(48)),
            Err(TunesError::Vocabulary { file: 353, .. })
        ));
        // An id past the vocabulary in the first tune's first event.
        let mut bad_id = good.clone();
        bad_id[24..26].copy_from_slice(&999u16.to_le_bytes());
        assert_eq!(
            read_tunes(&bad_id, &v),
            Err(TunesError::BadTune { tune: 0 })
        );
        let mut trailing = good;
        trailing.push(0);
        assert_eq!(read_tunes(&trailing, &v), Err(TunesError::TrailingBytes));
    }
}
