//! Typed polars frames of every trace, and back (the parquet cache stores these).
//!
//! | format | columns (units) |
//! |---|---|
//! | `azure-invocations` | `hash_owner`, `hash_app`, `hash_function`, `trigger` (str); one `u32` column per minute of the day, named by its index (`480` …): invocations in that minute |
//! | `azure-durations` | `hash_owner`, `hash_app`, `hash_function` (str); `average_ms`, `count`, `minimum_ms`, `maximum_ms`, `p0_ms` … `p100_ms` (f64; milliseconds, count: executions that day) |
//! | `counts` | `second` (u32, index from the first), `requests` (u32) |
//! | `bitbrains` | `vm` (str), `timestamp_s` (i64, Unix seconds), `cpu_cores`, `cpu_capacity_mhz`, `cpu_usage_mhz`, `cpu_usage_pct`, `memory_capacity_kb`, `memory_usage_kb`, `disk_read_kbps`, `disk_write_kbps`, `network_rx_kbps`, `network_tx_kbps` (f64) |
//! | `lanl` | `system`, `nodes`, `node` (u32), `machine_type` (str), `started_min`, `fixed_min` (i64, minutes since 1970-01-01 on the local clock), `downtime_min` (f64), `cause`, `subcause` (str), `same_event` (bool) |
//! | series | `t_s` (f64, seconds from the trace origin), `step_s` (f64), `rps` (f64, requests per second) |

use crate::azure::{DURATION_COLUMNS, Durations, Function, Invocations};
use crate::bitbrains::{self, Bitbrains, Vm};
use crate::counts::Counts;
use crate::lanl::{Cause, Failure, FailureLog};
use crate::{RateSeries, Trace};
use polars::prelude::*;

fn col<T, P>(name: &str, values: T) -> Column
where
    Series: NamedFrom<T, P>,
    P: ?Sized,
{
    Column::new(name.into(), values)
}

impl Trace {
    /// The trace as a typed frame (columns in the module doc).
    pub fn to_frame(&self) -> PolarsResult<DataFrame> {
        match self {
            Trace::Invocations(t) => {
                let mut cols = vec![
                    col("hash_owner", strings(&t.functions, |f| &f.owner)),
                    col("hash_app", strings(&t.functions, |f| &f.app)),
                    col("hash_function", strings(&t.functions, |f| &f.function)),
                    col("trigger", strings(&t.functions, |f| &f.trigger)),
                ];
                for m in 0..t.minutes {
                    let v: Vec<u32> = (0..t.functions.len())
                        .map(|f| t.counts[f * t.minutes + m])
                        .collect();
                    cols.push(col(&(t.first_minute as usize + m).to_string(), v));
                }
                DataFrame::new_infer_height(cols)
            }
            Trace::Durations(t) => {
                let mut cols = vec![
                    col(
                        "hash_owner",
                        t.ids.iter().map(|i| i[0].as_str()).collect::<Vec<_>>(),
                    ),
                    col(
                        "hash_app",
                        t.ids.iter().map(|i| i[1].as_str()).collect::<Vec<_>>(),
                    ),
                    col(
                        "hash_function",
                        t.ids.iter().map(|i| i[2].as_str()).collect::<Vec<_>>(),
                    ),
                ];
                for (c, (_, name)) in DURATION_COLUMNS.iter().enumerate() {
                    cols.push(col(name, t.values[c].clone()));
                }
                DataFrame::new_infer_height(cols)
            }
            Trace::Counts(t) => DataFrame::new_infer_height(vec![
                col("second", (0..t.counts.len() as u32).collect::<Vec<u32>>()),
                col("requests", t.counts.clone()),
            ]),
            Trace::Bitbrains(b) => {
                let mut vm = Vec::new();
                let mut ts = Vec::new();
                let mut values = vec![Vec::new(); bitbrains::COLUMNS.len()];
                for v in &b.vms {
                    vm.extend(std::iter::repeat_n(v.id.as_str(), v.timestamp_s.len()));
                    ts.extend_from_slice(&v.timestamp_s);
                    for (c, out) in values.iter_mut().enumerate() {
                        out.extend_from_slice(&v.values[c]);
                    }
                }
                let mut cols = vec![col("vm", vm), col("timestamp_s", ts)];
                for (c, (_, name)) in bitbrains::COLUMNS.iter().enumerate() {
                    cols.push(col(name, std::mem::take(&mut values[c])));
                }
                DataFrame::new_infer_height(cols)
            }
            Trace::Failures(log) => {
                let f = &log.failures;
                DataFrame::new_infer_height(vec![
                    col("system", f.iter().map(|r| r.system).collect::<Vec<u32>>()),
                    col(
                        "machine_type",
                        f.iter()
                            .map(|r| r.machine_type.as_str())
                            .collect::<Vec<_>>(),
                    ),
                    col(
                        "nodes",
                        f.iter().map(|r| r.nodes).collect::<Vec<Option<u32>>>(),
                    ),
                    col(
                        "node",
                        f.iter().map(|r| r.node).collect::<Vec<Option<u32>>>(),
                    ),
                    col(
                        "started_min",
                        f.iter().map(|r| r.started_min).collect::<Vec<i64>>(),
                    ),
                    col(
                        "fixed_min",
                        f.iter().map(|r| r.fixed_min).collect::<Vec<i64>>(),
                    ),
                    col(
                        "downtime_min",
                        f.iter().map(|r| r.downtime_min).collect::<Vec<f64>>(),
                    ),
                    col(
                        "cause",
                        f.iter().map(|r| r.cause.name()).collect::<Vec<_>>(),
                    ),
                    col(
                        "subcause",
                        f.iter().map(|r| r.subcause.as_str()).collect::<Vec<_>>(),
                    ),
                    col(
                        "same_event",
                        f.iter().map(|r| r.same_event).collect::<Vec<bool>>(),
                    ),
                ])
            }
            Trace::Series(s) => series_frame(s),
        }
    }

    /// Rebuilds a trace of `format` from a frame written by [`Trace::to_frame`].
    pub fn from_frame(format: crate::Format, df: &DataFrame) -> PolarsResult<Trace> {
        use crate::Format as F;
        Ok(match format {
            F::AzureInvocations => {
                let owner = strs(df, "hash_owner")?;
                let app = strs(df, "hash_app")?;
                let function = strs(df, "hash_function")?;
                let trigger = strs(df, "trigger")?;
                let names: Vec<String> = df
                    .get_column_names()
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                let minutes = names.len().saturating_sub(4);
                let first_minute: u32 = names
                    .get(4)
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| polars_err!(ComputeError: "no minute columns"))?;
                let n = df.height();
                let mut counts = vec![0u32; n * minutes];
                for m in 0..minutes {
                    let c = df.column(&names[4 + m])?.u32()?;
                    for (f, v) in c.iter().enumerate() {
                        counts[f * minutes + m] =
                            v.ok_or_else(|| polars_err!(ComputeError: "null count"))?;
                    }
                }
                Trace::Invocations(Invocations {
                    functions: (0..n)
                        .map(|i| Function {
                            owner: owner[i].clone(),
                            app: app[i].clone(),
                            function: function[i].clone(),
                            trigger: trigger[i].clone(),
                        })
                        .collect(),
                    first_minute,
                    minutes,
                    counts,
                })
            }
            F::AzureDurations => {
                let o = strs(df, "hash_owner")?;
                let a = strs(df, "hash_app")?;
                let f = strs(df, "hash_function")?;
                let ids = (0..df.height())
                    .map(|i| [o[i].clone(), a[i].clone(), f[i].clone()])
                    .collect();
                let values = DURATION_COLUMNS
                    .iter()
                    .map(|(_, name)| f64s(df, name))
                    .collect::<PolarsResult<_>>()?;
                Trace::Durations(Durations { ids, values })
            }
            F::Counts => Trace::Counts(Counts {
                step_s: 1.0,
                counts: no_nulls(df.column("requests")?.u32()?.iter(), "requests")?,
            }),
            F::Bitbrains => {
                let vm = strs(df, "vm")?;
                let ts: Vec<i64> =
                    no_nulls(df.column("timestamp_s")?.i64()?.iter(), "timestamp_s")?;
                let cols: Vec<Vec<f64>> = bitbrains::COLUMNS
                    .iter()
                    .map(|(_, name)| f64s(df, name))
                    .collect::<PolarsResult<_>>()?;
                let mut vms: Vec<Vm> = Vec::new();
                for i in 0..vm.len() {
                    if vms.last().is_none_or(|v| v.id != vm[i]) {
                        vms.push(Vm {
                            id: vm[i].clone(),
                            timestamp_s: Vec::new(),
                            values: vec![Vec::new(); cols.len()],
                        });
                    }
                    let v = vms.last_mut().expect("pushed");
                    v.timestamp_s.push(ts[i]);
                    for (c, out) in v.values.iter_mut().enumerate() {
                        out.push(cols[c][i]);
                    }
                }
                Trace::Bitbrains(Bitbrains { vms })
            }
            F::Lanl => {
                let u32s = |name: &str| -> PolarsResult<Vec<u32>> {
                    no_nulls(df.column(name)?.u32()?.iter(), name)
                };
                let i64s = |name: &str| -> PolarsResult<Vec<i64>> {
                    no_nulls(df.column(name)?.i64()?.iter(), name)
                };
                let opt_u32s = |name: &str| -> PolarsResult<Vec<Option<u32>>> {
                    Ok(df.column(name)?.u32()?.iter().collect())
                };
                let (system, nodes, node) =
                    (u32s("system")?, opt_u32s("nodes")?, opt_u32s("node")?);
                let (started, fixed) = (i64s("started_min")?, i64s("fixed_min")?);
                let down = f64s(df, "downtime_min")?;
                let machine = strs(df, "machine_type")?;
                let cause = strs(df, "cause")?;
                let sub = strs(df, "subcause")?;
                let same: Vec<bool> =
                    no_nulls(df.column("same_event")?.bool()?.iter(), "same_event")?;
                let failures = (0..df.height())
                    .map(|i| {
                        Ok(Failure {
                            system: system[i],
                            machine_type: machine[i].clone(),
                            nodes: nodes[i],
                            node: node[i],
                            started_min: started[i],
                            fixed_min: fixed[i],
                            downtime_min: down[i],
                            cause: Cause::parse(&cause[i]).ok_or_else(
                                || polars_err!(ComputeError: "unknown cause {}", cause[i]),
                            )?,
                            subcause: sub[i].clone(),
                            same_event: same[i],
                        })
                    })
                    .collect::<PolarsResult<_>>()?;
                Trace::Failures(FailureLog { failures })
            }
            F::SeriesCsv | F::SeriesParquet | F::Synthetic => Trace::Series(series_from_frame(df)?),
        })
    }
}

/// A rate series as a frame `t_s`, `step_s`, `rps`.
pub fn series_frame(s: &RateSeries) -> PolarsResult<DataFrame> {
    DataFrame::new_infer_height(vec![
        col(
            "t_s",
            (0..s.rps.len())
                .map(|i| s.start_s + i as f64 * s.step_s)
                .collect::<Vec<f64>>(),
        ),
        col("step_s", vec![s.step_s; s.rps.len()]),
        col("rps", s.rps.clone()),
    ])
}

/// A rate series from a frame `t_s`, `step_s`, `rps` with one step and regular times.
pub fn series_from_frame(df: &DataFrame) -> PolarsResult<RateSeries> {
    let t = f64s(df, "t_s")?;
    let step = f64s(df, "step_s")?;
    let rps = f64s(df, "rps")?;
    let Some(&step_s) = step.first() else {
        polars_bail!(ComputeError: "no rows");
    };
    if !(step_s > 0.0 && step_s.is_finite()) {
        polars_bail!(ComputeError: "row 1: step_s must be positive, found {step_s}");
    }
    for i in 0..t.len() {
        let want = t[0] + i as f64 * step_s;
        if step[i] != step_s || (t[i] - want).abs() > 1e-6 * step_s.max(want.abs()) {
            polars_bail!(ComputeError: "row {}: the series must be regular (t_s {} with step_s {}, expected t_s {want} and step_s {step_s})", i + 1, t[i], step[i]);
        }
        if !(rps[i] >= 0.0 && rps[i].is_finite()) {
            polars_bail!(ComputeError: "row {}: rps must be a non-negative number, found {}", i + 1, rps[i]);
        }
    }
    Ok(RateSeries {
        start_s: t[0],
        step_s,
        rps,
    })
}

fn strings<'a>(f: &'a [Function], get: impl Fn(&'a Function) -> &'a String) -> Vec<&'a str> {
    f.iter().map(|x| get(x).as_str()).collect()
}

fn strs(df: &DataFrame, name: &str) -> PolarsResult<Vec<String>> {
    df.column(name)?
        .str()?
        .iter()
        .map(|v| {
            v.map(str::to_string)
                .ok_or_else(|| polars_err!(ComputeError: "null in {name}"))
        })
        .collect()
}

fn f64s(df: &DataFrame, name: &str) -> PolarsResult<Vec<f64>> {
    df.column(name)?
        .f64()?
        .iter()
        .map(|v| v.ok_or_else(|| polars_err!(ComputeError: "null in {name}")))
        .collect()
}

fn no_nulls<T>(values: impl Iterator<Item = Option<T>>, name: &str) -> PolarsResult<Vec<T>> {
    values
        .map(|v| v.ok_or_else(|| polars_err!(ComputeError: "null in {name}")))
        .collect()
}

/// Reads a parquet file's bytes into a frame. The footer is checked first
/// ([`check_footer`]): a length in the metadata larger than the file made polars
/// allocate 76 GB and abort (found by fuzzing). A panic of the parquet reader
/// (polars' thrift decoder `expect`s well-formed metadata: a 66-byte file panicked
/// with "thrift bool field", the bug arrow-rs fixed in apache/arrow-rs#9840) becomes
/// an error too, so that a corrupt file is refused instead of ending the process.
pub(crate) fn read_parquet(bytes: &[u8]) -> Result<DataFrame, String> {
    use polars::prelude::{ParquetReader, SerReader};
    check_footer(bytes)?;
    let read = std::panic::catch_unwind(|| {
        ParquetReader::new(std::io::Cursor::new(bytes))
            .finish()
            .map_err(|e| e.to_string())
    });
    read.unwrap_or_else(|_| Err("corrupt parquet metadata (the parquet reader gave up)".into()))
}

/// Checks a parquet file's frame (`PAR1` at both ends, the footer's length) and walks
/// its thrift-encoded metadata against parquet.thrift's types: every length (lists,
/// sets, maps, strings) must fit in the bytes left, and every field polars reads must
/// have the wire type the format gives it, so that no reader allocates for a count the
/// file cannot hold or reads one type's bytes as another's.
fn check_footer(bytes: &[u8]) -> Result<(), String> {
    let n = bytes.len();
    if n < 12 || &bytes[..4] != b"PAR1" || &bytes[n - 4..] != b"PAR1" {
        return Err("not a parquet file (no PAR1 at both ends)".into());
    }
    let len = u32::from_le_bytes([bytes[n - 8], bytes[n - 7], bytes[n - 6], bytes[n - 5]]) as usize;
    if len > n - 12 {
        return Err(format!("footer of {len} bytes in a file of {n}"));
    }
    let meta = &bytes[n - 8 - len..n - 8];
    let mut at = 0;
    thrift::check_struct(meta, &mut at, 0, &parquet::FILE_METADATA).map_err(|at| {
        format!(
            "corrupt parquet metadata (at byte {at} of the footer: a length past its end or \
             a field of the wrong type)"
        )
    })
}

/// What parquet.thrift says a footer holds, as far as polars reads it. polars'
/// hand-written reader reads a field by its id whatever its wire type, and a list's
/// elements as the structs it expects whatever the list header says: a field of
/// another type made it allocate 93 GB (`FileMetaData.row_groups` as an i64), and a
/// nested one 26 GB (fuzz findings). Field ids past a table's end are not checked
/// (newer fields polars skips by their wire type).
mod parquet {
    use super::thrift::Shape::{self, Bool, List, Struct, Wire};

    const I8: Shape = Wire(3);
    const I16: Shape = Wire(4);
    const I32: Shape = Wire(5);
    const I64: Shape = Wire(6);
    const BINARY: Shape = Wire(8);
    /// An empty struct (a union's unit variants).
    const UNIT: Shape = Struct(&[]);

    const KEY_VALUE: [Shape; 2] = [BINARY, BINARY];
    const SORTING_COLUMN: [Shape; 3] = [I32, Bool, Bool];
    const STATISTICS: [Shape; 8] = [BINARY, BINARY, I64, I64, BINARY, BINARY, Bool, Bool];
    const PAGE_ENCODING_STATS: [Shape; 3] = [I32, I32, I32];
    const COLUMN_META_DATA: [Shape; 15] = [
        I32,
        List(&I32),
        List(&BINARY),
        I32,
        I64,
        I64,
        I64,
        List(&Struct(&KEY_VALUE)),
        I64,
        I64,
        I64,
        Struct(&STATISTICS),
        List(&Struct(&PAGE_ENCODING_STATS)),
        I64,
        I32,
    ];
    const COLUMN_CHUNK: [Shape; 7] = [BINARY, I64, Struct(&COLUMN_META_DATA), I64, I32, I64, I32];
    const ROW_GROUP: [Shape; 7] = [
        List(&Struct(&COLUMN_CHUNK)),
        I64,
        I64,
        List(&Struct(&SORTING_COLUMN)),
        I64,
        I64,
        I16,
    ];
    const TIME_UNIT: [Shape; 3] = [UNIT, UNIT, UNIT];
    const TIME_TYPE: [Shape; 2] = [Bool, Struct(&TIME_UNIT)];
    const INT_TYPE: [Shape; 2] = [I8, Bool];
    const DECIMAL_TYPE: [Shape; 2] = [I32, I32];
    const LOGICAL_TYPE: [Shape; 15] = [
        UNIT,
        UNIT,
        UNIT,
        UNIT,
        Struct(&DECIMAL_TYPE),
        UNIT,
        Struct(&TIME_TYPE),
        Struct(&TIME_TYPE),
        Shape::Any,
        Struct(&INT_TYPE),
        UNIT,
        UNIT,
        UNIT,
        UNIT,
        UNIT,
    ];
    const SCHEMA_ELEMENT: [Shape; 10] = [
        I32,
        I32,
        I32,
        BINARY,
        I32,
        I32,
        I32,
        I32,
        I32,
        Struct(&LOGICAL_TYPE),
    ];
    const COLUMN_ORDER: [Shape; 2] = [UNIT, UNIT];
    /// `FileMetaData`: the footer itself. Fields 8 and 9 (encryption) polars skips.
    pub(super) const FILE_METADATA: [Shape; 7] = [
        I32,
        List(&Struct(&SCHEMA_ELEMENT)),
        I64,
        List(&Struct(&ROW_GROUP)),
        List(&Struct(&KEY_VALUE)),
        BINARY,
        List(&Struct(&COLUMN_ORDER)),
    ];
}

/// Bounds and type checks on thrift's compact protocol, as parquet's metadata uses it.
mod thrift {
    /// The error: the offset where the metadata stops making sense.
    type Bad = usize;

    /// The shape a value must have: its wire type and, for structs and lists, what is
    /// inside.
    #[derive(Clone, Copy, Debug)]
    pub(super) enum Shape {
        /// Whatever the wire type says (only lengths are checked).
        Any,
        /// A value of this wire type (3 byte, 4 i16, 5 i32, 6 i64, 7 double, 8 binary).
        Wire(u8),
        /// A bool (wire type 1 or 2).
        Bool,
        /// A list whose elements have this shape.
        List(&'static Shape),
        /// A struct whose field with id `k` has shape `fields[k - 1]`.
        Struct(&'static [Shape]),
    }

    impl Shape {
        /// Whether a value of wire type `ty` can have this shape.
        fn admits(self, ty: u8) -> bool {
            match self {
                Shape::Any => true,
                Shape::Wire(w) => ty == w,
                Shape::Bool => ty == 1 || ty == 2,
                Shape::List(_) => ty == 9,
                Shape::Struct(_) => ty == 12,
            }
        }
    }

    fn byte(b: &[u8], at: &mut usize) -> Result<u8, Bad> {
        let v = *b.get(*at).ok_or(*at)?;
        *at += 1;
        Ok(v)
    }

    fn varint(b: &[u8], at: &mut usize) -> Result<u64, Bad> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let x = byte(b, at)?;
            v |= u64::from(x & 0x7f) << shift;
            if x & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(*at)
    }

    fn skip(b: &[u8], at: &mut usize, n: u64) -> Result<(), Bad> {
        let left = (b.len() - *at) as u64;
        if n > left {
            return Err(*at);
        }
        *at += n as usize;
        Ok(())
    }

    /// A count of elements that each take at least one byte: at most what is left.
    fn count(b: &[u8], at: &usize, n: u64) -> Result<u64, Bad> {
        if n > (b.len() - *at) as u64 {
            Err(*at)
        } else {
            Ok(n)
        }
    }

    /// One value of compact type `ty` and shape `shape` (which admits `ty`);
    /// `in_struct` says whether a bool is in its field header (a struct field) or a
    /// byte of its own (a list element).
    fn value(
        b: &[u8],
        at: &mut usize,
        ty: u8,
        shape: Shape,
        in_struct: bool,
        depth: u32,
    ) -> Result<(), Bad> {
        match ty {
            1 | 2 if in_struct => Ok(()),
            1..=3 => skip(b, at, 1),
            4..=6 => varint(b, at).map(|_| ()),
            7 => skip(b, at, 8),
            8 => {
                let n = varint(b, at)?;
                skip(b, at, n)
            }
            9 => {
                let start = *at;
                let h = byte(b, at)?;
                let n = match h >> 4 {
                    15 => varint(b, at)?,
                    k => u64::from(k),
                };
                let element = match shape {
                    Shape::List(e) => *e,
                    _ => Shape::Any,
                };
                // parquet.thrift has no list of bools, and polars skips a bool element
                // without reading its byte (fuzz finding: the bytes after such a list
                // became a field header and a 26 GB list), so one is refused.
                let ty = h & 0x0f;
                if n > 0 && (matches!(ty, 1 | 2) || !element.admits(ty)) {
                    return Err(start);
                }
                for _ in 0..count(b, at, n)? {
                    value(b, at, ty, element, false, depth)?;
                }
                Ok(())
            }
            // Sets and maps: parquet.thrift has none (and polars cannot skip them).
            12 => {
                let fields = match shape {
                    Shape::Struct(f) => f,
                    _ => &[],
                };
                check_struct(b, at, depth + 1, fields)
            }
            _ => Err(*at),
        }
    }

    /// A struct: fields until the stop byte, nested at most 64 deep; the field with id
    /// `k` must have shape `fields[k - 1]` (ids past the end: any).
    pub(super) fn check_struct(
        b: &[u8],
        at: &mut usize,
        depth: u32,
        fields: &[Shape],
    ) -> Result<(), Bad> {
        if depth > 64 {
            return Err(*at);
        }
        let mut id: i64 = 0;
        loop {
            let start = *at;
            let h = byte(b, at)?;
            if h == 0 {
                return Ok(());
            }
            id = match h >> 4 {
                0 => {
                    let v = varint(b, at)?;
                    (v >> 1) as i64 ^ -((v & 1) as i64)
                }
                delta => id + i64::from(delta),
            };
            // Thrift field ids are i16: anything else is not a parquet footer (and
            // `id - 1` below must not overflow: fuzz finding, a zigzag varint of
            // i64::MIN).
            if i16::try_from(id).is_err() {
                return Err(start);
            }
            let ty = h & 0x0f;
            let shape = usize::try_from(id - 1)
                .ok()
                .and_then(|k| fields.get(k).copied())
                .unwrap_or(Shape::Any);
            if !shape.admits(ty) {
                return Err(start);
            }
            value(b, at, ty, shape, true, depth)?;
        }
    }
}
