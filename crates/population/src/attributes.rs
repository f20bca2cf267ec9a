//! The published trait attributes of the generated population, each a noisy reading of a
//! person's latent facts (`personas`): its name, domain, values and how it reads them.

use crate::persona_table::{
    I_COOKING, I_FASHION, I_FITNESS, I_GAMING, I_GARDENING, I_HEALTHY, I_HOME_IMPROVEMENT,
    I_OUTDOORS, I_READING, I_SPORTS, I_TECH, I_TRAVEL, INCOME_RANGES, INTENT, LEVELS, SEG_ACTIVE,
    SEG_AFFLUENT, SEG_BUDGET, SEG_OUTDOOR, SEG_RETIRED, SEG_TECH, SEG_URBAN, USAGE, YES,
};
use crate::personas::Latent;
use crate::rng::Rng;

/// How a published attribute reads a person: a code, 0 for "not known", else value index + 1.
pub(crate) type Draw = fn(&Latent, &mut Rng) -> u8;

pub(crate) struct TraitSpec {
    pub name: &'static str,
    pub domain: &'static str,
    pub values: &'static [&'static str],
    pub draw: Draw,
}

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
    use std::collections::HashSet;

    use super::*;
    use crate::personas::{draw_latent, segments};

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
