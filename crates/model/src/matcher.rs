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
}

impl Matcher {
    /// Builds a matcher; for regex ops the pattern is anchored (`^(?:...)$`) and compiled.
    pub fn new(op: MatchOp, name: impl Into<String>, value: impl Into<String>) -> Result<Self, regex::Error> {
        let value = value.into();
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(Regex::new(&format!("^(?s:{value})$"))?),
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        Ok(Self { name: name.into(), op, value, regex })
    }

    /// `name="value"`.
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self { name: name.into(), op: MatchOp::Equal, value: value.into(), regex: None }
    }

    /// Whether `value` (empty when the label is missing) satisfies the matcher.
    pub fn matches(&self, value: &str) -> bool {
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => value == self.value,
            (MatchOp::NotEqual, _) => value != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(value),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(value),
            (MatchOp::Regex | MatchOp::NotRegex, None) => unreachable!("regex compiled in new"),
        }
    }

    /// Whether a series without this label matches (so the matcher cannot narrow by index alone).
    pub fn matches_empty(&self) -> bool {
        self.matches("")
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
    fn literal_alternatives() {
        let m = Matcher::new(MatchOp::Regex, "job", "a|b-c").unwrap();
        assert_eq!(m.set_values(), Some(vec!["a", "b-c"]));
        assert_eq!(Matcher::new(MatchOp::Regex, "job", "a.*").unwrap().set_values(), None);
    }
}
