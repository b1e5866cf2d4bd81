//! Host-allocated structs followed by canary bytes, checked after each plugin call: a plugin
//! writing past what an older host allocated is caught.

const CANARY: u8 = 0xA5;
const CANARY_LEN: usize = 32;

/// A zeroed host allocation of exactly `size` bytes followed by canary bytes.
pub(crate) struct Guarded {
    pub(crate) ptr: *mut u8,
    pub(crate) size: usize,
    canary_len: usize,
}

impl Guarded {
    /// As Fluent Bit allocates the def (`flb_calloc(1, sizeof(def))`): exactly `size` bytes,
    /// so that what the allocator reports for it is what the real host's allocator would. The
    /// slack the allocator adds beyond `size` is filled with canary bytes and checked.
    ///
    /// glibc rounds a request to its 16-byte chunk class, but hands out a larger free chunk
    /// whole when the rest would be too small to split: then a 40-byte def can report 56 usable
    /// bytes, and whether a host "has room" would depend on heap luck from run to run. So a
    /// block with more slack than the size class gives is set aside and the allocation tried
    /// again (the blocks set aside are freed after), as a fresh Fluent Bit process would see it.
    pub(crate) fn exact(size: usize) -> Guarded {
        let class_slack = (size + 8).div_ceil(16) * 16 - 8 - size;
        let mut set_aside = Vec::new();
        let (ptr, usable) = loop {
            // SAFETY: plain allocation; checked for null below.
            let ptr = unsafe { libc::calloc(1, size) }.cast::<u8>();
            assert!(!ptr.is_null(), "out of memory");
            // SAFETY: ptr came from calloc.
            let usable = unsafe { libc::malloc_usable_size(ptr.cast()) };
            if usable - size <= class_slack || set_aside.len() >= 64 {
                break (ptr, usable);
            }
            set_aside.push(ptr);
        };
        for p in set_aside {
            // SAFETY: allocated by calloc above and not used.
            unsafe { libc::free(p.cast()) };
        }
        // SAFETY: [size, usable) is inside the allocation.
        unsafe { std::ptr::write_bytes(ptr.add(size), CANARY, usable - size) };
        Guarded {
            ptr,
            size,
            canary_len: usable - size,
        }
    }

    pub(crate) fn new(size: usize) -> Guarded {
        // SAFETY: plain allocation; checked for null below.
        let ptr = unsafe { libc::calloc(1, size + CANARY_LEN) }.cast::<u8>();
        assert!(!ptr.is_null(), "out of memory");
        // SAFETY: ptr is valid for size + CANARY_LEN bytes.
        unsafe { std::ptr::write_bytes(ptr.add(size), CANARY, CANARY_LEN) };
        Guarded {
            ptr,
            size,
            canary_len: CANARY_LEN,
        }
    }
    pub(crate) fn intact(&self) -> bool {
        // SAFETY: the canary region is inside our allocation.
        let c = unsafe { std::slice::from_raw_parts(self.ptr.add(self.size), self.canary_len) };
        c.iter().all(|&b| b == CANARY)
    }
    pub(crate) fn word(&self, off: usize) -> usize {
        // SAFETY: callers read offsets inside `size`.
        unsafe { std::ptr::read_unaligned(self.ptr.add(off).cast::<usize>()) }
    }
    pub(crate) fn set_word(&self, off: usize, v: usize) {
        // SAFETY: callers write offsets inside `size`.
        unsafe { std::ptr::write_unaligned(self.ptr.add(off).cast::<usize>(), v) }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        // SAFETY: allocated by calloc in new() or exact().
        unsafe { libc::free(self.ptr.cast()) }
    }
}
