//! Streaming gunzip + line splitting, fed with network chunks as they arrive, so a batch file
//! is never held whole in memory.

use std::io::Write;

/// Longest NDJSON line accepted; a longer one becomes an error record.
pub const MAX_LINE: usize = 8 << 20;

/// Decompressed bytes waiting for their newline.
#[derive(Default)]
struct Acc(Vec<u8>);

impl Write for Acc {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A line handed to the caller.
pub enum Line<'a> {
    Json(&'a [u8]),
    /// Longer than `MAX_LINE`: the start of it, for the error record.
    TooLong(&'a [u8]),
}

pub struct GzLines {
    dec: flate2::write::MultiGzDecoder<Acc>,
    skipping_long: bool,
    fed: u64,
}

impl Default for GzLines {
    fn default() -> Self {
        Self::new()
    }
}

impl GzLines {
    pub fn new() -> Self {
        GzLines {
            dec: flate2::write::MultiGzDecoder::new(Acc::default()),
            skipping_long: false,
            fed: 0,
        }
    }

    /// Feeds compressed bytes; calls `on_line` for every complete line.
    pub fn feed(&mut self, data: &[u8], on_line: &mut dyn FnMut(Line)) -> std::io::Result<()> {
        self.fed += data.len() as u64;
        self.dec.write_all(data)?;
        self.drain(on_line, false);
        Ok(())
    }

    /// Ends the stream: fails if the gzip data was cut short; delivers a last unterminated line.
    pub fn finish(mut self, on_line: &mut dyn FnMut(Line)) -> std::io::Result<()> {
        if self.fed == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "empty file",
            ));
        }
        self.dec.try_finish()?;
        self.drain(on_line, true);
        let acc = self.dec.finish()?;
        debug_assert!(acc.0.is_empty());
        Ok(())
    }

    fn drain(&mut self, on_line: &mut dyn FnMut(Line), eof: bool) {
        let acc = &mut self.dec.get_mut().0;
        let mut start = 0;
        while let Some(nl) = memchr::memchr(b'\n', &acc[start..]) {
            let line = &acc[start..start + nl];
            if self.skipping_long {
                self.skipping_long = false;
            } else if line.len() > MAX_LINE {
                on_line(Line::TooLong(&line[..512]));
            } else if !line.iter().all(u8::is_ascii_whitespace) {
                on_line(Line::Json(line));
            }
            start += nl + 1;
        }
        acc.drain(..start);
        if acc.len() > MAX_LINE && !self.skipping_long {
            on_line(Line::TooLong(&acc[..512]));
            self.skipping_long = true;
        }
        if self.skipping_long {
            acc.clear();
        }
        if eof && !acc.is_empty() {
            if !self.skipping_long && !acc.iter().all(u8::is_ascii_whitespace) {
                on_line(Line::Json(acc));
            }
            acc.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn lines_of(input: &[u8], piece: usize) -> std::io::Result<Vec<String>> {
        let mut out = Vec::new();
        let mut g = GzLines::new();
        let mut f = |l: Line| match l {
            Line::Json(b) if b.len() > 64 => out.push(format!("<{} bytes>", b.len())),
            Line::Json(b) => out.push(String::from_utf8_lossy(b).into_owned()),
            Line::TooLong(_) => out.push("<too long>".into()),
        };
        for p in input.chunks(piece) {
            g.feed(p, &mut f)?;
        }
        g.finish(&mut f)?;
        Ok(out)
    }

    #[test]
    fn splits_across_any_chunking() {
        let data = gz(b"{\"a\":1}\n\n{\"b\":2}\r\n{\"c\":3}");
        for piece in [1, 3, 7, 1000] {
            let l = lines_of(&data, piece).unwrap();
            assert_eq!(
                l,
                vec!["{\"a\":1}", "{\"b\":2}\r", "{\"c\":3}"],
                "piece {piece}"
            );
        }
    }

    #[test]
    fn truncated_and_corrupt_gzip_fail() {
        let data = gz(&b"{\"a\":1}\n".repeat(1000));
        assert!(lines_of(&data[..data.len() / 2], 100).is_err(), "truncated");
        assert!(
            lines_of(b"{ \"type\" : \"MTA\", \"data\" : ", 100).is_err(),
            "not gzip"
        );
        assert!(lines_of(b"", 100).is_err(), "empty");
    }

    /// Seeded corruptions of a gzip stream: errors, never panics, at any chunking.
    #[test]
    fn corrupted_gzip_never_panics() {
        let clean = gz(&b"{\"a\":1}\n{\"b\":[2,3]}\n".repeat(200));
        let mut rng: u64 = 0xC0FFEE;
        let mut errors = 0;
        for _ in 0..3000 {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let mut data = clean.clone();
            let at = (rng >> 33) as usize % data.len();
            match (rng >> 20) % 3 {
                0 => data[at] ^= 0xff,
                1 => data.truncate(at),
                _ => data.splice(at..at, [0x1f, 0x8b, 0, 0]).for_each(drop),
            }
            let piece = 1 + (rng >> 40) as usize % 300;
            if lines_of(&data, piece).is_err() {
                errors += 1;
            }
        }
        assert!(errors > 1000, "corruption is detected ({errors} of 3000)");
    }

    #[test]
    fn concatenated_members_and_overlong_lines() {
        let mut data = gz(b"{\"a\":1}\n");
        data.extend(gz(b"{\"b\":2}\n"));
        assert_eq!(lines_of(&data, 5).unwrap().len(), 2);
        let mut big = vec![b'x'; MAX_LINE + 10];
        big.extend_from_slice(b"\n{\"ok\":1}\n");
        assert_eq!(
            lines_of(&gz(&big), 64 << 10).unwrap(),
            vec!["<too long>", "{\"ok\":1}"]
        );
    }
}
