//! Hostile and broken input: precise errors with positions, truncation at every byte, random
//! mutations (never a panic; a success still satisfies the invariants), and a hand-rolled
//! round-trip property test over random models.

use super::tests::csdl;
use super::*;

const SIM: &[u8] = include_bytes!("../../sim/metadata.xml");

fn error(schema: &str) -> MetadataError {
    Metadata::parse(csdl(schema).as_bytes()).unwrap_err()
}

#[test]
fn errors_name_the_line() {
    let err = error("<EntityType Name=\"a\"/>\n<EntityType BaseType=\"mscrm.a\"/>");
    assert!(
        matches!(err, MetadataError::MissingAttribute { element: "EntityType", attribute: "Name", at } if at.line == 6),
        "{err}"
    );
    assert!(err.to_string().contains("line 6"), "{err}");
    assert_eq!(err.fault(), crate::error::Fault::Upstream);
    assert!(!err.retryable());
}

#[test]
fn structural_mistakes_are_errors() {
    let cases = [
        (
            "<EntityType Name=\"a\"/><EntityType Name=\"a\"/>",
            "duplicate entity type `a`",
        ),
        (
            "<EntityType Name=\"a\"><NavigationProperty Name=\"n\" Type=\"mscrm.a\"/><NavigationProperty Name=\"n\" Type=\"mscrm.a\"/></EntityType>",
            "duplicate navigation property `n`",
        ),
        (
            "<EntityType Name=\"a\"/><EntityContainer Name=\"S\"><EntitySet Name=\"as\" EntityType=\"mscrm.a\"/><EntitySet Name=\"as\" EntityType=\"mscrm.a\"/></EntityContainer>",
            "duplicate entity set `as`",
        ),
        (
            "<EntityContainer Name=\"S\"><FunctionImport Name=\"F\" Function=\"mscrm.F\"/><FunctionImport Name=\"F\" Function=\"mscrm.G\"/></EntityContainer>",
            "duplicate FunctionImport `F`",
        ),
        ("<EntityType Name=\"a\"><Key/><Key/></EntityType>", "<Key>"),
        (
            "<EntityType Name=\"a\" Abstract=\"yes\"/>",
            "is not a boolean",
        ),
        (
            "<EntityType Name=\"a\"><NavigationProperty Name=\"n\"/></EntityType>",
            "lacks the Type",
        ),
        (
            "<Function Name=\"f\"><Parameter Name=\"p\"/></Function>",
            "lacks the Type",
        ),
        (
            "<EntityType Name=\"a\" BaseType=\"mscrm.b\"/><EntityType Name=\"b\" BaseType=\"mscrm.a\"/>",
            "inherits from itself",
        ),
        (
            "<EntityType Name=\"a\" BaseType=\"mscrm.a\"/>",
            "inherits from itself",
        ),
        ("<EntityType Name=\"a\"></Property>", "malformed XML"),
        ("<EntityType Name=\"a\" Name=\"b\"/>", "malformed attribute"),
        ("<EntityType Name=\"a&bogus;\"/>", "malformed XML"),
    ];
    for (schema, expected) in cases {
        let err = error(schema).to_string();
        assert!(err.contains(expected), "{schema}: {err}");
    }
}

#[test]
fn documents_that_are_not_csdl() {
    let cases: [(&[u8], &str); 7] = [
        (b"", "no <Schema>"),
        (b"  <!-- nothing -->", "no <Schema>"),
        (
            b"<edmx:Edmx><edmx:DataServices/></edmx:Edmx>",
            "no <Schema>",
        ),
        (
            b"<html><body>Sign in</body></html>",
            "root element at line 1 (byte 0) is <html>",
        ),
        (b"{\"error\":{}}", "no <Schema>"),
        (
            b"<Schema Namespace=\"N\"/><Schema Namespace=\"M\"/>",
            "element after the root",
        ),
        (
            b"<Schema Namespace=\"N\"><EntityType Name=\"\xff\"/></Schema>",
            "malformed XML",
        ),
    ];
    for (xml, expected) in cases {
        let err = Metadata::parse(xml).unwrap_err().to_string();
        assert!(
            err.contains(expected),
            "{:?}: {err}",
            String::from_utf8_lossy(xml)
        );
    }
}

#[test]
fn entities_are_never_expanded() {
    let xml = br#"<!DOCTYPE x [<!ENTITY boom "contact">]><Schema Namespace="N"><EntityType Name="&boom;"/></Schema>"#;
    assert!(Metadata::parse(xml).is_err());
}

#[test]
fn truncation_anywhere_before_the_end_is_an_error() {
    let end = SIM
        .windows(b"</edmx:Edmx>".len())
        .position(|w| w == b"</edmx:Edmx>")
        .unwrap()
        + b"</edmx:Edmx>".len();
    for n in 0..SIM.len() {
        let result = Metadata::parse(&SIM[..n]);
        assert_eq!(result.is_ok(), n >= end, "truncated at {n}");
        if let Err(err) = result {
            let at = err.position().map_or(0, |p| p.offset);
            assert!(at <= n as u64, "{err} beyond the input at {n}");
        }
    }
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self) -> bool {
        self.next() & 1 == 1
    }
}

/// What every successfully parsed document must satisfy.
fn assert_invariants(m: &Metadata) {
    for ty in m.entity_types() {
        for nav in ty.navigation.values() {
            assert!(m.entity_type(&nav.target).is_some(), "{nav:?}");
        }
        assert!(m.ancestry(&ty.logical_name).count() <= m.entity_types().count());
        let _ = m.key_of(&ty.logical_name);
    }
    for (set, logical) in m.entity_sets() {
        assert_eq!(m.entity_set(set).unwrap().logical_name, logical);
    }
}

#[test]
fn random_mutations_never_panic() {
    const NOISE: &[u8] = b"<>/\"'=&;![]- \n\xc3\xffaZ";
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..3_000 {
        let mut xml = SIM.to_vec();
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(xml.len());
            match rng.below(4) {
                0 => xml[at] = NOISE[rng.below(NOISE.len())],
                1 => xml.insert(at, NOISE[rng.below(NOISE.len())]),
                2 => {
                    let end = (at + 1 + rng.below(40)).min(xml.len());
                    xml.drain(at..end);
                }
                _ => {
                    let end = (at + 1 + rng.below(200)).min(xml.len());
                    let slice = xml[at..end].to_vec();
                    let to = rng.below(xml.len());
                    xml.splice(to..to, slice);
                }
            }
        }
        if let Ok(m) = Metadata::parse(&xml) {
            assert_invariants(&m);
        }
    }
}

/// A random acyclic model, written out in randomly varied but valid CSDL.
fn random_model(rng: &mut Rng) -> (String, Vec<EntityType>) {
    let count = 1 + rng.below(12);
    let mut types = Vec::new();
    let mut xml = String::new();
    for i in 0..count {
        let base = (i > 0 && rng.chance()).then(|| format!("t{}", rng.below(i)));
        let key = match base {
            None => (0..1 + rng.below(2)).map(|k| format!("k{k}")).collect(),
            Some(_) => Vec::new(),
        };
        let properties: NameList = (0..rng.below(6))
            .map(|_| format!("p{}", rng.below(10)))
            .collect();
        let navigation: Members<Navigation> = (0..rng.below(4))
            .map(|n| {
                let nav = Navigation {
                    target: format!("t{}", rng.below(count)),
                    collection: rng.chance(),
                    lookup: None,
                    partner: None,
                };
                (format!("n{n}"), nav)
            })
            .collect();
        let ty = EntityType {
            logical_name: format!("t{i}"),
            base_type: base,
            key,
            properties,
            navigation,
            is_abstract: rng.chance(),
            column_types: Vec::new(),
        };
        let column_types = ty
            .properties
            .iter()
            .map(|p| (p.clone(), super::ColumnType::String))
            .collect();
        let ty = EntityType { column_types, ..ty };
        write_type(&mut xml, &ty, rng);
        types.push(ty);
    }
    xml.push_str("<EntityContainer Name=\"S\">");
    for ty in &types {
        let q = qualifier(rng);
        xml.push_str(&format!(
            "<EntitySet Name=\"{0}s\" EntityType=\"{q}{0}\"/>",
            ty.logical_name
        ));
    }
    xml.push_str("</EntityContainer>");
    (xml, types)
}

fn qualifier(rng: &mut Rng) -> &'static str {
    if rng.chance() {
        "mscrm."
    } else {
        "Microsoft.Dynamics.CRM."
    }
}

fn write_type(xml: &mut String, ty: &EntityType, rng: &mut Rng) {
    let base = ty.base_type.as_ref().map_or(String::new(), |b| {
        format!(" BaseType=\"{}{b}\"", qualifier(rng))
    });
    xml.push_str(&format!(
        "<EntityType Name=\"{}\"{base} Abstract=\"{}\">",
        ty.logical_name, ty.is_abstract
    ));
    if !ty.key.is_empty() {
        xml.push_str("<Key>");
        for k in &ty.key {
            xml.push_str(&format!("<PropertyRef Name=\"{k}\"/>"));
        }
        xml.push_str("</Key>");
    }
    let annotation = "<Annotation Term=\"T\" String=\"x\"/>";
    for p in &ty.properties {
        let body = if rng.chance() {
            format!(">{annotation}</Property>")
        } else {
            "/>".into()
        };
        xml.push_str(&format!("<Property Name=\"{p}\" Type=\"Edm.String\"{body}"));
    }
    for (name, nav) in &ty.navigation {
        let q = qualifier(rng);
        let target = if nav.collection {
            format!("Collection({q}{})", nav.target)
        } else {
            format!("{q}{}", nav.target)
        };
        xml.push_str(&format!(
            "<NavigationProperty Name=\"{name}\" Type=\"{target}\"/>"
        ));
        if rng.chance() {
            xml.push_str(annotation);
        }
    }
    xml.push_str("</EntityType>\n");
}

#[test]
fn parsing_a_written_model_gives_it_back() {
    let mut rng = Rng(42);
    for _ in 0..500 {
        let (schema, types) = random_model(&mut rng);
        let m = Metadata::parse(csdl(&schema).as_bytes()).unwrap();
        assert_invariants(&m);
        assert_eq!(
            m.entity_types().cloned().collect::<Vec<_>>(),
            types,
            "{schema}"
        );
        for ty in &types {
            assert_eq!(
                m.set_of(&ty.logical_name),
                Some(format!("{}s", ty.logical_name).as_str())
            );
            let inherited = |p: &str| {
                m.ancestry(&ty.logical_name)
                    .any(|t| t.properties.contains(p))
            };
            for p in (0..10).map(|p| format!("p{p}")) {
                assert_eq!(m.has_property(&ty.logical_name, &p), inherited(&p));
            }
            let root = m.ancestry(&ty.logical_name).last().unwrap();
            assert_eq!(m.key_of(&ty.logical_name), Some(root.key.as_slice()));
        }
    }
}
