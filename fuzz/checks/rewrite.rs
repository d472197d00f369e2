//! The streaming JSON rewriter (`proxy::rewrite::JsonRewriter`): any bytes, any framing.

use dataverse_gateway::proxy::rewrite::json::ANNOTATIONS;
use dataverse_gateway::proxy::rewrite::{JsonRewriter, rewrite_url};
use serde_json::Value;

const FROM: &str = "https://org.crm.dynamics.com";
const TO: &str = "http://gw.local:8080/contoso";

/// The body pushed in frames of the given sizes (cycled; 0 = one push), with the held-back
/// bound checked after every push.
fn rewrite(body: &[u8], frames: &[usize]) -> Vec<u8> {
    let mut rewriter = JsonRewriter::new(FROM, TO);
    let mut out = Vec::new();
    let mut rest = body;
    let mut sizes = frames.iter().cycle();
    while !rest.is_empty() {
        let size = sizes.next().copied().unwrap_or(0);
        let (frame, tail) = rest.split_at(if size == 0 {
            rest.len()
        } else {
            size.min(rest.len())
        });
        rewriter.push(frame, &mut out);
        assert!(
            rewriter.held_back() <= rewriter.max_held_back(),
            "held back too much"
        );
        rest = tail;
    }
    rewriter.finish(&mut out);
    assert_eq!(rewriter.held_back(), 0);
    out
}

/// [`rewrite`] with the last frame given to `push_last` (the proxy's call for a body's last
/// bytes, which lexes only what can change).
fn rewrite_last(body: &[u8], frames: &[usize]) -> Vec<u8> {
    let mut rewriter = JsonRewriter::new(FROM, TO);
    let mut out = Vec::new();
    let mut rest = body;
    let mut sizes = frames.iter().cycle();
    loop {
        let size = sizes.next().copied().unwrap_or(0);
        if size == 0 || size >= rest.len() {
            rewriter.push_last(rest, &mut out);
            break;
        }
        let (frame, tail) = rest.split_at(size);
        rewriter.push(frame, &mut out);
        rest = tail;
    }
    assert_eq!(rewriter.held_back(), 0, "held back after the last frame");
    out
}

/// The same rewrite on the parsed document: annotation values only.
fn rewrite_tree(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(rewrite_tree),
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                match item {
                    Value::String(s) if ANNOTATIONS.iter().any(|a| key.ends_with(a)) => {
                        if let Some(new) = rewrite_url(s, FROM, TO) {
                            *s = new;
                        }
                    }
                    _ => rewrite_tree(item),
                }
            }
        }
        _ => {}
    }
}

/// Input: two bytes of frame sizes, then the body. Never panics; one push, 1-byte frames and
/// the chosen frames give the same output, also with the last frame given to `push_last`; when
/// the body is JSON without `\u` escapes (which the rewriter, reading raw bytes, does not
/// decode), the output is JSON and equals the parsed document with exactly its annotation
/// values rewritten.
pub fn json_rewrite(data: &[u8]) {
    let (frames, body) = match data {
        [a, b, body @ ..] => ([usize::from(*a) % 97, usize::from(*b) % 97], body),
        _ => return,
    };
    let whole = rewrite(body, &[0]);
    assert_eq!(rewrite(body, &[1]), whole, "1-byte frames");
    assert_eq!(rewrite(body, &frames), whole, "frames {frames:?}");
    assert_eq!(rewrite_last(body, &[0]), whole, "one last chunk");
    assert_eq!(
        rewrite_last(body, &frames),
        whole,
        "frames {frames:?}, the last by push_last"
    );
    if body.windows(2).any(|w| w == b"\\u") {
        return;
    }
    let Ok(mut want) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let got: Value = serde_json::from_slice(&whole).expect("JSON in, JSON out");
    rewrite_tree(&mut want);
    assert_eq!(got, want);
}
