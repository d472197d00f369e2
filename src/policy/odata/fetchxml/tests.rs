//! The parser against documented queries and every refusal, named.

use super::*;

fn columns(fetch: &Fetch, table: usize) -> Vec<&str> {
    fetch.tables[table]
        .columns
        .iter()
        .map(String::as_str)
        .collect()
}

const NESTED: &str = r#"<?xml version="1.0"?>
<fetch top="5" version="1.0" mapping="logical">
  <!-- accounts with their contacts and the contacts' owners -->
  <entity name="account">
    <attribute name="name"/>
    <order attribute="name" descending="false"/>
    <filter type="and">
      <condition attribute="statecode" operator="eq" value="0"/>
      <condition entityname="c" attribute="fullname" operator="like" value="%a&amp;b%"/>
      <filter type="or">
        <condition attribute="revenue" operator="gt" valueof="c.annualincome"/>
        <condition attribute="industrycode" operator="in"><value>1</value><value>2</value></condition>
      </filter>
    </filter>
    <link-entity name="contact" from="parentcustomerid" to="accountid" alias="c" link-type="outer">
      <attribute name="fullname"/>
      <link-entity name="systemuser" from="systemuserid" to="owninguser" alias="u">
        <all-attributes/>
        <order attribute="fullname" entityname="u"/>
      </link-entity>
    </link-entity>
  </entity>
</fetch>"#;

#[test]
fn nested_links_aliases_and_references() {
    let fetch = parse(NESTED).unwrap();
    assert_eq!(fetch.entity, "account");
    assert_eq!(fetch.tables.len(), 3);
    assert_eq!(
        columns(&fetch, 0),
        ["name", "statecode", "revenue", "industrycode", "accountid"]
    );
    assert_eq!(fetch.tables[1].logical_name, "contact");
    assert_eq!(fetch.tables[1].alias.as_deref(), Some("c"));
    assert_eq!(
        columns(&fetch, 1),
        ["parentcustomerid", "fullname", "owninguser", "annualincome"]
    );
    assert_eq!(fetch.tables[2].logical_name, "systemuser");
    assert!(fetch.tables[2].all_attributes && !fetch.tables[0].all_attributes);
    assert_eq!(columns(&fetch, 2), ["systemuserid", "fullname"]);
}

#[test]
fn valueof_same_table_and_unaliased_entityname() {
    let xml = "<fetch><entity name='contact'><filter><condition attribute='a' operator='gt' \
        valueof='b'/><condition entityname='account' attribute='x' operator='eq' valueof='y'/>\
        </filter><link-entity name='account' from='accountid' to='parentcustomerid'/>\
        </entity></fetch>";
    let fetch = parse(xml).unwrap();
    assert_eq!(columns(&fetch, 0), ["a", "b", "parentcustomerid"]);
    assert_eq!(fetch.tables[1].alias, None);
    assert_eq!(columns(&fetch, 1), ["accountid", "x", "y"]);
}

#[test]
fn aggregate_groupby_and_order_by_alias() {
    let xml = r#"<fetch aggregate="true"><entity name="account">
            <attribute name="accountid" alias="n" aggregate="count"/>
            <attribute name="industrycode" alias="industry" groupby="true"/>
            <order alias="n" descending="true"/></entity></fetch>"#;
    let fetch = parse(xml).unwrap();
    assert_eq!(columns(&fetch, 0), ["accountid", "industrycode"]);
}

#[test]
fn link_entity_inside_filter() {
    let xml = "<fetch><entity name='account'><filter><link-entity name='contact' \
        from='parentcustomerid' to='accountid' link-type='any'><filter><condition \
        attribute='statecode' operator='eq' value='0'/></filter></link-entity></filter>\
        </entity></fetch>";
    let fetch = parse(xml).unwrap();
    assert_eq!(columns(&fetch, 0), ["accountid"]);
    assert_eq!(columns(&fetch, 1), ["parentcustomerid", "statecode"]);
}

#[test]
fn root_without_attribute_returns_every_column_a_link_without_returns_none() {
    let xml = "<fetch><entity name='a'><order attribute='x'/><filter><condition \
        attribute='y' operator='null'/></filter><link-entity name='b' from='bid' to='b'>\
        <filter><condition attribute='z' operator='null'/></filter></link-entity></entity></fetch>";
    let fetch = parse(xml).unwrap();
    assert!(fetch.tables[0].all_attributes, "root without <attribute>");
    assert_eq!(columns(&fetch, 0), ["x", "y", "b"]);
    assert!(!fetch.tables[1].all_attributes, "link without <attribute>");
    assert_eq!(columns(&fetch, 1), ["bid", "z"]);
    let listed = parse("<fetch><entity name='a'><attribute name='x'/></entity></fetch>").unwrap();
    assert!(!listed.tables[0].all_attributes);
    // an <attribute> of a link is not one of the root
    let xml = "<fetch><entity name='a'><link-entity name='b' from='bid' to='b'>\
        <attribute name='n'/></link-entity></entity></fetch>";
    assert!(parse(xml).unwrap().tables[0].all_attributes);
}

#[test]
fn paging_cookie_names_root_columns() {
    let xml = "<fetch page='2' paging-cookie='&lt;cookie page=&quot;1&quot;&gt;&lt;name \
        last=&quot;b&quot; first=&quot;a&quot;/&gt;&lt;aid last=&quot;{1}&quot; \
        first=&quot;{2}&quot;/&gt;&lt;/cookie&gt;'><entity name='a'><attribute name='name'/>\
        </entity></fetch>";
    let fetch = parse(xml).unwrap();
    assert_eq!(columns(&fetch, 0), ["name", "aid"]);
    for bad in [
        "&lt;x/&gt;",
        "&lt;cookie/&gt;&lt;cookie/&gt;",
        "&lt;cookie page=&quot;1&quot;&gt;&lt;a-b/&gt;&lt;/cookie&gt;",
        "&lt;cookie&gt;&lt;a&gt;&lt;b/&gt;&lt;/a&gt;&lt;/cookie&gt;",
        "&lt;cookie&gt;text&lt;/cookie&gt;",
        "&lt;cookie&gt;",
    ] {
        let xml = format!("<fetch paging-cookie='{bad}'><entity name='a'/></fetch>");
        assert!(parse(&xml).is_err(), "{bad}");
    }
}

/// `wrapper|xml|expected message`; wrapper `E` puts the xml in an entity, `F` in a filter.
const REJECTED: &[&str] = &[
    "|<entity name='account'/>|root must be one <fetch>",
    "||exactly one <entity>",
    "|<fetch/>|exactly one <entity>",
    "|<fetch><entity name='a'/><entity name='b'/></fetch>|exactly one <entity>",
    "|<fetch><entity name='a'/></fetch><fetch/>|root must be one <fetch>",
    "E|<savedquery name='x'/>|<savedquery> is not allowed inside <entity>",
    "F|<attribute name='x'/>|<attribute> is not allowed inside <filter>",
    "E|<attribute name='x'><value/></attribute>|inside an element that holds nothing",
    "E|<Attribute name='x'/>|<Attribute> is not allowed",
    "E|<x:attribute name='x'/>|<x:attribute> is not allowed",
    "E|text|text is only allowed inside <value>",
    "E|<![CDATA[x]]>|text is only allowed inside <value>",
    "E|&amp;|text is only allowed inside <value>",
    "|<fetch><entity name='account'>|ends inside an element",
    "|<fetch><entity name='a'></fetch>|not well-formed",
    "|<fetch><entity name='a' name='b'/></fetch>|not well-formed",
    "E|<attribute name='x' extra='1'/>|<attribute> does not take the attribute `extra`",
    "|<fetch xmlns:a='urn:x'><entity name='a'/></fetch>|attribute `xmlns:a`",
    "E|<attribute/>|<attribute> needs the attribute `name`",
    "E|<order descending='true'/>|<order> needs the attribute `attribute`",
    "F|<condition operator='null'/>|<condition> needs the attribute `attribute`",
    "E|<attribute name='a b'/>|name=\"a b\" is not a plain identifier",
    "E|<attribute name='contact.x'/>|is not a plain identifier",
    "|<fetch><entity name='9x'/></fetch>|name=\"9x\" is not a plain identifier",
    "E|<link-entity name='c' from='x' to='a-b'/>|to=\"a-b\" is not a plain identifier",
    "F|<condition attribute='a' operator='eq' valueof='a.b.c'/>|valueof=\"a.b.c\"",
    "F|<condition entityname='zz' attribute='a' operator='null'/>|`zz` names no link-entity",
    "F|<condition attribute='a' operator='eq' valueof='zz.b'/>|`zz` names no link-entity",
    "E|<order attribute='a' entityname='account'/>|`account` names no link-entity",
    "E|<link-entity name='a' alias='c' from='x' to='y'/><link-entity name='b' alias='c'/>|alias `c` is used",
    "E|<link-entity name='c' from='x' to='y'/><link-entity name='c' from='x' to='y'/><filter><condition entityname='c' \
        attribute='a' operator='null'/></filter>|`c` matches more than one link-entity",
    "|<!DOCTYPE fetch [<!ENTITY x 'y'>]><fetch/>|must not contain a DOCTYPE",
    "F|<condition attribute='a' operator='eq'><value>&x;</value></condition>|entity references",
    "E|<?pi x?>|must not contain processing instructions",
    "|<fetch><entity name='a'/></fetch><?xml version='1.0'?>|processing instructions",
    "E|<attribute name='x' rowaggregate='CountChildren'/>|attribute `rowaggregate`",
    "E|<link-entity name='b' link-type='cross'/>|link-type=\"cross\"",
    "E|<link-entity name='b' to='bid'/>|<link-entity> needs the attribute `from`",
    "E|<link-entity name='b' from='bid'/>|<link-entity> needs the attribute `to`",
    "F|<condition attribute='aid' operator='eq-or-under' value='1'/>|operator `eq-or-under` walks",
    "F|<condition attribute='ownerid' operator='eq-useroruserteams'/>|caller's teams",
    "F|<condition attribute='ownerid' operator='eq-useroruserhierarchy'/>|report to the caller",
    "F|<condition attribute='a' operator='eq'><value value='1'/></condition>|attribute `value`",
    "|<fetch paging-cookie='&lt;cookie x=&quot;1&quot;/&gt;'><entity name='a'/></fetch>|`x`",
];

#[test]
fn every_error_case() {
    for case in REJECTED {
        let mut fields = case.splitn(3, '|');
        let (wrapper, xml, expected) = (fields.next(), fields.next(), fields.next());
        let xml = match (wrapper, xml.unwrap_or_default()) {
            (Some("E"), inner) => format!("<fetch><entity name='a'>{inner}</entity></fetch>"),
            (Some("F"), inner) => {
                format!("<fetch><entity name='a'><filter>{inner}</filter></entity></fetch>")
            }
            (_, xml) => xml.to_string(),
        };
        let err = parse(&xml).expect_err(&xml).to_string();
        assert!(err.contains(expected.unwrap_or_default()), "{xml}: {err}");
    }
}

#[test]
fn truncations_and_corruptions_never_panic() {
    for end in 0..NESTED.len() {
        if let Some(prefix) = NESTED.get(..end) {
            assert!(parse(prefix).is_err(), "prefix of {end} bytes was accepted");
        }
    }
    for (i, _) in NESTED.char_indices() {
        for junk in ["<", ">", "\"", "&", "/", "'"] {
            let mut xml = NESTED.to_string();
            xml.insert_str(i, junk);
            let _ = parse(&xml);
        }
    }
}
