use std::fmt;

use regex::Regex;

/// How a [`Matcher`] compares a label's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`, fully anchored as in Prometheus
    Regex,
    /// `!~`, fully anchored as in Prometheus
    NotRegex,
}

/// A label matcher such as `job=~"node|api"`. A missing label matches as the empty string,
/// as in Prometheus.
#[derive(Clone)]
pub struct Matcher {
    /// The label name.
    pub name: String,
    /// The comparison.
    pub op: MatchOp,
    /// The literal value or regular expression source.
    pub value: String,
    regex: Option<Regex>,
    /// The pattern as a plain literal test, when it is one (`abc.*`, `.*abc`, `.*abc.*`).
    literal: Option<Literal>,
}

/// A regex of the shapes dashboards use most, tested without the regex engine (as
/// Prometheus's `FastRegexMatcher` does): a literal with `.*` on one or both ends, or a
/// pattern that matches a small finite set of strings (`a|b`, `node_load(1|5|15)`,
/// `host-0[0-4]`).
#[derive(Clone, Debug, PartialEq)]
enum Literal {
    Prefix(String),
    Suffix(String),
    Contains(String),
    /// Every string the pattern matches, sorted and unique.
    Set(Vec<String>),
}

/// Compiles `^(?s:pattern)$` (Prometheus's fully anchored regex), reusing the automaton of
/// an earlier call with the same pattern: dashboards and rules send the same queries again
/// and again, and building a regex's automaton costs more than most queries' evaluation.
/// Bounded: past 1,000 patterns the cache starts afresh.
pub fn anchored_regex(pattern: &str) -> Result<Regex, regex::Error> {
    static COMPILED: crate::Memo<Regex> = crate::Memo::new(1_000);
    COMPILED.get_or_try(pattern, || Regex::new(&format!("^(?s:{pattern})$")))
}

/// Most strings a pattern may expand to before it is kept as a regex.
const MAX_SET: usize = 256;

/// The strings `pattern` (fully anchored) matches, when they are few: regex-syntax's literal
/// extractor yields an exact, finite sequence exactly when the pattern's language is that
/// sequence. Patterns with anchors or other look-arounds are left to the regex engine (the
/// extractor reads them as empty strings).
fn exact_set(pattern: &str) -> Option<Vec<String>> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let hir = regex_syntax::ParserBuilder::new().dot_matches_new_line(true).build().parse(pattern).ok()?;
    if !hir.properties().look_set().is_empty() {
        return None;
    }
    let mut ex = Extractor::new();
    ex.kind(ExtractKind::Prefix).limit_class(16).limit_repeat(8).limit_literal_len(256).limit_total(MAX_SET);
    let seq = ex.extract(&hir);
    if !seq.is_exact() {
        return None;
    }
    let mut out: Vec<String> =
        seq.literals()?.iter().map(|l| String::from_utf8(l.as_bytes().to_vec()).ok()).collect::<Option<_>>()?;
    out.sort();
    out.dedup();
    (out.len() <= MAX_SET).then_some(out)
}

impl Literal {
    fn of(pattern: &str) -> Option<Literal> {
        Self::shape(pattern).or_else(|| exact_set(pattern).map(Literal::Set))
    }

    fn shape(pattern: &str) -> Option<Literal> {
        let plain = |s: &str| s.chars().all(|c| c.is_alphanumeric() || "_-:/ ,@=%".contains(c));
        let (start, rest) = match pattern.strip_prefix(".*") {
            Some(r) => (true, r),
            None => (false, pattern),
        };
        let (end, lit) = match rest.strip_suffix(".*") {
            Some(l) => (true, l),
            None => (false, rest),
        };
        if lit.is_empty() || !plain(lit) {
            return None;
        }
        match (start, end) {
            (false, true) => Some(Literal::Prefix(lit.to_string())),
            (true, false) => Some(Literal::Suffix(lit.to_string())),
            (true, true) => Some(Literal::Contains(lit.to_string())),
            (false, false) => None,
        }
    }

    fn matches(&self, v: &str) -> bool {
        match self {
            Literal::Prefix(p) => v.starts_with(p.as_str()),
            Literal::Suffix(s) => v.ends_with(s.as_str()),
            Literal::Contains(c) => v.contains(c.as_str()),
            Literal::Set(set) => set.binary_search_by(|x| x.as_str().cmp(v)).is_ok(),
        }
    }
}

impl Matcher {
    /// Builds a matcher; for regex ops the pattern is anchored (`^(?:...)$`) and compiled.
    pub fn new(op: MatchOp, name: impl Into<String>, value: impl Into<String>) -> Result<Self, regex::Error> {
        let value = value.into();
        let (regex, literal) = match op {
            MatchOp::Regex | MatchOp::NotRegex => match Literal::of(&value) {
                // A plain literal is a valid pattern; building the automaton costs more than the query.
                Some(lit) => (None, Some(lit)),
                None => (Some(anchored_regex(&value)?), None),
            },
            MatchOp::Equal | MatchOp::NotEqual => (None, None),
        };
        Ok(Self { name: name.into(), op, value, regex, literal })
    }

    /// `name="value"`.
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self { name: name.into(), op: MatchOp::Equal, value: value.into(), regex: None, literal: None }
    }

    /// Whether `value` (empty when the label is missing) satisfies the matcher.
    pub fn matches(&self, value: &str) -> bool {
        if let Some(lit) = &self.literal {
            return lit.matches(value) == (self.op == MatchOp::Regex);
        }
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => value == self.value,
            (MatchOp::NotEqual, _) => value != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(value),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(value),
            (MatchOp::Regex | MatchOp::NotRegex, None) => unreachable!("a regex or its literal form is built in new"),
        }
    }

    /// Whether a series without this label matches (so the matcher cannot narrow by index alone).
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// For `=~"abc.*"`, the literal every matching value starts with; lets a sorted index
    /// scan just that range of values.
    pub fn literal_prefix(&self) -> Option<&str> {
        match (&self.literal, self.op) {
            (Some(Literal::Prefix(p)), MatchOp::Regex) => Some(p),
            _ => None,
        }
    }

    /// For `=~` patterns matching a small finite set of strings (`a|b|c`,
    /// `node_load(1|5|15)`, `host-0[0-4]`), those strings; lets an index look each one up
    /// instead of scanning every value.
    pub fn set_values(&self) -> Option<Vec<&str>> {
        match (&self.literal, self.op) {
            (Some(Literal::Set(set)), MatchOp::Regex) => Some(set.iter().map(String::as_str).collect()),
            _ => None,
        }
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        };
        write!(f, "{}{}{:?}", self.name, op, self.value)
    }
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_is_anchored_and_missing_is_empty() {
        let m = Matcher::new(MatchOp::Regex, "job", "no.e").unwrap();
        assert!(m.matches("node"));
        assert!(!m.matches("nodes"));
        assert!(!m.matches_empty());
        assert!(Matcher::new(MatchOp::Regex, "job", "|x").unwrap().matches_empty());
        assert!(Matcher::new(MatchOp::NotEqual, "job", "x").unwrap().matches_empty());
        assert!(Matcher::new(MatchOp::Regex, "a", "x\ny").unwrap().matches("x\ny"));
    }

    #[test]
    fn literal_shapes_match_like_the_regex() {
        let values = ["", "host-000", "host-0001:9100", "xhost-000", "a\nhost-000", "node", "host-00"];
        for pattern in ["host-000.*", ".*9100", ".*st-0.*", ".*", "host.", "h.*t", "(a|b).*"] {
            for op in [MatchOp::Regex, MatchOp::NotRegex] {
                let fast = Matcher::new(op, "i", pattern).unwrap();
                let slow = Regex::new(&format!("^(?s:{pattern})$")).unwrap();
                for v in values {
                    assert_eq!(fast.matches(v), slow.is_match(v) == (op == MatchOp::Regex), "{pattern} {op:?} {v:?}");
                }
            }
        }
        let m = Matcher::new(MatchOp::Regex, "i", "host-000.*").unwrap();
        assert_eq!(m.literal_prefix(), Some("host-000"));
        assert_eq!(Matcher::new(MatchOp::NotRegex, "i", "host-000.*").unwrap().literal_prefix(), None);
        assert_eq!(Matcher::new(MatchOp::Regex, "i", ".*x").unwrap().literal_prefix(), None);
    }

    #[test]
    fn literal_alternatives() {
        let m = Matcher::new(MatchOp::Regex, "job", "a|b-c").unwrap();
        assert_eq!(m.set_values(), Some(vec!["a", "b-c"]));
        assert_eq!(Matcher::new(MatchOp::Regex, "job", "a.*").unwrap().set_values(), None);
        let set = |p: &str| Matcher::new(MatchOp::Regex, "x", p).unwrap().set_values().map(|v| v.join(","));
        assert_eq!(set("node_load(1|5|15)").as_deref(), Some("node_load1,node_load15,node_load5"));
        assert_eq!(
            set("host-0000[0-4]:9100").as_deref(),
            Some("host-00000:9100,host-00001:9100,host-00002:9100,host-00003:9100,host-00004:9100")
        );
        assert_eq!(set("(?i)ab").as_deref(), Some("AB,Ab,aB,ab"));
        assert_eq!(set("a|").as_deref(), Some(",a"));
        assert_eq!(set("a.b"), None, "any character is too many");
        assert_eq!(set("a+"), None, "infinite");
        assert_eq!(set("^a$"), None, "anchors stay with the regex engine");
        assert_eq!(set("[0-9]{4}"), None, "10,000 strings is too many");
    }

    proptest::proptest! {
        /// The fast forms (literal shapes and finite sets) agree with the anchored regex.
        #[test]
        fn fast_forms_agree_with_the_regex(
            pattern in "(a|b|ab|\\.|\\[ab\\]|\\(a\\|b\\)|\\?|\\*|\\||\\.\\*|\\^|\\$|\\(\\?i\\)){0,6}",
            values in proptest::collection::vec("[abAB.\n]{0,4}", 8),
        ) {
            let Ok(slow) = Regex::new(&format!("^(?s:{pattern})$")) else { return Ok(()) };
            for op in [MatchOp::Regex, MatchOp::NotRegex] {
                let fast = Matcher::new(op, "x", pattern.as_str()).unwrap();
                for v in &values {
                    proptest::prop_assert_eq!(fast.matches(v), slow.is_match(v) == (op == MatchOp::Regex), "{} {:?} {:?}", pattern, op, v);
                }
            }
        }
    }
}
