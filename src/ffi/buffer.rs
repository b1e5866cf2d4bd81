//! `HostBuf`: a growable byte buffer in memory from libc `malloc`, so it can be handed to
//! Fluent Bit as collected data and freed either by our cleanup callback or by the host's own
//! `free()` fallback (used when a host finds no cleanup symbol).

use std::ptr::NonNull;

pub struct HostBuf {
    ptr: NonNull<u8>,
    len: usize,
    cap: usize,
}

// SAFETY: HostBuf uniquely owns its allocation (like Vec<u8>); no aliasing pointers are kept.
unsafe impl Send for HostBuf {}

impl HostBuf {
    pub fn new() -> Self {
        HostBuf {
            ptr: NonNull::dangling(),
            len: 0,
            cap: 0,
        }
    }

    pub fn with_capacity(cap: usize) -> Self {
        let mut b = Self::new();
        b.reserve(cap);
        b
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    pub fn as_slice(&self) -> &[u8] {
        if self.cap == 0 {
            return &[];
        }
        // SAFETY: ptr is valid for `len` initialised bytes while self is borrowed.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        if self.cap == 0 {
            return &mut [];
        }
        // SAFETY: ptr is valid for `len` initialised bytes and uniquely borrowed.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// Makes room for `additional` more bytes; aborts like `Vec` would if memory runs out.
    pub fn reserve(&mut self, additional: usize) {
        let need = self.len.saturating_add(additional);
        if need <= self.cap {
            return;
        }
        let new_cap = need.max(self.cap.saturating_mul(2)).max(4096);
        let old = if self.cap == 0 {
            std::ptr::null_mut()
        } else {
            self.ptr.as_ptr().cast()
        };
        // SAFETY: `old` is null or a live malloc'd block of ours; realloc keeps its contents.
        let p = unsafe { libc::realloc(old, new_cap) };
        match NonNull::new(p.cast::<u8>()) {
            Some(p) => {
                self.ptr = p;
                self.cap = new_cap;
            }
            None => std::alloc::handle_alloc_error(
                std::alloc::Layout::from_size_align(new_cap, 1)
                    .unwrap_or(std::alloc::Layout::new::<u8>()),
            ),
        }
    }

    pub fn extend_from_slice(&mut self, data: &[u8]) {
        self.reserve(data.len());
        // SAFETY: reserve() guaranteed cap >= len + data.len(); the regions cannot overlap
        // because `data` is borrowed immutably while self is borrowed mutably.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.ptr.as_ptr().add(self.len),
                data.len(),
            );
        }
        self.len += data.len();
    }

    pub fn push(&mut self, b: u8) {
        self.extend_from_slice(&[b]);
    }

    pub fn truncate(&mut self, len: usize) {
        if len < self.len {
            self.len = len;
        }
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Gives the allocation away: the caller must release it with `libc::free` (or
    /// `HostBuf::free_raw`). Returns null for an empty buffer with no allocation.
    pub fn into_raw(self) -> (*mut u8, usize) {
        let me = std::mem::ManuallyDrop::new(self);
        if me.cap == 0 {
            (std::ptr::null_mut(), 0)
        } else {
            (me.ptr.as_ptr(), me.len)
        }
    }

    /// Takes back a buffer given away by `into_raw`, to reuse it.
    ///
    /// # Safety
    /// `p` must come from `into_raw` of a buffer with capacity `cap`, not freed or reclaimed
    /// since, and `len <= cap`.
    pub unsafe fn from_raw(p: *mut u8, len: usize, cap: usize) -> HostBuf {
        match NonNull::new(p) {
            Some(ptr) if cap > 0 => HostBuf {
                ptr,
                len: len.min(cap),
                cap,
            },
            _ => HostBuf::new(),
        }
    }

    /// Releases a pointer obtained from `into_raw`.
    ///
    /// # Safety
    /// `p` must come from `into_raw` (or be null) and not have been freed yet.
    pub unsafe fn free_raw(p: *mut u8) {
        // SAFETY: per the contract, p is null or a live block from libc malloc/realloc.
        unsafe { libc::free(p.cast()) }
    }
}

impl Default for HostBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for HostBuf {
    fn drop(&mut self) {
        if self.cap != 0 {
            // SAFETY: we own a live malloc'd block.
            unsafe { libc::free(self.ptr.as_ptr().cast()) }
        }
    }
}

impl std::io::Write for HostBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.extend_from_slice(buf);
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl std::fmt::Debug for HostBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HostBuf({} bytes)", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn grows_truncates_and_hands_off() {
        let mut b = HostBuf::new();
        assert!(b.as_slice().is_empty());
        for i in 0..10_000u32 {
            b.write_all(&i.to_le_bytes()).unwrap();
        }
        assert_eq!(b.len(), 40_000);
        assert_eq!(&b.as_slice()[4..8], &1u32.to_le_bytes());
        b.truncate(8);
        assert_eq!(b.len(), 8);
        let (p, len) = b.into_raw();
        assert_eq!(len, 8);
        // SAFETY: p came from into_raw just above.
        unsafe { HostBuf::free_raw(p) };
        let (p, len) = HostBuf::new().into_raw();
        assert!(p.is_null() && len == 0);
    }
}
