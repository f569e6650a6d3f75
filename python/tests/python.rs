//! Runs the package's pytest suite (`python/tests/`) against the native module this
//! build made: the Python package is assembled in a temporary folder from `hale/`
//! and the cdylib, and the `hale` binary of the same build is what the replay and
//! evaluation tests compare with. The interpreter is `HALE_PYTHON` (`.ci/run`'s venv,
//! with Gymnasium, Stable-Baselines3, sb3-contrib, PettingZoo, torch and pytest); in
//! CI its absence is a failure, elsewhere the test says it skips.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The build's output folder (`target/debug`): the test binary lives in its `deps/`.
fn build_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

/// A Python with the packages the suite imports, or `None` (outside CI) to skip.
fn python() -> Option<String> {
    let python = std::env::var("HALE_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = Command::new(&python)
        .args([
            "-c",
            "import gymnasium, stable_baselines3, sb3_contrib, pettingzoo, torch, pytest, pandas",
        ])
        .output();
    if probe.as_ref().is_ok_and(|o| o.status.success()) {
        return Some(python);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{python} cannot import the suite's packages (.ci/run installs them): {probe:?}"
    );
    eprintln!("skipping the Python package's tests: {python} lacks gymnasium, SB3 or pytest");
    None
}

#[test]
fn the_python_package_passes_its_pytest_suite() {
    let Some(python) = python() else { return };
    let build = build_dir();
    // `cargo test` leaves the cdylib in deps/ (only `cargo build` copies it up a level).
    let lib = [build.join("deps/lib_hale.so"), build.join("lib_hale.so")]
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no lib_hale.so in {0}/deps or {0}: cargo builds it with this test",
                build.display()
            )
        });
    let hale_bin = build.join("hale");
    assert!(
        hale_bin.is_file(),
        "{} is missing: run the workspace's tests (cargo test --workspace) or cargo build --bin hale",
        hale_bin.display()
    );
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let site = tempfile::tempdir().unwrap();
    let pkg = site.path().join("hale");
    std::fs::create_dir(&pkg).unwrap();
    for entry in std::fs::read_dir(crate_dir.join("hale")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, pkg.join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::copy(&lib, pkg.join("_hale.so")).unwrap();
    let out = Command::new(&python)
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "error::DeprecationWarning:hale",
        ])
        .arg(crate_dir.join("tests"))
        .env("PYTHONPATH", site.path())
        .env("HALE_BIN", &hale_bin)
        .current_dir(site.path())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pytest failed:\n{text}");
    eprintln!("{}", text.lines().last().unwrap_or(""));
}
