//! The raw client's HPACK encoders (the decoder is `loona_hpack`'s).

use std::collections::VecDeque;

use super::frame::Field;

/// The client's HPACK encoder.
pub enum Hpack {
    /// `loona_hpack`'s encoder: names from the static table, values literal; only fields
    /// whose name is in no table enter the dynamic table.
    Static(loona_hpack::Encoder<'static>),
    /// Every field enters the dynamic table; a repeat is sent as a one-byte index.
    Dynamic(Table),
}

impl Hpack {
    pub fn fixed() -> Self {
        Hpack::Static(loona_hpack::Encoder::new())
    }

    pub fn dynamic() -> Self {
        Hpack::Dynamic(Table::new())
    }

    pub fn encode(&mut self, fields: &[Field]) -> Vec<u8> {
        match self {
            Hpack::Static(e) => e.encode(fields.iter().map(|(n, v)| (&n[..], &v[..]))),
            Hpack::Dynamic(t) => t.encode(fields),
        }
    }
}

/// An encoder-side HPACK dynamic table (RFC 7541 §4), literals never Huffman-coded.
pub struct Table {
    entries: VecDeque<Field>,
    size: usize,
    max: usize,
    updates: Vec<usize>,
}

impl Table {
    fn new() -> Self {
        Self {
            entries: VecDeque::new(),
            size: 0,
            max: 4096,
            updates: Vec::new(),
        }
    }

    /// Changes the table size, announced at the start of the next header block.
    pub fn resize(&mut self, max: usize) {
        self.updates.push(max);
        self.max = max;
        self.evict();
    }

    fn evict(&mut self) {
        while self.size > self.max {
            let (n, v) = self.entries.pop_back().unwrap();
            self.size -= n.len() + v.len() + 32;
        }
    }

    fn encode(&mut self, fields: &[Field]) -> Vec<u8> {
        let mut out = Vec::new();
        for max in self.updates.drain(..) {
            integer(&mut out, 5, 0x20, max);
        }
        for (n, v) in fields {
            if let Some(i) = self.entries.iter().position(|(en, ev)| en == n && ev == v) {
                integer(&mut out, 7, 0x80, 62 + i);
            } else {
                // Literal with incremental indexing, new name.
                out.push(0x40);
                integer(&mut out, 7, 0, n.len());
                out.extend_from_slice(n);
                integer(&mut out, 7, 0, v.len());
                out.extend_from_slice(v);
                self.entries.push_front((n.clone(), v.clone()));
                self.size += n.len() + v.len() + 32;
                self.evict();
            }
        }
        out
    }
}

fn integer(out: &mut Vec<u8>, prefix: u32, flags: u8, value: usize) {
    let max = (1usize << prefix) - 1;
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max as u8);
    let mut rest = value - max;
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
}
