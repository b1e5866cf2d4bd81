//! Any bytes as a batch file, fed in pieces of any size: gunzip + line splitting never panics.
#![no_main]
use fluent_bit_mimecast::sources::gzlines::{GzLines, Line};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let piece = first as usize + 1;
    let mut g = GzLines::new();
    let mut on_line = |l: Line| {
        let (Line::Json(b) | Line::TooLong(b)) = l;
        assert!(b.len() <= fluent_bit_mimecast::sources::gzlines::MAX_LINE);
    };
    for p in rest.chunks(piece) {
        if g.feed(p, &mut on_line).is_err() {
            return;
        }
    }
    let _ = g.finish(&mut on_line);
});
