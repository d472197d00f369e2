//! The choice sequence every generator draws from: proptest shrinks the bytes, and the byte 0
//! (also what an exhausted string yields) is always the simplest choice.

pub struct Choices<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Choices<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Choices { bytes, pos: 0 }
    }

    pub fn byte(&mut self) -> u8 {
        let b = self.bytes.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    /// `0..n`; 0 is the simplest.
    pub fn below(&mut self, n: usize) -> usize {
        if n <= 1 { 0 } else { self.byte() as usize % n }
    }

    /// True with about `percent` % probability; false is the simplest.
    pub fn chance(&mut self, percent: u32) -> bool {
        u32::from(self.byte()) * 100 / 256 >= 100 - percent
    }

    pub fn one<'t, T>(&mut self, items: &'t [T]) -> &'t T {
        &items[self.below(items.len())]
    }

    /// A subset keeping order, at least `min` long (when there are enough items).
    pub fn subset<T: Clone>(&mut self, items: &[T], min: usize) -> Vec<T> {
        let mut keep: Vec<bool> = items.iter().map(|_| self.chance(40)).collect();
        let missing = min.saturating_sub(keep.iter().filter(|k| **k).count());
        for k in keep.iter_mut().filter(|k| !**k).take(missing) {
            *k = true;
        }
        items
            .iter()
            .zip(keep)
            .filter(|(_, k)| *k)
            .map(|(i, _)| i.clone())
            .collect()
    }
}
