//! Small statistics for evaluation tables: means, confidence intervals, paired
//! differences.

/// Two-sided 95 % quantile of Student's t with `dof` degrees of freedom: the
/// standard table for 1–30 (linear between integers, for Welch's fractional degrees)
/// and the Cornish–Fisher expansion beyond (error < 1e-4 there).
pub fn t975(dof: f64) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    let dof = dof.max(1.0);
    if dof <= 30.0 {
        let lo = dof.floor() as usize;
        let hi = dof.ceil() as usize;
        let w = dof - lo as f64;
        return TABLE[lo - 1] * (1.0 - w) + TABLE[hi - 1] * w;
    }
    let z: f64 = 1.959_963_985;
    let (z3, z5, z7) = (z.powi(3), z.powi(5), z.powi(7));
    z + (z3 + z) / (4.0 * dof)
        + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * dof * dof)
        + (3.0 * z7 + 19.0 * z5 + 17.0 * z3 - 15.0 * z) / (384.0 * dof.powi(3))
}

/// Mean and sample variance.
pub fn mean_var(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    if n == 0.0 {
        return (f64::NAN, f64::NAN);
    }
    let m = xs.iter().sum::<f64>() / n;
    let v = if n > 1.0 {
        xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0)
    } else {
        f64::NAN
    };
    (m, v)
}

/// Mean and 95 % half-width of the finite values.
pub fn mean_ci(xs: &[f64]) -> (f64, f64) {
    let xs: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    let (m, v) = mean_var(&xs);
    let n = xs.len() as f64;
    (
        m,
        if n > 1.0 {
            t975(n - 1.0) * (v / n).sqrt()
        } else {
            f64::NAN
        },
    )
}

/// Paired difference `b − a` per episode: mean and 95 % half-width (pairs where both
/// are finite).
pub fn paired(a: &[f64], b: &[f64]) -> (f64, f64) {
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| y - x).collect();
    mean_ci(&d)
}

/// Unpaired (Welch) difference `b − a`: mean and 95 % half-width (finite values).
pub fn welch(a: &[f64], b: &[f64]) -> (f64, f64) {
    let finite = |x: &[f64]| -> Vec<f64> { x.iter().copied().filter(|v| v.is_finite()).collect() };
    let (a, b) = (finite(a), finite(b));
    let (ma, va) = mean_var(&a);
    let (mb, vb) = mean_var(&b);
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let se2 = va / na + vb / nb;
    let dof = se2 * se2 / ((va / na).powi(2) / (na - 1.0) + (vb / nb).powi(2) / (nb - 1.0));
    (mb - ma, t975(dof.max(1.0)) * se2.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_tables() {
        // Standard table values.
        for (dof, t) in [
            (3.0, 3.182),
            (5.0, 2.571),
            (10.0, 2.228),
            (30.0, 2.042),
            (40.0, 2.021),
            (120.0, 1.980),
            (1000.0, 1.962),
        ] {
            assert!((t975(dof) - t).abs() < 2e-3, "{dof}: {} vs {t}", t975(dof));
        }
    }

    #[test]
    fn pairing_removes_shared_noise() {
        // b = a + 1 exactly: the paired interval is zero-width, the unpaired one is not.
        let a = [3.0, 7.0, 1.0, 9.0, 4.0];
        let b: Vec<f64> = a.iter().map(|x| x + 1.0).collect();
        let (d, hw) = paired(&a, &b);
        assert_eq!((d, hw), (1.0, 0.0));
        let (d, hw) = welch(&a, &b);
        assert!((d - 1.0).abs() < 1e-12 && hw > 3.0);
    }
}
