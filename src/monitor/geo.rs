//! A small built-in table of country centres (ISO 3166-1 alpha-2, rough latitude and
//! longitude), enough to tell impossible travel between two countries from a plausible trip.

/// Country code, latitude, longitude (degrees).
const CENTROIDS: &[(&str, f64, f64)] = &[
    ("AE", 23.4, 53.8),
    ("AR", -38.4, -63.6),
    ("AT", 47.5, 14.6),
    ("AU", -25.3, 133.8),
    ("BD", 23.7, 90.4),
    ("BE", 50.5, 4.5),
    ("BR", -14.2, -51.9),
    ("CA", 56.1, -106.3),
    ("CH", 46.8, 8.2),
    ("CL", -35.7, -71.5),
    ("CN", 35.9, 104.2),
    ("CO", 4.6, -74.3),
    ("CZ", 49.8, 15.5),
    ("DE", 51.2, 10.5),
    ("DK", 56.3, 9.5),
    ("EG", 26.8, 30.8),
    ("ES", 40.5, -3.7),
    ("FI", 61.9, 25.7),
    ("FR", 46.2, 2.2),
    ("GB", 55.4, -3.4),
    ("GR", 39.1, 21.8),
    ("HK", 22.3, 114.2),
    ("HU", 47.2, 19.5),
    ("ID", -0.8, 113.9),
    ("IE", 53.4, -8.2),
    ("IL", 31.0, 34.9),
    ("IN", 20.6, 79.0),
    ("IT", 41.9, 12.6),
    ("JP", 36.2, 138.3),
    ("KE", -0.0, 37.9),
    ("KR", 35.9, 127.8),
    ("MA", 31.8, -7.1),
    ("MX", 23.6, -102.6),
    ("MY", 4.2, 102.0),
    ("NG", 9.1, 8.7),
    ("NL", 52.1, 5.3),
    ("NO", 60.5, 8.5),
    ("NZ", -40.9, 174.9),
    ("PE", -9.2, -75.0),
    ("PH", 12.9, 121.8),
    ("PK", 30.4, 69.3),
    ("PL", 51.9, 19.1),
    ("PT", 39.4, -8.2),
    ("RO", 45.9, 25.0),
    ("RU", 61.5, 105.3),
    ("SA", 23.9, 45.1),
    ("SE", 60.1, 18.6),
    ("SG", 1.4, 103.8),
    ("TH", 15.9, 101.0),
    ("TR", 39.0, 35.2),
    ("TW", 23.7, 121.0),
    ("UA", 48.4, 31.2),
    ("US", 37.1, -95.7),
    ("VN", 14.1, 108.3),
    ("ZA", -30.6, 22.9),
];

/// The centre of `country`, if the table has it.
pub fn centroid(country: &str) -> Option<(f64, f64)> {
    CENTROIDS
        .binary_search_by(|(c, _, _)| c.cmp(&country))
        .ok()
        .map(|i| (CENTROIDS[i].1, CENTROIDS[i].2))
}

/// Great-circle distance in kilometres between two countries' centres, if both are known.
pub fn distance_km(a: &str, b: &str) -> Option<f64> {
    let (lat1, lon1) = centroid(a)?;
    let (lat2, lon2) = centroid(b)?;
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    Some(2.0 * 6_371.0 * h.sqrt().asin())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_for_binary_search() {
        assert!(CENTROIDS.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn distances_are_about_right() {
        let gb_us = distance_km("GB", "US").unwrap();
        assert!((6_000.0..8_000.0).contains(&gb_us), "{gb_us}");
        let de_nl = distance_km("DE", "NL").unwrap();
        assert!(de_nl < 500.0, "{de_nl}");
        assert_eq!(distance_km("DE", "DE"), Some(0.0));
        assert_eq!(distance_km("DE", "XX"), None);
    }
}
