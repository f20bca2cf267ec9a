//! Great-circle radius search: a one-degree grid of bitmaps narrows the candidates, the exact
//! haversine distance decides.

use std::collections::HashMap;

use icp_contract::{DistanceUnit, Location, ProviderError};
use roaring::RoaringBitmap;

/// Mean earth radius (IUGG), in each unit.
const EARTH_RADIUS_MILES: f64 = 3_958.761_3;
const EARTH_RADIUS_KM: f64 = 6_371.008_8;

pub(crate) fn earth_radius(unit: DistanceUnit) -> f64 {
    match unit {
        DistanceUnit::Miles => EARTH_RADIUS_MILES,
        DistanceUnit::Km => EARTH_RADIUS_KM,
    }
}

/// Haversine distance between two points given in degrees, in the unit of `radius`.
pub fn great_circle_distance(lat1: f64, lon1: f64, lat2: f64, lon2: f64, radius: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    // Rounding can push `a` a hair above 1; `min` would also turn a NaN (unknown place) into 1.
    let a = if a > 1.0 { 1.0 } else { a };
    2.0 * radius * a.sqrt().asin()
}

pub(crate) fn validate(loc: &Location) -> Result<(), ProviderError> {
    if !(loc.latitude.is_finite() && (-90.0..=90.0).contains(&loc.latitude)) {
        return Err(ProviderError::validation(format!(
            "location.latitude must be within -90..90, got {}",
            loc.latitude
        )));
    }
    if !(loc.longitude.is_finite() && (-180.0..=180.0).contains(&loc.longitude)) {
        return Err(ProviderError::validation(format!(
            "location.longitude must be within -180..180, got {}",
            loc.longitude
        )));
    }
    if !(loc.radius.is_finite() && loc.radius > 0.0) {
        return Err(ProviderError::validation(format!(
            "location.radius must be a positive number, got {}",
            loc.radius
        )));
    }
    Ok(())
}

fn cell_of(lat: f64, lon: f64) -> u32 {
    let row = (lat.floor() + 90.0).clamp(0.0, 179.0) as u32;
    let col = (lon.floor() + 180.0).rem_euclid(360.0) as u32;
    row * 360 + col
}

/// Persons by one-degree cell.
#[derive(Debug, Default)]
pub(crate) struct GeoGrid {
    cells: HashMap<u32, RoaringBitmap>,
}

impl GeoGrid {
    pub(crate) fn build(lat: &[f64], lon: &[f64]) -> GeoGrid {
        let mut cells: HashMap<u32, RoaringBitmap> = HashMap::new();
        for (i, (la, lo)) in lat.iter().zip(lon).enumerate() {
            if la.is_finite() && lo.is_finite() {
                // Rows arrive in increasing order, so every insert is an append.
                let appended = cells
                    .entry(cell_of(*la, *lo))
                    .or_default()
                    .try_push(i as u32);
                debug_assert!(appended.is_ok());
            }
        }
        GeoGrid { cells }
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        self.cells.values().map(|b| b.serialized_size() + 16).sum()
    }

    /// Everyone in a cell that the circle's bounding box touches: a superset of the answer.
    pub(crate) fn candidates(&self, loc: &Location) -> RoaringBitmap {
        let delta = (loc.radius / earth_radius(loc.unit)).to_degrees();
        let lat_lo = loc.latitude - delta;
        let lat_hi = loc.latitude + delta;
        // Near a pole or for huge circles every longitude is in reach.
        let cos = loc.latitude.to_radians().cos();
        let sin_delta = (loc.radius / earth_radius(loc.unit))
            .min(std::f64::consts::PI)
            .sin();
        let all_lons = lat_lo <= -90.0 || lat_hi >= 90.0 || delta >= 90.0 || sin_delta >= cos;
        let lon_delta = if all_lons {
            180.0
        } else {
            (sin_delta / cos).asin().to_degrees()
        };
        let rows = (lat_lo.max(-90.0).floor() as i32)..=(lat_hi.min(89.999).floor() as i32);
        let cols: Vec<u32> = if all_lons {
            (0..360).collect()
        } else {
            let lo = (loc.longitude - lon_delta).floor() as i32;
            let hi = (loc.longitude + lon_delta).floor() as i32;
            (lo..=hi)
                .map(|c| (c + 180).rem_euclid(360) as u32)
                .collect()
        };
        let mut out = RoaringBitmap::new();
        for r in rows {
            let row = (r + 90).clamp(0, 179) as u32;
            for c in &cols {
                if let Some(b) = self.cells.get(&(row * 360 + c)) {
                    out |= b;
                }
            }
        }
        out
    }

    /// `within` ∩ the circle, by exact great-circle distance.
    #[cfg(test)]
    pub(crate) fn filter(
        &self,
        within: &RoaringBitmap,
        loc: &Location,
        lat: &[f64],
        lon: &[f64],
    ) -> RoaringBitmap {
        let mut cands = self.candidates(loc);
        cands &= within;
        exact(&cands, loc, lat, lon)
    }
}

/// Those of `cands` inside the circle, by exact great-circle distance.
pub(crate) fn exact(
    cands: &RoaringBitmap,
    loc: &Location,
    lat: &[f64],
    lon: &[f64],
) -> RoaringBitmap {
    let radius = earth_radius(loc.unit);
    let inside = cands.iter().filter(|&p| {
        let p = p as usize;
        great_circle_distance(loc.latitude, loc.longitude, lat[p], lon[p], radius) <= loc.radius
    });
    // The iteration is in order, so the bitmap is built by appending.
    RoaringBitmap::from_sorted_iter(inside).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_distances() {
        // New York to Los Angeles is about 2,445 miles / 3,936 km.
        let mi = great_circle_distance(40.7128, -74.0060, 34.0522, -118.2437, EARTH_RADIUS_MILES);
        assert!((mi - 2445.0).abs() < 5.0, "{mi}");
        let km = great_circle_distance(40.7128, -74.0060, 34.0522, -118.2437, EARTH_RADIUS_KM);
        assert!((km - 3936.0).abs() < 8.0, "{km}");
        assert_eq!(
            great_circle_distance(1.0, 2.0, 1.0, 2.0, EARTH_RADIUS_KM),
            0.0
        );
    }

    #[test]
    fn grid_filter_equals_a_full_scan() {
        let mut lat = Vec::new();
        let mut lon = Vec::new();
        let mut rng = crate::rng::Rng::new(3, 0, 0);
        for _ in 0..20_000 {
            lat.push(rng.unit() * 178.0 - 89.0);
            lon.push(rng.unit() * 360.0 - 180.0);
        }
        lat.push(f64::NAN);
        lon.push(f64::NAN);
        let grid = GeoGrid::build(&lat, &lon);
        let all: RoaringBitmap = (0..lat.len() as u32).collect();
        for (la, lo, r, unit) in [
            (40.0, -74.0, 300.0, DistanceUnit::Miles),
            (0.0, 179.9, 500.0, DistanceUnit::Km),
            (88.5, 10.0, 200.0, DistanceUnit::Km),
            (-30.0, 20.0, 15_000.0, DistanceUnit::Miles),
        ] {
            let loc = Location {
                latitude: la,
                longitude: lo,
                radius: r,
                unit,
            };
            let fast = grid.filter(&all, &loc, &lat, &lon);
            let slow: RoaringBitmap = (0..lat.len())
                .filter(|&p| great_circle_distance(la, lo, lat[p], lon[p], earth_radius(unit)) <= r)
                .map(|p| p as u32)
                .collect();
            assert_eq!(fast, slow, "circle at {la},{lo} r={r}");
            assert!(!slow.is_empty());
        }
    }

    #[test]
    fn bad_locations_are_refused() {
        let ok = Location {
            latitude: 10.0,
            longitude: 10.0,
            radius: 5.0,
            unit: DistanceUnit::Km,
        };
        assert!(validate(&ok).is_ok());
        assert!(
            validate(&Location {
                latitude: 91.0,
                ..ok
            })
            .is_err()
        );
        assert!(
            validate(&Location {
                longitude: f64::NAN,
                ..ok
            })
            .is_err()
        );
        assert!(validate(&Location { radius: 0.0, ..ok }).is_err());
    }
}
