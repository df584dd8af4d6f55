//! `general.num_threads`: the one thread count of a run, the size of rayon's global pool, which
//! does all the parallel work — data, element-wise layers, evaluation, and the matrix products
//! (`nn::matmul` splits them over rayon's threads).

/// The thread count `general.num_threads` asks for (0: one per available core).
pub fn resolve(num_threads: usize) -> usize {
    if num_threads > 0 {
        return num_threads;
    }
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Applies the thread count. Call once, before any parallel work: the pool is created on first
/// use and keeps its size for the life of the process.
pub fn configure(num_threads: usize) -> usize {
    let n = resolve(num_threads);
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
