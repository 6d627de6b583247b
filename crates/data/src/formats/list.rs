//! The result of reading a label list: one entry per usable line, with the line it came from
//! and how many lines one pass over the file steps through (what stream composition counts).

use std::path::PathBuf;

/// One image of a label list and its label.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry<L> {
    /// 1-based line of the label file.
    pub line: usize,
    /// The image file (data directory joined with the listed name).
    pub image: PathBuf,
    pub label: L,
}

/// Which rows one pass of the official loop over a label file visits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visited {
    /// Lines `first..=last` (after any header); lines without an entry (blank, `nan`, another
    /// split) are visited but yield nothing.
    Lines { first: usize, last: usize },
    /// Exactly the entries (a list filtered out of a larger file, e.g. one CelebA partition).
    Entries,
}

/// A label file read into entries.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelList<L> {
    pub label_file: PathBuf,
    pub visited: Visited,
    /// In file order.
    pub entries: Vec<Entry<L>>,
}

impl<L> LabelList<L> {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of rows one pass visits.
    pub fn rows(&self) -> usize {
        match self.visited {
            Visited::Lines { first, last } => (last + 1).saturating_sub(first),
            Visited::Entries => self.entries.len(),
        }
    }

    /// For each visited row in order, the index of its entry, if it has one.
    pub fn row_entries(&self) -> Vec<Option<u32>> {
        let Visited::Lines { first, .. } = self.visited else {
            return (0..self.entries.len() as u32).map(Some).collect();
        };
        let mut rows = vec![None; self.rows()];
        for (i, e) in self.entries.iter().enumerate() {
            if let Some(slot) = e.line.checked_sub(first).and_then(|r| rows.get_mut(r)) {
                *slot = Some(i as u32);
            }
        }
        rows
    }

    /// Keeps only the entries `keep` accepts (their lines stay visited rows).
    pub fn retain(&mut self, keep: impl FnMut(&Entry<L>) -> bool) {
        self.entries.retain(keep);
    }
}
