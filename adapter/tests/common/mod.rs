//! A stand-in Prometheus for the adapter's tests: `/api/v1/query` on loopback,
//! answering canned samples per query.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// What the stand-in answers: per query, (HTTP status, body).
pub type Answers = Arc<Mutex<HashMap<String, (u16, String)>>>;

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// A one-thread HTTP server for `/api/v1/query`; unknown queries get an empty result.
pub fn stand_in() -> (String, Answers) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let answers: Answers = Arc::default();
    let served = answers.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
                    break;
                }
            }
            let target = line.split_whitespace().nth(1).unwrap_or("");
            let query = target
                .split_once("query=")
                .map(|(_, q)| decode(q.split('&').next().unwrap()))
                .unwrap_or_default();
            let (status, body) = served.lock().unwrap().get(&query).cloned().unwrap_or((
                200,
                r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#.into(),
            ));
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, answers)
}

pub fn sample(value: f64, ts: f64) -> (u16, String) {
    (
        200,
        format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[{ts},"{value}"]}}]}}}}"#
        ),
    )
}
