//! The checked-in SDL is the API's documentation: it must match the code.
#[test]
fn schema_graphql_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema.graphql");
    let sdl = api::graphql::sdl();
    if std::env::var("UPDATE_SCHEMA").is_ok() {
        std::fs::write(path, &sdl).expect("write schema.graphql");
    }
    let on_disk = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        on_disk == sdl,
        "schema.graphql differs from the code: run `cargo run -p api -- print-schema > schema.graphql`"
    );
}

#[test]
fn every_type_and_field_is_described() {
    let sdl = api::graphql::sdl();
    let mut undocumented = Vec::new();
    let mut current = String::new();
    let mut in_description = false;
    let mut described = false;
    for line in sdl.lines() {
        let t = line.trim();
        if in_description {
            if t.ends_with("\"\"\"") {
                in_description = false;
                described = true;
            }
            continue;
        }
        if t.starts_with("\"\"\"") {
            // A one-line block description opens and closes on the same line.
            in_description = !(t.len() > 3 && t.ends_with("\"\"\""));
            described = !in_description;
            continue;
        }
        if t.starts_with('"') && t.ends_with('"') {
            described = true;
            continue;
        }
        if ["type ", "input ", "enum ", "schema "]
            .iter()
            .any(|k| line.starts_with(k))
        {
            current = line.trim_end_matches(" {").to_string();
            let exempt = ["type Query", "type Mutation", "schema"]
                .iter()
                .any(|k| line.starts_with(k));
            if !described && !exempt {
                undocumented.push(current.clone());
            }
        } else if line.starts_with('\t')
            && !line.starts_with("\t\t")
            && !t.starts_with(')')
            && !current.starts_with("schema")
            && !described
        {
            undocumented.push(format!("{current}.{t}"));
        }
        described = false;
    }
    assert!(undocumented.is_empty(), "undescribed: {undocumented:#?}");
}
