//! Decompression by file-name suffix: `.xz` (liblzma), `.gz` (flate2), `.zst` (ruzstd, pure
//! Rust), or none. Every decoder streams.

use std::io::{self, Read};

/// The compression of a file, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// No suffix we know: the bytes as they are.
    None,
    /// `.gz`.
    Gzip,
    /// `.xz`.
    Xz,
    /// `.zst`.
    Zstd,
}

impl Compression {
    /// From a file name's suffix; `None` for an unknown suffix such as `.bz2`.
    pub fn from_name(name: &str) -> Option<Compression> {
        if name.ends_with(".gz") {
            Some(Compression::Gzip)
        } else if name.ends_with(".xz") {
            Some(Compression::Xz)
        } else if name.ends_with(".zst") {
            Some(Compression::Zstd)
        } else if name.ends_with(".bz2") || name.ends_with(".lzma") || name.ends_with(".lz4") {
            None
        } else {
            Some(Compression::None)
        }
    }

    /// Wraps `reader` in the decoder.
    pub fn decoder<'r, R: Read + 'r>(self, reader: R) -> io::Result<Box<dyn Read + 'r>> {
        Ok(match self {
            Compression::None => Box::new(reader),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
            Compression::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(reader)),
            Compression::Zstd => Box::new(
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
        Compression::Gzip.decoder(&gz[..]).unwrap().read_to_string(&mut out).unwrap();
        assert_eq!(out, "hello");
        assert_eq!(Compression::from_name("data.tar.xz"), Some(Compression::Xz));
        assert_eq!(Compression::from_name("data.tar.zst"), Some(Compression::Zstd));
        assert_eq!(Compression::from_name("data.tar"), Some(Compression::None));
        assert_eq!(Compression::from_name("data.tar.bz2"), None);
    }
}
