//! Heap allocations, counted: the unit tests hold the engine's own code to "no allocation
//! inside the training step", and `cargo bench --bench train_throughput` reports all of a
//! step's allocations.
//!
//! Matrix products are set apart with [`foreign`]: `matrixmultiply` allocates its packing
//! buffer on every call and has no way to be handed one (nor has `gemm`), so that part is
//! measured by the bench instead of being asserted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

thread_local! {
    static OWN: Cell<u64> = const { Cell::new(0) };
    static FOREIGN_DEPTH: Cell<u32> = const { Cell::new(0) };
}

static ALL: AtomicU64 = AtomicU64::new(0);
static ALL_BYTES: AtomicU64 = AtomicU64::new(0);

/// Runs `f`, a call into another crate whose allocations are its own.
#[inline(always)]
pub fn foreign<R>(f: impl FnOnce() -> R) -> R {
    /// Leaves the foreign call when dropped, unwinding included.
    struct Inside;
    impl Drop for Inside {
        fn drop(&mut self) {
            FOREIGN_DEPTH.with(|d| d.set(d.get() - 1));
        }
    }
    FOREIGN_DEPTH.with(|d| d.set(d.get() + 1));
    let _inside = Inside;
    f()
}

/// The system allocator, counting every allocation (process-wide: [`totals`]) and, per
/// thread, those made outside [`foreign`] calls ([`own`]). Per thread so that tests running at
/// the same time never see each other's: a test reads the counts of the threads it owns. The
/// unit-test binary installs it; so does the throughput bench.
pub struct Counting;

fn note(bytes: usize) {
    ALL.fetch_add(1, Ordering::Relaxed);
    ALL_BYTES.fetch_add(bytes as u64, Ordering::Relaxed);
    // `try_with`: a thread being torn down may still allocate.
    if FOREIGN_DEPTH.try_with(Cell::get) == Ok(0) {
        let _ = OWN.try_with(|c| c.set(c.get() + 1));
    }
}

// SAFETY: every call is forwarded unchanged to `System`; the bookkeeping touches only atomics
// and const-initialised thread-locals without destructors, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[cfg(test)]
#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocations the calling thread has made so far outside [`foreign`] calls (0 unless
/// [`Counting`] is the global allocator).
pub fn own() -> u64 {
    OWN.with(Cell::get)
}

/// Allocations and bytes allocated so far by the whole process (0 unless [`Counting`] is the
/// global allocator).
pub fn totals() -> (u64, u64) {
    (
        ALL.load(Ordering::Relaxed),
        ALL_BYTES.load(Ordering::Relaxed),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_own_allocations_outside_foreign_calls_only() {
        let (before, total_before) = (own(), totals().0);
        std::hint::black_box(vec![1u8; 16]);
        let once = own();
        foreign(|| std::hint::black_box(vec![1u8; 16]));
        assert_eq!((once - before, own() - once), (1, 0));
        assert!(totals().0 - total_before >= 2, "both counted in the totals");
    }
}
