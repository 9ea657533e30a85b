//! Fuzz body: pipe names (spec 1.3). Any string given to `create` or `open`
//! is either refused with the spec's error kind or accepted as a name that
//! obeys every rule: the prefix, at most 256 UTF-16 code units, no empty
//! name, no backslash or NUL in it, case-insensitive identity, and a socket
//! address that fits the kernel's limit.

use shmpipe::named::{PipeName, MAX_NAME_UNITS};
use shmpipe::{Error, ErrorKind};

/// `sun_path` holds 108 bytes; an abstract name uses one for the leading NUL.
const MAX_ABSTRACT_NAME: usize = 107;

/// The same string with the case of every ASCII letter swapped.
fn swap_ascii_case(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_lowercase() {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let server = PipeName::for_server(&text);
    let client = PipeName::for_client(&text);
    let name = match (server, client) {
        (Ok(s), Ok(c)) => {
            assert_eq!(s, c, "create and open parse {text:?} alike");
            c
        }
        (Ok(_), Err(e)) => panic!("{text:?}: create accepts, open refuses: {e}"),
        (Err(e), Ok(_)) => {
            // Only another machine's name: open accepts the syntax...
            panic!("{text:?}: open accepted what create refused ({e}); open must say BadNetPath")
        }
        (Err(se), Err(ce)) => {
            assert_eq!(
                Error::kind_of(&se),
                Some(ErrorKind::InvalidName),
                "{text:?}: {se}"
            );
            let ck = Error::kind_of(&ce);
            assert!(
                ck == Some(ErrorKind::InvalidName) || ck == Some(ErrorKind::BadNetPath),
                "{text:?}: open refused with {ce}"
            );
            return;
        }
    };

    let part = name.as_str();
    assert!(
        text.encode_utf16().count() <= MAX_NAME_UNITS,
        "{text:?} too long"
    );
    assert!(!part.is_empty() && !part.contains('\\') && !part.contains('\0'));
    assert!(
        text.ends_with(part),
        "{text:?}: name part {part:?} is its tail"
    );

    // The canonical form names the same pipe.
    let again = PipeName::for_server(&name.full()).expect("the canonical form parses");
    assert_eq!(again.key(), name.key());
    assert_eq!(again.socket_name(), name.socket_name());

    // Case does not matter, in the prefix or the name.
    let swapped = swap_ascii_case(&text);
    let other = PipeName::for_client(&swapped)
        .unwrap_or_else(|e| panic!("{swapped:?} (case-swapped {text:?}) refused: {e}"));
    assert_eq!(other.key(), name.key(), "{text:?} vs {swapped:?}");
    assert_eq!(other.socket_name(), name.socket_name());
    assert_eq!(
        other.as_str(),
        swap_ascii_case(part),
        "the name keeps its case"
    );

    let sock = name.socket_name();
    assert!(
        sock.len() <= MAX_ABSTRACT_NAME,
        "socket name {sock:?} too long"
    );
    assert!(!sock.contains('\0'));
}
