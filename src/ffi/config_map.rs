//! The plugin's properties as a Fluent Bit config map (`struct flb_config_map[]`), for hosts
//! that read one (5.1.1+): `fluent-bit -e <lib> -i mimecast -h` then prints them with their
//! defaults and descriptions, and unknown keys are refused at start-up.

use super::abi;
use crate::config::PROPERTIES;
use std::ffi::CString;
use std::sync::OnceLock;

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
    use std::ffi::CStr;

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
                unsafe { CStr::from_ptr(e.name) }
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
