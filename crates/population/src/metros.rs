//! US metro areas people are placed in: centre, state, ZIP prefix, area codes and a few streets.

pub(crate) struct Metro {
    pub city: &'static str,
    pub state: &'static str,
    pub lat: f64,
    pub lon: f64,
    /// Relative population, for drawing where people live.
    pub weight: f64,
    pub zip_prefix: u32,
    /// Three area codes each, so generated phone numbers stay unique up to 24M numbers a metro.
    pub area_codes: [u16; 3],
}

macro_rules! metro {
    ($city:literal, $st:literal, $lat:expr, $lon:expr, $w:expr, $zip:expr, $ac:expr) => {
        Metro {
            city: $city,
            state: $st,
            lat: $lat,
            lon: $lon,
            weight: $w,
            zip_prefix: $zip,
            area_codes: $ac,
        }
    };
}

pub(crate) const METROS: &[Metro] = &[
    metro!(
        "New York",
        "NY",
        40.7128,
        -74.0060,
        19.8,
        100,
        [212, 718, 917]
    ),
    metro!(
        "Los Angeles",
        "CA",
        34.0522,
        -118.2437,
        13.2,
        900,
        [213, 310, 323]
    ),
    metro!(
        "Chicago",
        "IL",
        41.8781,
        -87.6298,
        9.5,
        606,
        [312, 773, 872]
    ),
    metro!("Dallas", "TX", 32.7767, -96.7970, 7.6, 752, [214, 469, 972]),
    metro!(
        "Houston",
        "TX",
        29.7604,
        -95.3698,
        7.1,
        770,
        [713, 281, 832]
    ),
    metro!(
        "Washington",
        "DC",
        38.9072,
        -77.0369,
        6.3,
        200,
        [202, 571, 703]
    ),
    metro!(
        "Philadelphia",
        "PA",
        39.9526,
        -75.1652,
        6.2,
        191,
        [215, 267, 445]
    ),
    metro!("Miami", "FL", 25.7617, -80.1918, 6.1, 331, [305, 786, 954]),
    metro!(
        "Atlanta",
        "GA",
        33.7490,
        -84.3880,
        6.1,
        303,
        [404, 470, 678]
    ),
    metro!("Boston", "MA", 42.3601, -71.0589, 4.9, 21, [617, 857, 781]),
    metro!(
        "Phoenix",
        "AZ",
        33.4484,
        -112.0740,
        4.9,
        850,
        [602, 480, 623]
    ),
    metro!(
        "San Francisco",
        "CA",
        37.7749,
        -122.4194,
        4.7,
        941,
        [415, 510, 628]
    ),
    metro!(
        "Riverside",
        "CA",
        33.9533,
        -117.3962,
        4.6,
        925,
        [951, 909, 760]
    ),
    metro!(
        "Detroit",
        "MI",
        42.3314,
        -83.0458,
        4.3,
        482,
        [313, 248, 586]
    ),
    metro!(
        "Seattle",
        "WA",
        47.6062,
        -122.3321,
        4.0,
        981,
        [206, 425, 253]
    ),
    metro!(
        "Minneapolis",
        "MN",
        44.9778,
        -93.2650,
        3.7,
        554,
        [612, 651, 763]
    ),
    metro!(
        "San Diego",
        "CA",
        32.7157,
        -117.1611,
        3.3,
        921,
        [619, 858, 442]
    ),
    metro!("Tampa", "FL", 27.9506, -82.4572, 3.2, 336, [813, 727, 656]),
    metro!(
        "Denver",
        "CO",
        39.7392,
        -104.9903,
        3.0,
        802,
        [303, 720, 983]
    ),
    metro!(
        "St. Louis",
        "MO",
        38.6270,
        -90.1994,
        2.8,
        631,
        [314, 636, 557]
    ),
    metro!(
        "Baltimore",
        "MD",
        39.2904,
        -76.6122,
        2.8,
        212,
        [410, 443, 667]
    ),
    metro!(
        "Charlotte",
        "NC",
        35.2271,
        -80.8431,
        2.7,
        282,
        [704, 980, 803]
    ),
    metro!(
        "Orlando",
        "FL",
        28.5383,
        -81.3792,
        2.7,
        328,
        [407, 321, 689]
    ),
    metro!(
        "San Antonio",
        "TX",
        29.4241,
        -98.4936,
        2.6,
        782,
        [210, 726, 830]
    ),
    metro!(
        "Portland",
        "OR",
        45.5152,
        -122.6784,
        2.5,
        972,
        [503, 971, 360]
    ),
    metro!(
        "Sacramento",
        "CA",
        38.5816,
        -121.4944,
        2.4,
        958,
        [916, 279, 530]
    ),
    metro!(
        "Pittsburgh",
        "PA",
        40.4406,
        -79.9959,
        2.4,
        152,
        [412, 724, 878]
    ),
    metro!("Austin", "TX", 30.2672, -97.7431, 2.4, 787, [512, 737, 254]),
    metro!(
        "Las Vegas",
        "NV",
        36.1699,
        -115.1398,
        2.3,
        891,
        [702, 725, 775]
    ),
    metro!(
        "Cincinnati",
        "OH",
        39.1031,
        -84.5120,
        2.3,
        452,
        [513, 283, 859]
    ),
    metro!(
        "Kansas City",
        "MO",
        39.0997,
        -94.5786,
        2.2,
        641,
        [816, 913, 975]
    ),
    metro!(
        "Columbus",
        "OH",
        39.9612,
        -82.9988,
        2.1,
        432,
        [614, 380, 740]
    ),
    metro!(
        "Indianapolis",
        "IN",
        39.7684,
        -86.1581,
        2.1,
        462,
        [317, 463, 765]
    ),
    metro!(
        "Cleveland",
        "OH",
        41.4993,
        -81.6944,
        2.1,
        441,
        [216, 440, 330]
    ),
    metro!(
        "Nashville",
        "TN",
        36.1627,
        -86.7816,
        2.0,
        372,
        [615, 629, 931]
    ),
    metro!(
        "Raleigh",
        "NC",
        35.7796,
        -78.6382,
        1.4,
        276,
        [919, 984, 252]
    ),
    metro!(
        "Salt Lake City",
        "UT",
        40.7608,
        -111.8910,
        1.3,
        841,
        [801, 385, 435]
    ),
    metro!("Boise", "ID", 43.6150, -116.2023, 0.8, 837, [208, 986, 509]),
    metro!(
        "Albuquerque",
        "NM",
        35.0844,
        -106.6504,
        0.9,
        871,
        [505, 575, 915]
    ),
    metro!("Omaha", "NE", 41.2565, -95.9345, 1.0, 681, [402, 531, 308]),
    metro!(
        "Billings",
        "MT",
        45.7833,
        -108.5007,
        0.3,
        591,
        [406, 307, 701]
    ),
    metro!(
        "Anchorage",
        "AK",
        61.2181,
        -149.9003,
        0.4,
        995,
        [907, 250, 867]
    ),
    metro!(
        "Honolulu",
        "HI",
        21.3069,
        -157.8583,
        1.0,
        968,
        [808, 671, 684]
    ),
];

pub(crate) const STREETS: &[&str] = &[
    "Main",
    "Oak",
    "Pine",
    "Maple",
    "Cedar",
    "Elm",
    "Washington",
    "Lake",
    "Hill",
    "Park",
    "Sunset",
    "Ridge",
    "Lincoln",
    "Jackson",
    "Church",
    "Highland",
    "Meadow",
    "Forest",
    "River",
    "Spring",
    "Walnut",
    "Willow",
    "Chestnut",
    "Franklin",
    "Jefferson",
    "Madison",
    "Adams",
    "Valley",
    "Mill",
    "Center",
    "Broadway",
    "Union",
    "Prospect",
    "Sycamore",
    "Hickory",
    "Birch",
];

pub(crate) const STREET_KINDS: &[&str] = &["St", "Ave", "Rd", "Dr", "Ln", "Blvd", "Ct", "Way"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metros_are_in_the_us_with_distinct_area_codes() {
        let mut seen = std::collections::HashSet::new();
        for m in METROS {
            assert!((18.0..72.0).contains(&m.lat) && (-170.0..-60.0).contains(&m.lon));
            for ac in m.area_codes {
                assert!((200..1000).contains(&ac));
                assert!(seen.insert(ac), "area code {ac} used twice");
            }
        }
    }
}
