//! Customer lists drawn from the population, as a user would upload them.

use std::io::Write;

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
