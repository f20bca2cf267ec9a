//! The generated population's trait attributes and personas.
//!
//! A person is first drawn as a handful of latent facts (persona, age, income, home, family,
//! place, interests); every published attribute is then a noisy reading of those facts. That is
//! what makes traits correlate the way they do in life: fitness with healthy living, age with
//! generation and income, homeowners with household size, and so on.

use crate::rng::Rng;

/// One published segment (persona) of the generated population.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub name: String,
    pub description: String,
    /// `(attribute, value)` pairs held by most members (≥ 80 %) and far fewer others.
    pub defining_traits: Vec<(String, String)>,
}

pub(crate) const SEG_ACTIVE: u8 = 0;
pub(crate) const SEG_AFFLUENT: u8 = 1;
pub(crate) const SEG_TECH: u8 = 2;
pub(crate) const SEG_OUTDOOR: u8 = 3;
pub(crate) const SEG_RETIRED: u8 = 4;
pub(crate) const SEG_URBAN: u8 = 5;
pub(crate) const SEG_BUDGET: u8 = 6;
// Segment 7 is the mainstream: base rates, no overrides.

/// Share of the population in each segment, indexed by the constants above.
const SEGMENT_WEIGHTS: [f64; 8] = [0.10, 0.09, 0.09, 0.08, 0.10, 0.09, 0.09, 0.36];

pub(crate) fn segments() -> Vec<Segment> {
    let seg = |name: &str, description: &str, traits: &[(&str, &str)]| Segment {
        name: name.to_owned(),
        description: description.to_owned(),
        defining_traits: traits
            .iter()
            .map(|(a, v)| ((*a).to_owned(), (*v).to_owned()))
            .collect(),
    };
    vec![
        seg(
            "active_millennials",
            "Fitness-minded millennials who live healthily and buy athletic apparel",
            &[
                ("generation", "Millennial"),
                ("interested_fitness", "Yes"),
                ("interested_healthy_living", "Yes"),
                ("fitness_affinity", "High"),
                ("purchase_athletic_apparel", "Yes"),
            ],
        ),
        seg(
            "affluent_suburban_families",
            "High-income suburban homeowners raising children, with a taste for luxury",
            &[
                ("presence_of_children", "Yes"),
                ("household_income_range", "$150K+"),
                ("luxury_affinity", "High"),
            ],
        ),
        seg(
            "tech_professionals",
            "Technical workers who follow and buy technology",
            &[
                ("interested_technology", "Yes"),
                ("tech_affinity", "High"),
                ("purchase_electronics", "Yes"),
                ("occupation", "Technical"),
            ],
        ),
        seg(
            "rural_outdoor_enthusiasts",
            "Rural people who hunt, fish, hike and drive pickups",
            &[
                ("urbanicity", "Rural"),
                ("interested_outdoors", "Yes"),
                ("outdoor_affinity", "High"),
                ("purchase_outdoor_gear", "Yes"),
                ("vehicle_type", "Pickup Truck"),
            ],
        ),
        seg(
            "retired_travelers",
            "Retired baby boomers who travel often",
            &[
                ("generation", "Baby Boomer"),
                ("employment_status", "Retired"),
                ("interested_travel", "Yes"),
                ("travel_affinity", "High"),
                ("intent_category_travel", "High"),
            ],
        ),
        seg(
            "young_urban_renters",
            "Gen Z city renters, gamers and heavy social media users",
            &[
                ("generation", "Gen Z"),
                ("homeowner_status", "Renter"),
                ("urbanicity", "Urban"),
                ("interested_gaming", "Yes"),
                ("content_social_media", "Heavy"),
            ],
        ),
        seg(
            "budget_conscious_parents",
            "Lower-income parents buying for babies and young children",
            &[
                ("presence_of_children", "Yes"),
                ("household_income_range", "$25K-$50K"),
                ("purchase_baby_products", "Yes"),
                ("credit_rating", "Fair"),
            ],
        ),
        seg(
            "mainstream",
            "Everyone else: traits at their population base rates",
            &[],
        ),
    ]
}

// Interest bits, one per `interested_*` attribute.
const I_FITNESS: u16 = 1 << 0;
const I_HEALTHY: u16 = 1 << 1;
const I_OUTDOORS: u16 = 1 << 2;
const I_TRAVEL: u16 = 1 << 3;
const I_TECH: u16 = 1 << 4;
const I_COOKING: u16 = 1 << 5;
const I_GARDENING: u16 = 1 << 6;
const I_GAMING: u16 = 1 << 7;
const I_FASHION: u16 = 1 << 8;
const I_SPORTS: u16 = 1 << 9;
const I_READING: u16 = 1 << 10;
const I_HOME_IMPROVEMENT: u16 = 1 << 11;

/// P(interest | segment), columns in segment order.
const INTEREST_P: [(u16, [f64; 8]); 12] = [
    (I_FITNESS, [0.96, 0.30, 0.20, 0.20, 0.10, 0.25, 0.10, 0.12]),
    (I_HEALTHY, [0.94, 0.40, 0.20, 0.15, 0.30, 0.15, 0.10, 0.13]),
    (I_OUTDOORS, [0.30, 0.30, 0.10, 0.96, 0.25, 0.10, 0.15, 0.14]),
    (I_TRAVEL, [0.25, 0.45, 0.30, 0.10, 0.96, 0.20, 0.05, 0.14]),
    (I_TECH, [0.20, 0.30, 0.96, 0.10, 0.10, 0.40, 0.10, 0.14]),
    (I_COOKING, [0.30, 0.40, 0.15, 0.25, 0.35, 0.15, 0.30, 0.25]),
    (
        I_GARDENING,
        [0.10, 0.30, 0.05, 0.35, 0.40, 0.02, 0.10, 0.12],
    ),
    (I_GAMING, [0.15, 0.10, 0.45, 0.10, 0.03, 0.93, 0.25, 0.14]),
    (I_FASHION, [0.40, 0.30, 0.10, 0.05, 0.10, 0.40, 0.15, 0.15]),
    (I_SPORTS, [0.45, 0.40, 0.20, 0.40, 0.20, 0.30, 0.30, 0.25]),
    (I_READING, [0.25, 0.35, 0.35, 0.15, 0.50, 0.15, 0.15, 0.20]),
    (
        I_HOME_IMPROVEMENT,
        [0.10, 0.45, 0.10, 0.35, 0.25, 0.03, 0.20, 0.13],
    ),
];

/// The facts a person is drawn from; every published attribute reads these.
#[derive(Debug, Clone)]
pub(crate) struct Latent {
    pub segment: u8,
    pub female: bool,
    pub age: u8,
    /// Index into `INCOME_RANGES`.
    pub income: u8,
    /// 0 high school … 3 graduate degree.
    pub education: u8,
    pub married: bool,
    pub children: bool,
    pub homeowner: bool,
    /// 0 urban, 1 suburban, 2 rural.
    pub place: u8,
    pub retired: bool,
    pub interests: u16,
}

impl Latent {
    fn has(&self, bit: u16) -> bool {
        self.interests & bit != 0
    }
}

pub(crate) fn draw_latent(rng: &mut Rng) -> Latent {
    let segment = rng.weighted(&SEGMENT_WEIGHTS) as u8;
    let female = rng.chance(match segment {
        SEG_ACTIVE => 0.64,
        SEG_OUTDOOR => 0.32,
        SEG_TECH => 0.35,
        _ => 0.51,
    });
    let (lo, hi) = match segment {
        SEG_ACTIVE => (29, 44),
        SEG_AFFLUENT => (36, 56),
        SEG_TECH => (24, 46),
        SEG_OUTDOOR => (25, 70),
        SEG_RETIRED => (62, 79),
        SEG_URBAN => (19, 28),
        SEG_BUDGET => (22, 42),
        _ => (18, 90),
    };
    let age = (lo + rng.below(hi - lo + 1)) as u8;

    let education = match segment {
        SEG_TECH => [0.02, 0.08, 0.55, 0.35],
        SEG_AFFLUENT => [0.05, 0.15, 0.50, 0.30],
        SEG_BUDGET => [0.50, 0.35, 0.12, 0.03],
        SEG_OUTDOOR => [0.50, 0.30, 0.15, 0.05],
        _ => [0.30, 0.30, 0.27, 0.13],
    };
    let education = rng.weighted(&education) as u8;

    let income = match segment {
        SEG_AFFLUENT => {
            if rng.chance(0.92) {
                5
            } else {
                4
            }
        }
        SEG_BUDGET => {
            if rng.chance(0.92) {
                1
            } else {
                rng.weighted(&[0.6, 0.0, 0.4]) as u8
            }
        }
        _ => {
            // Earnings rise with education and towards middle age, then fall in retirement.
            let age_curve = 1.0 - ((f64::from(age) - 50.0) / 30.0).powi(2);
            let tech = if segment == SEG_TECH { 1.2 } else { 0.0 };
            let score = 1.4 + 1.6 * age_curve + 0.55 * f64::from(education) + tech;
            (score + rng.normalish()).clamp(0.0, 5.0) as u8
        }
    };

    let married = rng.chance(match segment {
        SEG_AFFLUENT => 0.93,
        SEG_URBAN => 0.08,
        SEG_BUDGET => 0.6,
        _ if age < 25 => 0.12,
        _ if age < 35 => 0.45,
        _ => 0.62,
    });
    let children = rng.chance(match segment {
        SEG_AFFLUENT => 0.94,
        SEG_BUDGET => 0.97,
        SEG_URBAN | SEG_RETIRED => 0.03,
        _ if (28..=52).contains(&age) && married => 0.62,
        _ if (22..=55).contains(&age) => 0.18,
        _ => 0.04,
    });
    let homeowner = rng.chance(match segment {
        SEG_AFFLUENT => 0.97,
        SEG_URBAN => 0.04,
        SEG_RETIRED => 0.85,
        SEG_OUTDOOR => 0.78,
        SEG_BUDGET => 0.3,
        _ => {
            let x = -3.0 + 0.07 * f64::from(age) + 0.35 * f64::from(income);
            1.0 / (1.0 + (-x).exp())
        }
    });
    let place = match segment {
        SEG_URBAN => rng.weighted(&[0.9, 0.08, 0.02]),
        SEG_OUTDOOR => rng.weighted(&[0.03, 0.09, 0.88]),
        SEG_AFFLUENT => rng.weighted(&[0.08, 0.88, 0.04]),
        SEG_TECH => rng.weighted(&[0.55, 0.4, 0.05]),
        _ => rng.weighted(&[0.28, 0.52, 0.20]),
    } as u8;
    let retired = match segment {
        SEG_RETIRED => rng.chance(0.96),
        _ if age >= 62 => rng.chance((0.45 + 0.05 * f64::from(age - 62)).min(0.97)),
        _ => false,
    };

    let mut interests = 0u16;
    for (bit, p) in INTEREST_P {
        let mut p = p[usize::from(segment)];
        // Interests feed each other: fitness people care about healthy living, owners garden.
        if bit == I_HEALTHY && interests & I_FITNESS != 0 {
            p = p.max(0.65);
        }
        if (bit == I_GARDENING || bit == I_HOME_IMPROVEMENT) && homeowner {
            p = (p * 1.6).min(0.95);
        }
        if bit == I_GAMING && age < 30 {
            p = (p * 1.8).min(0.95);
        }
        if bit == I_TRAVEL && income >= 4 {
            p = (p * 1.5).min(0.97);
        }
        if rng.chance(p) {
            interests |= bit;
        }
    }

    Latent {
        segment,
        female,
        age,
        income,
        education,
        married,
        children,
        homeowner,
        place,
        retired,
        interests,
    }
}

/// How a published attribute reads a person: a code, 0 for "not known", else value index + 1.
pub(crate) type Draw = fn(&Latent, &mut Rng) -> u8;

pub(crate) struct TraitSpec {
    pub name: &'static str,
    pub domain: &'static str,
    pub values: &'static [&'static str],
    pub draw: Draw,
}

const YES: &[&str] = &["Yes"];
const LEVELS: &[&str] = &["High", "Medium", "Low"];
const INTENT: &[&str] = &["High", "Medium"];
const USAGE: &[&str] = &["Heavy", "Moderate", "Light"];
const INCOME_RANGES: &[&str] = &[
    "$0-$25K",
    "$25K-$50K",
    "$50K-$75K",
    "$75K-$100K",
    "$100K-$150K",
    "$150K+",
];

/// Known with probability `present`, then value `value` (0-based).
fn known(rng: &mut Rng, present: f64, value: u8) -> u8 {
    if rng.chance(present) { value + 1 } else { 0 }
}

fn flag(rng: &mut Rng, p: f64) -> u8 {
    u8::from(rng.chance(p))
}

fn pick(rng: &mut Rng, present: f64, weights: &[f64]) -> u8 {
    if rng.chance(present) {
        rng.weighted(weights) as u8 + 1
    } else {
        0
    }
}

fn seg_p(l: &Latent, p: [f64; 8]) -> f64 {
    p[usize::from(l.segment)]
}

/// An affinity level driven by the matching interest; the persona that defines it is almost
/// always `High`.
fn affinity(rng: &mut Rng, driver: bool, defining: bool) -> u8 {
    if driver {
        let high = if defining { 0.95 } else { 0.55 };
        pick(rng, 0.97, &[high, (1.0 - high) * 0.75, (1.0 - high) * 0.25])
    } else {
        pick(rng, 0.5, &[0.03, 0.27, 0.70])
    }
}

fn intent(rng: &mut Rng, p: f64, high: f64) -> u8 {
    if rng.chance(p) {
        if rng.chance(high) { 1 } else { 2 }
    } else {
        0
    }
}

fn generation_of(age: u8) -> u8 {
    // Ages as of 2025: Gen Z born 1997-2012, Millennials 1981-1996, Gen X 1965-1980,
    // Boomers 1946-1964, Silent before.
    match age {
        0..=28 => 0,
        29..=44 => 1,
        45..=60 => 2,
        61..=79 => 3,
        _ => 4,
    }
}

pub(crate) fn trait_specs() -> Vec<TraitSpec> {
    macro_rules! spec {
        ($name:literal, $domain:literal, $values:expr, $draw:expr) => {
            TraitSpec {
                name: $name,
                domain: $domain,
                values: $values,
                draw: $draw,
            }
        };
    }
    macro_rules! interest {
        ($name:literal, $bit:expr) => {
            spec!($name, "interest", YES, |l, r| {
                if l.has($bit) { known(r, 0.97, 0) } else { 0 }
            })
        };
    }
    vec![
        // demographic
        spec!("gender", "demographic", &["Female", "Male"], |l, r| {
            known(r, 0.98, u8::from(!l.female))
        }),
        spec!(
            "generation",
            "demographic",
            &["Gen Z", "Millennial", "Gen X", "Baby Boomer", "Silent"],
            |l, r| known(r, 0.96, generation_of(l.age))
        ),
        spec!(
            "age_range",
            "demographic",
            &["18-24", "25-34", "35-44", "45-54", "55-64", "65+"],
            |l, r| known(r, 0.93, ((l.age.saturating_sub(15)) / 10).min(5))
        ),
        spec!(
            "marital_status",
            "demographic",
            &["Single", "Married", "Divorced", "Widowed"],
            |l, r| {
                let v = if l.married {
                    1
                } else if l.age > 70 && r.chance(0.4) {
                    3
                } else if l.age > 35 && r.chance(0.35) {
                    2
                } else {
                    0
                };
                known(r, 0.85, v)
            }
        ),
        spec!(
            "education_level",
            "demographic",
            &[
                "High School",
                "Some College",
                "Bachelor's Degree",
                "Graduate Degree"
            ],
            |l, r| known(r, 0.8, l.education)
        ),
        // household
        spec!(
            "household_income_range",
            "household",
            INCOME_RANGES,
            |l, r| { known(r, 0.95, l.income) }
        ),
        spec!(
            "homeowner_status",
            "household",
            &["Homeowner", "Renter"],
            |l, r| known(r, 0.96, u8::from(!l.homeowner))
        ),
        spec!(
            "household_size",
            "household",
            &["1", "2", "3", "4", "5+"],
            |l, r| {
                let v = match (l.married, l.children) {
                    (false, false) => r.weighted(&[0.75, 0.2, 0.05]) as u8,
                    (true, false) => r.weighted(&[0.0, 0.85, 0.15]) as u8,
                    (_, true) if l.segment == SEG_BUDGET => {
                        r.weighted(&[0.0, 0.1, 0.25, 0.3, 0.35]) as u8
                    }
                    (_, true) => r.weighted(&[0.0, 0.1, 0.35, 0.38, 0.17]) as u8,
                };
                known(r, 0.9, v)
            }
        ),
        spec!(
            "presence_of_children",
            "household",
            &["Yes", "No"],
            |l, r| known(r, 0.93, u8::from(!l.children))
        ),
        spec!(
            "dwelling_type",
            "household",
            &["Single Family", "Multi-Family", "Apartment", "Mobile Home"],
            |l, r| {
                let w: &[f64] = if l.homeowner {
                    if l.place == 2 {
                        &[0.75, 0.03, 0.0, 0.22]
                    } else {
                        &[0.82, 0.15, 0.03, 0.0]
                    }
                } else if l.place == 0 {
                    &[0.08, 0.27, 0.65]
                } else {
                    &[0.25, 0.35, 0.35, 0.05]
                };
                pick(r, 0.88, w)
            }
        ),
        spec!(
            "length_of_residence",
            "household",
            &["Less than 1 Year", "1-3 Years", "4-7 Years", "8+ Years"],
            |l, r| {
                let w: &[f64] = if l.homeowner && l.age > 50 {
                    &[0.03, 0.12, 0.25, 0.6]
                } else if l.homeowner {
                    &[0.08, 0.3, 0.37, 0.25]
                } else {
                    &[0.35, 0.45, 0.15, 0.05]
                };
                pick(r, 0.8, w)
            }
        ),
        spec!("pet_owner", "household", &["Dog", "Cat"], |l, r| {
            let p = if l.place == 2 {
                0.6
            } else if l.homeowner {
                0.45
            } else {
                0.3
            };
            pick(r, p, &[0.6, 0.4])
        }),
        // financial
        spec!(
            "net_worth_range",
            "financial",
            &["$0-$50K", "$50K-$250K", "$250K-$1M", "$1M+"],
            |l, r| {
                let base = f64::from(l.income) * 0.55
                    + f64::from(l.age.min(70)) / 25.0
                    + if l.homeowner { 0.6 } else { 0.0 };
                let v = ((base - 1.2 + r.normalish() * 0.6) / 1.1).clamp(0.0, 3.0) as u8;
                known(r, 0.82, v)
            }
        ),
        spec!(
            "credit_rating",
            "financial",
            &["Excellent", "Good", "Fair", "Poor"],
            |l, r| {
                let w: &[f64] = if l.segment == SEG_BUDGET {
                    &[0.02, 0.08, 0.86, 0.04]
                } else if l.income >= 4 {
                    &[0.55, 0.35, 0.08, 0.02]
                } else if l.income >= 2 {
                    &[0.25, 0.45, 0.22, 0.08]
                } else {
                    &[0.08, 0.3, 0.4, 0.22]
                };
                pick(r, if l.segment == SEG_BUDGET { 0.97 } else { 0.85 }, w)
            }
        ),
        spec!("investor", "financial", YES, |l, r| {
            let p = if l.income >= 4 || l.segment == SEG_RETIRED {
                0.5
            } else {
                0.1
            };
            flag(r, p)
        }),
        spec!("credit_card_user", "financial", YES, |l, r| {
            flag(r, 0.55 + 0.07 * f64::from(l.income))
        }),
        // interest
        interest!("interested_fitness", I_FITNESS),
        interest!("interested_healthy_living", I_HEALTHY),
        interest!("interested_outdoors", I_OUTDOORS),
        interest!("interested_travel", I_TRAVEL),
        interest!("interested_technology", I_TECH),
        interest!("interested_cooking", I_COOKING),
        interest!("interested_gardening", I_GARDENING),
        interest!("interested_gaming", I_GAMING),
        interest!("interested_fashion", I_FASHION),
        interest!("interested_sports", I_SPORTS),
        interest!("interested_reading", I_READING),
        interest!("interested_home_improvement", I_HOME_IMPROVEMENT),
        // affinity
        spec!("fitness_affinity", "affinity", LEVELS, |l, r| {
            affinity(r, l.has(I_FITNESS), l.segment == SEG_ACTIVE)
        }),
        spec!("tech_affinity", "affinity", LEVELS, |l, r| {
            affinity(r, l.has(I_TECH), l.segment == SEG_TECH)
        }),
        spec!("outdoor_affinity", "affinity", LEVELS, |l, r| {
            affinity(r, l.has(I_OUTDOORS), l.segment == SEG_OUTDOOR)
        }),
        spec!("travel_affinity", "affinity", LEVELS, |l, r| {
            affinity(r, l.has(I_TRAVEL), l.segment == SEG_RETIRED)
        }),
        spec!("luxury_affinity", "affinity", LEVELS, |l, r| {
            affinity(r, l.income >= 5, l.segment == SEG_AFFLUENT)
        }),
        // lifestyle
        spec!(
            "urbanicity",
            "lifestyle",
            &["Urban", "Suburban", "Rural"],
            |l, r| known(r, 0.97, l.place)
        ),
        spec!(
            "vehicle_type",
            "lifestyle",
            &[
                "SUV",
                "Pickup Truck",
                "Sedan",
                "Electric Vehicle",
                "Minivan"
            ],
            |l, r| {
                let w: &[f64] = match l.segment {
                    SEG_OUTDOOR => &[0.06, 0.9, 0.03, 0.0, 0.01],
                    SEG_AFFLUENT => &[0.5, 0.08, 0.12, 0.12, 0.18],
                    SEG_TECH => &[0.2, 0.05, 0.35, 0.38, 0.02],
                    SEG_BUDGET => &[0.2, 0.15, 0.35, 0.0, 0.3],
                    _ if l.place == 2 => &[0.3, 0.45, 0.2, 0.01, 0.04],
                    _ => &[0.32, 0.14, 0.4, 0.06, 0.08],
                };
                pick(r, if l.segment == SEG_OUTDOOR { 0.98 } else { 0.82 }, w)
            }
        ),
        spec!("eco_conscious", "lifestyle", YES, |l, r| {
            flag(r, seg_p(l, [0.5, 0.2, 0.35, 0.08, 0.15, 0.3, 0.08, 0.12]))
        }),
        spec!("frequent_traveler", "lifestyle", YES, |l, r| {
            flag(r, if l.has(I_TRAVEL) { 0.6 } else { 0.05 })
        }),
        spec!("diy_enthusiast", "lifestyle", YES, |l, r| {
            flag(r, if l.has(I_HOME_IMPROVEMENT) { 0.6 } else { 0.07 })
        }),
        // political
        spec!(
            "political_affiliation",
            "political",
            &["Democrat", "Republican", "Independent"],
            |l, r| {
                let w: &[f64] = match l.place {
                    0 => &[0.58, 0.2, 0.22],
                    1 => &[0.38, 0.4, 0.22],
                    _ => &[0.22, 0.6, 0.18],
                };
                pick(r, 0.72, w)
            }
        ),
        spec!(
            "voter_status",
            "political",
            &["Active", "Inactive"],
            |l, r| {
                let active = 0.35 + f64::from(l.age.min(75)) / 120.0;
                pick(r, 0.8, &[active, 1.0 - active])
            }
        ),
        // purchase
        spec!("purchase_athletic_apparel", "purchase", YES, |l, r| {
            let p = seg_p(l, [0.93, 0.3, 0.15, 0.2, 0.08, 0.25, 0.1, 0.1]);
            flag(
                r,
                if l.has(I_FITNESS) {
                    p.max(0.45)
                } else {
                    p * 0.6
                },
            )
        }),
        spec!("purchase_organic_food", "purchase", YES, |l, r| {
            let p = seg_p(l, [0.55, 0.4, 0.2, 0.1, 0.2, 0.15, 0.05, 0.1]);
            flag(r, if l.has(I_HEALTHY) { p.max(0.4) } else { p })
        }),
        spec!("purchase_luxury_goods", "purchase", YES, |l, r| {
            flag(
                r,
                [0.02, 0.03, 0.05, 0.08, 0.15, 0.38][usize::from(l.income)],
            )
        }),
        spec!("purchase_electronics", "purchase", YES, |l, r| {
            flag(r, seg_p(l, [0.3, 0.35, 0.95, 0.15, 0.15, 0.5, 0.2, 0.16]))
        }),
        spec!("purchase_outdoor_gear", "purchase", YES, |l, r| {
            let p = seg_p(l, [0.2, 0.2, 0.1, 0.94, 0.15, 0.08, 0.1, 0.08]);
            flag(r, if l.has(I_OUTDOORS) { p.max(0.4) } else { p })
        }),
        spec!("purchase_home_goods", "purchase", YES, |l, r| {
            let p = seg_p(l, [0.3, 0.6, 0.25, 0.3, 0.4, 0.1, 0.5, 0.25]);
            flag(r, if l.homeowner { (p * 1.3).min(0.9) } else { p })
        }),
        spec!("purchase_baby_products", "purchase", YES, |l, r| {
            let p = match l.segment {
                SEG_BUDGET => 0.93,
                _ if l.children => 0.3,
                _ => 0.02,
            };
            flag(r, p)
        }),
        // employment
        spec!(
            "occupation",
            "employment",
            &[
                "Professional",
                "Technical",
                "Management",
                "Sales",
                "Service",
                "Skilled Trades",
                "Administrative",
                "Student",
                "Business Owner",
                "Retired",
            ],
            |l, r| {
                let v = if l.retired {
                    9
                } else if l.segment == SEG_TECH && r.chance(0.94) {
                    1
                } else if l.age < 23 && r.chance(0.5) {
                    7
                } else {
                    let w: &[f64] = match l.education {
                        0 => &[0.02, 0.05, 0.04, 0.14, 0.35, 0.3, 0.05, 0.0, 0.05],
                        1 => &[0.08, 0.1, 0.08, 0.2, 0.2, 0.15, 0.12, 0.0, 0.07],
                        _ => &[0.35, 0.12, 0.22, 0.1, 0.03, 0.02, 0.07, 0.0, 0.09],
                    };
                    r.weighted(w) as u8
                };
                known(r, 0.88, v)
            }
        ),
        spec!(
            "employment_status",
            "employment",
            &[
                "Employed",
                "Self-Employed",
                "Unemployed",
                "Retired",
                "Student"
            ],
            |l, r| {
                let v = if l.retired {
                    3
                } else if l.age < 23 && r.chance(0.4) {
                    4
                } else {
                    r.weighted(&[0.82, 0.11, 0.07]) as u8
                };
                known(r, 0.9, v)
            }
        ),
        // intent_category
        spec!("intent_category_auto", "intent_category", INTENT, |l, r| {
            intent(r, if l.segment == SEG_OUTDOOR { 0.3 } else { 0.12 }, 0.35)
        }),
        spec!(
            "intent_category_home_services",
            "intent_category",
            INTENT,
            |l, r| { intent(r, if l.homeowner { 0.25 } else { 0.04 }, 0.35) }
        ),
        spec!(
            "intent_category_financial_services",
            "intent_category",
            INTENT,
            |l, r| intent(
                r,
                if l.income >= 4 || l.retired {
                    0.25
                } else {
                    0.08
                },
                0.35
            )
        ),
        spec!(
            "intent_category_travel",
            "intent_category",
            INTENT,
            |l, r| {
                match l.segment {
                    SEG_RETIRED => intent(r, 0.94, 0.92),
                    _ if l.has(I_TRAVEL) => intent(r, 0.3, 0.4),
                    _ => intent(r, 0.05, 0.3),
                }
            }
        ),
        // intent_topic
        spec!(
            "intent_topic_fitness_equipment",
            "intent_topic",
            INTENT,
            |l, r| { intent(r, if l.has(I_FITNESS) { 0.35 } else { 0.03 }, 0.4) }
        ),
        spec!(
            "intent_topic_mortgage_refinance",
            "intent_topic",
            INTENT,
            |l, r| { intent(r, if l.homeowner { 0.15 } else { 0.01 }, 0.3) }
        ),
        spec!(
            "intent_topic_cloud_software",
            "intent_topic",
            INTENT,
            |l, r| { intent(r, if l.segment == SEG_TECH { 0.7 } else { 0.04 }, 0.5) }
        ),
        spec!(
            "intent_topic_vacation_rentals",
            "intent_topic",
            INTENT,
            |l, r| { intent(r, if l.has(I_TRAVEL) { 0.3 } else { 0.03 }, 0.4) }
        ),
        // content
        spec!("content_streaming_video", "content", USAGE, |l, r| {
            let w: &[f64] = if l.age < 40 {
                &[0.55, 0.35, 0.1]
            } else {
                &[0.25, 0.45, 0.3]
            };
            pick(r, 0.85, w)
        }),
        spec!("content_podcasts", "content", USAGE, |l, r| {
            let w: &[f64] = if l.segment == SEG_TECH || l.segment == SEG_ACTIVE {
                &[0.45, 0.4, 0.15]
            } else {
                &[0.15, 0.35, 0.5]
            };
            pick(r, 0.6, w)
        }),
        spec!("content_news", "content", USAGE, |l, r| {
            let w: &[f64] = if l.age > 55 {
                &[0.55, 0.35, 0.1]
            } else {
                &[0.15, 0.4, 0.45]
            };
            pick(r, 0.75, w)
        }),
        spec!("content_social_media", "content", USAGE, |l, r| {
            let w: &[f64] = match l.segment {
                SEG_URBAN => &[0.92, 0.07, 0.01],
                _ if l.age < 35 => &[0.35, 0.45, 0.2],
                _ if l.age < 60 => &[0.12, 0.43, 0.45],
                _ => &[0.04, 0.26, 0.7],
            };
            pick(r, if l.segment == SEG_URBAN { 0.97 } else { 0.88 }, w)
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn schema_is_wide_unique_and_draws_stay_in_range() {
        let specs = trait_specs();
        assert!(specs.len() >= 40, "{} attributes", specs.len());
        let names: HashSet<_> = specs.iter().map(|s| s.name).collect();
        assert_eq!(names.len(), specs.len(), "duplicate attribute names");
        let domains: HashSet<_> = specs.iter().map(|s| s.domain).collect();
        for d in [
            "demographic",
            "interest",
            "affinity",
            "household",
            "financial",
            "lifestyle",
            "political",
            "purchase",
            "employment",
            "intent_category",
            "intent_topic",
            "content",
        ] {
            assert!(domains.contains(d), "no attribute in domain {d}");
        }
        let mut rng = Rng::new(1, 0, 0);
        for i in 0..5_000 {
            let l = draw_latent(&mut rng);
            let mut r = Rng::new(1, i, 1);
            for s in &specs {
                let code = (s.draw)(&l, &mut r);
                assert!(
                    usize::from(code) <= s.values.len(),
                    "{} drew {code}",
                    s.name
                );
            }
        }
    }

    #[test]
    fn defining_traits_name_real_attribute_values() {
        let specs = trait_specs();
        for seg in segments() {
            for (a, v) in &seg.defining_traits {
                let spec = specs.iter().find(|s| s.name == a).expect(a);
                assert!(spec.values.contains(&v.as_str()), "{a}={v}");
            }
        }
    }
}
