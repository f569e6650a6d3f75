//! Bad input: every loader names the file, line and column; none panics on any bytes.

use crate::fixture;
use hale_datasets::{DataError, Format, Trace, parse};
use proptest::prelude::*;
use std::path::Path;

/// The (line, column, message) of a parse error, after checking it names the file.
fn parse_error(path: &Path, bytes: &[u8], format: Format) -> (u64, u64, String) {
    match parse(path, bytes, format) {
        Err(e @ DataError::Parse { .. }) => {
            let DataError::Parse {
                ref file,
                line,
                column,
                ref message,
            } = e
            else {
                unreachable!()
            };
            assert_eq!(file, &path.display().to_string());
            assert!(
                e.to_string()
                    .starts_with(&format!("{file}:{line}:{column}: ")),
                "{e}"
            );
            (line, column, message.clone())
        }
        other => panic!("{format}: expected a parse error, got {other:?}"),
    }
}

const CSV_FIXTURES: [(&str, Format); 5] = [
    ("azure_invocations.csv", Format::AzureInvocations),
    ("azure_durations.csv", Format::AzureDurations),
    ("bitbrains/1.csv", Format::Bitbrains),
    ("lanl.csv", Format::Lanl),
    ("series.csv", Format::SeriesCsv),
];

#[test]
fn an_empty_file_is_named() {
    for (name, format) in CSV_FIXTURES
        .iter()
        .copied()
        .chain([("counts.txt", Format::Counts)])
    {
        let (line, column, message) = parse_error(&fixture(name), b"", format);
        assert_eq!((line, column), (1, 1), "{name}");
        assert!(message.contains("empty file"), "{name}: {message}");
        let (_, _, message) = parse_error(&fixture(name), b" \n\n", format);
        assert!(message.contains("empty file"), "{name}: {message}");
    }
}

#[test]
fn a_truncated_file_names_its_last_line() {
    for (name, format) in CSV_FIXTURES {
        let bytes = std::fs::read(fixture(name)).unwrap();
        let lines = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        // Cut the last line after its second separator.
        let last_start = bytes[..bytes.len() - 1]
            .iter()
            .rposition(|&b| b == b'\n')
            .unwrap()
            + 1;
        let sep = if format == Format::Bitbrains {
            b';'
        } else {
            b','
        };
        let cut = last_start
            + bytes[last_start..]
                .iter()
                .enumerate()
                .filter(|&(_, &b)| b == sep)
                .nth(1)
                .unwrap()
                .0;
        let (line, _, message) = parse_error(&fixture(name), &bytes[..cut], format);
        assert_eq!(line, lines, "{name}: {message}");
        assert!(message.contains("truncated"), "{name}: {message}");
    }
    let (line, column, message) = parse_error(&fixture("counts.txt"), b"1 2 3 45", Format::Counts);
    assert_eq!((line, column), (1, 7));
    assert!(
        message.contains("truncated") && message.contains("value 4"),
        "{message}"
    );
}

#[test]
fn a_non_numeric_cell_is_named_by_line_column_and_field() {
    let cases: [(&str, Format, &str, &str, u64, u64, &str); 5] = [
        (
            "azure_invocations.csv",
            Format::AzureInvocations,
            ",http,1,2,3,",
            ",http,1,x2,3,",
            2,
            6,
            "\"481\"",
        ),
        (
            "azure_durations.csv",
            Format::AzureDurations,
            ",120,300,",
            ",120,3o0,",
            3,
            5,
            "\"Count\"",
        ),
        (
            "bitbrains/1.csv",
            Format::Bitbrains,
            "200.0;",
            "2OO.0;",
            3,
            4,
            "\"CPU usage [MHZ]\"",
        ),
        (
            "lanl.csv",
            Format::Lanl,
            "12:00,66,",
            "12:00,6six,",
            3,
            19,
            "\"Down Time\"",
        ),
        (
            "series.csv",
            Format::SeriesCsv,
            "120,60,4.0",
            "120,60,four",
            4,
            3,
            "\"rps\"",
        ),
    ];
    for (name, format, from, to, want_line, want_col, field) in cases {
        let text = std::fs::read_to_string(fixture(name)).unwrap();
        assert!(text.contains(from), "{name}");
        let bad = text.replacen(from, to, 1);
        let (line, column, message) = parse_error(&fixture(name), bad.as_bytes(), format);
        assert_eq!((line, column), (want_line, want_col), "{name}: {message}");
        assert!(message.contains(field), "{name}: {message}");
    }
    let (line, column, message) =
        parse_error(&fixture("counts.txt"), b"1 2\n3 x4 5 ", Format::Counts);
    assert_eq!((line, column), (2, 3), "{message}");
    assert!(
        message.contains("value 4") && message.contains("x4"),
        "{message}"
    );
    let (_, _, message) = parse_error(
        &fixture("lanl.csv"),
        {
            let t = std::fs::read_to_string(fixture("lanl.csv")).unwrap();
            t.replacen("6/21/2005 10:54", "2005-06-21 10:54", 1)
        }
        .as_bytes(),
        Format::Lanl,
    );
    assert!(
        message.contains("m/d/YYYY") && message.contains("Prob Started"),
        "{message}"
    );
}

#[test]
fn a_wrong_separator_is_suggested() {
    for (name, format, from, to) in [
        ("azure_invocations.csv", Format::AzureInvocations, ",", ";"),
        ("bitbrains/1.csv", Format::Bitbrains, ";", ","),
        ("lanl.csv", Format::Lanl, ",", "\t"),
        ("series.csv", Format::SeriesCsv, ",", ";"),
    ] {
        let text = std::fs::read_to_string(fixture(name))
            .unwrap()
            .replace(from, to);
        let (line, _, message) = parse_error(&fixture(name), text.as_bytes(), format);
        assert_eq!(line, 1, "{name}");
        assert!(message.contains("separator"), "{name}: {message}");
    }
    let (_, column, message) = parse_error(&fixture("counts.txt"), b"1,2,3 ", Format::Counts);
    assert_eq!(column, 2);
    assert!(message.contains("separator"), "{message}");
}

#[test]
fn a_wrong_format_name_or_unknown_content_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.dat");
    std::fs::write(&p, "hello,world\n").unwrap();
    let e = Format::detect(&p).unwrap_err().to_string();
    assert!(
        e.contains("unknown format") && e.contains("azure-invocations"),
        "{e}"
    );
    let e = hale_datasets::load(&dir.path().join("missing.csv"), None).unwrap_err();
    assert!(
        matches!(e, DataError::Io { .. }) && e.to_string().contains("missing.csv"),
        "{e}"
    );
}

#[test]
fn bad_synthetic_specs_name_the_field() {
    let p = fixture("synthetic.toml");
    let e = parse(
        &p,
        b"base_rps = 1.0\ndaily_amplitude = 3.0\n",
        Format::Synthetic,
    )
    .unwrap_err();
    assert!(e.to_string().contains("daily_amplitude"), "{e}");
    let (line, _, message) =
        parse_error(&p, b"base_rps = 1.0\nbase_rsp = 2.0\n", Format::Synthetic);
    assert_eq!(line, 2);
    assert!(message.contains("base_rsp"), "{message}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any bytes, in any format: a value or an error, never a panic.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400), f in 0usize..8) {
        let format = Format::ALL[f];
        let _ = parse(Path::new("random.bin"), &bytes, format);
    }

    /// Fixtures with random bytes overwritten: a value or an error, never a panic.
    #[test]
    fn damaged_fixtures_never_panic(k in 0usize..6, at in any::<prop::sample::Index>(), junk in proptest::collection::vec(any::<u8>(), 1..8)) {
        let (name, format) = CSV_FIXTURES.iter().copied().chain([("counts.txt", Format::Counts)]).nth(k).unwrap();
        let mut bytes = std::fs::read(fixture(name)).unwrap();
        let i = at.index(bytes.len());
        for (j, b) in junk.iter().enumerate() {
            if i + j < bytes.len() { bytes[i + j] = *b; }
        }
        let _ = parse(&fixture(name), &bytes, format);
    }
}

/// Inputs the fuzzers (`fuzz/`) found that crashed a loader, kept in
/// `fuzz/regressions/trace_FORMAT/`: each is now refused with an error naming the file.
#[test]
fn fuzz_regressions_are_refused_not_crashed_on() {
    for (format, path, bytes) in &fuzz_inputs("regressions") {
        let e = parse(path, bytes, *format).expect_err("a crashing input is refused");
        assert!(
            e.to_string().contains(&path.display().to_string()),
            "{format}: {e}"
        );
    }
}

/// The inputs kept in `fuzz/KIND/trace_FORMAT/`, with their format; at least one.
fn fuzz_inputs(kind: &str) -> Vec<(Format, std::path::PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(kind);
    let mut inputs = vec![];
    for format in Format::ALL {
        let dir = root.join(format!("trace_{}", format.name().replace('-', "_")));
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            inputs.push((format, path, bytes));
        }
    }
    assert!(!inputs.is_empty(), "the inputs under {}", root.display());
    inputs
}

/// Inputs the fuzzers found slow (`fuzz/slow/trace_FORMAT/`): each now loads, or is
/// refused with an error naming the file. (How fast is `fuzz/run.sh`'s business:
/// it flags any input over its limit.)
#[test]
fn fuzz_slow_inputs_load_or_are_refused() {
    for (format, path, bytes) in &fuzz_inputs("slow") {
        match parse(path, bytes, *format) {
            Ok(Trace::Series(s)) => assert!(!s.rps.is_empty(), "{}", path.display()),
            Ok(_) => {}
            Err(e) => assert!(
                e.to_string().contains(&path.display().to_string()),
                "{format}: {e}"
            ),
        }
    }
}
