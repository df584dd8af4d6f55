//! Heap allocations of the engine's own code, so a test can hold it to "no allocation inside
//! the training step".
//!
//! Matrix products are set apart with [`foreign`]: `matrixmultiply` allocates its packing
//! buffer on every call and has no way to be handed one (nor has `gemm`), so that part is
//! measured by `cargo bench --bench train_throughput` (its allocations per step) instead of
//! being asserted. Outside tests [`foreign`] is just the call.

/// Runs `f`, a call into another crate whose allocations are its own.
#[inline(always)]
pub fn foreign<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(test)]
    let _inside = counting::Foreign::enter();
    f()
}

/// The unit tests' global allocator: the system's, with every thread counting its own
/// allocations made outside [`foreign`] calls. Counts are per thread so that tests running at
/// the same time never see each other's: a test reads the counts of the threads it owns.
#[cfg(test)]
pub mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static COUNTED: Cell<u64> = const { Cell::new(0) };
        static FOREIGN_DEPTH: Cell<u32> = const { Cell::new(0) };
    }

    struct Counting;

    fn note() {
        // `try_with`: a thread being torn down may still allocate.
        if FOREIGN_DEPTH.try_with(Cell::get) == Ok(0) {
            let _ = COUNTED.try_with(|c| c.set(c.get() + 1));
        }
    }

    // SAFETY: every call is forwarded unchanged to `System`; the bookkeeping touches only
    // const-initialised thread-locals without destructors, which never allocate.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            note();
            System.alloc(layout)
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            note();
            System.alloc_zeroed(layout)
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            note();
            System.realloc(ptr, layout, new_size)
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            System.dealloc(ptr, layout)
        }
    }

    #[global_allocator]
    static ALLOCATOR: Counting = Counting;

    /// Allocations the calling thread has made so far outside [`super::foreign`] calls.
    pub fn counted() -> u64 {
        COUNTED.with(Cell::get)
    }

    /// Marks the calling thread as inside a [`super::foreign`] call until dropped.
    pub struct Foreign;

    impl Foreign {
        pub fn enter() -> Self {
            FOREIGN_DEPTH.with(|d| d.set(d.get() + 1));
            Foreign
        }
    }

    impl Drop for Foreign {
        fn drop(&mut self) {
            FOREIGN_DEPTH.with(|d| d.set(d.get() - 1));
        }
    }

    #[test]
    fn counts_allocations_outside_foreign_calls_only() {
        let before = counted();
        std::hint::black_box(vec![1u8; 16]);
        let once = counted();
        super::foreign(|| std::hint::black_box(vec![1u8; 16]));
        assert_eq!((once - before, counted() - once), (1, 0));
    }
}
