//! The README's tables of keys, generated from the declarations in
//! `keys.rs` (a test fails when the README differs; `STROM_BLESS=1 cargo
//! test -p strom-tuning readme` rewrites it).

use super::keys::{broker_keys, BrokerConfig, BrokerKey, TopicKey, TOPIC_KEYS};

/// One row per broker key (aliases in their key's row), by name.
pub fn broker_keys_markdown() -> String {
    let defaults = BrokerConfig::default();
    let mut keys: Vec<&BrokerKey> = broker_keys().filter(|k| k.alias_of.is_none()).collect();
    keys.sort_by_key(|k| k.name);
    let mut out = String::from(
        "| Key | Type | Default | Accepted values | Run time | Meaning |\n\
         |-----|------|---------|-----------------|----------|---------|\n",
    );
    for key in keys {
        let aliases: Vec<String> = broker_keys()
            .filter(|a| a.alias_of == Some(key.name))
            .map(|a| format!("`{}`", a.name))
            .collect();
        let name = if aliases.is_empty() {
            format!("`{}`", key.name)
        } else {
            format!("`{}` (alias {})", key.name, aliases.join(", "))
        };
        let default = if !key.default_doc.is_empty() {
            key.default_doc.to_string()
        } else {
            match defaults.value_of(key.name) {
                Some(value) if value.is_empty() => "empty".to_string(),
                Some(value) => format!("`{value}`"),
                None => "—".to_string(),
            }
        };
        let dynamic = if key.dynamic { "yes" } else { "no" };
        out.push_str(&format!(
            "| {name} | {} | {default} | {} | {dynamic} | {} |\n",
            type_name(key.config_type.doc_name(), key.unit),
            cell(&key.check.accepted()),
            cell(key.doc),
        ));
    }
    out
}

/// One row per topic key Strom acts on, by name.
pub fn topic_keys_markdown() -> String {
    let mut keys: Vec<&TopicKey> = TOPIC_KEYS.iter().collect();
    keys.sort_by_key(|k| k.name);
    let mut out = String::from(
        "| Key | Type | Default (broker key) | Accepted values | Meaning |\n\
         |-----|------|----------------------|-----------------|---------|\n",
    );
    for key in keys {
        let synonyms: Vec<String> = key.synonyms.iter().map(|s| format!("`{s}`")).collect();
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            key.name,
            type_name(key.config_type.doc_name(), key.unit),
            synonyms.join(", "),
            cell(&key.check.accepted()),
            cell(key.doc),
        ));
    }
    out
}

fn type_name(name: &str, unit: &str) -> String {
    if unit.is_empty() {
        name.to_string()
    } else {
        format!("{name}, {unit}")
    }
}

/// Text safe inside a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README section between `<!-- begin NAME -->` and `<!-- end NAME
    /// -->`, checked against (or, with STROM_BLESS=1, replaced by) `table`.
    fn check_readme_section(name: &str, table: &str) {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
        let readme = std::fs::read_to_string(path).expect("README.md");
        let begin = format!("<!-- begin {name} (generated from tuning/src/config/keys.rs) -->\n");
        let end = format!("<!-- end {name} -->");
        let start = readme
            .find(&begin)
            .unwrap_or_else(|| panic!("README.md has no line '{}'", begin.trim_end()))
            + begin.len();
        let stop = start
            + readme[start..]
                .find(&end)
                .unwrap_or_else(|| panic!("README.md has no line '{end}'"));
        if &readme[start..stop] == table {
            return;
        }
        if std::env::var_os("STROM_BLESS").is_some() {
            let updated = format!("{}{table}{}", &readme[..start], &readme[stop..]);
            std::fs::write(path, updated).expect("write README.md");
            return;
        }
        panic!(
            "README.md's {name} table differs from the key declarations in \
             tuning/src/config/keys.rs; run `STROM_BLESS=1 cargo test -p strom-tuning readme` \
             to regenerate it"
        );
    }

    /// One test for both tables: blessing rewrites the file, so the two
    /// must not run at once.
    #[test]
    fn readme_key_tables_are_generated_from_the_declarations() {
        check_readme_section("broker keys", &broker_keys_markdown());
        check_readme_section("topic keys", &topic_keys_markdown());
    }

    #[test]
    fn every_key_has_a_row_and_a_meaning() {
        let table = broker_keys_markdown();
        for key in broker_keys() {
            assert!(table.contains(&format!("`{}`", key.name)), "{}", key.name);
            assert!(
                key.alias_of.is_some() || !key.doc.is_empty(),
                "{} has no doc",
                key.name
            );
        }
        let topics = topic_keys_markdown();
        for key in TOPIC_KEYS {
            assert!(
                topics.contains(&format!("| `{}` |", key.name)),
                "{}",
                key.name
            );
        }
    }
}
