//! The generated population's personas and the latent facts a person is drawn as.
//!
//! A person is first drawn as a handful of latent facts (persona, age, income, home, family,
//! place, interests); every published attribute is then a noisy reading of those facts. That is
//! what makes traits correlate the way they do in life: fitness with healthy living, age with
//! generation and income, homeowners with household size, and so on.

use crate::persona_table::{
    I_FITNESS, I_GAMING, I_GARDENING, I_HEALTHY, I_HOME_IMPROVEMENT, I_TRAVEL, INTEREST_P,
    PERSONAS, SEG_ACTIVE, SEG_AFFLUENT, SEG_BUDGET, SEG_OUTDOOR, SEG_RETIRED, SEG_TECH, SEG_URBAN,
    SEGMENT_WEIGHTS,
};
use crate::rng::Rng;

/// One published segment (persona) of the generated population.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub name: String,
    pub description: String,
    /// `(attribute, value)` pairs held by most members (≥ 80 %) and far fewer others.
    pub defining_traits: Vec<(String, String)>,
}

pub(crate) fn segments() -> Vec<Segment> {
    PERSONAS
        .iter()
        .map(|p| Segment {
            name: p.name.to_owned(),
            description: p.description.to_owned(),
            defining_traits: p
                .defining_traits
                .iter()
                .map(|(a, v)| ((*a).to_owned(), (*v).to_owned()))
                .collect(),
        })
        .collect()
}

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
    pub(crate) fn has(&self, bit: u16) -> bool {
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
