//! Contact data: names, emails, phones, an address and mobile ad ids.
//!
//! A generated person's contact data is a pure function of `(seed, index, gender, metro)`, so
//! ten million people cost no string storage: it is recomputed when an answer needs it. Imported
//! people keep what the file gave.

use std::borrow::Cow;

use icp_contract::IdType;

use crate::metros::{METROS, STREET_KINDS, STREETS};
use crate::rng::Rng;

/// Most emails / phones / mobile ad ids a generated person has: the fixed column counts of
/// audience CSV exports.
pub const MAX_EMAILS: usize = 3;
pub const MAX_PHONES: usize = 2;
pub const MAX_MAIDS: usize = 2;

/// One person's contact data, normalised (emails lower-case, phones 10 digits).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Contact {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub emails: Vec<String>,
    pub phones: Vec<String>,
    pub address: Option<String>,
    pub maids: Vec<String>,
}

const PURPOSE_PLACE: u64 = 2;
const PURPOSE_CONTACT: u64 = 3;

const FEMALE_NAMES: &[&str] = &[
    "Mary",
    "Patricia",
    "Jennifer",
    "Linda",
    "Elizabeth",
    "Barbara",
    "Susan",
    "Jessica",
    "Sarah",
    "Karen",
    "Lisa",
    "Nancy",
    "Betty",
    "Sandra",
    "Margaret",
    "Ashley",
    "Kimberly",
    "Emily",
    "Donna",
    "Michelle",
    "Carol",
    "Amanda",
    "Melissa",
    "Deborah",
    "Stephanie",
    "Rebecca",
    "Laura",
    "Sharon",
    "Cynthia",
    "Kathleen",
    "Amy",
    "Angela",
    "Anna",
    "Brenda",
    "Emma",
    "Olivia",
    "Sophia",
    "Ava",
    "Isabella",
    "Mia",
    "Abigail",
    "Madison",
    "Chloe",
    "Grace",
    "Hannah",
    "Maria",
    "Jane",
    "Rachel",
    "Megan",
    "Nicole",
];
const MALE_NAMES: &[&str] = &[
    "James",
    "Robert",
    "John",
    "Michael",
    "David",
    "William",
    "Richard",
    "Joseph",
    "Thomas",
    "Charles",
    "Christopher",
    "Daniel",
    "Matthew",
    "Anthony",
    "Mark",
    "Donald",
    "Steven",
    "Paul",
    "Andrew",
    "Joshua",
    "Kenneth",
    "Kevin",
    "Brian",
    "George",
    "Timothy",
    "Ronald",
    "Edward",
    "Jason",
    "Jeffrey",
    "Ryan",
    "Jacob",
    "Gary",
    "Nicholas",
    "Eric",
    "Jonathan",
    "Stephen",
    "Larry",
    "Justin",
    "Scott",
    "Brandon",
    "Benjamin",
    "Samuel",
    "Gregory",
    "Alexander",
    "Patrick",
    "Frank",
    "Raymond",
    "Jack",
    "Dennis",
    "Tyler",
];
const LAST_NAMES: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Gomez",
    "Phillips",
    "Evans",
    "Turner",
    "Diaz",
    "Parker",
    "Cruz",
    "Edwards",
    "Collins",
    "Reyes",
    "Stewart",
    "Morris",
    "Morales",
    "Murphy",
    "Cook",
    "Rogers",
    "Gutierrez",
    "Ortiz",
    "Morgan",
    "Cooper",
    "Peterson",
    "Bailey",
    "Reed",
    "Kelly",
    "Howard",
    "Ramos",
    "Kim",
    "Cox",
    "Ward",
    "Richardson",
    "Watson",
    "Brooks",
    "Chavez",
    "Wood",
    "James",
    "Bennett",
    "Gray",
    "Mendoza",
    "Ruiz",
    "Hughes",
    "Price",
    "Alvarez",
    "Castillo",
    "Sanders",
    "Patel",
    "Myers",
    "Long",
    "Ross",
    "Foster",
    "Jimenez",
];
const EMAIL_DOMAINS: &[&str] = &[
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "hotmail.com",
    "icloud.com",
    "aol.com",
    "comcast.net",
];

/// Where a generated person lives: metro index and coordinates. People in rural areas spread
/// further from the metro centre than city dwellers.
pub(crate) fn place(seed: u64, index: u64, urbanicity: u8) -> (u8, f64, f64) {
    static CUMULATIVE: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    let cumulative = CUMULATIVE.get_or_init(|| {
        METROS
            .iter()
            .scan(0.0, |acc, m| {
                *acc += m.weight;
                Some(*acc)
            })
            .collect()
    });
    let mut rng = Rng::new(seed, index, PURPOSE_PLACE);
    let x = rng.unit() * cumulative[cumulative.len() - 1];
    let m = cumulative
        .partition_point(|c| *c <= x)
        .min(METROS.len() - 1);
    let spread = [0.07, 0.2, 0.5][usize::from(urbanicity.min(2))];
    let metro = &METROS[m];
    let lat = (metro.lat + rng.normalish() * spread).clamp(-89.9, 89.9);
    let lon = metro.lon + rng.normalish() * spread / metro.lat.to_radians().cos();
    (m as u8, lat, lon)
}

/// Appends ASCII bytes (every caller formats digits, letters and punctuation only).
fn push_ascii(out: &mut String, bytes: &[u8]) {
    debug_assert!(bytes.is_ascii());
    out.push_str(std::str::from_utf8(bytes).unwrap_or_default());
}

/// Base-36, 7 characters: wide enough for every 32-bit value, so tokens never collide.
fn push_token(out: &mut String, mut v: u32) {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut buf = [b'0'; 7];
    for slot in buf.iter_mut().rev() {
        *slot = DIGITS[(v % 36) as usize];
        v /= 36;
    }
    push_ascii(out, &buf);
}

fn push_lower(out: &mut String, s: &str) {
    let start = out.len();
    out.push_str(s);
    out[start..].make_ascii_lowercase();
}

/// Email `k` of person `index`. The token is a bijection of the index (multiplication by an odd
/// constant, then xor, modulo 2^32), and each slot has its own shape, so emails are unique.
fn email(index: u64, k: usize, first: &str, last: &str, domain: &str) -> String {
    let mut s = String::with_capacity(first.len() + last.len() + domain.len() + 10);
    let token =
        (index as u32).wrapping_mul(0x9e37_79b1) ^ (0x5bd1_e995u32.rotate_left(k as u32 * 7));
    match k {
        0 => {
            push_lower(&mut s, first);
            s.push('.');
            push_lower(&mut s, last);
            s.push('.');
        }
        1 => {
            push_lower(&mut s, &first[..1]);
            push_lower(&mut s, last);
        }
        _ => {
            push_lower(&mut s, last);
            s.push('_');
            push_lower(&mut s, first);
        }
    }
    push_token(&mut s, token);
    s.push('@');
    s.push_str(domain);
    s
}

/// Phone `k` (0 or 1) of person `index`: a metro area code and a 7-digit number whose first digit
/// is 2–9. The number is a bijection of `2 · index + k` within 8M values, and successive blocks
/// of 8M use the metro's next area code, so numbers are unique up to 12M people a metro.
fn phone(index: u64, k: u64, metro: usize) -> String {
    const BLOCK: u64 = 8_000_000;
    let v = 2 * index + k;
    let area = METROS[metro].area_codes[((v / BLOCK) % 3) as usize];
    let local = (v % BLOCK * 4_999_999 + 1_234_567) % BLOCK + 2_000_000;
    let mut buf = [b'0'; 10];
    fill_digits(&mut buf[..3], u64::from(area));
    fill_digits(&mut buf[3..], local);
    let mut s = String::with_capacity(10);
    push_ascii(&mut s, &buf);
    s
}

/// Writes the low `out.len()` decimal digits of `v` into `out`, zero-padded.
fn fill_digits(out: &mut [u8], mut v: u64) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// `v` in decimal, zero-padded to `width` digits (without the formatting machinery: contact
/// data is rebuilt on every answer that shows it).
fn push_digits(out: &mut String, mut v: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut i = buf.len();
    while v > 0 || buf.len() - i < width {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    push_ascii(out, &buf[i..]);
}

/// Writes the low `4 · out.len()` bits of `v` into `out` as lower-case hex digits.
fn fill_hex(out: &mut [u8], v: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let n = out.len();
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = HEX[((v >> ((n - 1 - i) * 4)) & 0xf) as usize];
    }
}

#[cfg(test)]
fn push_hex(out: &mut String, v: u64, digits: usize) {
    let mut buf = [0u8; 16];
    fill_hex(&mut buf[..digits], v);
    push_ascii(out, &buf[..digits]);
}

/// A version-4 UUID, lower-case.
fn maid(rng: &mut Rng) -> String {
    let a = rng.next_u64();
    let b = rng.next_u64();
    let mut buf = [b'-'; 36];
    fill_hex(&mut buf[0..8], a >> 32);
    fill_hex(&mut buf[9..13], (a >> 16) & 0xffff);
    buf[14] = b'4';
    fill_hex(&mut buf[15..18], a & 0xfff);
    fill_hex(&mut buf[19..20], 8 + (b >> 62));
    fill_hex(&mut buf[20..23], (b >> 48) & 0xfff);
    fill_hex(&mut buf[24..36], b & 0xffff_ffff_ffff);
    let mut s = String::with_capacity(36);
    push_ascii(&mut s, &buf);
    s
}

/// A person's contact data, borrowed where it can be: generated names are static strings and
/// imported contact data stays where it is stored. Answers take only what they show.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ContactParts<'a> {
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    pub emails: Cow<'a, [String]>,
    pub phones: Cow<'a, [String]>,
    pub address: Option<Cow<'a, str>>,
    pub maids: Cow<'a, [String]>,
}

impl<'a> ContactParts<'a> {
    pub(crate) fn borrowed(c: &'a Contact) -> Self {
        ContactParts {
            first_name: c.first_name.as_deref(),
            last_name: c.last_name.as_deref(),
            emails: Cow::Borrowed(&c.emails),
            phones: Cow::Borrowed(&c.phones),
            address: c.address.as_deref().map(Cow::Borrowed),
            maids: Cow::Borrowed(&c.maids),
        }
    }

    pub(crate) fn into_contact(self) -> Contact {
        Contact {
            first_name: self.first_name.map(str::to_owned),
            last_name: self.last_name.map(str::to_owned),
            emails: self.emails.into_owned(),
            phones: self.phones.into_owned(),
            address: self.address.map(Cow::into_owned),
            maids: self.maids.into_owned(),
        }
    }
}

/// The generated contact data of person `index`; `gender` is the person's gender code
/// (1 female, 2 male, 0 unknown).
pub(crate) fn generated(seed: u64, index: u64, gender: u16, metro: u8) -> Contact {
    generated_parts(seed, index, gender, metro).into_contact()
}

/// [`generated`] without copying the names.
pub(crate) fn generated_parts(
    seed: u64,
    index: u64,
    gender: u16,
    metro: u8,
) -> ContactParts<'static> {
    generated_parts_of(seed, index, gender, metro, Wanted::ALL)
}

/// Which kinds of contact values to build. The random draws are made all the same, so a part
/// built alone is the one the whole record has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Wanted {
    pub emails: bool,
    pub phones: bool,
    pub address: bool,
    pub maids: bool,
}

impl Wanted {
    pub(crate) const ALL: Wanted = Wanted {
        emails: true,
        phones: true,
        address: true,
        maids: true,
    };

    /// The values of one identifier type (an audience record shows no other).
    pub(crate) fn only(id_type: IdType) -> Wanted {
        Wanted {
            emails: id_type == IdType::Email,
            phones: id_type == IdType::Phone,
            address: id_type == IdType::Address,
            maids: id_type == IdType::Maid,
        }
    }
}

/// [`generated_parts`] with only the `wanted` kinds of values built (the others empty).
pub(crate) fn generated_parts_of(
    seed: u64,
    index: u64,
    gender: u16,
    metro: u8,
    wanted: Wanted,
) -> ContactParts<'static> {
    let mut rng = Rng::new(seed, index, PURPOSE_CONTACT);
    let female = match gender {
        1 => true,
        2 => false,
        _ => rng.chance(0.5),
    };
    let names = if female { FEMALE_NAMES } else { MALE_NAMES };
    let first = names[rng.below(names.len() as u64) as usize];
    let last = LAST_NAMES[rng.below(LAST_NAMES.len() as u64) as usize];
    let n_emails = 1 + rng.weighted(&[0.5, 0.35, 0.15]);
    let mut emails = Vec::with_capacity(if wanted.emails { n_emails } else { 0 });
    for k in 0..n_emails {
        let domain = EMAIL_DOMAINS[rng.weighted(&[0.4, 0.18, 0.14, 0.1, 0.1, 0.04, 0.04])];
        if wanted.emails {
            emails.push(email(index, k, first, last, domain));
        }
    }
    let metro = usize::from(metro).min(METROS.len() - 1);
    let n_phones = rng.weighted(&[0.15, 0.6, 0.25]) as u64;
    let phones = if wanted.phones {
        (0..n_phones).map(|k| phone(index, k, metro)).collect()
    } else {
        Vec::new()
    };
    let m = &METROS[metro];
    let number = 1 + rng.below(9_899);
    let street = STREETS[rng.below(STREETS.len() as u64) as usize];
    let kind = STREET_KINDS[rng.below(STREET_KINDS.len() as u64) as usize];
    let zip = u64::from(m.zip_prefix) * 100 + rng.below(100);
    let address = wanted.address.then(|| {
        let mut address =
            String::with_capacity(street.len() + kind.len() + m.city.len() + m.state.len() + 20);
        push_digits(&mut address, number, 1);
        address.push(' ');
        address.push_str(street);
        address.push(' ');
        address.push_str(kind);
        address.push_str(", ");
        address.push_str(m.city);
        address.push_str(", ");
        address.push_str(m.state);
        address.push(' ');
        push_digits(&mut address, zip, 5);
        Cow::Owned(address)
    });
    // The last draws: nothing after them needs the generator's state.
    let maids = if wanted.maids {
        let n_maids = rng.weighted(&[0.3, 0.5, 0.2]);
        (0..n_maids).map(|_| maid(&mut rng)).collect()
    } else {
        Vec::new()
    };
    ContactParts {
        first_name: Some(first),
        last_name: Some(last),
        emails: Cow::Owned(emails),
        phones: Cow::Owned(phones),
        address,
        maids: Cow::Owned(maids),
    }
}

/// A person's record quality, 0.55–0.99, stable for a given seed.
pub(crate) fn person_quality(seed: u64, index: u64) -> f64 {
    let mut rng = Rng::new(seed, index, 4);
    round4(0.55 + 0.44 * rng.unit())
}

pub(crate) fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn generated_contacts_are_deterministic_well_formed_and_unique() {
        let mut emails = HashSet::new();
        let mut phones = HashSet::new();
        for i in 0..20_000u64 {
            let (metro, lat, lon) = place(9, i, 1);
            assert!((15.0..75.0).contains(&lat) && (-175.0..-60.0).contains(&lon));
            let c = generated(9, i, 1, metro);
            assert_eq!(c, generated(9, i, 1, metro));
            assert!((1..=MAX_EMAILS).contains(&c.emails.len()));
            assert!(c.phones.len() <= MAX_PHONES && c.maids.len() <= MAX_MAIDS);
            for e in &c.emails {
                assert_eq!(e, &e.to_lowercase());
                assert!(e.contains('@'));
                assert!(emails.insert(e.clone()), "duplicate email {e}");
            }
            for p in &c.phones {
                assert_eq!(p.len(), 10);
                assert!(p.bytes().all(|b| b.is_ascii_digit()));
                assert!(phones.insert(p.clone()), "duplicate phone {p}");
            }
            for m in &c.maids {
                assert_eq!(m.len(), 36);
            }
        }
    }

    #[test]
    fn hand_formatting_matches_format() {
        for v in [0u64, 7, 42, 1234567, 9_999_999_999] {
            let mut s = String::new();
            push_digits(&mut s, v, 7);
            assert_eq!(s, format!("{v:07}"));
            let mut h = String::new();
            push_hex(&mut h, v, 12);
            assert_eq!(h, format!("{v:012x}"));
        }
        let mut rng = Rng::new(1, 2, 3);
        let m = maid(&mut rng);
        let parts: Vec<_> = m.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12]);
        assert_eq!(&m[14..15], "4");
    }

    #[test]
    fn female_code_gives_female_first_names() {
        for i in 0..200 {
            let c = generated(1, i, 1, 0);
            assert!(FEMALE_NAMES.contains(&c.first_name.as_deref().unwrap()));
        }
    }
}
