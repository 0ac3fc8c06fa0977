//! Decompression by file-name suffix: `.xz` (liblzma), `.gz` (flate2), `.zst` (ruzstd, pure
//! Rust), or none. Every decoder streams.

use std::io::{self, Read};

/// The compression of a file, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileCompression {
    /// No suffix we know: the bytes as they are.
    None,
    /// `.gz`.
    Gzip,
    /// `.xz`.
    Xz,
    /// `.zst`.
    Zstd,
}

impl FileCompression {
    /// From a file name's suffix; `None` for an unknown suffix such as `.bz2`.
    pub fn from_name(name: &str) -> Option<FileCompression> {
        if name.ends_with(".gz") {
            Some(FileCompression::Gzip)
        } else if name.ends_with(".xz") {
            Some(FileCompression::Xz)
        } else if name.ends_with(".zst") {
            Some(FileCompression::Zstd)
        } else if name.ends_with(".bz2") || name.ends_with(".lzma") || name.ends_with(".lz4") {
            None
        } else {
            Some(FileCompression::None)
        }
    }

    /// Wraps `reader` in the decoder.
    pub fn decoder<'r, R: Read + 'r>(self, reader: R) -> io::Result<Box<dyn Read + 'r>> {
        Ok(match self {
            FileCompression::None => Box::new(reader),
            FileCompression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
            FileCompression::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(reader)),
            FileCompression::Zstd => Box::new(
                ruzstd::StreamingDecoder::new(reader)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?,
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_round_trip_and_names() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"hello").unwrap();
        let gz = enc.finish().unwrap();
        let mut out = String::new();
        FileCompression::Gzip.decoder(&gz[..]).unwrap().read_to_string(&mut out).unwrap();
        assert_eq!(out, "hello");
        assert_eq!(FileCompression::from_name("data.tar.xz"), Some(FileCompression::Xz));
        assert_eq!(FileCompression::from_name("data.tar.zst"), Some(FileCompression::Zstd));
        assert_eq!(FileCompression::from_name("data.tar"), Some(FileCompression::None));
        assert_eq!(FileCompression::from_name("data.tar.bz2"), None);
    }
}
