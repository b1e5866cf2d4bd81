//! Streaming gunzip + line splitting, fed with network chunks as they arrive, so a batch file
//! is never held whole in memory.

use flate2::{Decompress, FlushDecompress, Status};

/// Longest NDJSON line accepted; a longer one becomes an error record.
pub const MAX_LINE: usize = 8 << 20;

/// Room for decompressed bytes given to each inflate call. Inflate copies the last 32 KiB it
/// wrote into its window after every call, so the larger the room the smaller that share
/// (with flate2's 32 KiB writer it was all of it, and a second copy into the line buffer).
const ROOM: usize = 128 << 10;

/// A line handed to the caller.
pub enum Line<'a> {
    Json(&'a [u8]),
    /// Longer than `MAX_LINE`: the start of it, for the error record.
    TooLong(&'a [u8]),
}

pub struct GzLines {
    /// gzip (zlib's own wrapper handling: header, CRC-32 and length checked), one member at a
    /// time; concatenated members are read one after the other, as `gzip -d` does.
    dec: Decompress,
    /// The current member has ended (more input starts a new one).
    ended: bool,
    /// Decompressed bytes waiting for their newline.
    acc: Vec<u8>,
    skipping_long: bool,
    fed: u64,
}

impl Default for GzLines {
    fn default() -> Self {
        Self::new()
    }
}

fn corrupt(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("corrupt gzip data: {e}"),
    )
}

impl GzLines {
    pub fn new() -> Self {
        GzLines {
            dec: Decompress::new_gzip(15),
            ended: false,
            acc: Vec::new(),
            skipping_long: false,
            fed: 0,
        }
    }

    /// Feeds compressed bytes; calls `on_line` for every complete line.
    pub fn feed(&mut self, data: &[u8], on_line: &mut dyn FnMut(Line)) -> std::io::Result<()> {
        self.fed += data.len() as u64;
        let mut data = data;
        loop {
            if self.ended {
                if data.is_empty() {
                    return Ok(());
                }
                self.dec.reset(true);
                self.ended = false;
            }
            self.acc.reserve(ROOM);
            let room = self.acc.capacity() - self.acc.len();
            let (in0, out0) = (self.dec.total_in(), self.dec.total_out());
            let status = self
                .dec
                .decompress_vec(data, &mut self.acc, FlushDecompress::None)
                .map_err(corrupt)?;
            let used = (self.dec.total_in() - in0) as usize;
            let made = (self.dec.total_out() - out0) as usize;
            data = data.get(used..).unwrap_or_default();
            self.ended = status == Status::StreamEnd;
            self.drain(on_line, false);
            // Done when the input is used up and inflate did not stop for want of room (it
            // may hold more output then); no progress at all means it needs more input.
            if (data.is_empty() && made < room) || (used == 0 && made == 0 && !self.ended) {
                return Ok(());
            }
        }
    }

    /// Ends the stream: fails if the gzip data was cut short; delivers a last unterminated line.
    pub fn finish(mut self, on_line: &mut dyn FnMut(Line)) -> std::io::Result<()> {
        if self.fed == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "empty file",
            ));
        }
        if !self.ended {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "gzip data cut short",
            ));
        }
        self.drain(on_line, true);
        Ok(())
    }

    fn drain(&mut self, on_line: &mut dyn FnMut(Line), eof: bool) {
        let acc = &mut self.acc;
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
    use std::io::{Read, Write};

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

    /// The same lines as flate2's own multi-member reader of the whole file, or an error when
    /// it fails, for clean and corrupted files at any chunking.
    #[test]
    fn agrees_with_flate2s_reader() {
        let mut text = Vec::new();
        for i in 0..5000 {
            text.extend_from_slice(
                format!("{{\"i\":{i},\"pad\":\"{}\"}}\n", "x".repeat(i % 97)).as_bytes(),
            );
        }
        let mut clean = gz(&text[..text.len() / 3]);
        clean.extend(gz(&text[text.len() / 3..]));
        let mut rng: u64 = 0x5EED;
        let (mut oks, mut errs) = (0, 0);
        for round in 0..400 {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let mut data = clean.clone();
            if round > 0 {
                let at = (rng >> 33) as usize % data.len();
                match (rng >> 20) % 3 {
                    0 => data[at] ^= 1 << ((rng >> 8) % 8),
                    1 => data.truncate(at),
                    _ => data.splice(at..at, [0x1f, 0x8b, 8, 0]).for_each(drop),
                }
            }
            let mut whole = Vec::new();
            let theirs = flate2::read::MultiGzDecoder::new(&data[..]).read_to_end(&mut whole);
            let piece = 1 + (rng >> 40) as usize % 70_000;
            match (lines_of(&data, piece), theirs) {
                (Ok(ours), Ok(_)) => {
                    let theirs: Vec<String> = lines_of_text(&whole);
                    assert_eq!(ours, theirs, "round {round}");
                    oks += 1;
                }
                (Err(_), Err(_)) => errs += 1,
                (ours, theirs) => panic!(
                    "round {round}: ours {:?}, flate2 {theirs:?}",
                    ours.map(|l| l.len())
                ),
            }
        }
        assert!(oks >= 5 && errs > 100, "{oks} read, {errs} refused");
    }

    fn lines_of_text(text: &[u8]) -> Vec<String> {
        text.split(|&b| b == b'\n')
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
            .map(|b| {
                if b.len() > 64 {
                    format!("<{} bytes>", b.len())
                } else {
                    String::from_utf8_lossy(b).into_owned()
                }
            })
            .collect()
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
