//! The subject alternative names of a certificate, for the web config's `client_allowed_sans`:
//! a client certificate is accepted when one of its DNS names, email addresses, IP addresses or
//! URIs equals an allowed value, as the exporter-toolkit compares them (exact strings; IP
//! addresses in their usual text form).
//!
//! A small DER reader rather than an X.509 library: only the path to one extension is walked
//! (certificate → tbsCertificate → extensions → subjectAltName), and the certificate has already
//! been parsed and verified by rustls when this runs. Anything unexpected is an error, never a
//! panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One DER element: its tag and contents.
struct Tlv<'a> {
    tag: u8,
    body: &'a [u8],
}

/// Reads the element at the start of `input`; returns it and what follows.
fn next(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), &'static str> {
    let (&tag, rest) = input.split_first().ok_or("truncated")?;
    if tag & 0x1f == 0x1f {
        return Err("multi-byte tags are not used in certificates");
    }
    let (&first, rest) = rest.split_first().ok_or("truncated")?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return Err("bad length");
        }
        let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err("truncated");
    }
    Ok((Tlv { tag, body: &rest[..len] }, &rest[len..]))
}

/// Every element of a constructed element's contents.
fn elements(mut input: &[u8]) -> Result<Vec<Tlv<'_>>, &'static str> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let (t, rest) = next(input)?;
        out.push(t);
        input = rest;
    }
    Ok(out)
}

const SEQUENCE: u8 = 0x30;
const EXTENSIONS: u8 = 0xa3;
const OID: u8 = 0x06;
const OCTET_STRING: u8 = 0x04;
/// 2.5.29.17, subjectAltName.
const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];

/// The certificate's subject alternative names as text (none when it has no such extension).
pub fn subject_alt_names(cert_der: &[u8]) -> Result<Vec<String>, &'static str> {
    let (cert, _) = next(cert_der)?;
    let tbs = elements(cert.body)?.into_iter().next().filter(|t| t.tag == SEQUENCE).ok_or("no tbsCertificate")?;
    let Some(exts) = elements(tbs.body)?.into_iter().find(|t| t.tag == EXTENSIONS) else {
        return Ok(Vec::new());
    };
    let (list, _) = next(exts.body)?;
    for ext in elements(list.body)? {
        let parts = elements(ext.body)?;
        let is_san = parts.first().is_some_and(|p| p.tag == OID && p.body == SUBJECT_ALT_NAME);
        if !is_san {
            continue;
        }
        let value = parts.iter().rev().find(|p| p.tag == OCTET_STRING).ok_or("subjectAltName without a value")?;
        let (names, _) = next(value.body)?;
        return elements(names.body)?.into_iter().filter_map(general_name).collect();
    }
    Ok(Vec::new())
}

/// A GeneralName as text, for the kinds the exporter-toolkit compares; `None` for the others.
fn general_name(t: Tlv<'_>) -> Option<Result<String, &'static str>> {
    let text = || std::str::from_utf8(t.body).map(str::to_string).map_err(|_| "a name is not text");
    match t.tag {
        // [1] rfc822Name, [2] dNSName, [6] uniformResourceIdentifier: IA5String.
        0x81 | 0x82 | 0x86 => Some(text()),
        // [7] iPAddress: 4 or 16 bytes.
        0x87 => Some(match t.body.len() {
            4 => Ok(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(t.body).expect("4 bytes"))).to_string()),
            16 => {
                let v6 = Ipv6Addr::from(<[u8; 16]>::try_from(t.body).expect("16 bytes"));
                // Go prints an IPv4-mapped address as the IPv4 address.
                Ok(v6.to_ipv4_mapped().map_or_else(|| v6.to_string(), |v4| v4.to_string()))
            }
            _ => Err("an IP address is neither 4 nor 16 bytes"),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Whatever bytes arrive, the reader answers and never panics.
        #[test]
        fn any_bytes_get_an_answer(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = subject_alt_names(&bytes);
        }
    }

    #[test]
    fn names_of_each_kind_are_read() {
        // A hand-made GeneralNames inside the minimal certificate shape.
        let names: Vec<u8> = [
            &[0x82, 11][..],
            b"client.test",
            &[0x81, 8],
            b"a@b.test",
            &[0x87, 4, 10, 0, 0, 7],
            &[0x86, 14],
            b"spiffe://t/svc",
            &[0x87, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1],
            &[0xa4, 0],
        ]
        .concat();
        let extensions = wrap(0xa3, &wrap(0x30, &ext(&names)));
        let tbs = wrap(0x30, &[wrap(0x02, &[1]), extensions].concat());
        let der = wrap(0x30, &tbs);
        assert_eq!(
            subject_alt_names(&der).unwrap(),
            ["client.test", "a@b.test", "10.0.0.7", "spiffe://t/svc", "192.0.2.1"]
        );
        let bare = wrap(0x30, &wrap(0x30, &wrap(0x02, &[1])));
        assert!(subject_alt_names(&bare).unwrap().is_empty());
    }

    fn wrap(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        if body.len() < 0x80 {
            v.push(body.len() as u8);
        } else {
            v.extend([0x82, (body.len() >> 8) as u8, body.len() as u8]);
        }
        v.extend_from_slice(body);
        v
    }

    fn ext(names: &[u8]) -> Vec<u8> {
        wrap(0x30, &[wrap(0x06, SUBJECT_ALT_NAME), wrap(0x04, &wrap(0x30, names))].concat())
    }
}
