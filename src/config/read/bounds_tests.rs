//! `timeouts:` and the top-level `limits:`: every bound has a default, each key is read, and a
//! bad value is reported at its line and column.

use super::*;

const TENANTS: &str = "tenants:
  contoso:
    dataverse:
      url: https://contoso.crm.dynamics.com
    auth:
      tenant_id: t
      client_id: c
      client_secret: { env: DVGW_TEST_UNSET_SECRET }
";

fn read(head: &str) -> Result<Config, Vec<String>> {
    parse_str(&format!("{head}{TENANTS}"), "g.yaml")
        .map(|(c, _)| c)
        .map_err(|d| d.errors.iter().map(|e| e.to_string()).collect())
}

#[test]
fn every_bound_has_its_documented_default() {
    let c = read("").unwrap();
    let t = c.timeouts;
    let secs = |d: Duration| d.as_secs();
    assert_eq!(
        [
            secs(t.connect),
            secs(t.response_headers),
            secs(t.idle),
            secs(t.request_head),
            secs(t.request_body_idle),
            secs(t.request_body),
            secs(t.upstream_body_idle),
            secs(t.response_body_idle),
            secs(t.token_request),
            secs(t.token_wait),
        ],
        [10, 120, 90, 30, 30, 120, 60, 60, 10, 2]
    );
    assert_eq!(c.limits.max_buffered_bytes, 256 << 20);
    assert_eq!(c.limits.max_connections, None);
    assert_eq!(c.tenants[0].limits.max_concurrent, None);
    assert_eq!(c.tenants[0].limits.concurrency(), 52);
}

#[test]
fn every_timeout_and_budget_is_read() {
    let c = read(
        "timeouts:
  request_head: 5s
  request_body_idle: 250ms
  request_body: 1m
  upstream_body_idle: 2s
  response_body_idle: 4s
  token_request: 3s
  token_wait: 500ms
limits:
  max_connections: 1000
  max_buffered_bytes: 64MiB
",
    )
    .unwrap();
    let t = c.timeouts;
    assert_eq!(t.request_head, Duration::from_secs(5));
    assert_eq!(t.request_body_idle, Duration::from_millis(250));
    assert_eq!(t.request_body, Duration::from_secs(60));
    assert_eq!(t.upstream_body_idle, Duration::from_secs(2));
    assert_eq!(t.response_body_idle, Duration::from_secs(4));
    assert_eq!(t.token_request, Duration::from_secs(3));
    assert_eq!(t.token_wait, Duration::from_millis(500));
    assert_eq!(c.limits.max_connections, Some(1000));
    assert_eq!(c.limits.max_buffered_bytes, 64 << 20);
}

#[test]
fn bad_bounds_are_reported_at_their_line_and_column() {
    let errors = read(
        "timeouts:
  request_head: 0s
  token_wait: soon
  body: 5s
limits:
  max_connections: 0
  max_buffered_bytes: lots
",
    )
    .unwrap_err();
    let expected = [
        "g.yaml:2:17: timeouts.request_head: must be longer than 0s",
        "g.yaml:3:15: timeouts.token_wait: expected a duration",
        "g.yaml:4:3: timeouts.body: unknown key",
        "g.yaml:6:20: limits.max_connections: expected a whole number from 1",
        "g.yaml:7:23: limits.max_buffered_bytes: expected a size",
    ];
    for e in expected {
        assert!(
            errors.iter().any(|got| got.starts_with(e)),
            "{e}\n{errors:#?}"
        );
    }
}

#[test]
fn the_default_connection_cap_leaves_room_below_the_file_limit() {
    assert_eq!(default_max_connections(1024), 768);
    assert_eq!(default_max_connections(65_536), 49_152);
    assert_eq!(
        default_max_connections(512),
        256,
        "at least 256 below the limit"
    );
    assert_eq!(default_max_connections(100), 16, "never under 16");
}
