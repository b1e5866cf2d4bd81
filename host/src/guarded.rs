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
    pub(crate) fn exact(size: usize) -> Guarded {
        // SAFETY: plain allocation; checked for null below.
        let ptr = unsafe { libc::calloc(1, size) }.cast::<u8>();
        assert!(!ptr.is_null(), "out of memory");
        // SAFETY: ptr came from calloc; the usable size is ours to write.
        let usable = unsafe { libc::malloc_usable_size(ptr.cast()) };
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
