//! Seeded synthetic customer profiles with realistic correlated structure, for tests and
//! benchmarks. Deterministic: the same configuration always gives the same profiles.
//!
//! Customers belong to hidden personas of unequal size. Each attribute is either *dense* (a
//! demographic such as a generation or an income band: nearly everyone has a value, a few values
//! per attribute) or a *sparse* interest flag (`Yes` for a minority, absent otherwise, the way
//! enrichment feeds list interests). Each persona strongly raises the chance of a handful of
//! flags and favours one value of each dense attribute, so the data has real multi-attribute
//! clusters on top of independent noise. An optional high-cardinality attribute (a zip code drawn
//! from a skewed distribution over thousands of values) exercises the cap.

/// Shape of a synthetic dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticConfig {
    pub customers: usize,
    /// Attributes in the schema (dense ones first, a fifth of them, at least one).
    pub attributes: usize,
    pub personas: usize,
    pub seed: u64,
    /// Adds a `zip_code` attribute with this many distinct values (0: none; at most 60 000).
    pub zip_codes: usize,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        Self {
            customers: 10_000,
            attributes: 50,
            personas: 6,
            seed: 42,
            zip_codes: 0,
        }
    }
}

/// Generated profiles: one value index per attribute per customer.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub attribute_names: Vec<String>,
    pub values: Vec<Vec<String>>,
    /// `customers × attributes` value indices, row-major; [`Dataset::MISSING`] when absent.
    cells: Vec<u16>,
    attributes: usize,
}

impl Dataset {
    pub const MISSING: u16 = u16::MAX;

    pub fn customers(&self) -> usize {
        self.cells.len().checked_div(self.attributes).unwrap_or(0)
    }

    /// The `(attribute, value)` pairs of one customer, as a flat profile map would give them.
    pub fn profile(&self, customer: usize) -> impl Iterator<Item = (&str, &str)> + '_ {
        let row = &self.cells[customer * self.attributes..(customer + 1) * self.attributes];
        row.iter()
            .enumerate()
            .filter(|(_, v)| **v != Self::MISSING)
            .map(|(a, &v)| {
                (
                    self.attribute_names[a].as_str(),
                    self.values[a][v as usize].as_str(),
                )
            })
    }

    /// Average number of traits per customer.
    pub fn mean_traits(&self) -> f64 {
        let present = self.cells.iter().filter(|&&v| v != Self::MISSING).count();
        present as f64 / self.customers().max(1) as f64
    }
}

/// SplitMix64: tiny, fast, and good enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n.max(1)
    }

    /// An index drawn with the given (unnormalised) weights.
    fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.unit() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }
}

const DENSE_NAMES: &[&str] = &[
    "gender",
    "generation",
    "household_income_range",
    "education",
    "marital_status",
    "home_owner",
    "children_present",
    "occupation",
    "net_worth_range",
    "political_party",
];

const FLAG_TOPICS: &[&str] = &[
    "fitness",
    "healthy_living",
    "outdoors",
    "travel",
    "cooking",
    "gardening",
    "pets",
    "golf",
    "running",
    "yoga",
    "investing",
    "technology",
    "gaming",
    "fashion",
    "home_improvement",
    "wine",
    "photography",
    "reading",
    "music",
    "movies",
    "camping",
    "fishing",
    "hunting",
    "cycling",
    "skiing",
    "boating",
    "crafts",
    "collectibles",
    "charity",
    "religion",
    "sports_fan",
    "luxury",
    "parenting",
    "education_online",
    "real_estate",
    "automotive",
    "beauty",
    "diet",
    "organic_food",
    "coffee",
];

/// Generates the dataset.
pub fn generate(config: &SyntheticConfig) -> Dataset {
    let mut rng = Rng(config.seed);
    let attributes = config.attributes.max(1);
    let dense = (attributes / 5).max(1);
    let personas = config.personas.max(1);

    let mut attribute_names = Vec::with_capacity(attributes + 1);
    let mut values: Vec<Vec<String>> = Vec::with_capacity(attributes + 1);
    for a in 0..attributes {
        if a < dense {
            let base = DENSE_NAMES[a % DENSE_NAMES.len()];
            attribute_names.push(suffixed(base, a / DENSE_NAMES.len()));
            let count = 2 + rng.below(6);
            values.push((0..count).map(|v| format!("{base}_{v}")).collect());
        } else {
            let f = a - dense;
            let topic = FLAG_TOPICS[f % FLAG_TOPICS.len()];
            attribute_names.push(suffixed(
                &format!("interested_{topic}"),
                f / FLAG_TOPICS.len(),
            ));
            values.push(vec!["Yes".to_owned()]);
        }
    }

    // Persona sizes fall off geometrically: a main segment, some smaller ones.
    let persona_weights: Vec<f64> = (0..personas).map(|p| 0.6f64.powi(p as i32)).collect();
    // Per attribute: base weights (dense) or base rate (flags); per persona: a favourite value of
    // every dense attribute and a handful of signature flags.
    let base: Vec<Vec<f64>> = values
        .iter()
        .enumerate()
        .map(|(a, v)| {
            if a < dense {
                (0..v.len()).map(|_| 0.2 + rng.unit()).collect()
            } else {
                vec![0.02 + 0.2 * rng.unit()]
            }
        })
        .collect();
    let favourite: Vec<Vec<usize>> = (0..personas)
        .map(|_| (0..dense).map(|a| rng.below(values[a].len())).collect())
        .collect();
    let signature: Vec<Vec<bool>> = (0..personas)
        .map(|_| {
            let mut flags = vec![false; attributes];
            for _ in 0..6 {
                if attributes > dense {
                    flags[dense + rng.below(attributes - dense)] = true;
                }
            }
            flags
        })
        .collect();

    // Value indices are 16-bit.
    let zip_codes = config.zip_codes.min(60_000);
    let zip = zip_codes > 0;
    let width = attributes + usize::from(zip);
    if zip {
        attribute_names.push("zip_code".to_owned());
        values.push(
            (0..zip_codes)
                .map(|z| format!("{:05}", 10_000 + z))
                .collect(),
        );
    }
    let zip_weights: Vec<f64> = (0..zip_codes).map(|z| 1.0 / (z + 1) as f64).collect();

    let mut cells = Vec::with_capacity(config.customers * width);
    for _ in 0..config.customers {
        let p = rng.weighted(&persona_weights);
        for a in 0..attributes {
            let cell = if a < dense {
                if rng.unit() < 0.04 {
                    Dataset::MISSING
                } else if rng.unit() < 0.55 {
                    favourite[p][a] as u16
                } else {
                    rng.weighted(&base[a]) as u16
                }
            } else {
                let rate = if signature[p][a] { 0.7 } else { base[a][0] };
                if rng.unit() < rate {
                    0
                } else {
                    Dataset::MISSING
                }
            };
            cells.push(cell);
        }
        if zip {
            cells.push(rng.weighted(&zip_weights) as u16);
        }
    }
    Dataset {
        attribute_names,
        values,
        cells,
        attributes: width,
    }
}

fn suffixed(base: &str, round: usize) -> String {
    if round == 0 {
        base.to_owned()
    } else {
        format!("{base}_{}", round + 1)
    }
}
