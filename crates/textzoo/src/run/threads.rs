//! `general.num_threads`: the one thread count of a run, applied to both thread pools that do
//! the work — rayon's (data, element-wise layers, evaluation) and `matrixmultiply`'s (the matrix
//! products, which read `MATMUL_NUM_THREADS` once, at their first use, and otherwise run on a
//! single thread).

/// The thread count `general.num_threads` asks for (0: one per available core).
pub fn resolve(num_threads: usize) -> usize {
    if num_threads > 0 {
        return num_threads;
    }
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Applies the thread count. Call once, before any parallel work or matrix product: both
/// pools are created on first use and keep their size for the life of the process.
pub fn configure(num_threads: usize) -> usize {
    let n = resolve(num_threads);
    // The process is still single-threaded here, so changing the environment is sound.
    std::env::set_var("MATMUL_NUM_THREADS", n.to_string());
    if let Err(e) = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
    {
        tracing::debug!("rayon's global pool was already set up: {e}");
    }
    n
}

#[cfg(test)]
mod tests {
    #[test]
    fn zero_means_every_core() {
        assert_eq!(super::resolve(3), 3);
        assert!(super::resolve(0) >= 1);
    }
}
