//! Token (and position) embedding lookup: `out[i] = table[ids[i]]`.

/// Copies row `ids[i]` of `table` (`[vocab, dim]`) to row `i` of `out`.
pub fn forward(out: &mut [f32], ids: &[u32], table: &[f32], dim: usize) {
    for (row, &id) in out.chunks_exact_mut(dim).zip(ids) {
        let start = id as usize * dim;
        row.copy_from_slice(&table[start..start + dim]);
    }
}

/// Accumulates `dtable[ids[i]] += dout[i]`.
pub fn backward(dtable: &mut [f32], ids: &[u32], dout: &[f32], dim: usize) {
    for (row, &id) in dout.chunks_exact(dim).zip(ids) {
        let start = id as usize * dim;
        dtable[start..start + dim]
            .iter_mut()
            .zip(row)
            .for_each(|(d, g)| *d += g);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::{check, seeded};

    #[test]
    fn lookup_and_gradient() {
        let (vocab, dim) = (4, 3);
        let table = seeded(vocab * dim, 9);
        let ids = [2u32, 0, 2];
        let probe = seeded(ids.len() * dim, 10);
        let loss = |t: &[f32]| {
            let mut out = vec![0.0; ids.len() * dim];
            forward(&mut out, &ids, t, dim);
            out.iter()
                .zip(&probe)
                .map(|(a, p)| (a * p) as f64)
                .sum::<f64>()
        };
        let mut d = vec![0.0; vocab * dim];
        backward(&mut d, &ids, &probe, dim);
        check("dtable", &table, &d, loss);
        assert!(
            d[dim..2 * dim].iter().all(|&g| g == 0.0),
            "row 1 never used"
        );
    }
}
