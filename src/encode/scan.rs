//! The scanner: a hand-written JSON reader for the records as Mimecast sends them, about twice
//! as fast as serde_json's general reader with our visitors on top, which was most of the
//! pulling thread's work.
//!
//! It reads a subset of JSON and hands what it finds to the same [`Walk`] as the serde_json
//! path, so the output and the record id are the same by construction. Whatever is outside
//! the subset, or wrong, makes it give up (`None`) and the record is read again by serde_json,
//! which decides what it is and says what is wrong with it: lone surrogates in `\u` escapes,
//! `-0`, integers of more than 19 digits, nesting past the limit, any syntax error. Floats are
//! parsed by serde_json itself, so every number has the value the reference path gives it.
//!
//! The text is valid UTF-8 (`str`): strings are cut at ASCII quotes, so every slice of it taken
//! here is a whole `str` too.

use super::{At, Walk};

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The bytes of `w` (eight, little-endian) where a string stops being plain text: a quote, a
/// backslash or a control character. Only the lowest flag is exact (a borrow can set flags
/// above a true one, never below), and only the lowest is used.
#[inline(always)]
fn stops(w: u64) -> u64 {
    let quote = w ^ (ONES * u64::from(b'"'));
    let slash = w ^ (ONES * u64::from(b'\\'));
    let zero = |x: u64| x.wrapping_sub(ONES) & !x;
    (zero(quote) | zero(slash) | (w.wrapping_sub(ONES * 0x20) & !w)) & HIGH
}

struct Scan<'t, 'b> {
    text: &'t str,
    b: &'t [u8],
    i: usize,
    /// The last string read, when it had escapes (unescaped here); else `span` is its place.
    buf: &'b mut String,
    span: (usize, usize),
}

/// Walks the object that is the whole of `text` into `w`: the number of its members written.
/// `None` when the scanner leaves the record to serde_json (see the module's comment); what it
/// wrote into the walk by then is to be thrown away. `buf` holds unescaped strings (kept from
/// record to record, so that it is allocated once).
pub(crate) fn object(text: &str, w: &mut Walk, buf: &mut String) -> Option<u32> {
    let mut s = Scan {
        text,
        b: text.as_bytes(),
        i: 0,
        buf,
        span: (0, 0),
    };
    s.ws();
    s.eat(b'{')?;
    let keys = At::TOP.members();
    let mut written: u32 = 0;
    s.elements::<b'}'>(|s, _| {
        let at = s.key(w, &keys)?;
        written += u32::from(at.write);
        s.value(w, &at.value(true), false)
    })?;
    s.ws();
    (s.i == s.b.len()).then_some(written)
}

impl Scan<'_, '_> {
    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline(always)]
    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    #[inline(always)]
    fn eat(&mut self, c: u8) -> Option<()> {
        (self.bump()? == c).then_some(())
    }

    /// Skips JSON whitespace.
    #[inline(always)]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.i += 1;
        }
    }

    /// The first byte at or after `i` where plain string text stops.
    #[inline(always)]
    fn stop(&self, mut i: usize) -> Option<usize> {
        while let Some(chunk) = self.b.get(i..i + 8) {
            let m = stops(u64::from_le_bytes(chunk.try_into().ok()?));
            if m != 0 {
                return Some(i + (m.trailing_zeros() / 8) as usize);
            }
            i += 8;
        }
        while let Some(&c) = self.b.get(i) {
            if c == b'"' || c == b'\\' || c < 0x20 {
                return Some(i);
            }
            i += 1;
        }
        None
    }

    /// Reads a string whose opening quote is behind; `true` when it had escapes (its text is
    /// then in `buf`, else at `span`).
    #[inline(always)]
    fn string(&mut self) -> Option<bool> {
        let start = self.i;
        let end = self.stop(start)?;
        if *self.b.get(end)? == b'"' {
            self.span = (start, end);
            self.i = end + 1;
            return Some(false);
        }
        self.escaped(start, end)
    }

    /// The rest of a string from its first stop at `at`, unescaping into `buf`.
    #[inline(never)]
    fn escaped(&mut self, start: usize, mut at: usize) -> Option<bool> {
        self.buf.clear();
        self.buf.push_str(self.text.get(start..at)?);
        loop {
            match *self.b.get(at)? {
                b'"' => {
                    self.i = at + 1;
                    return Some(true);
                }
                b'\\' => at = self.escape(at + 1)?,
                _ => return None, // a control character: serde_json says which
            }
            let next = self.stop(at)?;
            self.buf.push_str(self.text.get(at..next)?);
            at = next;
        }
    }

    /// One escape, its letter at `at`, into `buf`; where the text goes on.
    fn escape(&mut self, at: usize) -> Option<usize> {
        let c = match *self.b.get(at)? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = self.hex4(at + 1)?;
                return match hi {
                    0xd800..=0xdbff => {
                        // A surrogate pair, or (anything else) left to serde_json.
                        if self.b.get(at + 5..at + 7)? != b"\\u" {
                            return None;
                        }
                        let lo = self.hex4(at + 7)?;
                        if !(0xdc00..=0xdfff).contains(&lo) {
                            return None;
                        }
                        let cp = 0x1_0000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
                        self.buf.push(char::from_u32(cp)?);
                        Some(at + 11)
                    }
                    0xdc00..=0xdfff => None,
                    _ => {
                        self.buf.push(char::from_u32(hi)?);
                        Some(at + 5)
                    }
                };
            }
            _ => return None,
        };
        self.buf.push(c);
        Some(at + 1)
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let digits = self.b.get(at..at + 4)?;
        digits.iter().try_fold(0u32, |v, &d| {
            let x = (d as char).to_digit(16)?;
            Some(v << 4 | x)
        })
    }

    /// The text of the string just read.
    #[inline(always)]
    fn last(&self, escaped: bool) -> Option<&str> {
        if escaped {
            Some(self.buf)
        } else {
            self.text.get(self.span.0..self.span.1)
        }
    }

    /// A key and its colon, at `keys` (an object's [`At::members`]); the place of its value.
    #[inline(always)]
    fn key(&mut self, w: &mut Walk, keys: &At) -> Option<At> {
        self.eat(b'"')?;
        let escaped = self.string()?;
        let at = w.key(keys, self.last(escaped)?);
        self.ws();
        self.eat(b':')?;
        self.ws();
        Some(at)
    }

    /// One value at `at`; `list` when it is an item of a captured list.
    fn value(&mut self, w: &mut Walk, at: &At, list: bool) -> Option<()> {
        match self.peek()? {
            b'"' => {
                self.i += 1;
                let escaped = self.string()?;
                let v = self.last(escaped)?;
                if list {
                    w.keep(v);
                }
                w.text(at, v);
            }
            b'{' => {
                self.i += 1;
                self.map(w, at)?;
            }
            b'[' => {
                self.i += 1;
                self.seq(w, at)?;
            }
            b't' => {
                self.word(b"true")?;
                w.boolean(at, true);
            }
            b'f' => {
                self.word(b"false")?;
                w.boolean(at, false);
            }
            b'n' => {
                self.word(b"null")?;
                w.null(at);
            }
            b'-' | b'0'..=b'9' => self.number(w, at, list)?,
            _ => return None,
        }
        Some(())
    }

    fn word(&mut self, word: &[u8]) -> Option<()> {
        if self.b.get(self.i..self.i + word.len())? != word {
            return None;
        }
        self.i += word.len();
        Some(())
    }

    /// An integer, as serde_json reads it: unsigned when not negative, else signed; a number
    /// with a fraction or exponent is read by serde_json.
    fn number(&mut self, w: &mut Walk, at: &At, list: bool) -> Option<()> {
        let start = self.i;
        let neg = self.peek()? == b'-';
        let from = start + usize::from(neg);
        let mut i = from;
        let mut v: u64 = 0;
        while let Some(&c) = self.b.get(i) {
            if !c.is_ascii_digit() {
                break;
            }
            if i - from == 19 {
                return None; // might not fit: serde_json reads it as a float
            }
            v = v * 10 + u64::from(c - b'0');
            i += 1;
        }
        let n = i - from;
        if n == 0 || (n > 1 && self.b.get(from) == Some(&b'0')) {
            return None;
        }
        if let Some(b'.' | b'e' | b'E') = self.b.get(i) {
            return self.float(w, at);
        }
        let digits = self.text.get(start..i)?;
        if neg {
            // -0 is a float to serde_json; so is anything below i64::MIN (not at 18 digits).
            if v == 0 || n > 18 {
                return None;
            }
            if list {
                w.keep(digits);
            }
            w.int(at, -(v as i64));
        } else {
            if list {
                w.keep(digits);
            }
            w.uint(at, v);
        }
        self.i = i;
        Some(())
    }

    /// A number with a fraction or exponent, parsed by serde_json for the same value.
    #[inline(never)]
    fn float(&mut self, w: &mut Walk, at: &At) -> Option<()> {
        let start = self.i;
        let mut i = start;
        while let Some(b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') = self.b.get(i) {
            i += 1;
        }
        let v: f64 = serde_json::from_str(self.text.get(start..i)?).ok()?;
        w.float(at, v);
        self.i = i;
        Some(())
    }

    /// The members of an object or the items of an array, up to `CLOSE` (the opening
    /// bracket is behind): `each` reads one, given its index. Their number.
    #[inline(always)]
    fn elements<const CLOSE: u8>(
        &mut self,
        mut each: impl FnMut(&mut Self, u32) -> Option<()>,
    ) -> Option<u32> {
        self.ws();
        if self.peek()? == CLOSE {
            self.i += 1;
            return Some(0);
        }
        let mut n: u32 = 0;
        loop {
            each(self, n)?;
            n += 1;
            self.ws();
            match self.bump()? {
                b',' => self.ws(),
                c if c == CLOSE => return Some(n),
                _ => return None,
            }
        }
    }

    fn map(&mut self, w: &mut Walk, at: &At) -> Option<()> {
        let open = w.open(at)?;
        let keys = at.members();
        let n = self.elements::<b'}'>(|s, _| {
            let k = s.key(w, &keys)?;
            s.value(w, &k.value(false), false)
        })?;
        w.close_map(at, open, n);
        Some(())
    }

    fn seq(&mut self, w: &mut Walk, at: &At) -> Option<()> {
        let open = w.open(at)?;
        let list = at.lists();
        let n = self.elements::<b']'>(|s, i| s.value(w, &at.item(i), list))?;
        w.close_seq(at, open, n);
        Some(())
    }
}
