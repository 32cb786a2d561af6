//! The `| json` parser without parameters: every scalar of a JSON object becomes a label,
//! nested keys joined with `_` (`{"a":{"b":1}}` gives `a_b`), arrays skipped, `null` giving an
//! empty value, and numbers keeping the text they were written with (as Loki's jsonparser).
//! A hand-written scanner, so no number is reformatted and nothing but the labels is built.

/// Appends `(label, value)` for every scalar of the object in `b`.
pub(crate) fn flatten(b: &[u8], out: &mut Vec<(String, String)>) -> Result<(), String> {
    let mut s = Scan { b, i: 0 };
    s.ws();
    if s.peek() != Some(b'{') {
        return Err("expected a JSON object".into());
    }
    let mut prefix = String::new();
    s.object(&mut prefix, out)?;
    s.ws();
    if s.i != b.len() {
        return Err(format!("unexpected data after the object at offset {}", s.i));
    }
    Ok(())
}

struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scan<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn err(&self, what: &str) -> String {
        format!("{what} at offset {}", self.i)
    }

    fn object(&mut self, prefix: &mut String, out: &mut Vec<(String, String)>) -> Result<(), String> {
        self.i += 1;
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a key"));
            }
            let key = self.string()?;
            self.ws();
            if self.peek() != Some(b':') {
                return Err(self.err("expected ':'"));
            }
            self.i += 1;
            self.ws();
            let saved = prefix.len();
            let part = sanitize_part(&key, prefix.is_empty());
            if !part.is_empty() {
                if !prefix.is_empty() {
                    prefix.push('_');
                }
                prefix.push_str(&part);
            }
            match self.peek() {
                Some(b'{') => self.object(prefix, out)?,
                Some(b'[') => self.skip_value()?,
                Some(b'"') => {
                    let v = self.string()?;
                    out.push((prefix.clone(), v));
                }
                Some(_) => {
                    let start = self.i;
                    self.skip_value()?;
                    let raw = std::str::from_utf8(&self.b[start..self.i]).map_err(|_| self.err("invalid utf-8"))?;
                    let v = if raw == "null" { String::new() } else { raw.to_string() };
                    out.push((prefix.clone(), v));
                }
                None => return Err(self.err("unexpected end")),
            }
            prefix.truncate(saved);
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(self.err("expected ',' or '}'")),
            }
        }
    }

    fn string(&mut self) -> Result<String, String> {
        let start = self.i;
        self.i += 1;
        let mut escaped = false;
        while let Some(c) = self.peek() {
            self.i += 1;
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                let raw = &self.b[start..self.i];
                return match std::str::from_utf8(raw) {
                    Ok(s) if !s.contains('\\') => Ok(s[1..s.len() - 1].to_string()),
                    Ok(s) => serde_json::from_str::<String>(s).map_err(|e| e.to_string()),
                    Err(_) => Ok(String::from_utf8_lossy(&raw[1..raw.len() - 1]).replace('\u{fffd}', "")),
                };
            }
        }
        Err(self.err("unterminated string"))
    }

    fn skip_value(&mut self) -> Result<(), String> {
        match self.peek() {
            Some(b'"') => self.string().map(drop),
            Some(b'{') | Some(b'[') => {
                let mut depth = 0usize;
                while let Some(c) = self.peek() {
                    match c {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                return Ok(());
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
                Err(self.err("unterminated value"))
            }
            Some(_) => {
                let start = self.i;
                while let Some(c) = self.peek() {
                    if matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                        break;
                    }
                    self.i += 1;
                }
                let raw = &self.b[start..self.i];
                let ok = raw == b"true"
                    || raw == b"false"
                    || raw == b"null"
                    || (!raw.is_empty() && std::str::from_utf8(raw).is_ok_and(|s| s.parse::<f64>().is_ok()));
                if ok {
                    Ok(())
                } else {
                    Err(self.err("invalid value"))
                }
            }
            None => Err(self.err("unexpected end")),
        }
    }
}

fn sanitize_part(key: &str, first: bool) -> String {
    let key = key.trim();
    let mut out: String = key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if first && out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattens() {
        let mut out = Vec::new();
        flatten(br#" {"a": {"b": -1.5e3, "c d": "x\ny"}, "arr": [1, {"z": 1}], "1st": true, "n": null} "#, &mut out)
            .unwrap();
        let want: Vec<(String, String)> = [("a_b", "-1.5e3"), ("a_c_d", "x\ny"), ("_1st", "true"), ("n", "")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(out, want);
        for bad in ["[1]", "{", r#"{"a":}"#, r#"{"a":1} x"#, r#"{"a":tru}"#] {
            assert!(flatten(bad.as_bytes(), &mut Vec::new()).is_err(), "{bad}");
        }
    }
}
