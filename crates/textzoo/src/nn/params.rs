//! All trainable tensors of a model in one flat buffer (llm.c style), with a gradient buffer of
//! the same layout: the optimizer, gradient clipping, checkpoints and the model file each see
//! one slice instead of walking a tree of layers.

use std::ops::Range;

/// Where one tensor lives in the flat buffers. Cheap to copy; layers keep these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamId {
    pub offset: usize,
    pub len: usize,
}

impl ParamId {
    pub fn range(self) -> Range<usize> {
        self.offset..self.offset + self.len
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParamEntry {
    /// Name in the model file, e.g. `blocks.0.attn.qkv.weight`.
    pub name: String,
    pub shape: Vec<usize>,
    pub id: ParamId,
    /// Whether AdamW applies weight decay (matrices yes; biases, norms and gains no).
    pub decay: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ParamStore {
    pub data: Vec<f32>,
    pub grad: Vec<f32>,
    pub entries: Vec<ParamEntry>,
}

impl ParamStore {
    /// Reserves a zero-initialised tensor and returns its handle.
    pub fn add(&mut self, name: impl Into<String>, shape: &[usize], decay: bool) -> ParamId {
        let len = shape.iter().product();
        let id = ParamId {
            offset: self.data.len(),
            len,
        };
        self.data.resize(self.data.len() + len, 0.0);
        self.grad.resize(self.data.len(), 0.0);
        self.entries.push(ParamEntry {
            name: name.into(),
            shape: shape.to_vec(),
            id,
            decay,
        });
        id
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn get(&self, id: ParamId) -> &[f32] {
        &self.data[id.range()]
    }

    pub fn get_mut(&mut self, id: ParamId) -> &mut [f32] {
        &mut self.data[id.range()]
    }

    /// The tensor and its gradient together (disjoint buffers, so both borrows are legal).
    pub fn with_grad(&mut self, id: ParamId) -> (&[f32], &mut [f32]) {
        (&self.data[id.range()], &mut self.grad[id.range()])
    }

    pub fn zero_grad(&mut self) {
        self.grad.iter_mut().for_each(|g| *g = 0.0);
    }

    pub fn entry(&self, name: &str) -> Option<&ParamEntry> {
        self.entries.iter().find(|e| e.name == name)
    }
}

/// The gradients of two distinct tensors at once (a tied head's weight may sit before or after
/// its bias).
pub fn grad2(grad: &mut [f32], a: ParamId, b: ParamId) -> (&mut [f32], &mut [f32]) {
    assert!(
        a.range().end <= b.offset || b.range().end <= a.offset,
        "tensors overlap"
    );
    if a.offset < b.offset {
        let (lo, hi) = grad.split_at_mut(b.offset);
        (&mut lo[a.range()], &mut hi[..b.len])
    } else {
        let (lo, hi) = grad.split_at_mut(a.offset);
        (&mut hi[..a.len], &mut lo[b.range()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_are_laid_out_back_to_back() {
        let mut p = ParamStore::default();
        let a = p.add("a", &[2, 3], true);
        let b = p.add("b", &[4], false);
        assert_eq!((a.offset, a.len, b.offset, b.len), (0, 6, 6, 4));
        assert_eq!((p.len(), p.grad.len()), (10, 10));
        p.get_mut(b)[0] = 1.5;
        let (w, g) = p.with_grad(b);
        g[0] = w[0];
        assert_eq!(p.grad[6], 1.5);
        assert_eq!(p.entry("b").map(|e| e.decay), Some(false));
    }
}
