//! The rows the miner reads: the customers' profiles turned around, one list of ascending rows
//! (customer numbers) per distinct `attribute = value`, built one profile at a time.
//!
//! Profiles are never kept as maps: each `attribute = value` is interned once and a profile
//! costs four bytes per trait. Contact and identity fields and the configured exclusions are
//! decided here, once per distinct attribute name, so they never reach the miner.

use std::collections::BTreeSet;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::contact::is_contact_attribute;

/// How many excluded attribute names the result lists by name; past that it only counts them,
/// so a feed with thousands of numbered contact fields cannot bloat the report.
const EXCLUDED_NAMES_LISTED: usize = 100;

/// What an attribute name turned out to be, decided once per distinct name.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Trait(u32),
    Excluded,
}

/// One attribute that holds traits, with its distinct values.
#[derive(Debug)]
pub(crate) struct Attribute {
    pub(crate) name: Box<str>,
    pub(crate) values: FxHashMap<Box<str>, u32>,
    /// Customers with some value of this attribute: the customers' side of the known-share
    /// baseline. Counted here, not summed over values, so a profile that repeats the name
    /// with two values still counts once.
    pub(crate) known: u64,
    /// The last customer counted in `known`.
    last_row: Option<u32>,
}

/// One `attribute = value` seen in the data, with the rows (customers) that have it.
#[derive(Debug)]
pub(crate) struct ItemRows {
    pub(crate) attr: u32,
    pub(crate) value: Box<str>,
    /// Ascending row numbers. Kept sparse while streaming because most distinct values are rare;
    /// only the frequent ones become dense bitsets when mining starts.
    pub(crate) rows: Vec<u32>,
}

/// Every profile added so far, by trait: the input of mining.
pub(crate) struct TraitRows {
    user_excluded: FxHashSet<String>,
    slots: FxHashMap<Box<str>, Slot>,
    pub(crate) attributes: Vec<Attribute>,
    pub(crate) items: Vec<ItemRows>,
    pub(crate) excluded: BTreeSet<String>,
    pub(crate) excluded_unlisted: u64,
    pub(crate) customers: u64,
    pub(crate) customers_without_traits: u64,
    /// Set when the input outgrew the 32-bit numbering; mining turns it into an error.
    pub(crate) overflow: Option<&'static str>,
}

impl TraitRows {
    /// No profile yet; `exclude_attributes` are attribute names never analysed (compared
    /// case-insensitively), on top of the contact and identity fields.
    pub(crate) fn new(exclude_attributes: &[String]) -> Self {
        let user_excluded = exclude_attributes
            .iter()
            .map(|name| name.to_lowercase())
            .collect();
        Self {
            user_excluded,
            slots: FxHashMap::default(),
            attributes: Vec::new(),
            items: Vec::new(),
            excluded: BTreeSet::new(),
            excluded_unlisted: 0,
            customers: 0,
            customers_without_traits: 0,
            overflow: None,
        }
    }

    /// Adds one customer: the `(attribute, value)` pairs of their flat `domains` map.
    ///
    /// Contact and identity fields and the configured exclusions are skipped, as are empty
    /// values; values are trimmed. A pair repeated within one profile counts once.
    pub(crate) fn add_profile<'a>(&mut self, fields: impl IntoIterator<Item = (&'a str, &'a str)>) {
        let row = self.customers;
        self.customers += 1;
        // Rows and counts are 32-bit; mining reports the overflow as an error.
        let Some(row) = u32::try_from(row).ok().filter(|&r| r < u32::MAX) else {
            self.overflow = Some("more than 2^32 - 1 customers");
            return;
        };
        let mut has_trait = false;
        for (name, value) in fields {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            let slot = match self.slots.get(name) {
                Some(slot) => *slot,
                None => self.register(name),
            };
            let Slot::Trait(attr) = slot else {
                continue;
            };
            let attribute = &mut self.attributes[attr as usize];
            if attribute.last_row != Some(row) {
                attribute.last_row = Some(row);
                attribute.known += 1;
            }
            let item = match attribute.values.get(value) {
                Some(&item) => item,
                None => {
                    let Ok(item) = u32::try_from(self.items.len()) else {
                        self.overflow = Some("more than 2^32 distinct traits");
                        continue;
                    };
                    attribute.values.insert(value.into(), item);
                    self.items.push(ItemRows {
                        attr,
                        value: value.into(),
                        rows: Vec::new(),
                    });
                    item
                }
            };
            let rows = &mut self.items[item as usize].rows;
            if rows.last() != Some(&row) {
                rows.push(row);
            }
            has_trait = true;
        }
        if !has_trait {
            self.customers_without_traits += 1;
        }
    }

    fn register(&mut self, name: &str) -> Slot {
        let excluded =
            is_contact_attribute(name) || self.user_excluded.contains(&name.to_lowercase());
        let slot = if excluded {
            if self.excluded.len() < EXCLUDED_NAMES_LISTED {
                self.excluded.insert(name.to_owned());
            } else {
                self.excluded_unlisted += 1;
            }
            Slot::Excluded
        } else {
            let Ok(attr) = u32::try_from(self.attributes.len()) else {
                self.overflow = Some("more than 2^32 distinct attributes");
                return Slot::Excluded;
            };
            self.attributes.push(Attribute {
                name: name.into(),
                values: FxHashMap::default(),
                known: 0,
                last_row: None,
            });
            Slot::Trait(attr)
        };
        self.slots.insert(name.into(), slot);
        slot
    }
}
