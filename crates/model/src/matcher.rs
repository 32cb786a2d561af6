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

/// A regex of the shape dashboards use most, tested without the regex engine (as
/// Prometheus's `FastRegexMatcher` does): a literal with `.*` on one or both ends.
#[derive(Clone, Debug, PartialEq)]
enum Literal {
    Prefix(String),
    Suffix(String),
    Contains(String),
}

impl Literal {
    fn of(pattern: &str) -> Option<Literal> {
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
                None => (Some(Regex::new(&format!("^(?s:{value})$"))?), None),
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

    /// For `=~"a|b|c"` with plain literals, the literal alternatives; lets an index look
    /// each one up instead of scanning every value.
    pub fn set_values(&self) -> Option<Vec<&str>> {
        if self.op != MatchOp::Regex {
            return None;
        }
        let plain = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || "_-:/ ,@".contains(c));
        let alts: Vec<&str> = self.value.split('|').collect();
        alts.iter().all(|a| plain(a)).then_some(alts)
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
    }
}
