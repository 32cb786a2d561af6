use std::cmp::Ordering;
use std::fmt;

/// The label that holds a series' metric name.
pub const METRIC_NAME: &str = "__name__";

/// A series' identity: label pairs sorted by name, names unique, values non-empty.
///
/// Stored as one buffer of `varint(len) name varint(len) value` per label, in name order.
/// Equality and hashing work on the bytes; ordering is Prometheus's (name, then value,
/// label by label). [`Labels::as_bytes`] and [`Labels::from_encoded`] expose the encoding
/// so that storage can persist it unchanged.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Labels(Box<[u8]>);

/// Why a label set could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LabelsError {
    /// The same label name appeared twice.
    #[error("duplicate label name {0:?}")]
    Duplicate(String),
    /// A label name was empty.
    #[error("empty label name")]
    EmptyName,
    /// Encoded bytes were not a valid label set.
    #[error("invalid encoded label set: {0}")]
    Corrupt(&'static str),
}

impl Labels {
    /// The empty label set.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Builds a label set from pairs in any order; empty values are dropped.
    pub fn from_pairs<'a, I>(pairs: I) -> Result<Self, LabelsError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut b = LabelsBuilder::new();
        for (n, v) in pairs {
            b.push(n, v);
        }
        b.build()
    }

    /// Rebuilds a label set from [`Labels::as_bytes`] output, checking its structure.
    pub fn from_encoded(bytes: &[u8]) -> Result<Self, LabelsError> {
        let mut it = RawIter { buf: bytes };
        let mut prev: Option<&str> = None;
        while !it.buf.is_empty() {
            let (n, v) = it.try_next()?;
            if n.is_empty() {
                return Err(LabelsError::EmptyName);
            }
            if v.is_empty() {
                return Err(LabelsError::Corrupt("empty label value"));
            }
            if let Some(p) = prev {
                match p.cmp(n) {
                    Ordering::Less => {}
                    Ordering::Equal => return Err(LabelsError::Duplicate(n.to_string())),
                    Ordering::Greater => return Err(LabelsError::Corrupt("labels not sorted")),
                }
            }
            prev = Some(n);
        }
        Ok(Self(bytes.into()))
    }

    /// The encoded form (see the type's docs).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Label pairs in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        RawIter { buf: &self.0 }.map(|r| r.expect("labels are validated on construction"))
    }

    /// The value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        let mut it = RawIter { buf: &self.0 };
        while let Some((n, v)) = it.next_bytes() {
            if n == name.as_bytes() {
                return Some(std::str::from_utf8(v).expect("labels are validated on construction"));
            }
        }
        None
    }

    /// The metric name (`__name__`), if present.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        let mut it = RawIter { buf: &self.0 };
        std::iter::from_fn(|| it.next_bytes()).count()
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A builder holding these labels, for adding, replacing or removing some.
    pub fn to_builder(&self) -> LabelsBuilder<'_> {
        let mut b = LabelsBuilder::new();
        b.pairs.extend(self.iter());
        b
    }
}

impl Ord for Labels {
    fn cmp(&self, other: &Self) -> Ordering {
        let (mut a, mut b) = (RawIter { buf: &self.0 }, RawIter { buf: &other.0 });
        std::iter::from_fn(|| a.next_bytes()).cmp(std::iter::from_fn(|| b.next_bytes()))
    }
}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Prometheus's notation: `name{a="1", b="2"}`.
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.metric_name();
        if let Some(n) = name {
            f.write_str(n)?;
        }
        let mut rest = self.iter().filter(|(n, _)| *n != METRIC_NAME).peekable();
        if rest.peek().is_none() && name.is_some() {
            return Ok(());
        }
        f.write_str("{")?;
        for (i, (n, v)) in rest.enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{n}={v:?}")?;
        }
        f.write_str("}")
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Collects borrowed pairs, then encodes them into a [`Labels`] in one allocation.
/// Reuse one builder across series (`clear`) to avoid reallocating its pair list.
#[derive(Debug, Default, Clone)]
pub struct LabelsBuilder<'a> {
    pairs: Vec<(&'a str, &'a str)>,
}

impl<'a> LabelsBuilder<'a> {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a pair; duplicates are reported by [`LabelsBuilder::build`].
    pub fn push(&mut self, name: &'a str, value: &'a str) -> &mut Self {
        self.pairs.push((name, value));
        self
    }

    /// Sets `name` to `value`, replacing an existing value; an empty value removes it.
    pub fn set(&mut self, name: &'a str, value: &'a str) -> &mut Self {
        self.pairs.retain(|(n, _)| *n != name);
        self.pairs.push((name, value));
        self
    }

    /// Removes `name` if present.
    pub fn remove(&mut self, name: &str) -> &mut Self {
        self.pairs.retain(|(n, _)| *n != name);
        self
    }

    /// Keeps only the labels for which `keep` returns true.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &str) -> bool) -> &mut Self {
        self.pairs.retain(|(n, v)| keep(n, v));
        self
    }

    /// The value currently set for `name`.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.pairs.iter().rev().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    /// Forgets every pair, keeping the allocation.
    pub fn clear(&mut self) {
        self.pairs.clear();
    }

    /// Sorts, drops empty values, rejects empty or duplicate names, and encodes.
    pub fn build(&mut self) -> Result<Labels, LabelsError> {
        self.pairs.retain(|(_, v)| !v.is_empty());
        if !self.pairs.windows(2).all(|w| w[0].0 < w[1].0) {
            self.pairs.sort_unstable_by(|a, b| a.0.cmp(b.0));
            if let Some(w) = self.pairs.windows(2).find(|w| w[0].0 == w[1].0) {
                return Err(LabelsError::Duplicate(w[0].0.to_string()));
            }
        }
        let mut size = 0;
        for (n, v) in &self.pairs {
            if n.is_empty() {
                return Err(LabelsError::EmptyName);
            }
            size += varint_len(n.len()) + n.len() + varint_len(v.len()) + v.len();
        }
        let mut buf = Vec::with_capacity(size);
        for (n, v) in &self.pairs {
            put_varint(&mut buf, n.len());
            buf.extend_from_slice(n.as_bytes());
            put_varint(&mut buf, v.len());
            buf.extend_from_slice(v.as_bytes());
        }
        Ok(Labels(buf.into_boxed_slice()))
    }
}

fn varint_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

fn put_varint(buf: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        buf.push((n as u8) | 0x80);
        n >>= 7;
    }
    buf.push(n as u8);
}

struct RawIter<'a> {
    buf: &'a [u8],
}

impl<'a> RawIter<'a> {
    fn varint(&mut self) -> Result<usize, LabelsError> {
        let mut n = 0usize;
        for (i, &b) in self.buf.iter().enumerate().take(5) {
            n |= ((b & 0x7f) as usize) << (7 * i);
            if b < 0x80 {
                self.buf = &self.buf[i + 1..];
                return Ok(n);
            }
        }
        Err(LabelsError::Corrupt("bad length"))
    }

    fn bytes(&mut self) -> Result<&'a [u8], LabelsError> {
        let len = self.varint()?;
        if len > self.buf.len() {
            return Err(LabelsError::Corrupt("length past end"));
        }
        let (s, rest) = self.buf.split_at(len);
        self.buf = rest;
        Ok(s)
    }

    fn str(&mut self) -> Result<&'a str, LabelsError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| LabelsError::Corrupt("not utf-8"))
    }

    /// The next pair as bytes, unchecked for UTF-8: for comparing and searching, where
    /// bytes are enough (UTF-8 orders like its code points).
    fn next_bytes(&mut self) -> Option<(&'a [u8], &'a [u8])> {
        if self.buf.is_empty() {
            return None;
        }
        Some((self.bytes().ok()?, self.bytes().ok()?))
    }

    fn try_next(&mut self) -> Result<(&'a str, &'a str), LabelsError> {
        Ok((self.str()?, self.str()?))
    }
}

impl<'a> Iterator for RawIter<'a> {
    type Item = Result<(&'a str, &'a str), LabelsError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() {
            None
        } else {
            Some(self.try_next())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn builds_sorted_and_drops_empty_values() {
        let l = Labels::from_pairs([("b", "2"), ("__name__", "up"), ("a", "1"), ("c", "")]).unwrap();
        assert_eq!(l.iter().collect::<Vec<_>>(), [("__name__", "up"), ("a", "1"), ("b", "2")]);
        assert_eq!(l.metric_name(), Some("up"));
        assert_eq!(l.to_string(), r#"up{a="1", b="2"}"#);
        assert_eq!(Labels::from_pairs([("a", "x")]).unwrap().to_string(), r#"{a="x"}"#);
    }

    #[test]
    fn rejects_duplicates_and_empty_names() {
        assert_eq!(Labels::from_pairs([("a", "1"), ("a", "2")]), Err(LabelsError::Duplicate("a".into())));
        assert_eq!(Labels::from_pairs([("", "1")]), Err(LabelsError::EmptyName));
    }

    #[test]
    fn orders_like_prometheus() {
        let a = Labels::from_pairs([("a", "1"), ("b", "1")]).unwrap();
        let b = Labels::from_pairs([("a", "10")]).unwrap();
        let c = Labels::from_pairs([("aa", "0")]).unwrap();
        assert!(a < b && b < c);
    }

    #[test]
    fn from_encoded_rejects_garbage() {
        assert!(Labels::from_encoded(&[5, b'a']).is_err());
        assert!(Labels::from_encoded(&[1, b'b', 1, b'1', 1, b'a', 1, b'1']).is_err());
    }

    proptest! {
        #[test]
        fn encoding_round_trips(pairs in proptest::collection::btree_map("[a-z_]{1,8}", ".{1,200}", 0..20)) {
            let l = Labels::from_pairs(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))).unwrap();
            let back: Vec<_> = l.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
            prop_assert_eq!(back, pairs.into_iter().collect::<Vec<_>>());
            prop_assert_eq!(Labels::from_encoded(l.as_bytes()).unwrap(), l);
        }

        #[test]
        fn byte_order_get_and_len_agree_with_the_pairs(
            a in proptest::collection::btree_map("[a-c_]{1,3}", ".{1,4}", 0..5),
            b in proptest::collection::btree_map("[a-c_]{1,3}", ".{1,4}", 0..5),
        ) {
            let la = Labels::from_pairs(a.iter().map(|(n, v)| (n.as_str(), v.as_str()))).unwrap();
            let lb = Labels::from_pairs(b.iter().map(|(n, v)| (n.as_str(), v.as_str()))).unwrap();
            prop_assert_eq!(la.cmp(&lb), la.iter().cmp(lb.iter()));
            prop_assert_eq!(la.len(), a.len());
            for (n, v) in &a {
                prop_assert_eq!(la.get(n), Some(v.as_str()));
            }
            prop_assert_eq!(la.get("zz"), None);
        }
    }
}
