//! Which profile fields are contact or identity data and so never traits.
//!
//! Profiles are flat, so the domain a field came from is unknown here: the rule works on the
//! field's name alone. The name is split on `_`, `-`, `.` and spaces, digits are stripped from
//! each word (`email2` → `email`, `address_line1` → `address`, `line`), and the field is contact
//! data when any word is one of [`CONTACT_WORDS`]. This errs on the side of leaving a field out:
//! a trait lost to the rule costs a line of the report, a contact field let in leaks personal data
//! into a result.

/// Words that mark a field as contact or identity data.
const CONTACT_WORDS: &[&str] = &[
    "address",
    "addresses",
    "cell",
    "email",
    "emails",
    "fax",
    "id",
    "ids",
    "ip",
    "maid",
    "maids",
    "mobile",
    "name",
    "names",
    "phone",
    "phones",
    "ssn",
    "street",
    "uuid",
];

/// Whether a profile field holds contact or identity data (names, emails, phones, addresses,
/// maids, ids, numbered contact fields such as `email2`) and so must never be analysed.
pub fn is_contact_attribute(name: &str) -> bool {
    name.split(['_', '-', '.', ' '])
        .map(|word| word.trim_matches(|c: char| c.is_ascii_digit()))
        .filter(|word| !word.is_empty())
        .any(|word| {
            CONTACT_WORDS
                .iter()
                .any(|contact| word.eq_ignore_ascii_case(contact))
        })
}

#[cfg(test)]
mod tests {
    use super::is_contact_attribute;

    #[test]
    fn contact_and_identity_fields_are_recognised() {
        for name in [
            "email1",
            "email2",
            "EMAIL",
            "phone1",
            "first_name",
            "last_name",
            "name",
            "address",
            "address_line1",
            "maid2",
            "person_id",
            "id",
            "street_address",
            "mobile_phone",
            "ip_address",
        ] {
            assert!(
                is_contact_attribute(name),
                "{name} should be a contact field"
            );
        }
    }

    #[test]
    fn traits_are_not_contact_fields() {
        for name in [
            "gender",
            "generation",
            "interested_fitness",
            "fitness_affinity",
            "household_income_range",
            "zip_code",
            "state",
            "identity_theft_concern",
            "video_streaming",
            "",
        ] {
            assert!(!is_contact_attribute(name), "{name} should be a trait");
        }
    }
}
