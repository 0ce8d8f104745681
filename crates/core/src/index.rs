//! Reader for kmod's binary index files (`modules.dep.bin`, `modules.alias.bin`, ...):
//! a big-endian trie, magic `0xB007F457`, version 2.1. It works on a byte slice (the
//! host maps the file) and reads only the nodes a lookup touches.

use crate::fnmatch::fnmatch;

const MAGIC: u32 = 0xB007_F457;
const VERSION_MAJOR: u32 = 2;
const NODE_PREFIX: u32 = 0x8000_0000;
const NODE_VALUES: u32 = 0x4000_0000;
const NODE_CHILDS: u32 = 0x2000_0000;
const NODE_MASK: u32 = 0x0FFF_FFFF;
/// Deeper than any real key: a corrupt file with a cycle stops here instead of looping.
const MAX_DEPTH: usize = 4096;

/// A corrupt or truncated index: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt index at offset {offset}: {reason}")]
pub struct IndexError {
    pub offset: usize,
    pub reason: &'static str,
}

fn corrupt<T>(offset: usize, reason: &'static str) -> Result<T, IndexError> {
    Err(IndexError { offset, reason })
}

/// One value stored in the index, with the priority depmod gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexValue {
    pub priority: u32,
    pub value: String,
}

/// A validated view of one index file.
#[derive(Debug, Clone, Copy)]
pub struct BinIndex<'a> {
    data: &'a [u8],
    root: u32,
}

struct Node<'a> {
    prefix: &'a [u8],
    first: u8,
    last: u8,
    children: &'a [u8],
    value_count: u32,
    values: &'a [u8],
    values_at: usize,
}

impl Node<'_> {
    const EMPTY: Node<'static> = Node {
        prefix: &[],
        first: 1,
        last: 0,
        children: &[],
        value_count: 0,
        values: &[],
        values_at: 0,
    };
}

impl<'a> BinIndex<'a> {
    /// Checks the header; nodes are checked as lookups reach them.
    ///
    /// A 0-byte file is an index with no entries: depmod writes one for
    /// `modules.builtin.alias.bin` when the kernel has no `modules.builtin.modinfo`
    /// (every kernel before 5.2), and kmod answers "not found" from it.
    pub fn new(data: &'a [u8]) -> Result<Self, IndexError> {
        if data.is_empty() {
            return Ok(Self { data, root: 0 });
        }
        if data.len() < 12 {
            return corrupt(0, "shorter than the 12-byte header");
        }
        if be32(data, 0) != Some(MAGIC) {
            return corrupt(0, "bad magic (not a kmod index)");
        }
        let version = be32(data, 4).unwrap_or(0);
        if version >> 16 != VERSION_MAJOR {
            return corrupt(4, "unsupported index version");
        }
        let root = be32(data, 8).unwrap_or(0);
        Ok(Self { data, root })
    }

    fn node(&self, offset: u32) -> Result<Node<'a>, IndexError> {
        if self.data.is_empty() {
            return Ok(Node::EMPTY);
        }
        let mut at = (offset & NODE_MASK) as usize;
        let start = at;
        // A node with no flags holds no bytes: depmod writes an index with no entries
        // as the header and a root offset pointing just past it, at the end of the file.
        let needs_bytes = offset & (NODE_PREFIX | NODE_CHILDS | NODE_VALUES) != 0;
        if at < 12 || at > self.data.len() || (needs_bytes && at == self.data.len()) {
            return corrupt(start, "node offset outside the file");
        }
        let mut prefix: &[u8] = &[];
        if offset & NODE_PREFIX != 0 {
            let rest = &self.data[at..];
            let Some(len) = rest.iter().position(|&b| b == 0) else {
                return corrupt(at, "unterminated node prefix");
            };
            prefix = &rest[..len];
            at += len + 1;
        }
        let (mut first, mut last, mut children): (u8, u8, &[u8]) = (1, 0, &[]);
        if offset & NODE_CHILDS != 0 {
            if at + 2 > self.data.len() {
                return corrupt(at, "truncated child range");
            }
            first = self.data[at];
            last = self.data[at + 1];
            at += 2;
            if last < first {
                return corrupt(at - 2, "child range ends before it starts");
            }
            let n = (last - first) as usize + 1;
            let Some(slice) = self.data.get(at..at + 4 * n) else {
                return corrupt(at, "truncated child table");
            };
            children = slice;
            at += 4 * n;
        }
        let (mut value_count, mut values, mut values_at) = (0, &[][..], at);
        if offset & NODE_VALUES != 0 {
            let Some(count) = be32(self.data, at) else {
                return corrupt(at, "truncated value count");
            };
            value_count = count;
            values_at = at + 4;
            values = &self.data[values_at..];
        }
        Ok(Node {
            prefix,
            first,
            last,
            children,
            value_count,
            values,
            values_at,
        })
    }

    fn child(&self, node: &Node<'a>, ch: u8) -> Result<Option<Node<'a>>, IndexError> {
        if node.children.is_empty() || ch < node.first || ch > node.last {
            return Ok(None);
        }
        let i = (ch - node.first) as usize * 4;
        let off = be32(node.children, i).unwrap_or(0);
        if off == 0 {
            return Ok(None);
        }
        self.node(off).map(Some)
    }

    /// The node's values, and how many bytes of the file they took.
    fn values(&self, node: &Node<'a>) -> Result<(Vec<IndexValue>, usize), IndexError> {
        // The count comes from the file: never trust it for an allocation.
        let mut out = Vec::with_capacity((node.value_count as usize).min(node.values.len() / 5));
        let mut at = 0usize;
        for _ in 0..node.value_count {
            let Some(priority) = be32(node.values, at) else {
                return corrupt(node.values_at + at, "truncated value");
            };
            at += 4;
            let rest = node.values.get(at..).unwrap_or(&[]);
            let Some(len) = rest.iter().position(|&b| b == 0) else {
                return corrupt(node.values_at + at, "unterminated value");
            };
            let value = String::from_utf8_lossy(&rest[..len]).into_owned();
            at += len + 1;
            out.push(IndexValue { priority, value });
        }
        Ok((out, at))
    }

    /// Exact lookup: the first value stored under `key` (kmod's `index_mm_search`).
    pub fn search(&self, key: &str) -> Result<Option<String>, IndexError> {
        let key = key.as_bytes();
        let mut node = self.node(self.root)?;
        let mut i = 0usize;
        for _ in 0..MAX_DEPTH {
            for &b in node.prefix {
                if key.get(i) != Some(&b) {
                    return Ok(None);
                }
                i += 1;
            }
            if i == key.len() {
                return Ok(self.values(&node)?.0.into_iter().next().map(|v| v.value));
            }
            match self.child(&node, key[i])? {
                Some(c) => node = c,
                None => return Ok(None),
            }
            i += 1;
        }
        corrupt(
            self.root as usize & NODE_MASK as usize,
            "trie deeper than any key",
        )
    }

    /// Wildcard lookup: the values of every stored pattern that matches `key`, ordered by
    /// priority as kmod's `index_mm_searchwild` orders them.
    pub fn search_wild(&self, key: &str) -> Result<Vec<IndexValue>, IndexError> {
        let mut found = Found {
            values: Vec::new(),
            budget: Budget::new(self.data),
        };
        let mut buf = Vec::new();
        let root = self.node(self.root)?;
        self.wild_node(root, &mut buf, key.as_bytes(), &mut found)?;
        Ok(found.values)
    }

    fn wild_node(
        &self,
        mut node: Node<'a>,
        buf: &mut Vec<u8>,
        key: &[u8],
        found: &mut Found,
    ) -> Result<(), IndexError> {
        let mut i = 0usize;
        for _ in 0..MAX_DEPTH {
            for (j, &ch) in node.prefix.iter().enumerate() {
                if matches!(ch, b'*' | b'?' | b'[') {
                    return self.wild_all(&node, j, buf, &key[(i + j).min(key.len())..], found, 0);
                }
                if key.get(i + j) != Some(&ch) {
                    return Ok(());
                }
            }
            i += node.prefix.len();
            for w in [b'*', b'?', b'['] {
                if let Some(child) = self.child(&node, w)? {
                    buf.push(w);
                    self.wild_all(&child, 0, buf, &key[i..], found, 0)?;
                    buf.pop();
                }
            }
            if i == key.len() {
                for v in self.values(&node)?.0 {
                    add_value(&mut found.values, v);
                }
                return Ok(());
            }
            match self.child(&node, key[i])? {
                Some(c) => node = c,
                None => return Ok(()),
            }
            i += 1;
        }
        corrupt(
            self.root as usize & NODE_MASK as usize,
            "trie deeper than any key",
        )
    }

    fn wild_all(
        &self,
        node: &Node<'a>,
        j: usize,
        buf: &mut Vec<u8>,
        subkey: &[u8],
        found: &mut Found,
        depth: usize,
    ) -> Result<(), IndexError> {
        if depth > MAX_DEPTH {
            return corrupt(node.values_at, "trie deeper than any key");
        }
        found.budget.visit(node)?;
        let pushed = node.prefix.len() - j;
        buf.extend_from_slice(&node.prefix[j..]);
        if !node.children.is_empty() {
            for ch in node.first..=node.last {
                if let Some(child) = self.child(node, ch)? {
                    buf.push(ch);
                    self.wild_all(&child, 0, buf, subkey, found, depth + 1)?;
                    buf.pop();
                }
            }
        }
        if node.value_count > 0 {
            let pattern = String::from_utf8_lossy(buf);
            if fnmatch(&pattern, &String::from_utf8_lossy(subkey)) {
                let (values, bytes) = self.values(node)?;
                found.budget.spend(node.values_at, bytes)?;
                for v in values {
                    add_value(&mut found.values, v);
                }
            }
        }
        buf.truncate(buf.len() - pushed);
        Ok(())
    }

    /// Every (key, value) pair, in trie order. Used to cross-check the text forms.
    pub fn dump(&self) -> Result<Vec<(String, IndexValue)>, IndexError> {
        let mut out = Vec::new();
        let mut buf = Vec::new();
        let root = self.node(self.root)?;
        let mut budget = Budget::new(self.data);
        self.dump_node(&root, &mut buf, &mut out, 0, &mut budget)?;
        Ok(out)
    }

    fn dump_node(
        &self,
        node: &Node<'a>,
        buf: &mut Vec<u8>,
        out: &mut Vec<(String, IndexValue)>,
        depth: usize,
        budget: &mut Budget,
    ) -> Result<(), IndexError> {
        if depth > MAX_DEPTH {
            return corrupt(node.values_at, "trie deeper than any key");
        }
        budget.visit(node)?;
        let len = buf.len();
        buf.extend_from_slice(node.prefix);
        let (values, bytes) = self.values(node)?;
        budget.spend(node.values_at, bytes)?;
        for v in values {
            out.push((String::from_utf8_lossy(buf).into_owned(), v));
        }
        if !node.children.is_empty() {
            for ch in node.first..=node.last {
                if let Some(child) = self.child(node, ch)? {
                    buf.push(ch);
                    self.dump_node(&child, buf, out, depth + 1, budget)?;
                    buf.pop();
                }
            }
        }
        buf.truncate(len);
        Ok(())
    }
}

/// What a wildcard walk has found so far, and what it may still meet.
struct Found {
    values: Vec<IndexValue>,
    budget: Budget,
}

/// Why a walk that meets more than the file holds stops (see [`Budget`]).
const OVERREAD: &str =
    "a walk meets more than the file holds (nodes shared by several parents or laid over one another)";

/// What a walk over the whole trie may still meet in a file this size. depmod writes
/// every node once: each node but the root has a four-byte slot of its own in its
/// parent's child table, and its prefix, child table and values are bytes of its own.
/// A walk that meets more nodes is going round a subtree shared by several parents (time
/// exponential in the file's size); one that meets more bytes is reading nodes laid over
/// one another (keys and values as long as the file, once per node).
struct Budget {
    nodes: usize,
    bytes: usize,
}

impl Budget {
    fn new(data: &[u8]) -> Self {
        Budget {
            nodes: data.len() / 4 + 1,
            bytes: data.len(),
        }
    }

    /// Counts one node, its prefix and its child table.
    fn visit(&mut self, node: &Node<'_>) -> Result<(), IndexError> {
        if self.nodes == 0 {
            return corrupt(node.values_at, OVERREAD);
        }
        self.nodes -= 1;
        self.spend(node.values_at, node.prefix.len() + node.children.len())
    }

    /// Counts bytes of a node read as the walk goes (its values).
    fn spend(&mut self, at: usize, bytes: usize) -> Result<(), IndexError> {
        match self.bytes.checked_sub(bytes) {
            Some(left) => {
                self.bytes = left;
                Ok(())
            }
            None => corrupt(at, OVERREAD),
        }
    }
}

/// kmod's `add_value`: keep the list sorted by priority; a value goes before the first
/// one whose priority is not lower than its own.
pub(crate) fn add_value(out: &mut Vec<IndexValue>, v: IndexValue) {
    let pos = out
        .iter()
        .position(|e| e.priority >= v.priority)
        .unwrap_or(out.len());
    out.insert(pos, v);
}

fn be32(data: &[u8], at: usize) -> Option<u32> {
    let b = data.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

#[cfg(test)]
pub(crate) mod tests;
