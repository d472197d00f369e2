//! The audit log: one JSON line per agent request, written off the request path.
//!
//! Invariants:
//! - a request never waits for the audit writer: a record is serialised into its thread's own
//!   line buffer, then appended to a buffer shared with a dedicated writer thread (under a lock
//!   held only to copy a line in or, by the writer, to swap the buffer for an empty one; never
//!   during serialisation or file I/O); the buffer is bounded
//!   ([`CAPACITY`] records): when it is full the record is dropped and counted
//!   (`dataverse_gateway_audit_dropped_total`), never blocked on;
//! - records are written in the order they were queued, each one complete JSON line (a record
//!   is appended whole under the lock, or not at all); a flush or a reopen applies at its place
//!   in that order (records queued before it are written before it);
//! - a record never holds a token, a secret, an assertion, a header value or a body: it is built
//!   from the request line, the policy decision and the response status only;
//! - query option VALUES (and quoted key values in the path, such as an alternate key
//!   `contacts(emailaddress1='...')`) can hold personal data and are replaced by their names
//!   (or `***`) unless `audit.query_values: true`.
//!
//! [`redact_target`], [`timestamp`] and [`Record::to_json`] are pure. A record is serialised
//! by hand (it is written for every request): the same JSON as a derived serialiser would give,
//! without its per-field dispatch, and the `access` list is written straight from the decision.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::counter::Counter;

use crate::config::{Audit, AuditOutput};
use crate::policy::classify::Use;
use crate::policy::decision::Reason;

/// Records that may wait for the writer before new ones are dropped.
pub const CAPACITY: usize = 16 * 1024;

/// After writing a batch the writer pauses this long before taking the next, so that under load
/// records accumulate and a request never has to wake the writer thread (a wake is a futex call
/// and a context switch, more than the record costs). A record is written within about this
/// long; an idle writer sleeps on a condition variable and costs nothing (a request wakes it
/// only when it is asleep there).
pub const BATCH_PAUSE: Duration = Duration::from_millis(10);

/// The writer keeps its batch buffer's allocation between batches up to this size (the two
/// buffers swap, so neither is reallocated under steady load); a larger one, left by a burst,
/// is given back.
const KEEP_BUFFER: usize = 1024 * 1024;

/// A thread keeps its line buffer's allocation up to this size between records.
const KEEP_LINE: usize = 16 * 1024;

/// One audit line. Field names are the audit log's schema; [`Record::to_json`] writes them in
/// this order, every field present (`null` when there is no value).
#[derive(Debug)]
pub struct Record<'a> {
    /// Written as RFC 3339 UTC with milliseconds.
    pub timestamp: SystemTime,
    pub request_id: &'a str,
    pub tenant: Option<&'a str>,
    pub client: Option<&'a str>,
    pub method: &'a str,
    /// Path plus query option names (values only with `query_values: true`).
    pub path: Cow<'a, str>,
    /// Tables and verbs (or functions) the request touches, as the policy saw them; written
    /// as a list of strings.
    pub access: &'a [Use],
    /// `allow`, `deny` or `none` (refused before the policy was asked).
    pub decision: &'static str,
    /// The rule that allowed it or why it was refused.
    pub reason: Reason<'a>,
    /// The gateway's error code when it answered itself.
    pub error: Option<&'static str>,
    pub status: u16,
    pub upstream_status: Option<u16>,
    /// Whether the response body was delivered to its end.
    pub completed: bool,
    /// Written as `latency_ms`, milliseconds with three decimals.
    pub latency: Duration,
    /// Written as `upstream_latency_ms`.
    pub upstream_latency: Option<Duration>,
    /// Request body bytes read from the agent (0 when refused before the body was read).
    pub bytes_in: u64,
    /// Response body bytes sent to the agent.
    pub bytes_out: u64,
}

impl Record<'_> {
    /// The record as one line of JSON (without the newline), for a Web API request.
    pub fn to_json(&self) -> String {
        self.to_json_via(None)
    }

    /// The record as one line of JSON: `front_door` is `mcp` and `tool` names the tool when
    /// `mcp_tool` is given (the MCP front door built the request), else `webapi` and `null`.
    pub fn to_json_via(&self, mcp_tool: Option<&str>) -> String {
        let mut out = String::with_capacity(self.size_hint());
        self.write_json(&mut out, mcp_tool, None);
        out
    }

    /// About the length of the record's line: a record of a plain GET is about 450 bytes;
    /// sized so that it is never reallocated.
    fn size_hint(&self) -> usize {
        480 + self.path.len() + self.reason.len_hint() + 64 * self.access.len()
    }

    /// Appends the record's line (without the newline) to `out`, as [`Record::to_json_via`];
    /// the timestamp's date and time through `clock` when given.
    fn write_json(&self, out: &mut String, mcp_tool: Option<&str>, clock: Option<&mut Clock>) {
        out.push_str("{\"timestamp\":\"");
        match clock {
            Some(clock) => clock.write(out, self.timestamp),
            None => write_timestamp(out, self.timestamp),
        }
        out.push_str("\",\"request_id\":");
        json_str(out, self.request_id);
        out.push_str(",\"tenant\":");
        json_opt_str(out, self.tenant);
        out.push_str(",\"client\":");
        json_opt_str(out, self.client);
        out.push_str(",\"front_door\":");
        json_plain(out, if mcp_tool.is_some() { "mcp" } else { "webapi" });
        out.push_str(",\"tool\":");
        json_opt_str(out, mcp_tool);
        out.push_str(",\"method\":");
        json_str(out, self.method);
        out.push_str(",\"path\":");
        json_str(out, &self.path);
        out.push_str(",\"access\":[");
        for (i, u) in self.access.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json_written(out, |out| u.describe(out));
        }
        out.push_str("],\"decision\":");
        json_plain(out, self.decision);
        out.push_str(",\"reason\":");
        json_written(out, |out| self.reason.write(out));
        out.push_str(",\"error\":");
        match self.error {
            Some(code) => json_plain(out, code),
            None => out.push_str("null"),
        }
        out.push_str(",\"status\":");
        out.push_str(itoa::Buffer::new().format(self.status));
        out.push_str(",\"upstream_status\":");
        match self.upstream_status {
            Some(s) => out.push_str(itoa::Buffer::new().format(s)),
            None => out.push_str("null"),
        }
        out.push_str(",\"completed\":");
        out.push_str(if self.completed { "true" } else { "false" });
        out.push_str(",\"latency_ms\":");
        write_millis(out, self.latency);
        out.push_str(",\"upstream_latency_ms\":");
        match self.upstream_latency {
            Some(d) => write_millis(out, d),
            None => out.push_str("null"),
        }
        out.push_str(",\"bytes_in\":");
        out.push_str(itoa::Buffer::new().format(self.bytes_in));
        out.push_str(",\"bytes_out\":");
        out.push_str(itoa::Buffer::new().format(self.bytes_out));
        out.push('}');
    }
}

/// `d` in milliseconds with three decimals (`12.345`), a JSON number.
fn write_millis(out: &mut String, d: Duration) {
    // In u64 (an `as_micros` u128 division is a library call): whole milliseconds, then the
    // microseconds within the millisecond.
    let millis = d.as_secs().saturating_mul(1000) + u64::from(d.subsec_millis());
    out.push_str(itoa::Buffer::new().format(millis));
    out.push('.');
    let frac = (d.subsec_micros() % 1000) as u16;
    for digit in [frac / 100, frac / 10 % 10, frac % 10] {
        out.push(char::from(b'0' + digit as u8));
    }
}

fn json_opt_str(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => json_str(out, s),
        None => out.push_str("null"),
    }
}

/// `s` as a JSON string, quotes included, for the gateway's own constants (`decision`,
/// `front_door`, error codes): words that never need an escape (a debug build checks).
fn json_plain(out: &mut String, s: &'static str) {
    debug_assert!(!needs_escape(s.as_bytes()), "{s}");
    out.push('"');
    out.push_str(s);
    out.push('"');
}

/// `s` as a JSON string, quotes included.
fn json_str(out: &mut String, s: &str) {
    out.push('"');
    // Most fields need no escape: one vector pass, then one copy.
    if needs_escape(s.as_bytes()) {
        escape_into(out, s);
    } else {
        out.push_str(s);
    }
    out.push('"');
}

/// Appends what `write` appends as a JSON string: written in place, escaped afterwards only
/// when it needs it (rarely: the text is copied once more then).
fn json_written(out: &mut String, write: impl FnOnce(&mut String)) {
    out.push('"');
    let start = out.len();
    write(out);
    if needs_escape(&out.as_bytes()[start..]) {
        let raw = out.split_off(start);
        escape_into(out, &raw);
    }
    out.push('"');
}

/// Appends `s` escaped as JSON string content: `"`, `\` and control characters.
fn escape_into(out: &mut String, s: &str) {
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let short = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if short.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(short);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

/// Whether `bytes` holds a `"`, a `\\` or a control character: eight bytes at a time (the
/// strings of a record are mostly shorter than a vector loop's stride), the last word
/// overlapping the one before.
fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Exact as a yes/no: a byte of `w` below `n` (`n` <= 128) sets a high bit.
    fn below(w: u64, n: u8) -> u64 {
        w.wrapping_sub(ONES * u64::from(n)) & !w & HIGH
    }
    fn special(w: u64) -> u64 {
        below(w, 0x20)
            | below(w ^ (ONES * u64::from(b'"')), 1)
            | below(w ^ (ONES * u64::from(b'\\')), 1)
    }
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
    if bytes.len() < 8 {
        return bytes
            .iter()
            .any(|&b| (b < 0x20) | (b == b'"') | (b == b'\\'));
    }
    let mut found = special(word(bytes.len() - 8));
    let mut at = 0;
    while at + 8 < bytes.len() {
        found |= special(word(at));
        at += 8;
    }
    found != 0
}

/// A flush or a reopen asked of the writer, acknowledged once done.
enum Control {
    /// Reopen the output file (log rotation).
    Reopen(SyncSender<()>),
    /// Write out everything queued before it.
    Flush(SyncSender<()>),
}

/// What the sink and the writer thread share, under [`Shared::state`].
struct Queue {
    /// Complete lines, each ending in `\n`, in the order they were queued.
    lines: String,
    /// How many lines `lines` holds (bounded by [`CAPACITY`]).
    records: usize,
    /// Flushes and reopens, each with the length `lines` had when it was asked (it applies
    /// after those bytes), in the order they were asked.
    controls: Vec<(usize, Control)>,
    /// The writer waits on [`Shared::wake`] (and must be woken for new work).
    idle: bool,
    /// The sink is gone: the writer drains what is queued and stops.
    closed: bool,
}

struct Shared {
    state: Mutex<Queue>,
    wake: Condvar,
}

impl Shared {
    /// An empty queue, the writer not yet waiting.
    fn new() -> Shared {
        Shared {
            state: Mutex::new(Queue {
                lines: String::new(),
                records: 0,
                controls: Vec::new(),
                idle: false,
                closed: false,
            }),
            wake: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A record is serialised before the lock is taken and appended in one `push_str`, so a
        // panic elsewhere never leaves a torn line: the queue stays usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Wakes the writer if it waits for work; called with the lock held, after queuing some.
fn wake_if_idle(queue: &mut Queue, wake: &Condvar) {
    if queue.idle {
        // Once: the writer takes everything queued when it wakes.
        queue.idle = false;
        wake.notify_one();
    }
}

/// The sending side of the audit log. Dropping the sink stops the writer after it drained.
pub struct AuditSink {
    shared: Arc<Shared>,
    query_values: bool,
    dropped: Counter,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot open the audit file {path}: {source}")]
pub struct AuditError {
    path: String,
    source: std::io::Error,
}

impl AuditSink {
    /// Opens the output and starts the writer thread.
    pub fn start(config: &Audit, dropped: Counter) -> Result<AuditSink, AuditError> {
        let output = Output::open(&config.output)?;
        let shared = Arc::new(Shared::new());
        let writer = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || write_loop(output, &writer))
            .map_err(|source| AuditError {
                path: "(writer thread)".into(),
                source,
            })?;
        Ok(AuditSink {
            shared,
            query_values: config.query_values,
            dropped,
        })
    }

    pub fn query_values(&self) -> bool {
        self.query_values
    }

    /// Queues one record without waiting.
    pub fn write(&self, record: &Record<'_>) {
        self.write_via(record, None);
    }

    /// [`AuditSink::write`] for a request the MCP front door built for `mcp_tool`.
    pub fn write_via(&self, record: &Record<'_>, mcp_tool: Option<&str>) {
        thread_local! {
            /// This thread's line buffer and timestamp text: a record is serialised here,
            /// outside the lock (runtime workers never wait on each other's serialising), and
            /// copied into the queue whole.
            static LINE: RefCell<(String, Clock)> = RefCell::new((String::new(), Clock::new()));
        }
        LINE.with_borrow_mut(|(line, clock)| {
            line.clear();
            if line.capacity() > KEEP_LINE {
                // A huge record once: do not keep its buffer for the thread's life.
                line.shrink_to(KEEP_LINE);
            }
            line.reserve(record.size_hint());
            record.write_json(line, mcp_tool, Some(clock));
            line.push('\n');
            let mut queue = self.shared.lock();
            if queue.records >= CAPACITY {
                drop(queue);
                if self.dropped.inc().is_multiple_of(1000) {
                    tracing::error!("audit writer cannot keep up; audit records are being dropped");
                }
                return;
            }
            queue.lines.push_str(line);
            queue.records += 1;
            wake_if_idle(&mut queue, &self.shared.wake);
        });
    }

    /// Reopens the audit file (after log rotation); waits up to `within`.
    pub fn reopen(&self, within: Duration) {
        self.ask(Control::Reopen, within);
    }

    /// Waits (up to `within`) until every record queued so far is written.
    pub fn flush(&self, within: Duration) {
        self.ask(Control::Flush, within);
    }

    fn ask(&self, control: fn(SyncSender<()>) -> Control, within: Duration) {
        let (ack, done) = mpsc::sync_channel(1);
        {
            let mut queue = self.shared.lock();
            let at = queue.lines.len();
            queue.controls.push((at, control(ack)));
            wake_if_idle(&mut queue, &self.shared.wake);
        }
        // An error: the writer is gone (it panicked), nothing to wait for.
        let _ = done.recv_timeout(within);
    }
}

impl Drop for AuditSink {
    fn drop(&mut self) {
        let mut queue = self.shared.lock();
        queue.closed = true;
        wake_if_idle(&mut queue, &self.shared.wake);
    }
}

enum Output {
    Stdout(std::io::Stdout),
    /// Unbuffered: the writer hands it a whole batch at a time, one `write` for all its lines.
    File(PathBuf, File),
}

impl Output {
    fn open(output: &AuditOutput) -> Result<Output, AuditError> {
        match output {
            AuditOutput::Stdout => Ok(Output::Stdout(std::io::stdout())),
            AuditOutput::File(path) => Ok(Output::File(path.clone(), open_append(path)?)),
        }
    }

    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Output::Stdout(s) => s,
            Output::File(_, f) => f,
        }
    }

    fn reopen(&mut self) {
        if let Output::File(path, file) = self {
            match open_append(path) {
                Ok(f) => *file = f,
                Err(e) => {
                    tracing::error!(error = %e, "audit file not reopened; still writing to the old one")
                }
            }
        }
    }

    /// Writes `lines`; the first failure after a good flush is logged.
    fn write_lines(&mut self, lines: &str, failed: &mut bool) {
        if lines.is_empty() {
            return;
        }
        if let (Err(e), false) = (self.writer().write_all(lines.as_bytes()), *failed) {
            tracing::error!(error = %e, "cannot write the audit log");
            *failed = true;
        }
    }
}

fn open_append(path: &Path) -> Result<File, AuditError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| AuditError {
            path: path.display().to_string(),
            source,
        })
}

/// The writer thread: takes everything queued (swapping the queue's buffer for its own empty
/// one, so the lock is held for a few instructions), writes it with the flushes and reopens at
/// their places, flushes once, pauses, and waits for more when there is none.
fn write_loop(mut output: Output, shared: &Shared) {
    let mut failed = false;
    let mut batch = String::new();
    let mut controls = Vec::new();
    loop {
        let closed = {
            let mut queue = shared.lock();
            while queue.lines.is_empty() && queue.controls.is_empty() && !queue.closed {
                queue.idle = true;
                queue = shared
                    .wake
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            queue.idle = false;
            std::mem::swap(&mut queue.lines, &mut batch);
            std::mem::swap(&mut queue.controls, &mut controls);
            queue.records = 0;
            queue.closed
        };
        let mut written = 0;
        for (at, control) in controls.drain(..) {
            output.write_lines(&batch[written..at], &mut failed);
            written = at;
            match control {
                Control::Reopen(ack) => {
                    output.reopen();
                    let _ = ack.send(());
                }
                Control::Flush(ack) => {
                    let _ = output.writer().flush();
                    let _ = ack.send(());
                }
            }
        }
        output.write_lines(&batch[written..], &mut failed);
        batch.clear();
        if batch.capacity() > KEEP_BUFFER {
            batch = String::new();
        }
        if output.writer().flush().is_ok() {
            failed = false;
        }
        if closed {
            return;
        }
        std::thread::sleep(BATCH_PAUSE);
    }
}

/// The request target as the audit log shows it: the path with quoted literals replaced by
/// `***`, and the query option names without their values, unless `values` is set. Borrowed
/// when that is the path itself (no query, nothing quoted): the usual request's costs no copy.
pub fn redact_target<'a>(path: &'a str, query: Option<&str>, values: bool) -> Cow<'a, str> {
    let query = query.filter(|q| !q.is_empty());
    if values {
        return match query {
            Some(q) => Cow::Owned(format!("{path}?{q}")),
            None => Cow::Borrowed(path),
        };
    }
    let Some(q) = query else {
        return redact_quoted(path);
    };
    let mut out = redact_quoted(path).into_owned();
    let names: Vec<&str> = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').map_or(p, |(name, _)| name))
        .collect();
    out.push('?');
    out.push_str(&names.join("&"));
    Cow::Owned(out)
}

/// Replaces the contents of `'...'` (also written `%27...%27`) with `***`.
fn redact_quoted(path: &str) -> Cow<'_, str> {
    if memchr::memchr2(b'\'', b'%', path.as_bytes()).is_none() {
        return Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    let mut inside = false;
    while !rest.is_empty() {
        let quote = if rest.starts_with('\'') {
            Some(1)
        } else if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case("%27") {
            Some(3)
        } else {
            None
        };
        match quote {
            Some(n) => {
                out.push_str(&rest[..n]);
                if !inside {
                    out.push_str("***");
                }
                inside = !inside;
                rest = &rest[n..];
            }
            None => {
                let c = rest.chars().next().unwrap_or_default();
                if !inside {
                    out.push(c);
                }
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    Cow::Owned(out)
}

/// A timestamp's text up to its milliseconds (`2025-01-31T23:59:59.`), kept for the second it
/// names: the records of that second copy it and add their milliseconds instead of converting
/// the date again.
struct Clock {
    second: u64,
    text: String,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            second: u64::MAX,
            text: String::new(),
        }
    }

    /// `t` as [`write_timestamp`] writes it.
    fn write(&mut self, out: &mut String, t: SystemTime) {
        let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        if d.as_secs() != self.second {
            self.text.clear();
            write_timestamp(&mut self.text, t);
            if self.text.len() != 24 {
                // A year beyond four digits: not the usual shape, not kept.
                self.second = u64::MAX;
                out.push_str(&self.text);
                return;
            }
            self.text.truncate(20);
            self.second = d.as_secs();
        }
        out.push_str(&self.text);
        let millis = d.subsec_millis();
        for digit in [millis / 100, millis / 10 % 10, millis % 10] {
            out.push(char::from(b'0' + digit as u8));
        }
        out.push('Z');
    }
}

/// RFC 3339 UTC with milliseconds, e.g. `2025-01-31T23:59:59.123Z`.
pub fn timestamp(t: SystemTime) -> String {
    let mut out = String::with_capacity(24);
    write_timestamp(&mut out, t);
    out
}

fn write_timestamp(out: &mut String, t: SystemTime) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    if !(0..=9999).contains(&y) {
        let _ = write!(
            out,
            "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            rem / 3600,
            rem / 60 % 60,
            rem % 60,
            d.subsec_millis()
        );
        return;
    }
    // Filled in place in a template and copied once: this runs for every request.
    let mut text = *b"0000-00-00T00:00:00.000Z";
    for (at, width, value) in [
        (0, 4, y as u64),
        (5, 2, u64::from(m)),
        (8, 2, u64::from(day)),
        (11, 2, rem / 3600),
        (14, 2, rem / 60 % 60),
        (17, 2, rem % 60),
        (20, 3, u64::from(d.subsec_millis())),
    ] {
        let mut v = value;
        for digit in text[at..at + width].iter_mut().rev() {
            *digit = b'0' + (v % 10) as u8;
            v /= 10;
        }
    }
    out.push_str(std::str::from_utf8(&text).unwrap_or("1970-01-01T00:00:00.000Z"));
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_left_out_unless_asked_for() {
        let q = Some("$select=fullname&$filter=emailaddress1%20eq%20'a@b.com'&@p1=x&$top");
        assert_eq!(
            redact_target("/api/data/v9.2/contacts", q, false),
            "/api/data/v9.2/contacts?$select&$filter&@p1&$top"
        );
        assert_eq!(
            redact_target("/x", Some("a=1"), true),
            "/x?a=1",
            "values on request"
        );
        assert_eq!(redact_target("/x", Some(""), false), "/x");
    }

    #[test]
    fn quoted_key_values_in_the_path_are_redacted() {
        assert_eq!(
            redact_target("/contacts(emailaddress1='a@b.com')", None, false),
            "/contacts(emailaddress1='***')"
        );
        assert_eq!(
            redact_target("/contacts(a=%27x%27,b='y')/fullname", None, false),
            "/contacts(a=%27***%27,b='***')/fullname"
        );
        let guid = "/contacts(00000000-0000-0000-0000-000000000001)";
        assert_eq!(redact_target(guid, None, false), guid);
        // Nothing to redact and no query: the path itself, not a copy.
        assert!(matches!(redact_target(guid, None, false), Cow::Borrowed(_)));
        assert!(matches!(
            redact_target(guid, Some(""), true),
            Cow::Borrowed(_)
        ));
        assert!(matches!(
            redact_target("/x'a'", None, false),
            Cow::Owned(ref s) if s == "/x'***'"
        ));
    }

    #[test]
    fn a_record_is_the_json_of_its_fields_whatever_its_strings_hold() {
        use crate::config::Verb;
        use crate::policy::classify::Touch;
        let uses = [
            Use::Table(Touch {
                set: "contacts".into(),
                verb: Verb::Get,
                columns: ["fullname", "we\"ird"].into(),
                all_columns: false,
                main: true,
            }),
            Use::Function("WhoAmI".into()),
        ];
        let record = Record {
            timestamp: UNIX_EPOCH + Duration::from_millis(1_709_251_199_123),
            request_id: "r-1",
            tenant: Some("contoso"),
            client: None,
            method: "GET",
            path: "/api/\"q\"\\\n\u{1}\t\r/é".into(),
            access: &uses,
            decision: "allow",
            reason: Reason::Text("allow: contacts GET"),
            error: None,
            status: 200,
            upstream_status: Some(204),
            completed: true,
            latency: Duration::from_micros(12_345_678),
            upstream_latency: Some(Duration::from_micros(7)),
            bytes_in: 0,
            bytes_out: u64::MAX,
        };
        let line = record.to_json();
        let got: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
        let want = serde_json::json!({
            "timestamp": "2024-02-29T23:59:59.123Z",
            "request_id": "r-1",
            "tenant": "contoso",
            "client": null,
            "front_door": "webapi",
            "tool": null,
            "method": "GET",
            "path": "/api/\"q\"\\\n\u{1}\t\r/é",
            "access": ["GET contacts [fullname, we\"ird]", "function WhoAmI"],
            "decision": "allow",
            "reason": "allow: contacts GET",
            "error": null,
            "status": 200,
            "upstream_status": 204,
            "completed": true,
            "latency_ms": 12345.678,
            "upstream_latency_ms": 0.007,
            "bytes_in": 0,
            "bytes_out": u64::MAX,
        });
        assert_eq!(got, want, "{line}");
        assert!(!line.contains('\n'), "one line");
        let keys: Vec<&str> = line
            .match_indices("\":")
            .map(|(i, _)| {
                let start = line[..i].rfind('"').unwrap() + 1;
                &line[start..i]
            })
            .collect();
        assert_eq!(keys.len(), 19, "{keys:?}");
        assert_eq!(keys[0], "timestamp");
        assert_eq!(keys[18], "bytes_out");
    }

    #[test]
    fn needs_escape_finds_every_special_byte_at_every_position() {
        for len in 0..20 {
            let clean = "aé€z".repeat(len).into_bytes();
            assert!(!needs_escape(&clean));
            for at in 0..clean.len() {
                for special in [b'"', b'\\', 0u8, 0x1f, b'\n'] {
                    let mut dirty = clean.clone();
                    dirty[at] = special;
                    assert!(needs_escape(&dirty), "{special:#x} at {at} of {len}");
                }
                let mut fine = clean.clone();
                fine[at] = b' ';
                assert!(!needs_escape(&fine));
                fine[at] = 0x7f;
                assert!(!needs_escape(&fine));
            }
        }
    }

    #[test]
    fn the_sink_writes_whole_lines_in_order_and_flushes_and_reopens_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let config = Audit {
            output: AuditOutput::File(path.clone()),
            query_values: false,
        };
        let dropped = Counter::default();
        let sink = AuditSink::start(&config, dropped.clone()).unwrap();
        let ids: Vec<String> = (0..500).map(|i| format!("r-{i}")).collect();
        let record = |id: &'static str| Record {
            timestamp: UNIX_EPOCH + Duration::from_millis(1_709_251_199_123),
            request_id: id,
            tenant: Some("contoso"),
            client: None,
            method: "GET",
            path: "/api/data/v9.2/contacts?$select".into(),
            access: &[],
            decision: "allow",
            reason: Reason::Text("allow: \"contacts\" GET"),
            error: None,
            status: 200,
            upstream_status: Some(200),
            completed: true,
            latency: Duration::from_micros(2647),
            upstream_latency: None,
            bytes_in: 0,
            bytes_out: 1024,
        };
        let ids: &'static [String] = ids.leak();
        let want = |range: std::ops::Range<usize>| -> String {
            ids[range]
                .iter()
                .map(|id| record(id).to_json() + "\n")
                .collect()
        };
        for id in &ids[..200] {
            sink.write(&record(id));
        }
        sink.flush(Duration::from_secs(5));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), want(0..200));
        // Rotation: the records queued before the reopen stay in the old file.
        let rotated = dir.path().join("audit.jsonl.1");
        std::fs::rename(&path, &rotated).unwrap();
        for id in &ids[200..300] {
            sink.write(&record(id));
        }
        sink.reopen(Duration::from_secs(5));
        for id in &ids[300..400] {
            sink.write_via(&record(id), Some("query"));
        }
        sink.flush(Duration::from_secs(5));
        assert_eq!(std::fs::read_to_string(&rotated).unwrap(), want(0..300));
        let mcp: String = ids[300..400]
            .iter()
            .map(|id| record(id).to_json_via(Some("query")) + "\n")
            .collect();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), mcp);
        // Dropping the sink drains what is queued.
        for id in &ids[400..] {
            sink.write(&record(id));
        }
        drop(sink);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let all = mcp + &want(400..500);
        while std::fs::read_to_string(&path).unwrap() != all {
            assert!(std::time::Instant::now() < deadline, "not drained");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(dropped.get(), 0);
    }

    /// A `GET /x` answered 404 before the policy was asked: the fields a test does not set.
    fn bare_record() -> Record<'static> {
        Record {
            timestamp: UNIX_EPOCH,
            request_id: "r",
            tenant: None,
            client: None,
            method: "GET",
            path: "/x".into(),
            access: &[],
            decision: "none",
            reason: Reason::Text(""),
            error: None,
            status: 404,
            upstream_status: None,
            completed: true,
            latency: Duration::ZERO,
            upstream_latency: None,
            bytes_in: 0,
            bytes_out: 0,
        }
    }

    #[test]
    fn an_allow_reason_of_rules_is_written_from_the_uses_and_escaped() {
        use crate::config::Verb;
        use crate::policy::classify::Touch;
        let odd = "Who\"Am\\I\n";
        let uses = [
            Use::Function(odd.into()),
            Use::Table(Touch {
                set: "contacts".into(),
                verb: Verb::Get,
                columns: ["fullname"].into(),
                all_columns: false,
                main: true,
            }),
            Use::Function(odd.into()),
        ];
        let record = Record {
            access: &uses,
            decision: "allow",
            reason: Reason::Rules(&uses),
            status: 200,
            upstream_status: Some(200),
            ..bare_record()
        };
        let line = record.to_json();
        let got: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
        let want = format!("functions lists {odd}; allow.contacts permits GET");
        assert_eq!(got["reason"], serde_json::json!(want), "{line}");
        assert_eq!(Reason::Rules(&uses).to_string(), want);
    }

    #[test]
    fn a_full_queue_drops_and_counts_whole_records() {
        // No writer thread: nothing drains the queue.
        let sink = AuditSink {
            shared: Arc::new(Shared::new()),
            query_values: false,
            dropped: Counter::default(),
        };
        let record = bare_record();
        for _ in 0..CAPACITY + 7 {
            sink.write(&record);
        }
        assert_eq!(sink.dropped.get(), 7);
        let queue = sink.shared.lock();
        assert_eq!(queue.records, CAPACITY);
        let line = record.to_json() + "\n";
        assert_eq!(queue.lines.len(), CAPACITY * line.len());
        assert!(queue.lines.starts_with(&line) && queue.lines.ends_with(&line));
    }

    #[test]
    fn needs_escape_at_every_length_around_its_words() {
        for len in 0..=40 {
            assert!(!needs_escape(&vec![b'a'; len]));
            for at in 0..len {
                for special in [b'"', b'\\', 0u8, 0x1f] {
                    let mut dirty = vec![0xffu8; len];
                    dirty[at] = special;
                    assert!(needs_escape(&dirty), "{special:#x} at {at} of {len}");
                }
            }
        }
    }

    #[test]
    fn the_clock_writes_what_write_timestamp_writes() {
        let mut clock = Clock::new();
        let mut times = vec![UNIX_EPOCH - Duration::from_secs(5), UNIX_EPOCH];
        for base in [
            1_709_251_199_000u64,
            253_402_300_799_000,
            253_402_300_800_000,
        ] {
            for ms in [0, 1, 999, 1000, 1001, 61_987, 999, 5] {
                times.push(UNIX_EPOCH + Duration::from_millis(base + ms));
            }
        }
        for t in times {
            let (mut want, mut got) = (String::new(), String::new());
            write_timestamp(&mut want, t);
            clock.write(&mut got, t);
            assert_eq!(got, want);
        }
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_251_199_123); // leap year Feb 29
        assert_eq!(timestamp(t), "2024-02-29T23:59:59.123Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(timestamp(t), "2000-02-29T00:00:00.000Z");
    }
}
