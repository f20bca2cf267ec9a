//! Customer lists drawn from the population, as a user would upload them.

use std::io::Write;

use std::collections::{HashMap, HashSet};

use icp_contract::{PersonId, ProviderError};

use crate::columns::Population;
use crate::rng::Rng;

/// One customer of a drawn list: the person it came from (for tests), and what a customer file
/// holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerContact {
    pub person_id: PersonId,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub address: Option<String>,
}

impl Population {
    /// The rows of `size` persons drawn without replacement by a seeded partial Fisher–Yates
    /// shuffle (over a map of the swapped rows, so linear in `size`, not in the population),
    /// ascending, those in `exclude` left out: the same for the same seed. Everyone (less
    /// `exclude`) when `size` is the population or more.
    pub fn sample_rows(&self, size: usize, seed: u64, exclude: &[PersonId]) -> Vec<u32> {
        let n = self.len();
        let mut rows: Vec<u32> = if size >= n {
            (0..n as u32).collect()
        } else {
            let mut swapped: HashMap<u32, u32> = HashMap::with_capacity(size * 2);
            let mut rng = Rng::new(seed, 0, 0x5A3E);
            let mut rows = Vec::with_capacity(size);
            for i in 0..size as u32 {
                let j = i + rng.below(n as u64 - u64::from(i)) as u32;
                let at_j = swapped.get(&j).copied().unwrap_or(j);
                let at_i = swapped.get(&i).copied().unwrap_or(i);
                swapped.insert(j, at_i);
                rows.push(at_j);
            }
            rows.sort_unstable();
            rows
        };
        let excluded: HashSet<usize> = exclude.iter().filter_map(|id| self.index_of(*id)).collect();
        rows.retain(|r| !excluded.contains(&(*r as usize)));
        rows
    }

    /// The persons of [`Population::sample_rows`], each as the positions in `traits` of the
    /// traits (`name = value`) they hold, ascending (a trait named twice: its first position):
    /// what their `get_person` profiles say of those traits, without building the profiles
    /// (a look-up per attribute and person).
    pub fn sample_traits(
        &self,
        size: usize,
        seed: u64,
        exclude: &[PersonId],
        traits: &[(String, String)],
    ) -> Vec<Vec<u32>> {
        let rows = self.sample_rows(size, seed, exclude);
        // Per attribute, per code (0: unknown), the position of the trait it is, if asked for.
        let index: HashMap<(&str, &str), u32> = traits
            .iter()
            .enumerate()
            .rev()
            .map(|(k, (name, value))| ((name.as_str(), value.as_str()), k as u32))
            .collect();
        let asked: Vec<Vec<u32>> = self
            .attrs
            .iter()
            .map(|attr| {
                std::iter::once(u32::MAX)
                    .chain(attr.values.iter().map(|v| {
                        index
                            .get(&(attr.name.as_str(), v.as_str()))
                            .copied()
                            .unwrap_or(u32::MAX)
                    }))
                    .collect()
            })
            .collect();
        rows.iter()
            .map(|&row| {
                let mut held: Vec<u32> = asked
                    .iter()
                    .enumerate()
                    .map(|(a, codes)| codes[usize::from(self.code(row as usize, a))])
                    .filter(|&k| k != u32::MAX)
                    .collect();
                held.sort_unstable();
                held
            })
            .collect()
    }

    /// `n` distinct persons, from one segment (by name) or from everyone, the same for the same
    /// seed.
    pub fn sample_customers(
        &self,
        n: usize,
        segment: Option<&str>,
        seed: u64,
    ) -> Result<Vec<CustomerContact>, ProviderError> {
        let pool: Vec<u32> = match segment {
            None => (0..self.len() as u32).collect(),
            Some(name) => {
                let Some(s) = self.segments.iter().position(|s| s.name == name) else {
                    let known: Vec<&str> = self.segments.iter().map(|s| s.name.as_str()).collect();
                    return Err(ProviderError::validation(if known.is_empty() {
                        format!("segment {name:?}: this population has no segments")
                    } else {
                        format!("unknown segment {name:?}; known: {}", known.join(", "))
                    }));
                };
                (0..self.len() as u32)
                    .filter(|&p| usize::from(self.segment[p as usize]) == s)
                    .collect()
            }
        };
        if n > pool.len() {
            return Err(ProviderError::validation(format!(
                "asked for {n} customers but only {} persons qualify",
                pool.len()
            )));
        }
        // A partial Fisher–Yates shuffle: the first n of a seeded permutation.
        let mut pool = pool;
        let mut rng = Rng::new(seed, 0, 0xC057);
        for i in 0..n {
            let j = i + rng.below((pool.len() - i) as u64) as usize;
            pool.swap(i, j);
        }
        Ok(pool[..n]
            .iter()
            .map(|&p| {
                let c = self.contact(p as usize);
                CustomerContact {
                    person_id: self.person_id(p as usize),
                    email: c.emails.first().cloned(),
                    phone: c.phones.first().cloned(),
                    address: c.address,
                }
            })
            .collect())
    }
}

/// Writes a customer file with header `email,phone,address` (no person ids: what a user uploads).
pub fn write_customer_csv(customers: &[CustomerContact], out: impl Write) -> std::io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    let err = |e: csv::Error| std::io::Error::other(e.to_string());
    w.write_record(["email", "phone", "address"]).map_err(err)?;
    for c in customers {
        w.write_record([
            c.email.as_deref().unwrap_or(""),
            c.phone.as_deref().unwrap_or(""),
            c.address.as_deref().unwrap_or(""),
        ])
        .map_err(err)?;
    }
    w.flush()
}
