//! Agent token validation: a token seen before (its hash found in the cache, `exp` checked) and
//! a new one (parse, one RS256 signature check against the cached JWKS key, claims), beside the
//! bare signature check it is made of. `cargo bench --bench agents`.

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use dataverse_gateway::clock::SystemClock;
use dataverse_gateway::config::AgentAuth;
use dataverse_gateway::identity::agent_token::AgentTokens;
use dataverse_gateway::identity::agent_token::jwt::{self, Expect, Jwk};
use dataverse_gateway::sim::{SimAgent, SimConfig, Simulator};

const TENANT: &str = "7a9e0000-0000-4000-8000-00000000a9e7";
const AUDIENCE: &str = "api://dataverse-gateway";

fn agents(c: &mut Criterion) {
    dataverse_gateway::identity::tls::install_crypto_provider();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sim = rt.block_on(Simulator::start(SimConfig::default())).unwrap();
    let agent = SimAgent {
        tenant_id: TENANT.into(),
        client_id: "5a1e5000-0000-4000-8000-000000000001".into(),
        secret: "s".into(),
        object_id: "5a1e5000-0000-4000-8000-0000000000b1".into(),
        roles: vec!["Gateway.Sales".into()],
        v1: false,
    };
    let token = sim.sign_agent_token(&sim.agent_claims(&agent, AUDIENCE));
    let auth = AgentAuth {
        tenant_id: TENANT.into(),
        audience: AUDIENCE.into(),
        authority: sim.base_url(),
    };
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let tokens = AgentTokens::new(&auth, http, Duration::from_secs(5), Arc::new(SystemClock));
    rt.block_on(tokens.validate(&token))
        .expect("the token is valid");

    let mut group = c.benchmark_group("agent token");
    // What `validate` does first, in the request's own task: hash, clock, lookup.
    group.bench_function("seen before (cache hit)", |b| {
        b.iter(|| tokens.seen(&token).unwrap())
    });
    group.bench_function("seen before, through validate (+ block_on)", |b| {
        b.iter(|| rt.block_on(tokens.validate(&token)).unwrap())
    });
    group.bench_function("SHA-256 of the token", |b| {
        b.iter(|| aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()))
    });
    let (kid, n, e) = sim.agent_key();
    let key = Jwk { kid, n, e };
    let issuers = auth.issuers();
    let expect = Expect {
        tenant_id: TENANT,
        audience: AUDIENCE,
        issuers: &issuers,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    group.bench_function("new (parse, RS256 verify, claims)", |b| {
        b.iter(|| {
            let unverified = jwt::parse(&token).unwrap();
            let claims = unverified.verify(&key).unwrap();
            jwt::check_claims(&claims, &expect, now).unwrap()
        })
    });
    let (input, sig) = token.rsplit_once('.').unwrap();
    use base64::Engine;
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sig)
        .unwrap();
    group.bench_function("RS256 signature check alone", |b| {
        b.iter(|| {
            aws_lc_rs::signature::RsaPublicKeyComponents {
                n: &key.n[..],
                e: &key.e[..],
            }
            .verify(
                &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
                input.as_bytes(),
                &sig,
            )
            .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, agents);
criterion_main!(benches);
