//! The plugin's properties as a Fluent Bit config map (`struct flb_config_map[]`), for hosts
//! that read one (5.1.1+): `fluent-bit -e <lib> -i mimecast -h` then prints them with their
//! defaults and descriptions, and unknown keys are refused at start-up.
//!
//! Whether the host reads one is decided at Register, from what the host shows of itself:
//! - `cmt_version()`, which the fluent-bit executable exports, names the bundled cmetrics:
//!   2.2.1 first shipped with Fluent Bit 5.1.0 (5.0.9 has 2.1.5, 4.2.x 1.0.6, 4.0.3 1.0.3);
//! - 5.1.0 and 5.1.1 bundle the same libraries, and only 5.1.1 has the field: its def is 48
//!   bytes, 5.1.0's 40. The host allocates the def with `flb_calloc(1, sizeof(def))`, so the
//!   allocator's usable size of the def tells them apart: glibc gives 40 for a 40-byte
//!   request and 56 for 48; Fluent Bit's bundled jemalloc (`--with-lg-quantum=3`) 40 and 48.
//!   The field is written only when the allocation has room for it, so even a wrong guess
//!   never writes outside the host's allocation.

use super::abi;
use crate::config::PROPERTIES;
use std::ffi::{c_char, c_void, CStr, CString};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

/// The first cmetrics version bundled with a Fluent Bit (5.1.0) whose 5.1.1 reads config maps.
const FIRST_CMT_WITH_MAP: (u32, u32, u32) = (2, 2, 1);
/// Offset and size of `config_map` in the 5.1.1 def.
const MAP_END: usize = 48;

/// What Register decided about the config map, for Init to report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapDecision {
    /// Not decided yet (no Register seen).
    Unknown = 0,
    /// The host reads the map: Fluent Bit itself refuses unknown keys.
    Detected = 1,
    /// `MIMECAST_FLB_CONFIG_MAP=on`: the operator vouches for a 5.1.1+ host.
    Forced = 2,
    /// `MIMECAST_FLB_CONFIG_MAP=off`.
    TurnedOff = 3,
    /// An older host, or one that cannot be told apart from an older one.
    NotDetected = 4,
}

static DECISION: AtomicU8 = AtomicU8::new(MapDecision::Unknown as u8);

/// The decision of the last Register.
pub fn decision() -> MapDecision {
    match DECISION.load(Ordering::Relaxed) {
        1 => MapDecision::Detected,
        2 => MapDecision::Forced,
        3 => MapDecision::TurnedOff,
        4 => MapDecision::NotDetected,
        _ => MapDecision::Unknown,
    }
}

/// `MIMECAST_FLB_CONFIG_MAP`: `on` forces the map, `off` keeps it out, anything else (or
/// unset) lets the plugin detect the host.
fn env_override() -> Option<bool> {
    let v = std::env::var("MIMECAST_FLB_CONFIG_MAP").ok()?;
    match v.trim().to_ascii_lowercase().as_str() {
        "on" | "1" | "true" | "yes" => Some(true),
        "off" | "0" | "false" | "no" => Some(false),
        _ => None,
    }
}

/// "2.2.1" (or "2.2.1-rc1") as numbers.
fn parse_version(v: &str) -> Option<(u32, u32, u32)> {
    let mut it = v.trim().split(['.', '-', '+']);
    let mut num = || it.next()?.parse::<u32>().ok();
    Some((num()?, num()?, num().unwrap_or(0)))
}

/// Fluent Bit 5.1.0 or newer, by its bundled cmetrics.
fn cmt_is_5_1(cmt_version: Option<&str>) -> bool {
    cmt_version
        .and_then(parse_version)
        .is_some_and(|v| v >= FIRST_CMT_WITH_MAP)
}

/// The rule, on what the host shows: its cmetrics version and the def's usable size.
pub fn host_reads_map(cmt_version: Option<&str>, def_usable: usize) -> bool {
    cmt_is_5_1(cmt_version) && def_usable >= MAP_END
}

fn host_symbol(name: &CStr) -> *mut c_void {
    // SAFETY: dlsym with the default handle and a NUL-terminated name only looks symbols up.
    unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) }
}

/// `cmt_version()` of the host, when it exports one.
fn host_cmt_version() -> Option<String> {
    let f = host_symbol(c"cmt_version");
    if f.is_null() {
        return None;
    }
    // SAFETY: cmetrics declares `char *cmt_version(void)`, returning a static string.
    let f: unsafe extern "C" fn() -> *const c_char = unsafe { std::mem::transmute(f) };
    // SAFETY: calling the host's function as declared.
    let p = unsafe { f() };
    if p.is_null() {
        return None;
    }
    // SAFETY: a NUL-terminated static string owned by the host.
    Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// Usable size of a host allocation, asked of the allocator that made it: a jemalloc built
/// with the `je_` prefix beside the system malloc, else whatever `malloc_usable_size` the
/// process resolves to (glibc, or an allocator that replaces malloc, which replaces this too).
///
/// # Safety
/// `p` must be a live allocation of the host's malloc family.
unsafe fn usable_size(p: *mut c_void) -> usize {
    let je = host_symbol(c"je_malloc_usable_size");
    if !je.is_null() {
        // SAFETY: jemalloc declares `size_t je_malloc_usable_size(const void *)`.
        let f: unsafe extern "C" fn(*const c_void) -> usize = unsafe { std::mem::transmute(je) };
        // SAFETY: p is a live allocation of that allocator (caller).
        return unsafe { f(p) };
    }
    // SAFETY: p is a live allocation of the process's malloc (caller).
    unsafe { libc::malloc_usable_size(p) }
}

/// Decides whether to give the host `def` the config map, and remembers why.
///
/// # Safety
/// `def` must be the host's def, allocated with its malloc (Fluent Bit: `flb_calloc`).
pub unsafe fn decide(def: *mut c_void) -> bool {
    let d = match env_override() {
        Some(true) => MapDecision::Forced,
        Some(false) => MapDecision::TurnedOff,
        None => {
            // The usable size is asked only of a host whose cmetrics says it is 5.1.0 or newer,
            // that is a Fluent Bit executable, which allocates the def with its malloc.
            let fits = cmt_is_5_1(host_cmt_version().as_deref())
                // SAFETY: def is the host's allocation (caller).
                && unsafe { usable_size(def) } >= MAP_END;
            if fits {
                MapDecision::Detected
            } else {
                MapDecision::NotDetected
            }
        }
    };
    DECISION.store(d as u8, Ordering::Relaxed);
    matches!(d, MapDecision::Detected | MapDecision::Forced)
}

/// The host's cmetrics version as Init reports it.
/// Fluent Bit 5.1.0 or newer, by the cmetrics the process exports.
pub fn host_is_5_1() -> bool {
    cmt_is_5_1(host_cmt_version().as_deref())
}

/// Fluent Bit 5.0.0 or newer, by the cmetrics the process exports (5.0.0 bundles 2.0.5, every
/// 4.x a 1.0.x).
pub fn host_is_5() -> bool {
    host_cmt_version()
        .as_deref()
        .and_then(parse_version)
        .is_some_and(|v| v >= (2, 0, 0))
}

pub fn host_description() -> String {
    match host_cmt_version() {
        Some(v) => format!("cmetrics {v}"),
        None => "no cmt_version exported".into(),
    }
}

struct Table {
    entries: Vec<abi::flb_config_map>,
    _strings: Vec<CString>,
}

// SAFETY: the table is built once and never changed; its pointers refer to the CStrings it owns.
unsafe impl Send for Table {}
// SAFETY: as above, read-only after construction.
unsafe impl Sync for Table {}

fn cstring(s: &str) -> CString {
    CString::new(s.replace('\0', " ")).unwrap_or_default()
}

/// The static, NULL-terminated table (all values are strings; the plugin validates them).
pub fn table() -> *mut abi::flb_config_map {
    static TABLE: OnceLock<Table> = OnceLock::new();
    let t = TABLE.get_or_init(|| {
        let mut strings = Vec::new();
        let mut entries = Vec::with_capacity(PROPERTIES.len() + 1);
        for p in PROPERTIES {
            let name = cstring(p.name);
            let desc = cstring(p.description);
            let def = p.default.map(cstring);
            let mut e = abi::flb_config_map {
                type_: abi::FLB_CONFIG_MAP_STR as i32,
                ..Default::default()
            };
            e.name = name.as_ptr().cast_mut();
            e.desc = desc.as_ptr().cast_mut();
            e.def_value = def
                .as_ref()
                .map(|d| d.as_ptr().cast_mut())
                .unwrap_or(std::ptr::null_mut());
            entries.push(e);
            strings.push(name);
            strings.push(desc);
            strings.extend(def);
        }
        entries.push(abi::flb_config_map::default());
        Table {
            entries,
            _strings: strings,
        }
    });
    t.entries.as_ptr().cast_mut()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each release line with what it shows: cmetrics version and the def's usable size under
    /// glibc and under Fluent Bit's bundled jemalloc (8-byte quantum).
    #[test]
    fn only_5_1_1_and_later_get_the_map() {
        for (release, cmt, glibc, jemalloc, want) in [
            ("4.0.3", "1.0.3", 40, 32, false),
            ("4.2.8", "1.0.6", 40, 40, false),
            ("5.0.9", "2.1.5", 40, 40, false),
            ("5.1.0", "2.2.1", 40, 40, false),
            ("5.1.1", "2.2.1", 56, 48, true),
            ("later", "2.3.0", 56, 48, true),
        ] {
            assert_eq!(host_reads_map(Some(cmt), glibc), want, "{release} glibc");
            assert_eq!(
                host_reads_map(Some(cmt), jemalloc),
                want,
                "{release} jemalloc"
            );
        }
        assert!(
            !host_reads_map(None, 56),
            "no cmt_version: not a Fluent Bit we know"
        );
        assert!(!host_reads_map(Some("garbage"), 56));
        assert!(host_reads_map(Some("2.2.1-dev"), 48));
    }

    #[test]
    fn table_lists_every_property_and_ends_with_null() {
        let p = table();
        let mut names = Vec::new();
        for i in 0.. {
            // SAFETY: the table is NULL-terminated; we stop at the terminator.
            let e = unsafe { &*p.add(i) };
            if e.name.is_null() {
                break;
            }
            // SAFETY: names are NUL-terminated strings owned by the table.
            names.push(
                unsafe { std::ffi::CStr::from_ptr(e.name) }
                    .to_string_lossy()
                    .into_owned(),
            );
            assert!(!e.desc.is_null());
            assert_eq!(e.type_, 0);
        }
        let want: Vec<_> = PROPERTIES.iter().map(|p| p.name.to_string()).collect();
        assert_eq!(names, want);
    }
}
