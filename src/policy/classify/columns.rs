//! The columns one table access names, in one allocation.
//!
//! Guarantees: iteration yields exactly the names pushed, in the order they were pushed,
//! duplicates included (the classifier's record of what a request names is never reordered,
//! merged or truncated here); equality is equality of that sequence. The names are kept end to
//! end in one `String` with the offset where each ends, so a read naming three columns costs
//! one allocation, not four (a `Vec<String>`), and none while it names no column.

use std::fmt;

use smallvec::SmallVec;

#[derive(Clone, Default, PartialEq, Eq)]
pub struct Columns {
    text: String,
    /// Where each name ends in `text`; a name starts where the previous one ends.
    ends: SmallVec<[u32; 6]>,
}

impl Columns {
    pub fn new() -> Columns {
        Columns::default()
    }

    /// Room for names of `bytes` bytes in total before the text grows.
    pub fn with_capacity(bytes: usize) -> Columns {
        Columns {
            text: String::with_capacity(bytes),
            ends: SmallVec::new(),
        }
    }

    pub fn push(&mut self, name: &str) {
        self.text.push_str(name);
        self.ends.push(self.end_of_text());
    }

    fn end_of_text(&self) -> u32 {
        // A request is bounded far below 4 GiB (its URL and body limits); saturating keeps
        // this total even so.
        u32::try_from(self.text.len()).unwrap_or(u32::MAX)
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)? as usize;
        let start = match i {
            0 => 0,
            _ => self.ends[i - 1] as usize,
        };
        self.text.get(start..end)
    }

    pub fn iter(&self) -> Iter<'_> {
        Iter {
            columns: self,
            next: 0,
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.iter().any(|c| c == name)
    }

    /// Keeps the names for which `keep` is true, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        if self.iter().all(&mut keep) {
            return;
        }
        let mut kept = Columns::with_capacity(self.text.len());
        for c in self.iter() {
            if keep(c) {
                kept.push(c);
            }
        }
        *self = kept;
    }

    /// Appends every name of `other`, in order.
    pub fn append(&mut self, other: &Columns) {
        for c in other {
            self.push(c);
        }
    }
}

#[derive(Clone)]
pub struct Iter<'c> {
    columns: &'c Columns,
    next: usize,
}

impl<'c> Iterator for Iter<'c> {
    type Item = &'c str;

    fn next(&mut self) -> Option<&'c str> {
        let c = self.columns.get(self.next)?;
        self.next += 1;
        Some(c)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.columns.len().saturating_sub(self.next);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'c> IntoIterator for &'c Columns {
    type Item = &'c str;
    type IntoIter = Iter<'c>;

    fn into_iter(self) -> Iter<'c> {
        self.iter()
    }
}

impl<S: AsRef<str>> FromIterator<S> for Columns {
    fn from_iter<I: IntoIterator<Item = S>>(names: I) -> Columns {
        let mut c = Columns::new();
        c.extend(names);
        c
    }
}

impl<S: AsRef<str>> Extend<S> for Columns {
    fn extend<I: IntoIterator<Item = S>>(&mut self, names: I) {
        for n in names {
            self.push(n.as_ref());
        }
    }
}

impl<S: AsRef<str>, const N: usize> From<[S; N]> for Columns {
    fn from(names: [S; N]) -> Columns {
        names.into_iter().collect()
    }
}

impl<S: AsRef<str>> PartialEq<[S]> for Columns {
    fn eq(&self, other: &[S]) -> bool {
        self.len() == other.len() && self.iter().zip(other).all(|(a, b)| a == b.as_ref())
    }
}

impl<S: AsRef<str>, const N: usize> PartialEq<[S; N]> for Columns {
    fn eq(&self, other: &[S; N]) -> bool {
        *self == other[..]
    }
}

impl<S: AsRef<str>> PartialEq<Vec<S>> for Columns {
    fn eq(&self, other: &Vec<S>) -> bool {
        *self == other[..]
    }
}

impl fmt::Debug for Columns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_back_in_order_with_duplicates() {
        let mut c = Columns::new();
        assert!(c.is_empty());
        assert_eq!(c.iter().next(), None);
        c.push("fullname");
        c.push("");
        c.push("_parentcustomerid_value");
        c.push("fullname");
        c.push("ünïcode");
        let got: Vec<&str> = c.iter().collect();
        assert_eq!(
            got,
            [
                "fullname",
                "",
                "_parentcustomerid_value",
                "fullname",
                "ünïcode"
            ]
        );
        assert_eq!(c.len(), 5);
        assert_eq!(c.iter().len(), 5);
        assert_eq!(c.get(1), Some(""));
        assert_eq!(c.get(5), None);
        assert!(c.contains("_parentcustomerid_value"));
        assert!(!c.contains("parentcustomerid"));
        assert!(!c.contains("fullnamefullname"));
    }

    #[test]
    fn equality_is_of_the_sequence_not_the_text() {
        // The same bytes split differently are different columns.
        assert_ne!(Columns::from(["ab", "c"]), Columns::from(["a", "bc"]));
        assert_ne!(Columns::from(["a"]), Columns::from(["a", ""]));
        let owned: Vec<String> = vec!["a".into(), "b".into()];
        assert_eq!(Columns::from(["a", "b"]), owned.iter().collect::<Columns>());
        assert_eq!(Columns::from(["a", "b"]), owned);
        assert_eq!(Columns::from(["a", "b"]), vec!["a", "b"]);
        assert_ne!(Columns::from(["a", "b"]), vec!["b", "a"]);
    }

    #[test]
    fn retain_keeps_order_and_boundaries() {
        let mut c = Columns::from(["contactid", "fullname", "x", "contactid", "y"]);
        c.retain(|n| n != "contactid");
        assert_eq!(c, vec!["fullname", "x", "y"]);
        c.retain(|_| true);
        assert_eq!(c, vec!["fullname", "x", "y"]);
        c.retain(|_| false);
        assert!(c.is_empty());
        assert_eq!(c, Columns::new());
    }

    #[test]
    fn many_names_spill_past_the_inline_offsets() {
        let names: Vec<String> = (0..100).map(|i| format!("col{i}")).collect();
        let mut c: Columns = names.iter().collect();
        assert_eq!(c, names);
        let mut other = Columns::from(["a"]);
        other.append(&c);
        assert_eq!(other.len(), 101);
        assert_eq!(other.get(100), Some("col99"));
        c.retain(|n| n.ends_with('7'));
        assert_eq!(c.len(), 10);
        assert_eq!(format!("{c:?}").matches("col").count(), 10);
    }
}
