//! The generated population's persona table: who the personas are, how many people each holds,
//! how likely each is to hold each interest, and the value lists of the attributes. Data only;
//! `personas` and `attributes` turn it into people.

// Segment (persona) ids: the index into `PERSONAS`, `SEGMENT_WEIGHTS` and `INTEREST_P` rows.
pub(crate) const SEG_ACTIVE: u8 = 0;
pub(crate) const SEG_AFFLUENT: u8 = 1;
pub(crate) const SEG_TECH: u8 = 2;
pub(crate) const SEG_OUTDOOR: u8 = 3;
pub(crate) const SEG_RETIRED: u8 = 4;
pub(crate) const SEG_URBAN: u8 = 5;
pub(crate) const SEG_BUDGET: u8 = 6;
// Segment 7 is the mainstream: base rates, no overrides.

/// Share of the population in each segment, indexed by the constants above.
pub(crate) const SEGMENT_WEIGHTS: [f64; 8] = [0.10, 0.09, 0.09, 0.08, 0.10, 0.09, 0.09, 0.36];

/// One persona as the table gives it.
pub(crate) struct Persona {
    pub name: &'static str,
    pub description: &'static str,
    /// `(attribute, value)` pairs held by most members (≥ 80 %) and far fewer others.
    pub defining_traits: &'static [(&'static str, &'static str)],
}

/// The personas in segment order.
pub(crate) const PERSONAS: [Persona; 8] = [
    Persona {
        name: "active_millennials",
        description: "Fitness-minded millennials who live healthily and buy athletic apparel",
        defining_traits: &[
            ("generation", "Millennial"),
            ("interested_fitness", "Yes"),
            ("interested_healthy_living", "Yes"),
            ("fitness_affinity", "High"),
            ("purchase_athletic_apparel", "Yes"),
        ],
    },
    Persona {
        name: "affluent_suburban_families",
        description: "High-income suburban homeowners raising children, with a taste for luxury",
        defining_traits: &[
            ("presence_of_children", "Yes"),
            ("household_income_range", "$150K+"),
            ("luxury_affinity", "High"),
        ],
    },
    Persona {
        name: "tech_professionals",
        description: "Technical workers who follow and buy technology",
        defining_traits: &[
            ("interested_technology", "Yes"),
            ("tech_affinity", "High"),
            ("purchase_electronics", "Yes"),
            ("occupation", "Technical"),
        ],
    },
    Persona {
        name: "rural_outdoor_enthusiasts",
        description: "Rural people who hunt, fish, hike and drive pickups",
        defining_traits: &[
            ("urbanicity", "Rural"),
            ("interested_outdoors", "Yes"),
            ("outdoor_affinity", "High"),
            ("purchase_outdoor_gear", "Yes"),
            ("vehicle_type", "Pickup Truck"),
        ],
    },
    Persona {
        name: "retired_travelers",
        description: "Retired baby boomers who travel often",
        defining_traits: &[
            ("generation", "Baby Boomer"),
            ("employment_status", "Retired"),
            ("interested_travel", "Yes"),
            ("travel_affinity", "High"),
            ("intent_category_travel", "High"),
        ],
    },
    Persona {
        name: "young_urban_renters",
        description: "Gen Z city renters, gamers and heavy social media users",
        defining_traits: &[
            ("generation", "Gen Z"),
            ("homeowner_status", "Renter"),
            ("urbanicity", "Urban"),
            ("interested_gaming", "Yes"),
            ("content_social_media", "Heavy"),
        ],
    },
    Persona {
        name: "budget_conscious_parents",
        description: "Lower-income parents buying for babies and young children",
        defining_traits: &[
            ("presence_of_children", "Yes"),
            ("household_income_range", "$25K-$50K"),
            ("purchase_baby_products", "Yes"),
            ("credit_rating", "Fair"),
        ],
    },
    Persona {
        name: "mainstream",
        description: "Everyone else: traits at their population base rates",
        defining_traits: &[],
    },
];

// Interest bits, one per `interested_*` attribute.
pub(crate) const I_FITNESS: u16 = 1 << 0;
pub(crate) const I_HEALTHY: u16 = 1 << 1;
pub(crate) const I_OUTDOORS: u16 = 1 << 2;
pub(crate) const I_TRAVEL: u16 = 1 << 3;
pub(crate) const I_TECH: u16 = 1 << 4;
pub(crate) const I_COOKING: u16 = 1 << 5;
pub(crate) const I_GARDENING: u16 = 1 << 6;
pub(crate) const I_GAMING: u16 = 1 << 7;
pub(crate) const I_FASHION: u16 = 1 << 8;
pub(crate) const I_SPORTS: u16 = 1 << 9;
pub(crate) const I_READING: u16 = 1 << 10;
pub(crate) const I_HOME_IMPROVEMENT: u16 = 1 << 11;

/// P(interest | segment), columns in segment order.
pub(crate) const INTEREST_P: [(u16, [f64; 8]); 12] = [
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

// Value lists several attributes share.
pub(crate) const YES: &[&str] = &["Yes"];
pub(crate) const LEVELS: &[&str] = &["High", "Medium", "Low"];
pub(crate) const INTENT: &[&str] = &["High", "Medium"];
pub(crate) const USAGE: &[&str] = &["Heavy", "Moderate", "Light"];
pub(crate) const INCOME_RANGES: &[&str] = &[
    "$0-$25K",
    "$25K-$50K",
    "$50K-$75K",
    "$75K-$100K",
    "$100K-$150K",
    "$150K+",
];
