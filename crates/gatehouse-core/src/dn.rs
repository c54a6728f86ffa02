//! RFC 4514 distinguished names: parsing the string form and printing one canonical
//! form (see [`crate::authn::canonical_dn`]), so that the subject DN an operator
//! registers for a `tls_client_auth` client and the one the server reads from a
//! certificate compare as strings.
//!
//! What the canonical form makes equal, and what it leaves apart:
//! - the RDNs stay in the order written (RFC 4514 order: most specific first, `CN`
//!   before `O` before `C`); a certificate's subject is written in that order too;
//! - attribute type names are case-insensitive: every name is upper-cased, and the
//!   usual aliases and OIDs become one short name (`commonName`, `cn` and `2.5.4.3`
//!   are all `CN`); a type this table does not know stays as written (upper-cased, or
//!   as its dotted OID);
//! - the attributes of a multi-valued RDN (`CN=a+UID=b`) are a set in X.501: they are
//!   sorted;
//! - spaces around `,`, `+` and `=` are layout and go; spaces inside a value, and
//!   escaped ones at its ends (`\ `), are data and stay;
//! - a value is compared exactly, after escapes are undone and written again in one
//!   way (`\4A` and `J` are the same value, `Acme` and `ACME` are not): X.520's
//!   case-insensitive matching rules are not applied, so a registered DN must carry
//!   the certificate's capitalisation;
//! - a `#hex` value (the BER encoding of a value, RFC 4514 §2.4) is kept as hex
//!   (lower-cased), not decoded, so it equals only the same encoding written as hex.

use std::fmt::Write as _;

/// The canonical form of `dn`, or `None` if it is not an RFC 4514 string (or is
/// empty: no client can be named by the empty DN).
pub(crate) fn canonical(dn: &str) -> Option<String> {
    let rdns = Parser::new(dn).distinguished_name()?;
    let printed: Vec<String> = rdns
        .into_iter()
        .map(|rdn| {
            let mut attributes: Vec<String> = rdn.iter().map(Attribute::canonical).collect();
            attributes.sort_unstable();
            attributes.dedup();
            attributes.join("+")
        })
        .collect();
    Some(printed.join(","))
}

/// Attribute types known by name: their OID, their canonical short name, and other
/// names they go by (compared upper-cased). The first nine are RFC 4514 §3's table;
/// the rest are common in client certificates.
const ATTRIBUTE_TYPES: &[(&str, &str, &[&str])] = &[
    ("2.5.4.3", "CN", &["COMMONNAME"]),
    ("2.5.4.7", "L", &["LOCALITYNAME"]),
    ("2.5.4.8", "ST", &["STATEORPROVINCENAME", "S"]),
    ("2.5.4.10", "O", &["ORGANIZATIONNAME"]),
    ("2.5.4.11", "OU", &["ORGANIZATIONALUNITNAME"]),
    ("2.5.4.6", "C", &["COUNTRYNAME"]),
    ("2.5.4.9", "STREET", &["STREETADDRESS"]),
    ("0.9.2342.19200300.100.1.25", "DC", &["DOMAINCOMPONENT"]),
    ("0.9.2342.19200300.100.1.1", "UID", &["USERID"]),
    ("2.5.4.4", "SN", &["SURNAME"]),
    ("2.5.4.5", "SERIALNUMBER", &[]),
    ("2.5.4.12", "TITLE", &[]),
    ("2.5.4.42", "GIVENNAME", &["GN"]),
    ("2.5.4.97", "ORGANIZATIONIDENTIFIER", &[]),
    ("1.2.840.113549.1.9.1", "EMAILADDRESS", &["E", "EMAIL"]),
];

/// One `type=value` of an RDN, as parsed.
#[derive(Debug, PartialEq, Eq)]
struct Attribute {
    /// The type as written: a descriptor (`cn`) or a dotted OID (`2.5.4.3`).
    kind: String,
    value: Value,
}

/// An attribute value, as parsed.
#[derive(Debug, PartialEq, Eq)]
enum Value {
    /// A string, escapes undone.
    Text(String),
    /// `#` and hex digits: the BER encoding of the value; the digits, lower-cased.
    Encoded(String),
}

impl Attribute {
    fn canonical(&self) -> String {
        let mut out = canonical_type(&self.kind);
        out.push('=');
        match &self.value {
            Value::Text(text) => escape_into(&mut out, text),
            Value::Encoded(hex) => {
                out.push('#');
                out.push_str(hex);
            }
        }
        out
    }
}

/// The canonical name of an attribute type: the short name of a known one (by name,
/// alias or OID), else the name upper-cased, else the OID as written.
fn canonical_type(kind: &str) -> String {
    let upper = kind.to_ascii_uppercase();
    ATTRIBUTE_TYPES
        .iter()
        .find(|(oid, name, aliases)| *oid == kind || *name == upper || aliases.contains(&upper.as_str()))
        .map_or(upper, |(_, name, _)| (*name).to_owned())
}

/// Writes `value` in RFC 4514 §2.4's escaping, one way: a backslash before `"` `+`
/// `,` `;` `<` `>` `\`, before a leading `#` and before a space at either end; a
/// control character as `\` and two upper-case hex digits; everything else as is.
fn escape_into(out: &mut String, value: &str) {
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\{:02X}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// A recursive-descent reader of RFC 4514 §3's grammar, lenient only about spaces
/// around separators (RFC 4514 §4 leaves those to the implementation).
struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            bytes: text.as_bytes(),
            at: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.at += 1;
        }
    }

    /// `distinguishedName = [ relativeDistinguishedName *( COMMA relativeDistinguishedName ) ]`,
    /// less the empty one.
    fn distinguished_name(mut self) -> Option<Vec<Vec<Attribute>>> {
        let mut rdns = Vec::new();
        let mut rdn = Vec::new();
        loop {
            rdn.push(self.attribute()?);
            match self.peek() {
                None => {
                    rdns.push(rdn);
                    return Some(rdns);
                }
                Some(b'+') => self.at += 1,
                Some(b',') => {
                    self.at += 1;
                    rdns.push(std::mem::take(&mut rdn));
                }
                Some(_) => return None,
            }
        }
    }

    /// `attributeTypeAndValue = attributeType EQUALS attributeValue`, with the spaces
    /// around it; stops before the separator that follows.
    fn attribute(&mut self) -> Option<Attribute> {
        self.skip_spaces();
        let kind = self.attribute_type()?;
        self.skip_spaces();
        if self.peek() != Some(b'=') {
            return None;
        }
        self.at += 1;
        self.skip_spaces();
        let value = if self.peek() == Some(b'#') {
            self.at += 1;
            let value = self.hex_string()?;
            self.skip_spaces();
            value
        } else {
            self.string()?
        };
        Some(Attribute { kind, value })
    }

    /// `attributeType = descr / numericoid`.
    fn attribute_type(&mut self) -> Option<String> {
        let start = self.at;
        match self.peek()? {
            b if b.is_ascii_alphabetic() => {
                while self
                    .peek()
                    .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'-')
                {
                    self.at += 1;
                }
            }
            b if b.is_ascii_digit() => loop {
                self.number()?;
                if self.peek() != Some(b'.') {
                    break;
                }
                self.at += 1;
            },
            _ => return None,
        }
        let kind = std::str::from_utf8(&self.bytes[start..self.at]).ok()?;
        // A numericoid has at least two arcs (`numericoid = number 1*( DOT number )`).
        if kind.starts_with(|c: char| c.is_ascii_digit()) && !kind.contains('.') {
            return None;
        }
        Some(kind.to_owned())
    }

    /// `number = DIGIT / ( LDIGIT 1*DIGIT )`: no leading zeros.
    fn number(&mut self) -> Option<()> {
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        match &self.bytes[start..self.at] {
            [] => None,
            [b'0', _, ..] => None,
            _ => Some(()),
        }
    }

    /// `hexstring = SHARP 1*hexpair`, after the `#`.
    fn hex_string(&mut self) -> Option<Value> {
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_hexdigit()) {
            self.at += 1;
        }
        let digits = &self.bytes[start..self.at];
        if digits.is_empty() || digits.len() % 2 != 0 {
            return None;
        }
        let hex = std::str::from_utf8(digits).ok()?.to_ascii_lowercase();
        Some(Value::Encoded(hex))
    }

    /// A string value up to the next unescaped `,` or `+` or the end; unescaped
    /// spaces at its end are layout.
    fn string(&mut self) -> Option<Value> {
        let mut value: Vec<u8> = Vec::new();
        // The length of `value` without its trailing unescaped spaces.
        let mut kept = 0;
        while let Some(b) = self.peek() {
            match b {
                b',' | b'+' => break,
                b'\\' => {
                    self.at += 1;
                    value.push(self.escaped()?);
                    kept = value.len();
                }
                // RFC 4514 §3: these must be escaped in a value; NUL too.
                b'"' | b';' | b'<' | b'>' | 0 => return None,
                b' ' => {
                    self.at += 1;
                    value.push(b);
                }
                b => {
                    self.at += 1;
                    value.push(b);
                    kept = value.len();
                }
            }
        }
        value.truncate(kept);
        String::from_utf8(value).ok().map(Value::Text)
    }

    /// After a `\`: `special` (one character) or `hexpair` (one byte).
    fn escaped(&mut self) -> Option<u8> {
        let first = self.peek()?;
        if b"\"+,;<>\\ #=".contains(&first) {
            self.at += 1;
            return Some(first);
        }
        let pair = self.bytes.get(self.at..self.at + 2)?;
        let text = std::str::from_utf8(pair).ok()?;
        if !pair.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        self.at += 2;
        u8::from_str_radix(text, 16).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::canonical;

    fn same(dn: &str, expected: &str) {
        assert_eq!(canonical(dn).as_deref(), Some(expected), "{dn:?}");
        // Canonical is a fixed point.
        assert_eq!(canonical(expected).as_deref(), Some(expected), "{expected:?}");
    }

    #[test]
    fn type_names_are_short_and_upper_case() {
        same("cn=client,o=Acme,c=DE", "CN=client,O=Acme,C=DE");
        same("commonName=client, organizationName=Acme", "CN=client,O=Acme");
        same(
            "2.5.4.3=client,2.5.4.10=Acme,0.9.2342.19200300.100.1.25=example",
            "CN=client,O=Acme,DC=example",
        );
        same(
            "emailAddress=a@example.com,st=Bayern",
            "EMAILADDRESS=a@example.com,ST=Bayern",
        );
        // An unknown type stays, upper-cased, or as its OID.
        same(
            "x-custom=1,1.3.6.1.4.1.99999.1=2",
            "X-CUSTOM=1,1.3.6.1.4.1.99999.1=2",
        );
    }

    #[test]
    fn spaces_around_separators_are_layout() {
        same("  CN = client one ,  O=Acme Corp  ", "CN=client one,O=Acme Corp");
        same("CN=a + UID=b , O=c", "CN=a+UID=b,O=c");
        // Escaped spaces at the ends are data.
        same("CN=\\ padded\\ ", "CN=\\ padded\\ ");
        same("CN=\\20x\\20", "CN=\\ x\\ ");
    }

    #[test]
    fn escapes_are_undone_and_written_one_way() {
        same(
            r#"CN=a\,b\+c\"d\\e\<f\>g\;h\=i"#,
            r#"CN=a\,b\+c\"d\\e\<f\>g\;h=i"#,
        );
        same("CN=\\4A\\4a", "CN=JJ");
        same("CN=\\#1", "CN=\\#1");
        same("CN=a#1", "CN=a#1");
        same("CN=x=y", "CN=x=y");
        // UTF-8, raw or as escaped bytes.
        same("CN=M\\C3\\BCller", "CN=Müller");
        same("CN=Müller", "CN=Müller");
        // Control characters as hex.
        same("CN=a\\0Db", "CN=a\\0Db");
        same("CN=a\\0db", "CN=a\\0Db");
    }

    #[test]
    fn hex_values_are_kept() {
        same("CN=#0C03616263", "CN=#0c03616263");
        same("1.3.6.1.4.1.1=#04 , O=x", "1.3.6.1.4.1.1=#04,O=x");
    }

    #[test]
    fn multi_valued_rdns_are_sets() {
        same("UID=b+CN=a,O=x", "CN=a+UID=b,O=x");
        assert_eq!(canonical("CN=a+UID=b,O=x"), canonical("uid=b + cn=a, o=x"));
        // RDN order is kept: a different order is a different name.
        assert_ne!(canonical("CN=a,O=x"), canonical("O=x,CN=a"));
    }

    #[test]
    fn values_compare_exactly() {
        assert_ne!(canonical("CN=Acme"), canonical("CN=ACME"));
        assert_eq!(canonical("CN=Acme"), canonical("cn=Acme"));
    }

    #[test]
    fn empty_values_are_values() {
        same("CN=,O=x", "CN=,O=x");
    }

    #[test]
    fn not_rfc_4514() {
        for bad in [
            "",
            "   ",
            "CN",
            "CN=a,",
            ",CN=a",
            "CN=a,,O=b",
            "CN=a+",
            "=a",
            "CN=a;O=b",
            "CN=\"quoted\"",
            "CN=a<b",
            "CN=a\\",
            "CN=a\\x",
            "CN=a\\4",
            "CN=a\\4g",
            "CN=\\FF",
            "CN=#",
            "CN=#abc",
            "CN=#zz",
            "CN=#00 x",
            "1=a",
            "01.2=a",
            "1..2=a",
            "C N=a",
            "CN=a\0",
            "_x=a",
        ] {
            assert_eq!(canonical(bad), None, "{bad:?}");
        }
    }
}
